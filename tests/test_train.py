"""The training loop on tiny synthetic IDX data: learning, progress, stop, determinism."""

from __future__ import annotations

import pytest
import torch

from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.errors import ConfigError
from mnist_core.train import METRIC_COLUMNS, default_threads, train


@pytest.fixture
def splits(tiny_data):
    return load_split("train", tiny_data), load_split("test", tiny_data)


@pytest.mark.integration  # trains a model (seconds)
def test_learns_and_reports_every_batch_and_epoch(splits):
    batches, epochs = [], []
    config = TrainConfig(epochs=3, batch_size=32, lr=3e-3, device="cpu")
    result = train(config, *splits, on_batch=batches.append, on_epoch=lambda m, model: epochs.append(m))
    assert result.status == "finished" and len(result.history) == 3 == len(epochs)
    assert len(batches) == 3 * 19  # ceil(600 / 32) per epoch, the last batch partial
    assert [b.batch for b in batches[:19]] == list(range(1, 20)) and batches[-1].eta_s == 0
    last = result.history[-1]
    assert last.test_acc > 0.9  # the synthetic classes are trivially separable
    assert len(last.per_class_acc) == 10 and set(last.to_row()) == set(METRIC_COLUMNS)
    assert result.history[0].train_loss > last.train_loss


@pytest.mark.integration  # trains a model (seconds)
def test_same_seed_same_numbers(splits):
    config = TrainConfig(epochs=2, batch_size=50, seed=3, augment=True, device="cpu", threads=1)
    first, second = train(config, *splits), train(config, *splits)
    assert [m.test_loss for m in first.history] == [m.test_loss for m in second.history]
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    other = train(config.replace(seed=4), *splits)
    assert other.history[-1].train_loss != first.history[-1].train_loss


@pytest.mark.integration  # trains a model (seconds)
def test_stop_between_batches_keeps_a_measured_model(splits):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 5

    result = train(TrainConfig(epochs=5, batch_size=32, device="cpu"), *splits, should_stop=should_stop)
    assert result.status == "stopped" and result.history == []
    assert len(calls) == 5 and result.final is not None and result.final.epoch == 1


@pytest.mark.integration  # trains a model (seconds)
def test_subset_and_its_bounds(splits):
    seen = []
    train(TrainConfig(epochs=1, batch_size=100, train_subset=250, device="cpu"), *splits, on_batch=seen.append)
    assert seen[-1].batches == 3
    with pytest.raises(ConfigError, match="train_subset"):
        train(TrainConfig(epochs=1, train_subset=601, device="cpu"), *splits)


@pytest.mark.integration  # trains a model (seconds)
@pytest.mark.parametrize("options", [{"optimizer": "sgd", "lr": 0.05}, {"schedule": "onecycle", "lr": 5e-3}])
def test_other_optimizer_and_schedule_learn(splits, options):
    result = train(TrainConfig(epochs=3, batch_size=32, device="cpu", **options), *splits)
    assert result.history[-1].test_acc > 0.9


@pytest.mark.integration  # trains a model (seconds)
def test_label_smoothing_keeps_the_model_from_certainty(splits):
    """With smoothing 0.3 the best answer gives the label 0.73 (0.7 + 0.3 / 10); plain cross-entropy heads for 1."""
    config = TrainConfig(epochs=3, batch_size=32, lr=3e-3, device="cpu", threads=1)
    confidence = {}
    for smoothing in (0.0, 0.3):
        last = train(config.replace(label_smoothing=smoothing), *splits).history[-1]
        assert last.test_acc > 0.9
        confidence[smoothing] = last.test_probabilities.max(axis=1).mean()
    assert confidence[0.0] > 0.9 and 0.6 < confidence[0.3] < 0.8


@pytest.mark.integration  # trains a model (seconds)
def test_a_trainer_sets_its_own_thread_count_whatever_it_inherited(splits):
    """The app server runs with one OpenMP thread; a trainer it starts must not inherit that."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a process started with OMP_NUM_THREADS=1
    try:
        seen = []
        config = TrainConfig(epochs=1, batch_size=200, device="cpu")
        train(config, *splits, on_batch=lambda progress: seen.append(torch.get_num_threads()))
        assert set(seen) == {default_threads()}
        seen.clear()
        train(config.replace(threads=2), *splits, on_batch=lambda progress: seen.append(torch.get_num_threads()))
        assert set(seen) == {2}
        assert torch.get_num_threads() == 1  # restored afterwards
    finally:
        torch.set_num_threads(before)
