"""Checkpoints: round trip, atomic writes, and refusing anything that is not ours."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from mnist_core.checkpoint import build_meta, file_digest, load_checkpoint, save_checkpoint
from mnist_core.errors import CheckpointError
from mnist_core.model import MnistCNN


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    model = MnistCNN()
    path = save_checkpoint(tmp_path / "m.pt", model, build_meta(config={"epochs": 1}, data_checksum="abc"))
    loaded = load_checkpoint(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    assert loaded.meta["config"] == {"epochs": 1} and loaded.meta["data_checksum"] == "abc"
    assert {"created_at", "torch_version", "mnist_core_version"} <= set(loaded.meta)
    assert loaded.digest == file_digest(path) and not loaded.model.training


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("content", [b"", b"hello world", b"PK\x03\x04garbage"])
def test_garbage_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", MnistCNN(), {})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_plain_state_dict_is_foreign(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(MnistCNN().state_dict(), path)
    with pytest.raises(CheckpointError, match="not an MNIST Lab checkpoint"):
        load_checkpoint(path)


def test_other_architecture_is_refused(tmp_path):
    model = MnistCNN()
    path = save_checkpoint(tmp_path / "m.pt", model, {})
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["fc2.weight"] = torch.zeros(5, 128)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)
    payload["architecture"] = "ResNet18"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="ResNet18"):
        load_checkpoint(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_carrying_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "mnist-lab-checkpoint", "payload": _Exploit(str(marker))}, path)
    marker.unlink(missing_ok=True)  # torch.save itself does not run it, but be sure
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.integration
def test_kill_during_save_leaves_previous_checkpoint_intact(tmp_path):
    """A writer killed while saving (again and again) never leaves a half-written model.pt."""
    path = tmp_path / "model.pt"
    save_checkpoint(path, MnistCNN(), {"generation": 0})
    script = textwrap.dedent(
        f"""
        from mnist_core.checkpoint import save_checkpoint
        from mnist_core.model import MnistCNN
        model = MnistCNN()
        print("ready", flush=True)
        for generation in range(1, 10_000):
            save_checkpoint({str(path)!r}, model, {{"generation": generation}})
        """
    )
    for delay in (0.05, 0.15, 0.3, 0.45):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        process.kill()
        process.wait()
        loaded = load_checkpoint(path)  # must always load
        assert isinstance(loaded.meta["generation"], int)
    leftovers = [p for p in os.listdir(tmp_path) if p != "model.pt"]
    assert all(name.endswith(".tmp") for name in leftovers)
