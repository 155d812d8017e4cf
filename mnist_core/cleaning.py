"""Training on cleaned labels: an audit's "label wrong" verdicts, left out of the training set or relabelled.

The run's TrainConfig records the audit, the mode and the exact indices (and new
labels), so the run can be reproduced, and compared with the original, after the
verdicts have moved on.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from mnist_core.config import TrainConfig
from mnist_core.data import Split
from mnist_core.errors import ConfigError, RunError
from mnist_core.runs import Run
from mnist_core.verdicts import load_verdicts


def cleaning_from_verdicts(audit: Run, mode: str) -> dict[str, Any]:
    """The TrainConfig fields that drop ("drop") or relabel ("relabel") the training samples judged "label wrong"."""
    wrong = sorted(
        (index, entry)
        for (split, index), entry in load_verdicts(audit).items()
        if split == "train" and entry["verdict"] == "wrong"
    )
    if not wrong:
        raise RunError(f"No training sample of the audit {audit.id} is marked 'label wrong' yet: review its suspects on Explore.")
    return {
        "audit": audit.id,
        "clean": mode,
        "changed_indices": tuple(index for index, _ in wrong),
        "changed_labels": tuple(int(entry["suggested"]) for _, entry in wrong) if mode == "relabel" else (),
    }


def cleaned_split(split: Split, config: TrainConfig) -> Split:
    """The training split as `config` cleans it (unchanged when it does not)."""
    if config.clean is None:
        return split
    index = torch.tensor(config.changed_indices, dtype=torch.long)
    if int(index.max()) >= len(split):
        raise ConfigError("changed_indices", f"holds {int(index.max())}, beyond the {len(split)} training images.")
    digest = hashlib.sha256(repr((config.clean, config.changed_indices, config.changed_labels)).encode()).hexdigest()[:16]
    checksum = f"{split.checksum}:{config.clean}:{digest}"
    if config.clean == "drop":
        keep = torch.ones(len(split), dtype=torch.bool)
        keep[index] = False
        return Split(split.name, split.images[keep], split.labels[keep], checksum)
    labels = split.labels.clone()
    labels[index] = torch.tensor(config.changed_labels, dtype=labels.dtype)
    return Split(split.name, split.images, labels, checksum)
