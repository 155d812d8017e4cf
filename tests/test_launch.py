"""Background runs: a child trainer writes the run at low priority; the concurrency limit; stop."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from mnist_core.catalog import available_models
from mnist_core.checkpoint import load_checkpoint
from mnist_core.config import TrainConfig
from mnist_core.errors import RunError
from mnist_core.launch import TRAINER_NICE, start_run
from mnist_core.runs import RunStore


def wait_for(run, statuses, timeout=180.0):
    deadline = time.monotonic() + timeout
    while run.status() not in statuses:
        assert time.monotonic() < deadline, run.progress()
        time.sleep(0.2)
    return run.progress()


@pytest.mark.integration
def test_background_run_finishes_and_becomes_a_model(tiny_data, runs_dir):
    run = start_run(TrainConfig(epochs=2, batch_size=32, device="cpu"), data_dir=tiny_data, name="bg")
    assert run.status() in ("queued", "running")
    progress = wait_for(run, ("finished", "failed"))
    assert progress["status"] == "finished", progress
    assert progress["epoch"] == 2 and progress["batches"] == 19 and len(run.metrics()) == 2
    assert load_checkpoint(run.checkpoint_path).meta["run_id"] == run.id
    assert f"run:{run.id}" in [source.key for source in available_models(RunStore())]


@pytest.mark.integration
def test_limit_refuses_a_second_run_and_stop_works(tiny_data, runs_dir):
    long = TrainConfig(epochs=200, batch_size=8, device="cpu")
    run = start_run(long, data_dir=tiny_data, max_runs=1)
    try:
        with pytest.raises(RunError, match="allows 1 at a time"):
            start_run(long, data_dir=tiny_data, max_runs=1)
        wait_for(run, ("running",))
        while run.progress().get("batch", 0) < 2:
            time.sleep(0.1)
        # The server gets the CPU first: the trainer and every compute thread it started run niced.
        trainer = psutil.Process(run.progress()["pid"])
        niceness = {thread.id: psutil.Process(thread.id).nice() for thread in trainer.threads()}
        assert min(niceness.values()) >= TRAINER_NICE, niceness
        # Where the kernel shares the CPU out between sessions first, the trainer's session is reniced too.
        group = Path(f"/proc/{trainer.pid}/autogroup")
        if group.exists():
            assert group.read_text().split()[-2:] == ["nice", str(TRAINER_NICE)], group.read_text()
        run.request_stop()
        progress = wait_for(run, ("stopped", "failed"))
        assert progress["status"] == "stopped"
        assert load_checkpoint(run.checkpoint_path).meta["partial_epoch"] is True
    finally:
        run.request_stop()


@pytest.mark.integration
def test_trainer_crash_is_reported(tmp_path, runs_dir):
    # The trainer is another process, so nothing patched here reaches it: a data folder that is a file can never
    # become a dataset, with or without internet.
    bogus = tmp_path / "not-a-folder"
    bogus.write_text("x")
    run = start_run(TrainConfig(epochs=1), data_dir=bogus)
    progress = wait_for(run, ("failed",), timeout=120)
    assert "MNIST is not in" in progress["error"] and "--data-dir" in progress["error"], progress["error"]
