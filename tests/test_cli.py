"""The command line: train and evaluate end to end, and every bad input as one line with exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mnist_core import maps
from mnist_core.checkpoint import load_checkpoint
from mnist_core.cli import build_parser, config_from_args, main
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.runs import Run


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "mnist_core", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.integration
def test_train_then_evaluate_end_to_end(tiny_data, tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "train", "--data-dir", str(tiny_data), "--epochs", "2", "--batch-size", "32", "--lr", "0.003", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("epoch ") == 2 and "test loss" in result.stdout and "samples/s" in result.stdout
    run = Run(out)
    assert run.status() == "finished" and [row["epoch"] for row in run.metrics()] == [1, 2]
    checkpoint = load_checkpoint(run.checkpoint_path)
    assert checkpoint.meta["config"]["epochs"] == 2 and checkpoint.meta["data_checksum"]

    result = run_cli("evaluate", "--checkpoint", str(run.checkpoint_path), "--data-dir", str(tiny_data))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 200 and report["accuracy"] == pytest.approx(run.metrics()[-1]["test_acc"])
    assert set(report["per_class"]) == {str(d) for d in range(10)} and report["loss"] > 0


@pytest.mark.integration
def test_sigterm_stops_after_the_batch_and_saves(tiny_data, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_core", "train", "--data-dir", str(tiny_data), "--epochs", "200", "--batch-size", "8", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    run = Run(out)
    deadline = time.monotonic() + 120
    while not (run.progress_path.exists() and run.progress().get("epoch", 0) >= 2):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert run.status() == "stopped"
    checkpoint = load_checkpoint(run.checkpoint_path)
    assert checkpoint.meta["partial_epoch"] is True
    # The end-of-run analysis is of the weights the stop saved (the checkpoint now on disk), not of the last epoch's.
    assert maps.describes(out, checkpoint.digest, load_split("test", tiny_data))


def _one_line_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--epochs", "0"], "epochs"),
        (["train", "--lr", "nan"], "lr"),
        (["train", "--lr", "-1"], "lr"),
        (["train", "--batch-size", "0"], "batch_size"),
        (["train", "--optimizer", "rmsprop"], "--optimizer"),
        (["train", "--epochs", "three"], "--epochs"),
        (["train", "--name", "../escape"], "not allowed"),
        (["frobnicate"], "invalid choice"),
        (["evaluate", "--split", "validation"], "--split"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, runs_dir, argv, needle):
    assert needle in _one_line_error(capsys, argv)


def test_subset_larger_than_the_set(capsys, tiny_data, runs_dir):
    err = _one_line_error(capsys, ["train", "--data-dir", str(tiny_data), "--train-subset", "601", "--epochs", "1"])
    assert "train_subset" in err and "600" in err


def test_missing_data_offline(capsys, tmp_path, runs_dir, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])
    err = _one_line_error(capsys, ["train", "--data-dir", str(tmp_path / "none"), "--epochs", "1"])
    assert "MNIST_DATA_DIR" in err
    # The run that could not start says why, for the dashboard.
    (run,) = [Run(p) for p in runs_dir.iterdir()]
    assert run.status() == "failed" and "MNIST_DATA_DIR" in run.progress()["error"]


def test_evaluate_bad_checkpoints(capsys, tiny_data, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert "not a readable checkpoint" in _one_line_error(
        capsys, ["evaluate", "--checkpoint", str(garbage), "--data-dir", str(tiny_data)]
    )
    assert "does not exist" in _one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "none.pt")])


@pytest.mark.slow  # reads the real MNIST
def test_evaluate_defaults_to_the_bundled_model(capsys, real_data):
    assert main(["evaluate", "--data-dir", str(real_data)]) == 0
    report = json.loads(capsys.readouterr().out)
    # The bundled model's card promises at least 99.4%; its checkpoint must keep that promise.
    assert report["checkpoint"].endswith("mnist_cnn.pt") and report["n"] == 10000 and report["accuracy"] >= 0.994


@pytest.mark.integration  # trains a model (seconds)
def test_out_folder_holding_a_run_is_refused(capsys, tiny_data, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(tiny_data), "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert "already holds a run" in _one_line_error(capsys, ["train", "--data-dir", str(tiny_data), "--out", str(out)])


@pytest.mark.parametrize(
    "config",
    [TrainConfig(), TrainConfig.from_preset("fast", augment=True, train_subset=100, threads=2, seed=9, device="cpu")],
)
def test_config_flags_round_trip(config):
    assert config_from_args(build_parser().parse_args(["train", *config.to_args()])) == config
