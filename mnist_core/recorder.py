"""RunRecorder: the trainer's side of the run store. It turns training callbacks into run files."""

from __future__ import annotations

import csv
import io
import os
import socket
import time
from typing import Any

import psutil

from mnist_core import dynamics, maps, steps
from mnist_core.checkpoint import build_meta, file_digest, save_checkpoint
from mnist_core.config import TrainConfig
from mnist_core.data import Split
from mnist_core.files import write_json_atomic, write_text_atomic
from mnist_core.model import MnistCNN
from mnist_core.runs import Run, _now, config_values, initialize, mark_failed
from mnist_core.train import METRIC_COLUMNS, BatchProgress, EpochMetrics, TrainResult

# progress.json is rewritten at most this often (the issue asks for at least once a second).
PROGRESS_INTERVAL_S = 0.5


class RunRecorder:
    """Writes progress.json, metrics.csv and the checkpoint of one run as training goes."""

    def __init__(self, run: Run, config: TrainConfig, train_split: Split):
        self.run = run
        self.config = config
        self.data_checksum = train_split.checksum
        self.train_size = config.train_subset or len(train_split)
        self._rows: list[dict[str, float]] = []
        self._last_write = 0.0
        self._state: dict[str, Any] = {}
        self._dynamics: list = []  # one float16 (N, 10) array per completed epoch
        self._steps = steps.StepWindow()
        self._step_rows: list[dict[str, float]] = []

    def start(self) -> None:
        """Claim the run: config.json from this process's config, status running with this pid."""
        if not self.run.config_path.is_file():
            initialize(self.run, self.config)
        else:
            write_json_atomic(self.run.config_path, config_values(self.config))
        self.run.metrics_path.unlink(missing_ok=True)
        self.dynamics_path.unlink(missing_ok=True)
        (self.run.path / steps.FILE_NAME).unlink(missing_ok=True)
        me = psutil.Process(os.getpid())
        self._state = {
            "status": "running",
            "pid": me.pid,
            "pid_started": me.create_time(),
            "host": socket.gethostname(),
            "started_at": _now(),
            "epoch": 0,
            "epochs": self.config.epochs,
            "batch": 0,
            "batches": 0,
            "samples_per_s": 0.0,
            "elapsed_s": 0.0,
            "eta_s": None,
            "train_size": self.train_size,
        }
        self._write_progress()

    @property
    def dynamics_path(self):
        """RUN/test_probabilities.npy: every completed epoch's test-set probabilities."""
        return self.run.path / dynamics.FILE_NAME

    def should_stop(self) -> bool:
        return self.run.stop_requested()

    def on_batch(self, progress: BatchProgress) -> None:
        self._state.update(
            epoch=progress.epoch,
            batch=progress.batch,
            batches=progress.batches,
            samples_per_s=round(progress.samples_per_s, 1),
            elapsed_s=round(progress.elapsed_s, 2),
            eta_s=round(progress.eta_s, 1),
            loss=round(progress.loss, 5),
        )
        row = self._steps.add(progress.epoch, progress.batch, progress.batches, progress.loss, progress.accuracy)
        if row is not None:
            self._step_rows.append(row)
            steps.write(self.run.path / steps.FILE_NAME, self._step_rows)
        if time.monotonic() - self._last_write >= PROGRESS_INTERVAL_S or progress.batch == progress.batches:
            self._write_progress()

    def on_epoch(self, metrics: EpochMetrics, model: MnistCNN) -> None:
        """After each epoch: its test probabilities, a new metrics row, a checkpoint of this epoch's weights, then progress."""
        if metrics.test_probabilities is not None:
            # Written before the metrics row, so the file never holds fewer epochs than metrics.csv has rows.
            self._dynamics.append(dynamics.to_float16(metrics.test_probabilities))
            dynamics.write(self.dynamics_path, self._dynamics)
        self._rows.append(metrics.to_row())
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(self._rows)
        write_text_atomic(self.run.metrics_path, buffer.getvalue())
        self._save(model, metrics, partial=False)
        self._state.update(test_acc=metrics.test_acc, best_test_acc=max(r["test_acc"] for r in self._rows))
        self._write_progress()

    def keep_final(self, result: TrainResult) -> None:
        """A stop mid-epoch saves the weights it reached; after a whole epoch they are saved already."""
        if result.status == "stopped" and result.final is not None:
            self._save(result.model, result.final, partial=True)

    def analyse(self, model: MnistCNN, test_split: Split, bank_split: Split | None = None, threads: int = 1) -> None:
        """End of run, finished or stopped, after `keep_final`: what Explore needs (probabilities, features, 2-D map)
        into the run folder, under the digest of the checkpoint they come from; with `bank_split` (the training
        split as Explore loads it), its probabilities and features too, so that no server has to run the model over
        it for a sample's nearest neighbours (`maps.outputs_folder`).

        progress.json says so while it runs (step "analysing"); a failure to write it leaves Explore on PCA, not a failed run.
        """
        self._state.update(step="analysing")
        self._write_progress()
        try:
            digest = file_digest(self.run.checkpoint_path) if self.run.checkpoint_path.is_file() else None
            summary = maps.write_analysis(self.run.path, model, test_split, threads=threads, digest=digest)
            seconds = summary["seconds"]
            if bank_split is not None:
                bank = maps.outputs_folder(self.run.path, bank_split.name)
                seconds += maps.write_analysis(bank, model, bank_split, digest=digest, with_map=False)["seconds"]
            self._state.update(analysis_s=round(seconds, 2), map_method=summary["map_method"])
        except OSError as exc:
            self._state.update(analysis_error=f"The end-of-run analysis could not be written ({exc.strerror}).")
        self._state.pop("step", None)
        self._write_progress()

    def finish(self, result: TrainResult) -> None:
        """Mark the run finished or stopped (after `keep_final`)."""
        self._state.update(status=result.status, finished_at=_now(), elapsed_s=round(result.seconds, 2), eta_s=0.0)
        self._write_progress()

    def fail(self, message: str) -> None:
        """Mark the run failed with a message a user can act on."""
        self._state = mark_failed(self.run, message, self._state)

    def _save(self, model: MnistCNN, metrics: EpochMetrics, partial: bool) -> None:
        meta = build_meta(
            run_id=self.run.id,
            config=self.config.to_dict(),
            epoch=metrics.epoch,
            partial_epoch=partial,
            metrics={k: v for k, v in metrics.to_row().items() if not k.startswith("test_acc_")},
            per_class_acc=list(metrics.per_class_acc),
            data_checksum=self.data_checksum,
            train_size=self.train_size,
        )
        save_checkpoint(self.run.checkpoint_path, model, meta)

    def _write_progress(self) -> None:
        self._state["updated_at"] = _now()
        write_json_atomic(self.run.progress_path, self._state)
        self._last_write = time.monotonic()
