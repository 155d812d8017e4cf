"""TrainConfig: every training hyperparameter, validated in one place.

The Train form, the command line and hand-edited run files all build a
TrainConfig through `TrainConfig.from_dict` or the constructor, so one set of
rules decides what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

import psutil

from mnist_core.errors import ConfigError


def physical_cores() -> int:
    """This machine's physical CPU cores (its logical ones where that is unknown)."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


# Where training runs (mnist_core.model.resolve_device picks for "auto"); named here so that the config, and the
# command line's flags, need no torch.
DEVICES = ("auto", "cpu", "cuda", "mps")

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "onecycle")
CLEANINGS = ("drop", "relabel")
# fp32, bf16 autocast, or auto: measured on the machine (mnist_core/precision.py); a run records fp32 or bf16.
PRECISIONS = ("fp32", "bf16", "auto")
MAX_EPOCHS = 200
MAX_BATCH_SIZE = 8192
MAX_LR = 10.0


@dataclass(frozen=True)
class TrainConfig:
    """How to train MnistCNN. Defaults are the seed recipe: Adam 1e-3, batch 64, 10 epochs."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    schedule: str = "constant"
    augment: bool = False
    # The share of each target's probability spread evenly over the ten digits (0: plain cross-entropy).
    label_smoothing: float = 0.0
    seed: int = 0
    train_subset: int | None = None
    device: str = "auto"
    threads: int | None = None
    # fp32 by default: a config.json written before this field existed describes an fp32 run.
    precision: str = "fp32"
    preset: str | None = field(default=None, compare=False)
    # Training on cleaned labels (mnist_core/cleaning.py): the label audit whose verdicts chose the samples,
    # whether they are left out ("drop") or given the audit's suggestion ("relabel"), their training indices,
    # and for "relabel" their new labels, in the same order.
    audit: str | None = None
    clean: str | None = None
    changed_indices: tuple[int, ...] = ()
    changed_labels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self._check_cleaning()
        _check_int("epochs", self.epochs, 1, MAX_EPOCHS)
        _check_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr):
            raise ConfigError("lr", f"must be a finite number, got {self.lr!r}.")
        if not 0 < self.lr <= MAX_LR:
            raise ConfigError("lr", f"must be above 0 and at most {MAX_LR:g}, got {self.lr!r}.")
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        if not isinstance(self.augment, bool):
            raise ConfigError("augment", f"must be true or false, got {self.augment!r}.")
        smoothing = self.label_smoothing
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
            raise ConfigError("label_smoothing", f"must be a number from 0 up to (not including) 1, got {smoothing!r}.")
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if self.train_subset is not None:
            _check_int("train_subset", self.train_subset, 1, None)
        _check_choice("device", self.device, DEVICES)
        if self.threads is not None:
            _check_int("threads", self.threads, 1, 256)
        _check_choice("precision", self.precision, PRECISIONS)
        if self.preset is not None:
            _check_choice("preset", self.preset, tuple(PRESETS))

    def _check_cleaning(self) -> None:
        for name in ("changed_indices", "changed_labels"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))  # JSON gives lists; the config keeps hashable tuples
            else:
                raise ConfigError(name, f"must be a list of whole numbers, got {value!r}.")
            for item in getattr(self, name):
                _check_int(name, item, 0, None)
        if self.clean is None:
            if self.changed_indices or self.changed_labels:
                raise ConfigError("clean", "must be drop or relabel when changed_indices are given.")
            return
        _check_choice("clean", self.clean, CLEANINGS)
        if not isinstance(self.audit, str) or not self.audit:
            raise ConfigError("audit", "must name the label audit whose verdicts clean the labels.")
        if not self.changed_indices or len(set(self.changed_indices)) != len(self.changed_indices):
            raise ConfigError("changed_indices", "must list each changed training index once (at least one).")
        expected = len(self.changed_indices) if self.clean == "relabel" else 0
        if len(self.changed_labels) != expected:
            raise ConfigError("changed_labels", f"must hold {expected} label(s) for clean={self.clean}.")
        if any(label > 9 for label in self.changed_labels):
            raise ConfigError("changed_labels", "must be digits 0-9.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a plain dict (a form, a JSON file); unknown keys are an error, not ignored."""
        if not isinstance(values, dict):
            raise ConfigError("config", f"must be a JSON object, got {type(values).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(unknown[0], f"is not a training setting; known settings: {', '.join(sorted(known))}.")
        return cls(**values)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """A preset's recipe, with any field overridden."""
        _check_choice("preset", name, tuple(PRESETS))
        return cls(**{**PRESETS[name], "preset": name, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready values."""
        return dataclasses.asdict(self)

    def to_args(self) -> list[str]:
        """The `train` command-line flags that reproduce this config (how the launcher starts a trainer)."""
        args = ["--preset", self.preset or "seed"]
        for key, value in self.to_dict().items():
            if key == "preset" or value is None:
                continue
            flag = "--" + key.replace("_", "-")
            if isinstance(value, tuple):
                if value:
                    args += [flag, ",".join(str(v) for v in value)]
            elif isinstance(value, bool):
                args.append(flag if value else "--no-" + key.replace("_", "-"))
            else:
                args += [flag, str(value)]
        return args

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be a whole number, got {value!r}.")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(name, f"must be {bounds}, got {value}.")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}.")


# `seed` is the classic recipe exactly. `fast` is the quickest way to 99.0% test accuracy measured
# with bench/train_speed.py on 2-core CPUs: one epoch of a one-cycle schedule with label smoothing,
# in bf16 where the CPU runs it faster (the recipes tried and what each reached: docs/speed.md).
PRESETS: dict[str, dict[str, Any]] = {
    "seed": {"epochs": 10, "batch_size": 64, "lr": 1e-3, "optimizer": "adam", "schedule": "constant", "augment": False},
    "fast": {
        "epochs": 1,
        "batch_size": 128,
        "lr": 8e-3,
        "optimizer": "adam",
        "schedule": "onecycle",
        "augment": False,
        "label_smoothing": 0.1,
        "precision": "auto",
    },
}
