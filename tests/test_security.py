"""Security: checkpoints never run code, user-influenced paths stay in runs/, one validation for every entry point,
and the messages a hosted server shows carry no server paths."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mnist_core.catalog import source_for
from mnist_core.checkpoint import load_checkpoint, save_checkpoint
from mnist_core.cli import main
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.errors import CheckpointError, ConfigError, DatasetError, RunError
from mnist_core.files import write_json_atomic
from mnist_core.launch import start_run
from mnist_core.limits import Limits, public_message
from mnist_core.model import MnistCNN
from mnist_core.runs import RunStore
from tests.conftest import REPO


class _WritesAFile:
    """A pickle payload that runs Python code when unpickled: it writes `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _evil_files(folder: Path, marker: Path) -> dict[str, Path]:
    """The same payload as torch's zip format, as a legacy raw pickle, and hidden in a real checkpoint's metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"zip": folder / "evil.pt", "legacy": folder / "legacy.pt", "inside-meta": folder / "model.pt"}
    torch.save({"format": "mnist-lab-checkpoint", "state_dict": _WritesAFile(marker)}, files["zip"])
    with open(files["legacy"], "wb") as handle:
        pickle.dump(_WritesAFile(marker), handle, protocol=2)
    save_checkpoint(files["inside-meta"], MnistCNN(), {"note": "looks normal"})
    payload = torch.load(files["inside-meta"], weights_only=True)
    payload["meta"]["note"] = _WritesAFile(marker)
    torch.save(payload, files["inside-meta"])
    return files


def _unsafe_load_runs_code(path: Path, marker: Path) -> bool:
    """Whether torch.load without weights_only runs the payload (in a child process): proof the payload is real."""
    code = f"import torch\ntry:\n    torch.load({str(path)!r}, weights_only=False)\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return ran


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["zip", "legacy", "inside-meta"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = _evil_files(tmp_path / "files", marker)[kind]
    assert _unsafe_load_runs_code(path, marker), "the payload must really run code when loaded unsafely"
    with pytest.raises(CheckpointError, match="refused") as raised:
        load_checkpoint(path)
    assert not marker.exists()
    assert str(tmp_path) not in str(raised.value)


def test_malicious_checkpoint_through_the_cli_is_one_line_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = _evil_files(tmp_path / "files", marker)["zip"]
    assert main(["evaluate", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: evil.pt was refused") and err.count("\n") == 1
    assert not marker.exists()


def test_malicious_checkpoint_planted_in_a_run_is_refused_by_the_model_catalogue(tmp_path, runs_dir):
    marker = tmp_path / "pwned"
    store = RunStore()
    run = store.create(TrainConfig(epochs=1), "planted")
    _evil_files(run.path, marker)  # its model.pt carries the payload inside otherwise valid weights
    write_json_atomic(run.progress_path, {"status": "finished", "epoch": 1, "test_acc": 0.99})
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(source_for(f"run:{run.id}", store).path)
    assert not marker.exists()


# ---------------------------------------------------------------- paths a user can influence


@pytest.mark.parametrize("name", ["../escape", "..", "/tmp/escape", "a/../../escape", "./x", "~root", "x/y"])
def test_run_names_cannot_leave_the_runs_folder(tmp_path, runs_dir, tiny_data, name):
    with pytest.raises(RunError, match="not allowed"):
        start_run(TrainConfig(epochs=1), data_dir=tiny_data, name=name)
    assert main(["train", "--data-dir", str(tiny_data), "--epochs", "1", "--name", name]) == 2
    created = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if "escape" in p.name)
    assert created == [] and not Path("/tmp/escape").exists()
    assert RunStore().list() == []


@pytest.mark.parametrize("run_id", ["..", "../runs", "/tmp", "victim/..", "20260101-000000-x/../../victim"])
def test_delete_refuses_ids_that_are_paths(tmp_path, runs_dir, run_id):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.json").write_text("{}")
    store = RunStore()
    store.create(TrainConfig(epochs=1), "real")
    with pytest.raises(RunError):
        store.delete(run_id)
    assert (victim / "config.json").exists() and len(store.list()) == 1


def test_a_symlinked_run_cannot_be_deleted_or_served(tmp_path, runs_dir):
    outside = tmp_path / "outside"
    outside.mkdir()
    save_checkpoint(outside / "model.pt", MnistCNN(), {})
    (outside / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    (outside / "progress.json").write_text(json.dumps({"status": "finished"}))
    store = RunStore()
    store.create(TrainConfig(epochs=1), "real")
    link = runs_dir / "20260101-000000-link"
    link.symlink_to(outside)
    with pytest.raises(RunError):
        store.delete(link.name)
    with pytest.raises(CheckpointError, match="no longer available"):
        load_checkpoint(source_for(f"run:{link.name}", store).path)
    assert (outside / "model.pt").exists() and [run.name for run in store.list()] == ["real"]


@pytest.mark.parametrize("key", ["run:../outside", "run:/etc", "run:..", "/etc/passwd", "bundled/../../x"])
def test_model_keys_are_looked_up_never_joined_into_paths(tmp_path, runs_dir, key):
    (tmp_path / "outside").mkdir()
    save_checkpoint(tmp_path / "outside" / "model.pt", MnistCNN(), {})
    with pytest.raises(CheckpointError, match="no longer available"):
        load_checkpoint(source_for(key, RunStore()).path)


# ---------------------------------------------------------------- one validation for every entry point

BAD_VALUES = [
    ("epochs", 0),
    ("epochs", 201),
    ("batch_size", 0),
    ("batch_size", 100_000),
    ("lr", 0.0),
    ("lr", -1e-3),
    ("lr", 11.0),
    ("lr", math.nan),
    ("lr", math.inf),
    ("seed", -1),
    ("train_subset", 0),
    ("threads", 0),
    ("threads", 1000),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_out_of_range_values_are_refused_the_same_way_everywhere(tmp_path, runs_dir, tiny_data, capsys, field, value):
    """The CLI, a dict (the form) and a hand-edited config.json all give the same TrainConfig error."""
    with pytest.raises(ConfigError) as from_dict:
        TrainConfig.from_dict({field: value})
    expected = str(from_dict.value)
    assert from_dict.value.field == field and expected.startswith(f"{field}: ")

    flag = "--" + field.replace("_", "-")
    assert main(["train", "--data-dir", str(tiny_data), flag, str(value)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {expected}"

    run = RunStore().create(TrainConfig(epochs=1))
    config = {**TrainConfig(epochs=1).to_dict(), field: value}
    run.config_path.write_text(json.dumps(config))  # json writes NaN/Infinity, which json.loads reads back
    with pytest.raises(RunError) as from_file:
        run.config()
    assert expected in str(from_file.value)
    assert [r.id for r in RunStore().list()] == [run.id]  # the CLI refusals created no run


@pytest.mark.parametrize(("field", "value"), [("optimizer", "rmsprop"), ("schedule", "cosine"), ("device", "tpu")])
def test_unknown_choices_are_refused_with_the_allowed_list(runs_dir, tiny_data, capsys, field, value):
    with pytest.raises(ConfigError, match=f"^{field}: must be one of"):
        TrainConfig.from_dict({field: value})
    with pytest.raises(SystemExit) as exited:
        main(["train", "--data-dir", str(tiny_data), "--" + field, value])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err  # argparse refuses it from the same tuple of choices
    assert RunStore().list() == []


def test_unknown_keys_in_a_hand_edited_config_are_refused(runs_dir):
    run = RunStore().create(TrainConfig(epochs=1))
    run.config_path.write_text(json.dumps({**TrainConfig().to_dict(), "__class__": "os.system"}))
    with pytest.raises(RunError, match="__class__: is not a training setting"):
        run.config()


# ---------------------------------------------------------------- no server paths in what a hosted user sees

HOSTED = Limits(hosted=True, max_epochs=5, max_train_subset=20_000, max_batch_size=512, max_threads=2)


def _user_errors(tmp_path: Path, tiny_data: Path) -> list[Exception]:
    """Real errors from each place a user can cause one, raised against folders under tmp_path."""
    errors: list[Exception] = []
    empty = tmp_path / "no-data-here"
    empty.mkdir()
    broken = tmp_path / "broken"
    (broken / "MNIST" / "raw").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (broken / "MNIST" / "raw" / name).write_bytes(b"\x00\x00\x08\x03garbage")
    attempts = [
        lambda: load_split("train", empty, download=False),
        lambda: load_split("train", broken),
        lambda: load_checkpoint(tmp_path / "missing.pt"),
        lambda: load_checkpoint(tiny_data / "MNIST" / "raw" / "t10k-images-idx3-ubyte"),
        lambda: start_run(TrainConfig(epochs=1), store=RunStore(tmp_path / "blocked" / "runs"), data_dir=tiny_data),
    ]
    (tmp_path / "blocked").write_text("a file where the runs folder's parent should be")
    for attempt in attempts:
        with pytest.raises((DatasetError, CheckpointError, RunError)) as raised:
            attempt()
        errors.append(raised.value)
    return errors


def test_hosted_user_messages_carry_no_server_paths(tmp_path, tiny_data, runs_dir):
    errors = _user_errors(tmp_path, tiny_data)
    leaked_locally = [str(e) for e in errors if str(tmp_path) in str(e)]
    assert leaked_locally, "some raw messages name their folder (useful on a laptop), so redaction is tested for real"
    for error in errors:
        shown = public_message(error, HOSTED)
        assert str(tmp_path) not in shown and "/tmp/" not in shown, shown
        assert len(shown) > 20


def test_a_dead_trainers_error_shown_when_hosted_carries_no_paths(runs_dir, tmp_path):
    """The run error records the trainer's last output line, which names the run folder; the hosted view hides it."""
    run = RunStore().create(TrainConfig(epochs=1), "dead")
    run.log_path.write_text(f'run: {run.path.resolve()}\nTraceback (most recent call last):\n  File "{REPO}/x.py"\n')
    write_json_atomic(run.progress_path, {"status": "running", "pid": 2**22 + 11, "pid_started": 1.0})
    error = run.progress()["error"]
    assert "ended unexpectedly" in error and str(REPO) in error
    shown = public_message(error, HOSTED)
    assert str(REPO) not in shown and str(runs_dir) not in shown and "…/x.py" in shown


def test_hosted_server_refuses_a_run_over_its_caps_with_the_field_named(runs_dir, tiny_data, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_HOSTED", "1")
    for config, field in [(TrainConfig(epochs=6, train_subset=100), "epochs"), (TrainConfig(epochs=1), "train_subset")]:
        with pytest.raises(ConfigError) as raised:
            start_run(config, data_dir=tiny_data)
        assert raised.value.field == field
    assert RunStore().list() == []
