"""The label audit as a run: the CLI end to end, the run store, Stop, a killed audit, the limit; label-issues sources."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from mnist_core.audit import AuditConfig
from mnist_core.cli import main
from mnist_core.config import TrainConfig
from mnist_core.errors import RunError
from mnist_core.launch import start_audit, start_run
from mnist_core.runs import RunStore
from mnist_core.summary import runs_table
from mnist_core.testing import kill_trainers
from tests.trained import FLIPPED, make_data

SMALL = ["--folds", "2", "--preset", "fast", "--epochs", "1", "--train-subset", "400"]


def wait_for(run, statuses, timeout=180.0):
    deadline = time.monotonic() + timeout
    while run.status() not in statuses:
        assert time.monotonic() < deadline, run.progress()
        time.sleep(0.2)
    return run.progress()


def _cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.integration
def test_audit_cli_end_to_end_then_label_issues_ranks_with_it(tiny_data, tmp_path, capsys):
    out = tmp_path / "audit-run"
    done = subprocess.run(
        [sys.executable, "-m", "mnist_core", "audit", "--data-dir", str(tiny_data), *SMALL, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"run: {out}" and lines[-1] == f"finished: {out}"
    assert [line.split()[1] for line in lines if line.startswith("fold ")] == ["1/2", "2/2"]
    progress = json.loads((out / "progress.json").read_text())
    assert progress["status"] == "finished" and progress["folds"] == 2 and progress["folds_done"] == 2
    assert json.loads((out / "config.json").read_text())["kind"] == "audit"

    code, printed, _ = _cli(capsys, "label-issues", "--audit", str(out), "--split", "train", "--top", "5")
    train = json.loads(printed)
    assert code == 0 and len(train) == 5
    assert set(train[0]) == {"index", "given", "suggested", "score", "confident"}
    assert all(0 <= row["index"] < 600 for row in train)
    assert [row["score"] for row in train] == sorted((row["score"] for row in train), reverse=True)
    code, printed, _ = _cli(capsys, "label-issues", "--audit", str(out), "--top", "500")
    assert code == 0 and len(json.loads(printed)) == 200  # the test split, all of it: min(K, N)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["audit", "--folds", "1"], "folds"),
        (["audit", "--preset", "slow"], "invalid choice"),
        (["audit", "--train-subset", "20"], "too few"),
        (["label-issues", "--audit", "{nowhere}"], "not a run directory"),
        (["label-issues", "--audit", "{plain}"], "not a label audit"),
        (["label-issues", "--audit", "{plain}", "--checkpoint", "x.pt"], "not allowed with"),
        (["label-issues", "--runs", "{nowhere}"], "not a run directory"),
        (["label-issues", "--runs", "{plain}"], "has no model yet"),
    ],
)
def test_bad_audit_input_is_one_line_and_exit_2(tmp_path, tiny_data, capsys, argv, message):
    plain = RunStore(tmp_path / "runs").create(TrainConfig(epochs=1), "plain")
    names = {"nowhere": tmp_path / "nowhere", "plain": plain.path}
    argv = [arg.format(**names) for arg in argv] + ["--data-dir", str(tiny_data)]
    if argv[0] == "audit":
        argv += ["--out", str(tmp_path / "out")]
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.integration  # trains a model (seconds)
def test_label_issues_runs_ranks_with_an_ensemble_of_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path / "cache"))
    data_dir = make_data(tmp_path / "data", flipped=FLIPPED)
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        flags = ["--epochs", "2", "--batch-size", "32", "--lr", "3e-3", "--seed", str(seed), "--threads", "1"]
        assert _cli(capsys, "train", "--data-dir", str(data_dir), *flags, "--out", str(out))[0] == 0
        runs.append(str(out))
    code, printed, _ = _cli(capsys, "label-issues", "--runs", *runs, "--split", "test", "--data-dir", str(data_dir), "--top", "5")
    assert code == 0 and {row["index"] for row in json.loads(printed)} == set(FLIPPED)


@pytest.mark.integration
def test_background_audit_is_a_run_of_kind_audit_and_counts_against_the_limit(tiny_data, runs_dir):
    config = AuditConfig(TrainConfig.from_preset("fast", train_subset=400), folds=2)
    run = start_audit(config, data_dir=tiny_data, max_runs=1)
    try:
        with pytest.raises(RunError, match="allows 1 at a time"):
            start_run(TrainConfig(epochs=1), data_dir=tiny_data, max_runs=1)
        progress = wait_for(run, ("finished", "failed"))
        assert progress["status"] == "finished", progress
        assert run.kind == "audit" and run.audit_config() == config
        table = runs_table(RunStore().list())
        assert table.loc[table["id"] == run.id, "kind"].item() == "audit"
        assert table.loc[table["id"] == run.id, "epochs"].item() == "2/2 folds"
    finally:
        kill_trainers(runs_dir)


@pytest.mark.integration
def test_stop_ends_an_audit_and_a_killed_audit_is_marked_failed(tiny_data, runs_dir):
    long = AuditConfig(TrainConfig.from_preset("seed", epochs=200, batch_size=8), folds=2)
    try:
        run = start_audit(long, data_dir=tiny_data)
        wait_for(run, ("running",))
        while run.progress().get("batch", 0) < 2:
            time.sleep(0.1)
        assert run.progress()["fold"] == 1 and run.progress()["folds"] == 2
        run.request_stop()
        assert wait_for(run, ("stopped", "failed"), timeout=30)["status"] == "stopped"

        run = start_audit(long, data_dir=tiny_data)
        wait_for(run, ("running",))
        psutil.Process(run.progress()["pid"]).kill()
        progress = wait_for(run, ("failed",), timeout=30)
        assert "0 finished fold(s) and their models were kept" in progress["error"] or "exited with code" in progress["error"]
        # A restarted server (a fresh store over the same folder) sees the same truth.
        assert RunStore().get(run.id).status() == "failed"
    finally:
        kill_trainers(runs_dir)
