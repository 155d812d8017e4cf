"""Training and inference on each device this machine has: always the CPU, and CUDA or MPS where present.

CI has only a CPU. The same tests cover the GPU path when they run on a machine with a GPU
(README, "Training on a GPU"), so that path is parametrized here, not skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_core.checkpoint import build_meta, load_checkpoint, save_checkpoint
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.evaluate import embed, evaluate, predict_logits
from mnist_core.model import MnistCNN, prepare, resolve_device
from mnist_core.saliency import saliency
from mnist_core.train import train

PRESENT = ["cpu"] + [
    name for name, available in (("cuda", torch.cuda.is_available()), ("mps", torch.backends.mps.is_available())) if available
]


@pytest.fixture(params=PRESENT)
def device(request) -> str:
    return request.param


@pytest.fixture
def splits(tiny_data):
    return load_split("train", tiny_data), load_split("test", tiny_data)


def test_auto_picks_the_accelerator_when_there_is_one():
    assert resolve_device("auto").type == PRESENT[-1]


@pytest.mark.integration  # trains a model (seconds)
def test_trains_on_the_device_and_its_checkpoint_answers_the_same_on_a_cpu(splits, device, tmp_path):
    config = TrainConfig(epochs=3, batch_size=32, lr=3e-3, device=device)
    result = train(config, *splits)
    assert next(result.model.parameters()).device.type == device
    assert result.history[-1].test_acc > 0.9
    path = save_checkpoint(tmp_path / "model.pt", result.model, build_meta(config=config.to_dict()))

    loaded = load_checkpoint(path).model
    assert next(loaded.parameters()).device.type == "cpu"
    test = splits[1]
    # Not bit for bit: cuDNN convolutions may use TF32 on a GPU (about 1e-4 relative here on an H100).
    on_cpu, on_device = predict_logits(loaded, test.images), predict_logits(result.model, test.images)
    assert torch.allclose(on_cpu, on_device, rtol=1e-3, atol=1e-3)
    assert evaluate(loaded, test.images, test.labels).accuracy == result.history[-1].test_acc


@pytest.mark.integration  # trains a model (seconds)
def test_same_seed_same_numbers_on_the_device_augmentation_included(splits, device):
    config = TrainConfig(epochs=2, batch_size=50, seed=3, augment=True, device=device)
    first, second = train(config, *splits), train(config, *splits)
    assert [m.test_loss for m in first.history] == [m.test_loss for m in second.history]
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_explanations_on_the_device_match_the_cpu(splits, device):
    torch.manual_seed(0)
    on_cpu = prepare(MnistCNN(), torch.device("cpu"))
    on_device = prepare(MnistCNN(), torch.device(device))
    on_device.load_state_dict(on_cpu.state_dict())
    images = splits[1].images[:40]

    cpu_features, cpu_logits = embed(on_cpu, images)
    device_features, device_logits = embed(on_device, images)
    assert device_features.shape == (40, 128)
    assert np.allclose(device_features, cpu_features, rtol=1e-3, atol=1e-3)
    assert np.allclose(device_logits, cpu_logits, rtol=1e-3, atol=1e-3)

    target = int(cpu_logits[0].argmax())
    cpu_map, device_map = saliency(on_cpu, images[:1], target), saliency(on_device, images[:1], target)
    assert abs(device_map - cpu_map).max() < 1e-3 * max(1.0, abs(cpu_map).max())
