"""The bundled model: a MnistCNN trained by this project's own CLI, shipped so the app works at first start.

model_card.json beside it records the exact command that reproduced it, the data
checksum, its accuracy and how long it took.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mnist_core.checkpoint import Checkpoint, load_checkpoint

PRETRAINED_DIR = Path(__file__).resolve().parent
PRETRAINED_PATH = PRETRAINED_DIR / "mnist_cnn.pt"
MODEL_CARD_PATH = PRETRAINED_DIR / "model_card.json"
# Its t-SNE map of the MNIST test split (float16) and what it is of: Explore draws it without computing one.
TEST_MAP_PATH, TEST_MAP_INFO_PATH = PRETRAINED_DIR / "test_map.npy", PRETRAINED_DIR / "test_map.json"


def pretrained_available() -> bool:
    """Whether the bundled checkpoint ships with this copy of the package."""
    return PRETRAINED_PATH.is_file()


def load_pretrained() -> Checkpoint:
    """The bundled model, ready for inference on the CPU."""
    return load_checkpoint(PRETRAINED_PATH)


def model_card() -> dict[str, Any]:
    """The bundled model's card (command, data checksum, accuracy, training time, machine)."""
    return json.loads(MODEL_CARD_PATH.read_text(encoding="utf-8"))
