"""The run store: ids and names, progress, dead trainers, metrics, deletion."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from mnist_core.config import TrainConfig
from mnist_core.errors import RunError
from mnist_core.files import write_json_atomic
from mnist_core.runs import RunStore, mark_failed, validate_name


@pytest.fixture
def store(runs_dir):
    return RunStore()


def test_create_lists_newest_first_with_config_and_queued_status(store, runs_dir):
    first = store.create(TrainConfig(epochs=2), "alpha")
    second = store.create(TrainConfig(epochs=3))
    assert first.path.parent == runs_dir and first.name == "alpha" and second.name == "custom"
    assert store.list()[0] in (first, second) and set(store.list()) == {first, second}
    assert first.config() == TrainConfig(epochs=2)
    assert first.status() == "queued" and store.active() == store.list()
    # Same name within the same second still gets its own folder.
    assert store.create(TrainConfig(), "alpha").id != first.id


@pytest.mark.parametrize("name", ["..", "../evil", "a/b", "/etc", "a\\b", "ok\nname", "a\x00", "", ".hidden", "x" * 49, "a..b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(RunError, match="not allowed"):
        validate_name(name)


@pytest.mark.parametrize("run_id", ["..", "../runs", "/tmp", "a/b"])
def test_get_refuses_paths(store, run_id):
    with pytest.raises(RunError):
        store.get(run_id)


def test_symlinked_run_is_not_listed_or_served(store, runs_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    runs_dir.mkdir(exist_ok=True)
    (runs_dir / "20260101-000000-link").symlink_to(outside)
    assert store.list() == []
    with pytest.raises(RunError):
        store.get("20260101-000000-link")


def test_hand_edited_config_goes_through_validation(store):
    run = store.create(TrainConfig())
    run.config_path.write_text(json.dumps({"epochs": 0}))
    with pytest.raises(RunError, match="epochs"):
        run.config()
    run.config_path.write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        run.config()


@pytest.mark.integration
def test_dead_trainer_is_reported_failed_once_for_everyone(store):
    run = store.create(TrainConfig())
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    import psutil

    started = psutil.Process(process.pid).create_time()
    write_json_atomic(run.progress_path, {"status": "running", "pid": process.pid, "pid_started": started, "epoch": 1})
    assert run.status() == "running"
    process.kill()
    process.wait()
    progress = run.progress()
    assert progress["status"] == "failed" and "ended unexpectedly" in progress["error"]
    assert json.loads(run.progress_path.read_text())["status"] == "failed"  # persisted


def test_reused_pid_does_not_count_as_alive(store):
    run = store.create(TrainConfig())
    import os

    write_json_atomic(run.progress_path, {"status": "running", "pid": os.getpid(), "pid_started": 12345.0})
    assert run.status() == "failed"


def test_queued_forever_becomes_failed(store, monkeypatch):
    run = store.create(TrainConfig())
    assert run.status() == "queued"
    monkeypatch.setattr("mnist_core.runs.QUEUE_TIMEOUT_S", 0.0)
    time.sleep(0.01)
    assert run.status() == "failed"


def test_delete_refuses_active_runs(store):
    run = store.create(TrainConfig())
    with pytest.raises(RunError, match="still training"):
        store.delete(run.id)
    mark_failed(run, "test")
    store.delete(run.id)
    assert not run.path.exists() and store.list() == []


def test_metrics_skip_damaged_rows(store):
    run = store.create(TrainConfig())
    run.metrics_path.write_text("epoch,test_acc\n1,0.9\n2,oops\n3,0.95\n")
    assert [row["epoch"] for row in run.metrics()] == [1, 3]


def test_stop_request_is_a_file(store):
    run = store.create(TrainConfig())
    assert not run.stop_requested()
    run.request_stop()
    assert run.stop_requested()


@pytest.mark.parametrize("length", [32, 33, 48])
def test_a_run_with_the_longest_allowed_name_is_listed_found_counted_and_deleted(store, length):
    name = "n" * length
    run = store.create(TrainConfig(epochs=1), name)
    assert run.name == name
    again = store.create(TrainConfig(epochs=1), name)  # same second: the id gets a suffix and must still be a run
    assert {r.id for r in store.list()} == {run.id, again.id}
    assert store.get(run.id) == run and store.get(again.id) == again
    assert set(store.active()) == {run, again}, "a queued run with a long name counts against the concurrency limit"
    mark_failed(run, "done with it")
    store.delete(run.id)
    assert [r.id for r in store.list()] == [again.id]


def test_focus_is_the_training_run_then_the_sessions_own_then_the_latest(store):
    assert store.focus("anything") == (None, "latest")
    older = store.create(TrainConfig(), "older")
    mark_failed(older, "test")
    newer = store.create(TrainConfig(), "newer")
    mark_failed(newer, "test")
    assert store.focus(None) == (store.list()[0], "latest")  # the newest listed (ids of one second sort by name)
    assert store.focus(older.id) == (older, "mine")
    queued = store.create(TrainConfig(), "queued")  # queued counts as training
    assert store.focus(older.id) == (queued, "training")
