"""The background analysis Explore starts for the nearest-neighbour bank: it finishes, even when the process exits."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch

from mnist_core import analysis
from mnist_core.checkpoint import build_meta, load_checkpoint, save_checkpoint
from mnist_core.data import load_split
from mnist_core.model import MnistCNN


def test_a_process_that_exits_during_a_prefetch_waits_for_it_instead_of_aborting(tiny_data, tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "model.pt", MnistCNN(), build_meta(run_id="prefetch"))
    cache = tmp_path / "cache"
    # As in the app: started from a daemon thread (Streamlit's script threads are daemons), then the process ends.
    script = textwrap.dedent(
        f"""
        import threading
        from mnist_core import analysis
        from mnist_core.checkpoint import load_checkpoint

        checkpoint = load_checkpoint({str(path)!r})
        starter = threading.Thread(target=analysis.prefetch, args=(checkpoint, "train", {str(tiny_data)!r}), daemon=True)
        starter.start()
        starter.join()
        """
    )
    env = {"MNIST_LAB_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    split = load_split("train", tiny_data)
    assert analysis.cache_path(load_checkpoint(path).digest, "train", split.checksum, cache / "analysis").is_file()


def test_the_background_pass_runs_at_a_lower_priority_than_the_server(tiny_data, tmp_path, monkeypatch):
    import os
    import threading

    monkeypatch.setenv(analysis.CACHE_DIR_ENV, str(tmp_path / "cache"))
    torch.manual_seed(0)
    checkpoint = load_checkpoint(save_checkpoint(tmp_path / "model.pt", MnistCNN(), build_meta(run_id="nice")))
    seen = {}

    def analyze(*args, **kwargs):
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    monkeypatch.setattr(analysis, "analyze", analyze)
    analysis.prefetch(checkpoint, "train", tiny_data).join()
    assert seen["nice"] == min(os.getpriority(os.PRIO_PROCESS, 0) + analysis.BACKGROUND_NICE, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < seen["nice"]  # the caller keeps its own
