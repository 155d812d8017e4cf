"""Hosted mode: the caps a public instance puts on training, and what it may show its users.

A public server (Community Cloud, a shared box) is used by strangers at the same
time on 1-2 CPU cores. Set MNIST_LAB_HOSTED=1 there and every run is capped so
that one user's training stays short and cannot exhaust the machine's memory;
each cap can also be set, or changed, on its own:

    MNIST_LAB_HOSTED            1/true/yes/on: hosted defaults for every cap below
    MNIST_LAB_MAX_EPOCHS        most epochs per run
    MNIST_LAB_MAX_TRAIN_SUBSET  most training images per run (the full set is 60,000)
    MNIST_LAB_MAX_BATCH_SIZE    largest batch (activations grow with it: batch 2048 peaked 0.4 GB above 1024 here)
    MNIST_LAB_MAX_THREADS       most CPU threads a trainer may ask for
    MNIST_LAB_MAX_RUNS          runs training at once, server-wide (default 1, hosted or not)

Caps are plain environment variables, so the trainer child process sees the same
ones as the server. On Community Cloud, root-level entries of the app's Secrets
become environment variables when the server starts, so they can be set there.
A value that is not a positive whole number falls back to the hosted default:
a typo must never lift a cap. Every entry point (the Train form via
`launch.start_run`, the command line) checks a TrainConfig with `check_config`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mnist_core.config import TrainConfig
from mnist_core.errors import ConfigError

HOSTED_ENV = "MNIST_LAB_HOSTED"
MAX_EPOCHS_ENV = "MNIST_LAB_MAX_EPOCHS"
MAX_TRAIN_SUBSET_ENV = "MNIST_LAB_MAX_TRAIN_SUBSET"
MAX_BATCH_SIZE_ENV = "MNIST_LAB_MAX_BATCH_SIZE"
MAX_THREADS_ENV = "MNIST_LAB_MAX_THREADS"
MAX_RUNS_ENV = "MNIST_LAB_MAX_RUNS"
DEFAULT_MAX_RUNS = 1

# One hosted run is at most 100,000 sample-steps (5 epochs of 20,000 images), so
# users queueing for the one training slot each get a short turn; batch 512 keeps
# the trainer's activations small.
HOSTED_DEFAULTS = {
    "max_epochs": 5,
    "max_train_subset": 20_000,
    "max_batch_size": 512,
    "max_threads": os.cpu_count() or 1,
    "max_runs": DEFAULT_MAX_RUNS,
}
_ENV = {
    "max_epochs": MAX_EPOCHS_ENV,
    "max_train_subset": MAX_TRAIN_SUBSET_ENV,
    "max_batch_size": MAX_BATCH_SIZE_ENV,
    "max_threads": MAX_THREADS_ENV,
    "max_runs": MAX_RUNS_ENV,
}
_OFF = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Limits:
    """The caps in force; None means no cap."""

    hosted: bool = False
    max_epochs: int | None = None
    max_train_subset: int | None = None
    max_batch_size: int | None = None
    max_threads: int | None = None
    max_runs: int = DEFAULT_MAX_RUNS

    def summary(self) -> str:
        """One line for the Train page, e.g. 'This server trains at most 5 epochs on at most 20,000 images, ...'."""
        parts = []
        if self.max_epochs is not None:
            parts.append(f"at most {self.max_epochs} epoch(s)")
        if self.max_train_subset is not None:
            parts.append(f"on at most {self.max_train_subset:,} training images")
        if self.max_batch_size is not None:
            parts.append(f"with batches of at most {self.max_batch_size}")
        parts.append(f"{self.max_runs} run(s) at a time")
        return "This server trains " + ", ".join(parts) + "."


def current_limits(environ: Mapping[str, str] | None = None) -> Limits:
    """The caps the environment sets (os.environ by default), hosted defaults filled in."""
    environ = os.environ if environ is None else environ
    hosted = environ.get(HOSTED_ENV, "").strip().lower() not in _OFF
    values = {}
    for key, name in _ENV.items():
        raw = environ.get(name, "").strip()
        if not raw:
            values[key] = HOSTED_DEFAULTS[key] if hosted or key == "max_runs" else None
            continue
        try:
            number = int(raw)
        except ValueError:
            number = 0
        values[key] = number if number >= 1 else HOSTED_DEFAULTS[key]
    return Limits(hosted=hosted, **values)


def check_config(config: TrainConfig, limits: Limits | None = None) -> TrainConfig:
    """Refuse a config that exceeds this server's caps, with a ConfigError naming the field; returns it unchanged."""
    limits = current_limits() if limits is None else limits
    if limits.max_epochs is not None and config.epochs > limits.max_epochs:
        raise ConfigError(
            "epochs", f"is {config.epochs} but this server trains at most {limits.max_epochs}; choose fewer epochs."
        )
    cap = limits.max_train_subset
    if cap is not None and (config.train_subset is None or config.train_subset > cap):
        asked = "the full training set" if config.train_subset is None else f"{config.train_subset:,} images"
        raise ConfigError(
            "train_subset", f"is {asked} but this server trains on at most {cap:,} images; choose a subset of {cap:,} or fewer."
        )
    if limits.max_batch_size is not None and config.batch_size > limits.max_batch_size:
        raise ConfigError(
            "batch_size",
            f"is {config.batch_size} but this server allows at most {limits.max_batch_size}; choose a smaller batch.",
        )
    if limits.max_threads is not None and config.threads is not None and config.threads > limits.max_threads:
        raise ConfigError(
            "threads", f"is {config.threads} but this server allows at most {limits.max_threads}; choose fewer threads."
        )
    return config


def fit_config(config: TrainConfig, limits: Limits | None = None) -> TrainConfig:
    """`config` brought within the caps (fewer epochs, a subset, a smaller batch, fewer threads): the Train form's
    starting values."""
    limits = current_limits() if limits is None else limits
    changes = {}
    if limits.max_epochs is not None and config.epochs > limits.max_epochs:
        changes["epochs"] = limits.max_epochs
    cap = limits.max_train_subset
    if cap is not None and (config.train_subset is None or config.train_subset > cap):
        changes["train_subset"] = cap
    if limits.max_batch_size is not None and config.batch_size > limits.max_batch_size:
        changes["batch_size"] = limits.max_batch_size
    if limits.max_threads is not None and config.threads is not None and config.threads > limits.max_threads:
        changes["threads"] = limits.max_threads
    return config.replace(**changes) if changes else config


# An absolute POSIX path: starts at a '/' that opens a word (not the '//' of a URL)
# and runs to whitespace, a quote, a Markdown backtick or a bracket.
_ABS_PATH = re.compile(r"(?<![^\s'\"`(\[=:,])/(?!/)[^\s'\"`()\[\],;]*")


def redact_paths(text: str) -> str:
    """Replace every absolute path in `text` by '…/' and its last part, so no server layout is shown."""

    def short(match: re.Match) -> str:
        path = match.group(0)
        body = path.rstrip(".:")  # sentence punctuation after a path is not part of it
        stem = body.rstrip("/")
        return "…/" + stem.rsplit("/", 1)[-1] + path[len(stem) + (not stem) :]

    return _ABS_PATH.sub(short, text)


def public_message(error: BaseException | str, limits: Limits | None = None) -> str:
    """The text of an error as a user may see it: on a hosted server, with server paths removed."""
    text = str(error)
    limits = current_limits() if limits is None else limits
    return redact_paths(text) if limits.hosted else text
