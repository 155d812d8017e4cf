"""The training loop: batches sliced from preloaded tensors, progress per batch, metrics per epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from mnist_core.augment import augment_batch
from mnist_core.config import TrainConfig, physical_cores
from mnist_core.data import Split, subset_indices
from mnist_core.errors import ConfigError
from mnist_core.evaluate import NUM_CLASSES, evaluate
from mnist_core.model import MnistCNN, as_input, prepare, resolve_device
from mnist_core.optim import Adam, NesterovSGD, OneCycle, Optimizer
from mnist_core.precision import autocast, resolved

# Reading a batch's loss makes the host wait for a GPU's queued work, and the GPU then idles while the host
# queues the next batch; so a GPU run reads it only this often. A CPU has no queue: it reports every batch.
REPORT_EVERY_ACCELERATOR = 64


def default_threads() -> int:
    """Compute threads when a config names none: one per physical core, torch's own rule, set explicitly so that
    a trainer does not inherit the app server's single thread (OMP_NUM_THREADS=1, see streamlit_app.py)."""
    return physical_cores()


@dataclass(frozen=True)
class BatchProgress:
    """Where a run is, reported after a batch (every batch on a CPU; see `train`)."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    samples_per_s: float
    elapsed_s: float
    eta_s: float
    loss: float
    accuracy: float = math.nan  # of this batch, on its training images


@dataclass(frozen=True)
class EpochMetrics:
    """One row of metrics.csv. Train figures are running averages over the epoch's batches."""

    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    epoch_s: float
    samples_per_s: float
    lr: float
    per_class_acc: tuple[float, ...] = field(default=())
    # The test-set softmax (N, 10) this epoch was scored with: the run's dynamics, kept without a second pass.
    test_probabilities: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_row(self) -> dict[str, float]:
        """Flat values for CSV: the per-class accuracies become test_acc_0 ... test_acc_9."""
        row = {k: getattr(self, k) for k in EPOCH_COLUMNS}
        row.update({f"test_acc_{d}": acc for d, acc in enumerate(self.per_class_acc)})
        return row


EPOCH_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_s", "samples_per_s", "lr")
METRIC_COLUMNS = EPOCH_COLUMNS + tuple(f"test_acc_{d}" for d in range(NUM_CLASSES))


@dataclass
class TrainResult:
    """What a finished (or stopped) run leaves: the model and its history."""

    model: MnistCNN
    config: TrainConfig
    history: list[EpochMetrics]
    status: str  # "finished" or "stopped"
    final: EpochMetrics | None  # metrics of the returned weights (a stopped run's partial epoch too)
    seconds: float


def _make_optimizer(config: TrainConfig, model: MnistCNN) -> Optimizer:
    if config.optimizer == "sgd":
        return NesterovSGD(model.parameters(), lr=config.lr, momentum=0.9)
    return Adam(model.parameters(), lr=config.lr)


def _make_schedule(config: TrainConfig, optimizer: Optimizer, steps_per_epoch: int) -> OneCycle | None:
    if config.schedule == "onecycle":
        return OneCycle(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    return None


def train(
    config: TrainConfig,
    train_split: Split,
    test_split: Split,
    on_batch: Callable[[BatchProgress], None] | None = None,
    on_epoch: Callable[[EpochMetrics, MnistCNN], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    report_every: int | None = None,
) -> TrainResult:
    """Train MnistCNN per `config`. `should_stop` is polled between batches; the same seed on the same device gives the same numbers.

    `on_batch` hears of batches 1, 1 + report_every, 1 + 2 * report_every, ... and each epoch's last
    (report_every defaults to 1 on a CPU and to REPORT_EVERY_ACCELERATOR on a GPU: see there).
    """
    device = resolve_device(config.device)
    if report_every is None:
        report_every = 1 if device.type == "cpu" else REPORT_EVERY_ACCELERATOR
    subset = subset_indices(len(train_split), config.train_subset)
    if config.train_subset is not None and config.train_subset > len(train_split):
        raise ConfigError("train_subset", f"is {config.train_subset} but the training set has only {len(train_split)} images.")
    images, labels = train_split.images, train_split.labels
    if subset is not None:
        images, labels = images[subset], labels[subset]
    # The whole set fits on any device (47 MB of uint8 pixels): move it once, slice batches there.
    images, labels = images.to(device), labels.to(device)

    previous_threads, previous_deterministic = torch.get_num_threads(), torch.backends.cudnn.deterministic
    torch.set_num_threads(config.threads or default_threads())
    # cuDNN's default algorithms differ between two runs of the same seed on a GPU; the deterministic ones
    # cost no measurable time on this model (docs/performance.md, Training on a GPU).
    torch.backends.cudnn.deterministic = True
    try:
        config = resolved(config)  # `auto` probes here, under the run's thread count; the result records fp32 or bf16
        torch.manual_seed(config.seed)
        model = prepare(MnistCNN(), device)
        optimizer = _make_optimizer(config, model)
        n = len(labels)
        batches = math.ceil(n / config.batch_size)
        schedule = _make_schedule(config, optimizer, batches)
        generator = torch.Generator().manual_seed(config.seed)

        history: list[EpochMetrics] = []
        started = time.perf_counter()
        done_batches, total_batches = 0, batches * config.epochs
        status, final = "finished", None
        for epoch in range(1, config.epochs + 1):
            epoch_started = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=generator).to(device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.long, device=device)
            seen = 0
            for batch in range(batches):
                index = order[batch * config.batch_size : (batch + 1) * config.batch_size]
                x, y = images[index], labels[index]
                if config.augment:
                    x = augment_batch(x, generator)
                with autocast(config.precision, device):
                    logits = model(as_input(x, device))
                    loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                loss_sum += loss.detach() * len(y)
                hits = (logits.argmax(1) == y).sum()
                correct += hits
                seen += len(y)
                done_batches += 1
                if on_batch is not None and (batch % report_every == 0 or batch + 1 == batches):
                    loss_value = loss.item()  # first: it waits for the device, so the times below include its work
                    elapsed = time.perf_counter() - started
                    on_batch(
                        BatchProgress(
                            epoch=epoch,
                            epochs=config.epochs,
                            batch=batch + 1,
                            batches=batches,
                            samples_per_s=seen / max(time.perf_counter() - epoch_started, 1e-9),
                            elapsed_s=elapsed,
                            eta_s=elapsed / done_batches * (total_batches - done_batches),
                            loss=loss_value,
                            accuracy=hits.item() / len(y),
                        )
                    )
                if should_stop is not None and should_stop():
                    status = "stopped"
                    break
            # Reading the sums waits for the device's queued work, so the epoch's time includes it (CUDA, MPS).
            loss_total, correct_total = float(loss_sum), int(correct)
            train_seconds = time.perf_counter() - epoch_started
            metrics = _epoch_metrics(model, test_split, epoch, loss_total, correct_total, seen, train_seconds, optimizer)
            if status == "stopped":
                final = metrics  # a partial epoch: measured, but not a row of the history
                break
            history.append(metrics)
            final = metrics
            if on_epoch is not None:
                on_epoch(metrics, model)
        return TrainResult(model, config, history, status, final, time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous_threads)
        torch.backends.cudnn.deterministic = previous_deterministic


def _epoch_metrics(model, test_split, epoch, loss_total, correct_total, seen, train_seconds, optimizer) -> EpochMetrics:
    result = evaluate(model, test_split.images, test_split.labels)
    return EpochMetrics(
        epoch=epoch,
        train_loss=loss_total / max(seen, 1),
        train_acc=correct_total / max(seen, 1),
        test_loss=result.loss,
        test_acc=result.accuracy,
        epoch_s=train_seconds,
        samples_per_s=seen / max(train_seconds, 1e-9),
        lr=optimizer.lr,
        per_class_acc=tuple(float(v) for v in result.per_class()["recall"]),
        test_probabilities=result.probabilities,
    )
