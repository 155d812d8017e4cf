"""MnistCNN, the seed architecture, and the choice of device."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mnist_core.config import DEVICES
from mnist_core.data import normalized
from mnist_core.errors import ConfigError


class MnistCNN(nn.Module):
    """conv 1->32 3x3, pool, conv 32->64 3x3, pool, fc 3136->128, fc 128->10; outputs logits."""

    architecture = "MnistCNN"

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer (N, 128): what embeddings and nearest neighbours use."""
        # max_pool then ReLU computes exactly relu-then-pool (both are monotone) on a
        # quarter of the values; on a CPU the ReLU was a third of inference time.
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return F.relu(self.fc1(torch.flatten(x, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; a named device must exist."""
    if name not in DEVICES:
        raise ConfigError("device", f"unknown device {name!r}; use one of {', '.join(DEVICES)}.")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was asked for but no CUDA GPU is available; use --device auto or cpu.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device", "MPS was asked for but is not available here; use --device auto or cpu.")
    return torch.device(name)


def prepare(model: nn.Module, device: torch.device) -> nn.Module:
    """Move a model to `device` in the layout that runs it fastest there."""
    # channels_last made this model 1.5-2x faster on the CPUs measured here (bench/).
    memory_format = torch.channels_last if device.type == "cpu" else torch.preserve_format
    return model.to(device=device, memory_format=memory_format)


def as_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on `device`, normalized (from a split's uint8 pixels) and in the layout `prepare` chose."""
    images = normalized(images.to(device, non_blocking=True))
    if device.type == "cpu":
        images = images.contiguous(memory_format=torch.channels_last)
    return images
