"""MnistCNN is exactly the seed architecture."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mnist_core.errors import ConfigError
from mnist_core.model import MnistCNN, resolve_device


def test_architecture_and_parameter_count():
    model = MnistCNN()
    assert sum(p.numel() for p in model.parameters()) == 421_642
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {
        "conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,),
        "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
        "fc1.weight": (128, 3136), "fc1.bias": (128,),
        "fc2.weight": (10, 128), "fc2.bias": (10,),
    }  # fmt: skip


def test_forward_matches_relu_then_pool_reference():
    torch.manual_seed(0)
    model = MnistCNN().eval()
    x = torch.randn(8, 1, 28, 28)
    reference = F.max_pool2d(F.relu(model.conv1(x)), 2)
    reference = F.max_pool2d(F.relu(model.conv2(reference)), 2)
    reference = model.fc2(F.relu(model.fc1(reference.flatten(1))))
    assert torch.allclose(model(x), reference, atol=1e-6)
    assert model.features(x).shape == (8, 128)


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")
