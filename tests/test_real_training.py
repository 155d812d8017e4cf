"""One epoch of the seed recipe on the real MNIST (slow: about half a minute on 2 cores)."""

from __future__ import annotations

import pytest

from mnist_core.checkpoint import load_checkpoint
from mnist_core.cli import main
from mnist_core.data import load_split
from mnist_core.evaluate import evaluate
from mnist_core.runs import Run


@pytest.mark.slow
def test_one_seed_epoch_on_real_mnist_reaches_98_percent(real_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(real_data), "--preset", "seed", "--epochs", "1", "--out", str(out)]) == 0
    run = Run(out)
    (row,) = run.metrics()
    assert row["test_acc"] >= 0.98, row
    # The checkpoint on disk reproduces the accuracy the run recorded.
    checkpoint = load_checkpoint(run.checkpoint_path)
    test = load_split("test", real_data)
    assert evaluate(checkpoint.model, test.images, test.labels).accuracy == pytest.approx(row["test_acc"])
    assert checkpoint.meta["data_checksum"] == load_split("train", real_data).checksum
