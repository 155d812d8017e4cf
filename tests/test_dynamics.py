"""Training dynamics: the per-sample categories on hand-made arrays, and the file a trainer leaves (also after a kill)."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
import torch

from mnist_core import dynamics, maps
from mnist_core.checkpoint import load_checkpoint
from mnist_core.cli import main as cli_main
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.dynamics import Dynamics
from mnist_core.launch import start_run
from mnist_core.runs import ACTIVE, RunStore
from mnist_core.testing import kill_trainers


def one_hot_epochs(predictions: list[list[int]], confidence: float = 0.9) -> np.ndarray:
    """(E, N, 10) probabilities whose argmax at epoch e for sample i is predictions[e][i]."""
    predictions = np.asarray(predictions)
    epochs, n = predictions.shape
    rest = (1 - confidence) / 9
    probabilities = np.full((epochs, n, 10), rest, dtype=np.float32)
    for e in range(epochs):
        probabilities[e, np.arange(n), predictions[e]] = confidence
    return probabilities


# Four samples, all labelled 3, over four epochs (rows: epochs; columns: samples):
#   0: wrong, wrong, right, right   -> first right at epoch 3
#   1: right, wrong, right, right   -> forgotten (right, then wrong)
#   2: 5, 8, 5, 8                   -> never learned, three flips
#   3: right all along              -> first right at 1, nothing else
LABELS = np.array([3, 3, 3, 3])
PREDICTED = [
    [0, 3, 5, 3],
    [1, 0, 8, 3],
    [3, 3, 5, 3],
    [3, 3, 8, 3],
]


@pytest.fixture
def story() -> Dynamics:
    return Dynamics(one_hot_epochs(PREDICTED), LABELS)


def test_first_right_and_learned_late(story):
    assert story.first_right.tolist() == [3, 1, 0, 1]
    assert story.learned_late(3).tolist() == [True, False, False, False]
    assert story.learned_late(2).tolist() == [True, False, False, False]
    assert story.learned_late(1).tolist() == [True, True, False, True]  # everything ever learned


def test_forgotten_never_learned_and_flips(story):
    assert story.forgotten.tolist() == [False, True, False, False]
    assert story.never_learned.tolist() == [False, False, True, False]
    # Sample 0 changes 0 -> 1 -> 3, sample 1 3 -> 0 -> 3, sample 2 flips three times.
    assert story.flips.tolist() == [2, 2, 3, 0]
    assert story.flipped(3).tolist() == [False, False, True, False]
    assert story.flipped(2).tolist() == [True, True, True, False]


def test_a_sample_right_only_at_the_last_epoch_is_not_forgotten():
    single = Dynamics(one_hot_epochs([[1], [2], [3]]), np.array([3]))
    assert not single.forgotten[0] and single.first_right[0] == 3


def test_category_by_name_and_per_digit_counts(story):
    labels = np.array([0, 1, 1, 7])
    # Columns: 0 (label 0) right, wrong, right, right; 1 (label 1) the same; 2 (label 1) never; 3 (label 7) always.
    mixed = Dynamics(one_hot_epochs([[0, 1, 5, 7], [1, 0, 8, 7], [0, 1, 5, 7], [0, 1, 8, 7]]), labels)
    assert mixed.category("forgotten").tolist() == [True, True, False, False]
    assert mixed.per_digit(mixed.category("flipped", n=2)).tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    assert mixed.per_digit(mixed.category("never learned")).tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="category must be one of"):
        story.category("sometimes")


def test_cartography_is_mean_and_std_of_the_given_label_probability():
    # One sample labelled 2 whose p(2) goes 0.2, 0.4, 0.6, 0.8 over four epochs.
    probabilities = np.zeros((4, 1, 10), dtype=np.float32)
    for e, p in enumerate((0.2, 0.4, 0.6, 0.8)):
        probabilities[e, 0, 2] = p
        probabilities[e, 0, 5] = 1 - p
    single = Dynamics(probabilities, np.array([2]))
    assert single.confidence[0] == pytest.approx(0.5)
    assert single.variability[0] == pytest.approx(np.sqrt(0.05))  # population std of 0.2..0.8
    story = single.story(0)
    assert story["final_prediction"] == 2
    assert story["epoch"].tolist() == [1, 2, 3, 4]
    assert story["given"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert story["final"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8])


def test_float16_keeps_every_argmax_even_when_rounding_ties_two_classes():
    # 0.50001 and 0.49999 are the same float16; the larger one must still win.
    row = np.zeros((2, 10), dtype=np.float32)
    row[0, [4, 7]] = [0.49999, 0.50001]
    row[1, [1, 2]] = [0.7, 0.3]
    small = dynamics.to_float16(row)
    assert small.dtype == np.float16
    assert small.argmax(axis=1).tolist() == [7, 1]
    assert np.allclose(small.astype(np.float32).sum(axis=1), 1, atol=2e-3)


def test_read_refuses_missing_wrong_shaped_and_corrupt_files(tmp_path):
    path = tmp_path / dynamics.FILE_NAME
    assert dynamics.read(path) is None
    dynamics.write(path, [np.full((5, 10), 0.1, np.float16)])
    assert dynamics.read(path).shape == (1, 5, 10)
    assert dynamics.read(path, n=6) is None
    path.write_bytes(b"not numpy")
    assert dynamics.read(path) is None
    np.save(path, np.zeros((5, 10), np.float16))
    assert dynamics.read(path) is None


def _assert_matches_metrics(run, n_test: int) -> np.ndarray:
    """The run's dynamics file against its metrics.csv: one slice per epoch, rows summing to 1, the same accuracy."""
    stored = np.load(run.path / dynamics.FILE_NAME)
    rows = run.metrics()
    assert stored.dtype == np.float16 and stored.shape == (len(rows), n_test, 10)
    assert np.allclose(stored.astype(np.float32).sum(axis=2), 1, atol=5e-3)
    labels = load_split("test").labels.numpy()
    for row, epoch in zip(rows, stored):
        assert (epoch.argmax(axis=1) == labels).mean() == pytest.approx(row["test_acc"], abs=1e-12)
    return stored


def _recording(name: str):
    """A started RunRecorder of a new 3-epoch run (in the test's runs folder) and the model it checkpoints."""
    from mnist_core.model import MnistCNN
    from mnist_core.recorder import RunRecorder

    class TrainSplit:  # what the recorder reads of the training split
        checksum = "0" * 64

        def __len__(self) -> int:
            return 600

    config = TrainConfig(epochs=3, device="cpu", threads=1)
    recorder = RunRecorder(RunStore().create(config, name), config, TrainSplit())
    recorder.start()
    return recorder, MnistCNN()


def _epoch(epoch: int, probabilities: np.ndarray):
    """The metrics of one epoch as the trainer hands them to the recorder, with these test probabilities."""
    from mnist_core.train import EpochMetrics

    return EpochMetrics(epoch, 1.0, 0.5, 1.0, 0.5, 1.0, 1.0, 1e-3, (0.5,) * 10, test_probabilities=probabilities)


def test_the_recorder_rewrites_the_file_with_each_completed_epoch(runs_dir):
    recorder, model = _recording("recorded")
    rng = np.random.default_rng(0)
    given = []
    for epoch in (1, 2):
        probabilities = rng.dirichlet(np.ones(10), size=50).astype(np.float32)
        given.append(probabilities)
        recorder.on_epoch(_epoch(epoch, probabilities), model)
        stored = np.load(recorder.run.path / dynamics.FILE_NAME)
        assert stored.dtype == np.float16 and stored.shape == (epoch, 50, 10)
        assert np.allclose(stored.astype(np.float32), np.stack(given), atol=1e-3)
        assert (stored.argmax(axis=2) == np.stack(given).argmax(axis=2)).all()


def test_a_trainer_killed_between_the_probabilities_and_the_metrics_row_is_cut_back_to_its_epochs(runs_dir, monkeypatch):
    import mnist_core.recorder as recorder_module

    class Killed(BaseException):
        """The process dying: nothing after this point of the recorder runs."""

    def die(*args, **kwargs):
        raise Killed

    recorder, model = _recording("cut")
    run, rng = recorder.run, np.random.default_rng(1)
    for epoch in (1, 2):
        recorder.on_epoch(_epoch(epoch, rng.dirichlet(np.ones(10), size=40).astype(np.float32)), model)
    # Epoch 3's probabilities land, then the process dies before its metrics row does.
    with monkeypatch.context() as patched:
        patched.setattr(recorder_module, "write_text_atomic", die)
        with pytest.raises(Killed):
            recorder.on_epoch(_epoch(3, rng.dirichlet(np.ones(10), size=40).astype(np.float32)), model)
    assert np.load(run.path / dynamics.FILE_NAME).shape == (3, 40, 10) and len(run.metrics()) == 2
    progress = json.loads(run.progress_path.read_text())
    progress.update(status="running", pid=os.getpid(), pid_started=12345.0)  # a pid now used by another process
    run.progress_path.write_text(json.dumps(progress))

    assert run.status() == "failed" and "2 completed epoch(s)" in run.progress()["error"]
    assert np.load(run.path / dynamics.FILE_NAME).shape == (2, 40, 10)


def test_keep_epochs_leaves_shorter_and_foreign_files_alone_and_removes_an_epochless_one(tmp_path):
    path = tmp_path / dynamics.FILE_NAME
    dynamics.write(path, [np.full((5, 10), 0.1, np.float16)] * 2)
    dynamics.keep_epochs(path, 2)
    assert np.load(path).shape == (2, 5, 10)
    dynamics.keep_epochs(path, 0)
    assert not path.exists()
    dynamics.keep_epochs(path, 0)  # nothing there: nothing to do
    path.write_bytes(b"not numpy")
    dynamics.keep_epochs(path, 0)
    assert path.read_bytes() == b"not numpy"


def test_the_end_of_run_analysis_is_a_step_of_the_runs_progress(runs_dir, monkeypatch):
    from mnist_core.model import MnistCNN
    from mnist_core.recorder import RunRecorder

    class Split:  # what the recorder reads of a split
        checksum = "0" * 64
        images = torch.zeros((3, 1, 28, 28), dtype=torch.uint8)
        labels = torch.zeros(3, dtype=torch.long)

        def __len__(self) -> int:
            return 3

    config = TrainConfig(epochs=1, device="cpu", threads=1)
    run = RunStore().create(config, "analysed")
    recorder = RunRecorder(run, config, Split())
    recorder.start()
    seen = {}

    def write_analysis(out_dir, *args, **kwargs):
        seen.update(json.loads((run.path / "progress.json").read_text()))  # what a reader sees meanwhile
        return {"n": 3, "accuracy": 1.0, "map_method": "PCA", "seconds": 0.5, "split": "test"}

    monkeypatch.setattr("mnist_core.maps.write_analysis", write_analysis)
    recorder.analyse(MnistCNN(), Split())
    assert seen["status"] == "running" and seen["step"] == "analysing"
    after = json.loads((run.path / "progress.json").read_text())
    assert "step" not in after
    assert after["analysis_s"] == 0.5 and after["map_method"] == "PCA"


@pytest.mark.integration
def test_a_training_run_records_every_epoch(tiny_data, runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    args = [
        "train",
        "--data-dir",
        str(tiny_data),
        "--preset",
        "fast",
        "--epochs",
        "3",
        "--train-subset",
        "128",
        "--device",
        "cpu",
    ]
    assert cli_main(args) == 0
    (run,) = RunStore().list()
    stored = _assert_matches_metrics(run, n_test=200)
    assert len(stored) == 3
    # Different weights after each epoch: the slices are the epochs' own, not one copied three times.
    assert not np.array_equal(stored[0], stored[-1])
    assert stored[0].nbytes <= 200_000  # the disk budget per epoch (10,000 test images: exactly 200,000 bytes)
    # The end-of-run analysis: what Explore needs, in the run folder (PCA: 200 images are below t-SNE's minimum).
    summary = json.loads((run.path / "analysis.json").read_text())
    assert summary["n"] == 200 and summary["map_method"] == "PCA" and summary["split"] == "test"
    assert np.load(run.path / "map.npy").shape == (200, 2)
    assert np.array_equal(np.load(run.path / "probabilities.npy").argmax(1), stored[-1].argmax(1))
    # ... named by the digest of the checkpoint they come from, so Explore reads them instead of running the model.
    digest = load_checkpoint(run.checkpoint_path).digest
    assert maps.describes(run.path, digest, load_split("test", tiny_data))
    # ... and the whole training split's (the explorer's neighbour bank), though this run trained on 128 of its images.
    bank, train_split = run.path / "train", load_split("train", tiny_data)
    assert maps.describes(bank, digest, train_split) and not (bank / maps.MAP_FILE).exists()
    assert np.load(bank / maps.FEATURES_FILE).shape == (len(train_split), 128)
    progress = run.progress()
    assert progress["status"] == "finished" and "step" not in progress and progress["analysis_s"] >= 0


@pytest.mark.integration
def test_a_run_killed_in_the_middle_of_an_epoch_keeps_its_completed_epochs(tiny_data, runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    config = TrainConfig(epochs=50, batch_size=8, device="cpu", threads=1)  # 75 batches an epoch
    run = start_run(config, data_dir=tiny_data, name="killed")
    try:
        deadline = time.monotonic() + 120
        while True:
            progress = run.progress()
            if len(run.metrics()) >= 2 and progress.get("epoch", 0) > len(run.metrics()) and progress.get("batch", 0) > 5:
                break  # two epochs done, and well inside the next one
            assert progress.get("status") in ACTIVE and time.monotonic() < deadline, progress
            time.sleep(0.05)
        os.kill(progress["pid"], signal.SIGKILL)
        while run.status() in ACTIVE:
            time.sleep(0.05)
    finally:
        kill_trainers(runs_dir)
    assert run.status() == "failed"
    stored = _assert_matches_metrics(run, n_test=200)
    assert len(stored) >= 2
