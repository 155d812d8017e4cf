"""What the dashboard computes about runs, models and the dataset (mnist_core.summary)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from mnist_core import summary
from mnist_core.config import PRESETS, TrainConfig
from mnist_core.data import load_split
from mnist_core.files import write_json_atomic, write_text_atomic
from mnist_core.runs import RunStore
from mnist_core.train import METRIC_COLUMNS


def _metrics_csv(accuracies: list[float]) -> str:
    lines = [",".join(METRIC_COLUMNS)]
    for epoch, acc in enumerate(accuracies, start=1):
        values = {c: 0.1 for c in METRIC_COLUMNS} | {"epoch": epoch, "test_acc": acc}
        values.update({f"test_acc_{d}": acc - d / 1000 for d in range(10)})
        lines.append(",".join(str(values[c]) for c in METRIC_COLUMNS))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "–"),
        (float("nan"), "–"),
        (-1, "–"),
        (0, "0 s"),
        (42.4, "42 s"),
        (59.6, "1 min 00 s"),
        (185, "3 min 05 s"),
        (3720, "1 h 02 min"),
    ],
)
def test_format_duration(seconds, text):
    assert summary.format_duration(seconds) == text


def test_live_progress_mid_run():
    live = summary.live_progress(
        {
            "status": "running",
            "epoch": 3,
            "epochs": 4,
            "batch": 50,
            "batches": 200,
            "samples_per_s": 2100.5,
            "elapsed_s": 61.0,
            "eta_s": 30.0,
        }
    )
    assert live.active
    assert live.in_epoch == pytest.approx(0.25)
    assert live.overall == pytest.approx((2 + 0.25) / 4)
    assert live.overall_text == "Epoch 3 of 4"
    assert live.in_epoch_text == "Batch 50 of 200"
    assert (live.samples_per_s, live.elapsed_s, live.eta_s) == (2100.5, 61.0, 30.0)


def test_live_progress_of_a_queued_run_has_empty_bars_and_no_figures():
    live = summary.live_progress({"status": "queued", "epochs": 10})
    assert live.active
    assert (live.overall, live.in_epoch) == (0.0, 0.0)
    assert live.samples_per_s is None and live.eta_s is None
    assert "Queued" in live.overall_text
    assert live.in_epoch_text == "Batch –"


def test_live_progress_of_a_finished_run_is_full_and_a_failed_one_keeps_its_error():
    finished = summary.live_progress({"status": "finished", "epoch": 2, "epochs": 2, "batch": 3, "batches": 10})
    assert not finished.active and finished.overall == 1.0 and finished.in_epoch == 1.0
    failed = summary.live_progress({"status": "failed", "error": "boom"})
    assert not failed.active and failed.error == "boom" and failed.overall == 0.0


def test_live_progress_clamps_nonsense_into_the_bars_range():
    live = summary.live_progress({"status": "running", "epoch": 9, "epochs": 2, "batch": 500, "batches": 10, "eta_s": True})
    assert 0.0 <= live.overall <= 1.0 and 0.0 <= live.in_epoch <= 1.0
    assert live.eta_s is None  # a bool is not a number of seconds


def test_runs_table_lists_recipe_progress_and_accuracy(runs_dir):
    store = RunStore()
    finished = store.create(TrainConfig.from_preset("fast", epochs=2, train_subset=2000), "quick")
    write_text_atomic(finished.metrics_path, _metrics_csv([0.95, 0.97]))
    write_json_atomic(
        finished.progress_path,
        {
            "status": "finished",
            "epochs": 2,
            "test_acc": 0.97,
            "elapsed_s": 12.5,
            "started_at": "2026-01-02T03:04:05+00:00",
            "train_size": 2000,
        },
    )
    failed = store.create(TrainConfig(epochs=3), "broken")
    write_json_atomic(failed.progress_path, {"status": "failed", "epochs": 3, "error": "MNIST is not in /nowhere"})

    table = summary.runs_table(store.list())
    assert list(table.columns) == list(summary.TABLE_COLUMNS)
    by_name = table.set_index("name")
    quick = by_name.loc["quick"]
    fast = PRESETS["fast"]
    assert (quick.status, quick.preset, quick.epochs, quick.batch_size, quick.lr) == (
        "finished",
        "fast",
        "2/2",
        fast["batch_size"],
        fast["lr"],
    )
    assert (quick.optimizer, quick.schedule, bool(quick.augment), quick.train_images) == ("adam", "onecycle", False, 2000)
    assert quick.best_test_acc == pytest.approx(0.97) and quick.final_test_acc == pytest.approx(0.97)
    assert quick.duration_s == 12.5
    assert quick.started_at.isoformat() == "2026-01-02T03:04:05+00:00"
    broken = by_name.loc["broken"]
    assert (broken.status, broken.preset, broken.epochs) == ("failed", "custom", "0/3")
    assert broken.error == "MNIST is not in /nowhere"
    assert broken.best_test_acc is None or math.isnan(broken.best_test_acc)


def test_runs_table_keeps_a_run_whose_config_is_damaged(runs_dir):
    run = RunStore().create(TrainConfig(), "damaged")
    run.config_path.write_text("{not json")
    (row,) = summary.runs_table(RunStore().list()).to_dict("records")
    assert row["name"] == "damaged"
    assert "config.json" in row["error"]


def test_runs_table_of_no_runs_is_empty_with_its_columns():
    table = summary.runs_table([])
    assert table.empty and list(table.columns) == list(summary.TABLE_COLUMNS)


def test_per_class_accuracy_and_metrics_csv(runs_dir):
    run = RunStore().create(TrainConfig(), "m")
    assert summary.metrics_csv(run) is None
    text = _metrics_csv([0.9, 0.95])
    write_text_atomic(run.metrics_path, text)
    last = run.metrics()[-1]
    assert last["epoch"] == 2 and last["test_acc"] == pytest.approx(0.95)
    assert summary.per_class_accuracy(last) == pytest.approx([0.95 - d / 1000 for d in range(10)])
    assert summary.metrics_csv(run) == text.encode()


def test_model_card_reads_checkpoint_metadata():
    meta = {
        "created_at": "2026-01-02T03:04:05+00:00",
        "config": TrainConfig.from_preset("seed").to_dict(),
        "epoch": 10,
        "metrics": {"test_acc": 0.991},
        "per_class_acc": [0.99] * 10,
        "train_size": 60000,
        "run_id": "20260102-030405-seed",
    }
    card = summary.model_card(meta)
    assert card.test_acc == 0.991 and card.per_class_acc == [0.99] * 10
    assert card.trained_at.year == 2026 and card.epoch == 10 and card.train_images == 60000
    assert card.recipe == "seed preset · Adam lr 0.001 · batch 64 · 10 epochs · constant lr schedule"
    assert not card.partial_epoch


def test_model_card_of_sparse_metadata_has_no_invented_figures():
    card = summary.model_card({"per_class_acc": [0.5, 0.5]})
    assert card.test_acc is None and card.per_class_acc is None and card.trained_at is None
    assert card.recipe == "unknown recipe"


def test_sample_grid_shows_each_digit_on_its_own_row(tiny_data):
    split = load_split("test", tiny_data)
    grid = summary.sample_grid(split, per_class=4, scale=2, gap=2)
    tile = 56
    assert grid.dtype == np.uint8
    assert grid.shape == (10 * (tile + 2) - 2, 4 * (tile + 2) - 2)
    labels = split.labels.numpy()
    for digit in range(10):
        first = int(np.flatnonzero(labels == digit)[0])
        top = digit * (tile + 2)
        shown, original = grid[top : top + tile, :tile], split.raw().numpy()[first]
        # Every pixel becomes a 2x2 block of its own value: each of the four offsets gives the image back.
        for dy in (0, 1):
            for dx in (0, 1):
                assert np.array_equal(shown[dy::2, dx::2], original)
    assert (grid[tile : tile + 2, :] == 255).all()  # the gap between rows


def test_sample_grid_leaves_blank_tiles_when_a_digit_is_rare(tiny_data):
    split = load_split("test", tiny_data)
    most = int(np.bincount(split.labels.numpy()).max())
    grid = summary.sample_grid(split, per_class=most + 1, scale=1, gap=0)
    assert (grid[:, -28:] == 255).all()  # no digit has that many images: last column blank


@pytest.fixture(autouse=True)
def _no_real_runs_dir(monkeypatch, tmp_path):
    # A test that forgot runs_dir must not read or write the project's own runs/ folder.
    if "MNIST_LAB_RUNS_DIR" not in os.environ:
        monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(tmp_path / "unused-runs"))


def test_outcome_figures_are_the_last_epoch_and_the_best_test_accuracy():
    rows = [
        {"epoch": 1, "test_acc": 0.97, "test_loss": 0.1, "train_acc": 0.9},
        {"epoch": 2, "test_acc": 0.96, "test_loss": 0.12345, "train_acc": 0.95},
    ]
    assert summary.outcome_figures(rows) == [
        ("Test accuracy", "96.00%"),
        ("Best test accuracy", "97.00%"),
        ("Test loss", "0.1235"),
        ("Train accuracy", "95.00%"),
    ]
    assert summary.outcome_figures([]) == []
