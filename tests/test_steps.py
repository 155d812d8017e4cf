"""Live step curves: the windows of batches the trainer records, TensorBoard's smoothing, the figure and the Train page."""

from __future__ import annotations

import pytest

from mnist_core import charts, steps
from mnist_core.cli import main as cli_main
from mnist_core.config import TrainConfig
from mnist_core.recorder import RunRecorder
from mnist_core.runs import RunStore
from mnist_core.train import BatchProgress
from tests.app_support import app


def test_a_window_closes_every_n_batches_and_at_each_epochs_end():
    window = steps.StepWindow(every=2)
    rows = []
    for epoch in (1, 2):
        for batch in range(1, 4):  # 3 batches an epoch: windows of 2, then the epoch's last single batch
            row = window.add(epoch, batch, 3, loss=float(batch), acc=batch / 10)
            if row:
                rows.append(row)
    assert [r["step"] for r in rows] == [2, 3, 5, 6]
    assert [r["epoch"] for r in rows] == [pytest.approx(2 / 3, abs=1e-4), 1.0, pytest.approx(1 + 2 / 3, abs=1e-4), 2.0]
    assert [r["loss"] for r in rows] == [1.5, 3.0, 1.5, 3.0]
    assert rows[0]["acc"] == pytest.approx(0.15)


def test_smoothing_is_a_debiased_moving_average():
    # weight 0.5: 0.5*v1 / 0.5 = v1; then (0.5*0.5*4 + 0.5*2) / 0.75 = 2 / 0.75.
    assert steps.smooth([4.0, 2.0], weight=0.5) == pytest.approx([4.0, 2.0 / 0.75])
    assert steps.smooth([1.0, 1.0, 1.0]) == pytest.approx([1.0, 1.0, 1.0])  # a flat line stays flat
    assert steps.smooth([]) == []


def test_read_skips_damaged_rows_and_missing_files(tmp_path):
    assert steps.read(tmp_path) == []
    (tmp_path / steps.FILE_NAME).write_text("step,epoch,loss,acc\n32,0.5,0.9,0.7\nx,y,z,w\n64,1.0,nan,0.8\n")
    assert steps.read(tmp_path) == [{"step": 32.0, "epoch": 0.5, "loss": 0.9, "acc": 0.7}]


def test_step_figure_has_raw_smoothed_and_test_points():
    recorded = [{"step": 1, "epoch": 0.5, "loss": 2.0, "acc": 0.5}, {"step": 2, "epoch": 1.0, "loss": 1.0, "acc": 0.8}]
    rows = [{"epoch": 1, "test_loss": 0.9, "test_acc": 0.85}]
    figure = charts.step_curves_figure(recorded, rows, "loss", epochs=3)
    raw, smoothed, test = figure.data
    assert list(raw.x) == [0.5, 1.0] and list(raw.y) == [2.0, 1.0]
    assert list(smoothed.y) == pytest.approx(steps.smooth([2.0, 1.0]))
    assert list(test.x) == [1] and list(test.y) == [0.9]
    assert tuple(figure.layout.xaxis.range) == (0, 3)


def test_the_recorder_writes_a_row_per_window(runs_dir):
    class TrainSplit:
        checksum = "0" * 64

        def __len__(self) -> int:
            return 600

    config = TrainConfig(epochs=1, device="cpu", threads=1)
    run = RunStore().create(config, "steps")
    recorder = RunRecorder(run, config, TrainSplit())
    recorder.start()
    batches = steps.EVERY + 5
    for batch in range(1, batches + 1):
        recorder.on_batch(BatchProgress(1, 1, batch, batches, 100.0, 1.0, 1.0, loss=1.0, accuracy=0.5))
    recorded = steps.read(run.path)
    assert [r["step"] for r in recorded] == [steps.EVERY, batches]
    assert recorded[-1]["epoch"] == 1.0 and recorded[-1]["acc"] == 0.5


@pytest.mark.integration
def test_a_finished_run_shows_its_step_curves_on_the_train_page(tiny_data, runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    args = ["train", "--data-dir", str(tiny_data), "--preset", "fast", "--epochs", "2", "--batch-size", "8", "--device", "cpu"]
    assert cli_main(args) == 0
    (run,) = RunStore().list()
    recorded = steps.read(run.path)
    assert recorded[-1]["epoch"] == 2.0 and len(recorded) == 2 * -(-75 // steps.EVERY)  # 75 batches an epoch
    at = app()
    at.session_state["train_run_id"] = run.id
    at.switch_page("pages/train.py").run()
    assert not at.exception
    keys = [chart.key for chart in at.get("plotly_chart")]
    assert f"step_loss_{run.id}" in keys and f"step_acc_{run.id}" in keys
