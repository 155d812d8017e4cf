"""Progress read every few batches (how a GPU run reports): what a watcher still hears, and numbers unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.recorder import RunRecorder
from mnist_core.runs import Run
from mnist_core.train import train

CONFIG = TrainConfig(epochs=2, batch_size=32, lr=3e-3, seed=1, device="cpu", threads=1)  # 600 images: 19 batches


@pytest.fixture
def splits(tiny_data):
    return load_split("train", tiny_data), load_split("test", tiny_data)


@pytest.mark.integration  # trains a model (seconds)
def test_sparse_reports_keep_each_epochs_first_and_last_batch(splits):
    seen = []
    train(CONFIG, *splits, on_batch=seen.append, report_every=7)
    assert [(p.epoch, p.batch) for p in seen] == [(e, b) for e in (1, 2) for b in (1, 8, 15, 19)]
    assert all(p.batches == 19 and p.epochs == 2 for p in seen)
    assert seen[-1].eta_s == 0 and seen[-1].samples_per_s > 0 and seen[-1].elapsed_s > 0


@pytest.mark.integration  # trains a model (seconds)
def test_sparse_reports_change_no_number(splits):
    every, sparse = [], []
    dense = train(CONFIG, *splits, on_batch=every.append, report_every=1)
    few = train(CONFIG, *splits, on_batch=sparse.append, report_every=7)
    assert [m.to_row() | {"epoch_s": 0, "samples_per_s": 0} for m in dense.history] == [
        m.to_row() | {"epoch_s": 0, "samples_per_s": 0} for m in few.history
    ]
    for a, b in zip(dense.model.state_dict().values(), few.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # Each sparse report carries the loss of the very batch it names.
    losses = {(p.epoch, p.batch): p.loss for p in every}
    assert [p.loss for p in sparse] == [losses[(p.epoch, p.batch)] for p in sparse]


def _recorded_progress(splits, folder, report_every):
    config = CONFIG.replace(epochs=1)
    run = Run(folder)
    recorder = RunRecorder(run, config, splits[0])
    recorder.start()
    result = train(config, *splits, on_batch=recorder.on_batch, on_epoch=recorder.on_epoch, report_every=report_every)
    recorder.finish(result)
    return json.loads(run.progress_path.read_text())


@pytest.mark.integration  # trains a model (seconds)
def test_progress_json_keeps_its_fields_and_reaches_the_last_batch(splits, tmp_path):
    sparse = _recorded_progress(splits, tmp_path / "sparse", report_every=5)
    dense = _recorded_progress(splits, tmp_path / "dense", report_every=1)
    assert sparse["status"] == "finished" and sparse["epoch"] == 1
    assert sparse["batch"] == sparse["batches"] == 19 and sparse["loss"] == dense["loss"]
    assert set(sparse) == set(dense)
