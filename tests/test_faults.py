"""Faults: trainers killed at random moments, a server restart mid-run, a full disk, an unwritable runs folder.

After each of them the run store must tell the truth: no run "running" forever, every
completed epoch's metrics kept, every checkpoint on disk loadable, nothing half-written
offered as a model, and the concurrency slot free again for the next run.
"""

from __future__ import annotations

import errno
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from mnist_core.catalog import available_models
from mnist_core.checkpoint import load_checkpoint
from mnist_core.config import TrainConfig
from mnist_core.errors import RunError
from mnist_core.files import write_json_atomic
from mnist_core.launch import start_run
from mnist_core.runs import ACTIVE, Run, RunStore

# Many short epochs, so that a random moment often falls near a checkpoint write.
LONG = TrainConfig(epochs=200, batch_size=64, device="cpu", threads=1)
KILLS = 8


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)


def trainer_children() -> list[psutil.Process]:
    """Trainer processes this test process started (start_run's children) that are still running."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "mnist_core" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:  # it ended, or is a zombie waiting for its reaper, while we looked: not running
            continue
    return found


def kill_all_trainers() -> None:
    for process in trainer_children():
        try:
            process.kill()
            process.wait(10)
        except psutil.Error:
            pass


def assert_consistent(run: Run) -> dict:
    """The invariants a killed run must keep; returns its progress."""
    progress = run.progress()
    assert progress["status"] == "failed", progress
    rows = run.metrics()
    assert [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))
    if run.has_checkpoint():
        checkpoint = load_checkpoint(run.checkpoint_path)  # must always load
        # metrics.csv is written just before the checkpoint, so at most one epoch apart
        assert checkpoint.meta["epoch"] in (len(rows), len(rows) - 1), (checkpoint.meta["epoch"], len(rows))
        assert checkpoint.meta["run_id"] == run.id and checkpoint.meta["partial_epoch"] is False
    else:
        assert len(rows) <= 1
    for path in run.path.iterdir():  # only the known files, or a temp file that nothing reads
        assert path.name in {
            "config.json",
            "progress.json",
            "metrics.csv",
            "model.pt",
            "train.log",
            "test_probabilities.npy",
            "probabilities.npy",
            "features.npy",
            "map.npy",
            "analysis.json",
            "steps.csv",
        } or (path.name.startswith(".") and path.name.endswith(".tmp")), path.name
    return progress


@pytest.mark.integration
def test_random_kills_leave_a_consistent_store(tiny_data, runs_dir):
    """Kill the trainer with SIGKILL at random moments, again and again."""
    rng = random.Random(int(os.environ.get("FAULT_SEED", "6")))
    store = RunStore()
    landed = []
    try:
        for attempt in range(KILLS):
            run = start_run(LONG, store=store, data_dir=tiny_data, name=f"kill{attempt}")
            trainer = wait_until(trainer_children, 30, "the trainer process")[0]
            if attempt % 2:  # half of the kills land while it trains, around its epoch ends and checkpoint writes
                wait_until(lambda: run.metrics(), 120, "a first completed epoch")
                time.sleep(rng.uniform(0.0, 1.0))
            else:  # the other half at any moment from its start
                time.sleep(rng.uniform(0.0, 4.0))
            trainer.kill()
            trainer.wait(10)
            # The launcher's reaper (or progress() itself) marks it failed within moments.
            wait_until(lambda: run.status() not in ACTIVE, 10, "the dead run to be marked")
            progress = assert_consistent(run)
            landed.append((progress.get("epoch", 0), len(run.metrics()), run.has_checkpoint()))
            # A dead run never holds the server's single training slot.
            assert store.active() == []
        listed = {source.key for source in available_models(store)}
        assert not any(key.startswith("run:") for key in listed), "a killed run is not offered as a finished model"
        assert len(store.list()) == KILLS
    finally:
        kill_all_trainers()
    print("kills (epoch reached, metric rows, checkpoint):", landed)


SERVER = textwrap.dedent(
    """
    import time

    from mnist_core.config import TrainConfig
    from mnist_core.launch import start_run
    run = start_run(TrainConfig(epochs={epochs}, batch_size=64, device="cpu", threads=1), data_dir={data!r}, name="restart")
    print(run.path, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.integration
@pytest.mark.parametrize("what_dies", ["machine", "server-only"])
def test_server_restart_while_training(tiny_data, runs_dir, what_dies):
    """The server dies mid-run; a new server reading the same folder sees the truth."""
    epochs = 200 if what_dies == "machine" else 6
    script = SERVER.format(epochs=epochs, data=str(tiny_data))
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=os.environ.copy())
    try:
        run = Run(server.stdout.readline().decode().strip())
        wait_until(lambda: len(run.metrics()) >= 2, 120, "two completed epochs", poll=0.1)
        trainer = psutil.Process(run.progress()["pid"])
        server.kill()
        server.wait(10)
        if what_dies == "machine":  # a container restart takes the trainer with it
            trainer.kill()
            trainer.wait(10)
        else:  # trainers run in their own session: a restarted server does not stop them
            assert trainer.is_running()

        store = RunStore()  # the "new server"
        [after] = store.list()
        if what_dies == "machine":
            progress = after.progress()
            rows = after.metrics()
            assert progress["status"] == "failed" and len(rows) >= 2
            assert f"{len(rows)} completed epoch(s)" in progress["error"]
            checkpoint = load_checkpoint(after.checkpoint_path)
            assert checkpoint.meta["epoch"] in (len(rows), len(rows) - 1) and checkpoint.meta["epoch"] >= 1
            assert json.loads(after.progress_path.read_text())["status"] == "failed"  # recorded for everyone
        else:
            trainer.wait(120)
            assert after.status() == "finished" and len(after.metrics()) == epochs
            assert load_checkpoint(after.checkpoint_path).meta["epoch"] == epochs
        assert store.active() == []
    finally:
        server.kill()
        server.wait(10)
        kill_all_trainers()
        for process in psutil.process_iter(["cmdline"]):
            if str(runs_dir) in " ".join(process.info["cmdline"] or []):
                process.kill()


def _limit_file_size(max_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


@pytest.mark.integration
def test_disk_full_while_saving_fails_the_run_cleanly(tiny_data, tmp_path):
    """A trainer that cannot write its checkpoint (EFBIG, as a full disk would give) fails with a message."""
    out = tmp_path / "runs" / "20260101-000000-full"
    env = dict(os.environ)
    # 64 KiB: progress.json and metrics.csv fit, the 1.7 MB checkpoint does not.
    result = subprocess.run(
        [sys.executable, "-m", "mnist_core", "train", "--data-dir", str(tiny_data), "--epochs", "2", "--batch-size", "64",
         "--device", "cpu", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size(64 * 1024),
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.startswith("error: Could not save the checkpoint model.pt")
    run = Run(out)
    progress = run.progress()
    assert progress["status"] == "failed", progress
    assert "disk may be full" in progress["error"] and str(tmp_path) not in progress["error"]
    assert not run.has_checkpoint(), "a checkpoint that could not be written completely must not exist"
    assert [p.name for p in out.iterdir() if "model.pt" in p.name] == []
    assert "run:" + run.id not in [source.key for source in available_models(RunStore(tmp_path / "runs"))]


def test_disk_full_when_starting_a_run_is_a_clear_error(runs_dir, tiny_data, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("mnist_core.files.tempfile.mkstemp", no_space)
    with pytest.raises(RunError) as raised:
        start_run(TrainConfig(epochs=1), data_dir=tiny_data)
    assert "No space left on device" in str(raised.value) and "runs folder" in str(raised.value)
    assert str(runs_dir) not in str(raised.value)
    assert RunStore().list() == []  # nothing half-made is listed


def test_reading_a_dead_run_on_a_full_disk_does_not_crash(runs_dir, monkeypatch):
    """progress() marks a dead trainer's run failed; if that write fails, readers still get the answer."""
    store = RunStore()
    run = store.create(TrainConfig())
    write_json_atomic(run.progress_path, {"status": "running", "pid": 2**22 + 7, "pid_started": 1.0, "epoch": 3})

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("mnist_core.files.tempfile.mkstemp", no_space)
    assert run.progress()["status"] == "failed"
    assert store.active() == []
    assert [s.key for s in available_models(store) if s.key.startswith("run:")] == []


def test_runs_folder_that_is_a_file_is_a_clear_error(tmp_path, tiny_data, monkeypatch):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(blocker))
    with pytest.raises(RunError, match="Cannot write to the runs folder") as raised:
        start_run(TrainConfig(epochs=1), data_dir=tiny_data)
    assert str(tmp_path) not in str(raised.value)
    assert RunStore().list() == []


@pytest.fixture
def read_only_runs():
    """A runs folder this process cannot write to (root ignores modes: the immutable flag stops it too)."""
    base = Path(tempfile.mkdtemp(prefix="mnist-lab-ro-"))
    runs = base / "runs"
    runs.mkdir()
    if os.geteuid() != 0:
        os.chmod(runs, 0o555)
    elif subprocess.run(["chattr", "+i", str(runs)], capture_output=True).returncode != 0:
        shutil.rmtree(base)
        pytest.skip("running as root on a filesystem without chattr +i: no folder can be made unwritable")
    try:
        yield runs
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(runs)], check=True)
        os.chmod(runs, 0o755)
        shutil.rmtree(base)


def test_read_only_runs_folder_is_a_clear_error(read_only_runs, tiny_data):
    store = RunStore(read_only_runs)
    with pytest.raises(
        RunError, match=r"Cannot write to the runs folder \((Permission denied|Operation not permitted)\)"
    ) as raised:
        start_run(TrainConfig(epochs=1), store=store, data_dir=tiny_data)
    assert str(read_only_runs) not in str(raised.value)
    assert store.list() == [] and list(read_only_runs.iterdir()) == []
