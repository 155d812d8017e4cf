"""The run store: one directory per training run, the single source of truth about it.

    runs/<run_id>/config.json     the TrainConfig
    runs/<run_id>/progress.json   status, epoch, batch, speed, ETA, error; rewritten while training
    runs/<run_id>/metrics.csv     one row per completed epoch
    runs/<run_id>/test_probabilities.npy  every completed epoch's test-set probabilities (mnist_core.dynamics)
    runs/<run_id>/model.pt        the checkpoint of the last completed epoch (or of the stop)
    runs/<run_id>/train.log       the trainer's own output, when launched in the background
    runs/<run_id>/STOP            present when someone asked the run to stop

Every file is replaced atomically, so a reader never sees half of one, and a
trainer killed at any moment leaves a consistent directory behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from mnist_core import dynamics
from mnist_core.checkpoint import CHECKPOINT_NAME
from mnist_core.config import TrainConfig
from mnist_core.errors import ConfigError, RunError
from mnist_core.files import write_json_atomic

RUNS_DIR_ENV = "MNIST_LAB_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
ACTIVE = ("queued", "running")
STATUSES = ACTIVE + ("finished", "stopped", "failed")
# A run queued this long without a trainer process is reported as failed.
QUEUE_TIMEOUT_S = 120.0
# What a run is, recorded as config.json's "kind": a training run, or a label audit (mnist_core/audit.py).
KIND_TRAIN, KIND_AUDIT = "train", "audit"
KINDS = (KIND_TRAIN, KIND_AUDIT)
NAME_MAX = 48
_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}$")
# A stored run's id: "<stamp>-<name>[-N]" from the store, or any plain folder name given to `train --out`.
# Long enough for the longest name plus its stamp and a clash suffix, so every run the store creates is listed.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_RUN_ID = re.compile(rf"^\d{{8}}-\d{{6}}-[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX + 3}}}$")
_STAMP = "%Y%m%d-%H%M%S"


def resolve_runs_dir(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder: the argument, else $MNIST_LAB_RUNS_DIR, else ./runs."""
    return Path(runs_dir or os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR).expanduser()


def validate_name(name: str) -> str:
    """A run name a user typed, checked so that it can never leave the runs folder."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise RunError(
            f"Run name {name!r} is not allowed: use 1-{NAME_MAX} letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (no slashes, no '..')."
        )
    return name


def is_run_id(text: object) -> bool:
    """Whether `text` can name a run folder: safe characters only, so it never leaves the runs folder."""
    return isinstance(text, str) and bool(_ID.match(text)) and ".." not in text


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _process_alive(pid: int | None, started: float | None) -> bool:
    """Whether process `pid`, started at `started` (epoch seconds), still runs; a reused pid does not count."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if started is not None and abs(process.create_time() - started) > 1.0:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Run:
    """One run directory; reading it never needs the process that trains it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.path.resolve() == other.path.resolve()

    def __hash__(self) -> int:
        return hash(self.path.resolve())

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def name(self) -> str:
        """The human part of the id (after the timestamp)."""
        return self.id[16:] if _RUN_ID.match(self.id) else self.id

    @property
    def created(self) -> datetime | None:
        """When the run was created, read from its id's timestamp (None for an id without a valid one)."""
        if not _RUN_ID.match(self.id):
            return None
        try:
            return datetime.strptime(self.id[:15], _STAMP)
        except ValueError:
            return None

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def progress_path(self) -> Path:
        return self.path / "progress.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def stop_path(self) -> Path:
        return self.path / "STOP"

    def _config_values(self) -> dict[str, Any]:
        try:
            values = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"Run {self.id}: config.json is missing or not valid JSON.") from exc
        if not isinstance(values, dict):
            raise RunError(f"Run {self.id}: config.json is invalid (not a JSON object).")
        return values

    @property
    def kind(self) -> str:
        """What the run is: config.json's "kind", "train" or "audit" (runs written before kinds existed train)."""
        try:
            kind = self._config_values().get("kind", KIND_TRAIN)
        except RunError:
            return KIND_TRAIN
        return kind if kind in KINDS else KIND_TRAIN

    def config(self) -> TrainConfig:
        """The run's TrainConfig (an audit's: the recipe of each fold model), validated like any other."""
        values = self._config_values()
        try:
            if values.get("kind") == KIND_AUDIT:
                from mnist_core.audit import AuditConfig

                return AuditConfig.from_dict(values).train
            values.pop("kind", None)
            return TrainConfig.from_dict(values)
        except (ConfigError, TypeError) as exc:
            raise RunError(f"Run {self.id}: config.json is invalid ({exc}).") from exc

    def audit_config(self):
        """An audit run's AuditConfig (folds and fold recipe); RunError for a training run."""
        from mnist_core.audit import AuditConfig

        if self.kind != KIND_AUDIT:
            raise RunError(f"Run {self.id} is a training run, not a label audit.")
        try:
            return AuditConfig.from_dict(self._config_values())
        except (ConfigError, TypeError) as exc:
            raise RunError(f"Run {self.id}: config.json is invalid ({exc}).") from exc

    def progress(self) -> dict[str, Any]:
        """The run's progress.json; a run whose trainer died is marked failed here, once, for everyone."""
        try:
            progress = json.loads(self.progress_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"status": "failed", "error": "progress.json is missing or unreadable."}
        if progress.get("status") in ACTIVE and self._trainer_gone(progress):
            progress = self._mark_dead(progress)
        return progress

    def _trainer_gone(self, progress: dict[str, Any]) -> bool:
        if progress.get("host") not in (None, socket.gethostname()):
            return False  # trained elsewhere (a shared folder): its process is not ours to judge
        if progress.get("pid"):
            return not _process_alive(progress["pid"], progress.get("pid_started"))
        return time.time() - float(progress.get("queued_at_unix", 0)) > QUEUE_TIMEOUT_S

    def _mark_dead(self, progress: dict[str, Any]) -> dict[str, Any]:
        detail = self.log_tail()
        if self.kind == KIND_AUDIT:
            kept = f"{progress.get('folds_done', 0)} finished fold(s) and their models were kept."
        else:
            kept = f"{len(self.metrics())} completed epoch(s) and their checkpoint were kept."
        return mark_failed(
            self,
            "The training process ended unexpectedly (killed, out of memory or the server restarted); "
            + kept
            + (f" Last output: {detail}" if detail else ""),
            progress,
        )

    def status(self) -> str:
        return self.progress().get("status", "failed")

    def is_active(self) -> bool:
        return self.status() in ACTIVE

    def metrics(self) -> list[dict[str, float]]:
        """Rows of metrics.csv as dicts of floats (epoch as int), oldest first."""
        try:
            text = self.metrics_path.read_text(encoding="utf-8")
        except OSError:
            return []
        rows = []
        for row in csv.DictReader(io.StringIO(text)):
            try:
                parsed = {key: float(value) for key, value in row.items()}
            except (TypeError, ValueError):
                continue  # a hand-damaged row: skip it rather than lose the whole table
            parsed["epoch"] = int(parsed["epoch"])
            rows.append(parsed)
        return rows

    def log_tail(self, lines: int = 1) -> str:
        """The last non-empty line(s) of train.log, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
        return " | ".join(kept[-lines:])

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def request_stop(self) -> None:
        """Ask the trainer to stop after its current batch (it saves and marks the run stopped)."""
        self.stop_path.touch()

    def stop_requested(self) -> bool:
        return self.stop_path.exists()


class RunStore:
    """The folder of runs: create, find, list and delete them."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = resolve_runs_dir(root)

    def create(self, config, name: str | None = None) -> Run:
        """A new queued run directory with its config.json (TrainConfig or AuditConfig); the id is a timestamp plus a safe name."""
        name = validate_name(name) if name else (getattr(config, "preset", None) or getattr(config, "kind", None) or "custom")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now().strftime(_STAMP)
            for attempt in range(100):
                run_id = f"{stamp}-{name}" + (f"-{attempt + 1}" if attempt else "")
                try:
                    (self.root / run_id).mkdir()
                    break
                except FileExistsError:
                    continue
            else:
                raise RunError(f"Could not find a free run id for {name!r}; pick another name.")
        except OSError as exc:
            raise RunError(f"Cannot create a run in the runs folder ({exc.strerror}); check that it is writable.") from exc
        run = Run(self.root / run_id)
        initialize(run, config)
        return run

    def get(self, run_id: str) -> Run:
        """The run with this id; ids that are not plain names inside the store are refused."""
        if not is_run_id(run_id):
            raise RunError(f"{run_id!r} is not a run id.")
        path = self.root / run_id
        if path.is_symlink() or not path.is_dir() or not (path / "config.json").is_file():
            raise RunError(f"There is no run {run_id!r} in the runs folder.")
        return Run(path)

    def list(self) -> list[Run]:
        """All runs, newest first. Symlinks and folders that are not runs are left out."""
        if not self.root.is_dir():
            return []
        runs = [
            Run(p)
            for p in self.root.iterdir()
            if is_run_id(p.name) and not p.is_symlink() and p.is_dir() and (p / "config.json").is_file()
        ]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def active(self) -> list[Run]:
        """Runs queued or training now."""
        return [run for run in self.list() if run.is_active()]

    def focus(self, started: str | None = None) -> tuple[Run | None, str]:
        """The run a Train page shows and why: "training" first, else "mine" (the id `started`, the run its
        session started), else "latest" (None when there is no run at all)."""
        runs = self.list()
        active = [run for run in runs if run.is_active()]
        if active:
            return active[0], "training"
        mine = [run for run in runs if run.id == started]
        if mine:
            return mine[0], "mine"
        return (runs[0] if runs else None), "latest"

    def delete(self, run_id: str) -> None:
        """Remove a run's folder; a run still training must be stopped first."""
        run = self.get(run_id)
        if run.is_active():
            raise RunError(f"Run {run_id} is still training; stop it before deleting it.")
        shutil.rmtree(run.path)


def config_values(config) -> dict[str, Any]:
    """config.json of a run: the config's fields and its kind (a TrainConfig is a "train" run)."""
    return {"kind": KIND_TRAIN, **config.to_dict()}


def initialize(run: Run, config) -> None:
    """Write a fresh run's config.json (a TrainConfig or an AuditConfig) and a queued progress.json."""
    run.path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run.config_path, config_values(config))
    write_json_atomic(
        run.progress_path,
        {"status": "queued", "queued_at": _now(), "queued_at_unix": time.time(), "epochs": config.epochs},
    )


def mark_failed(run: Run, message: str, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record that a run failed and why, keeping what its progress said so far."""
    if progress is None:
        try:
            progress = json.loads(run.progress_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            progress = {}
    progress = {**progress, "status": "failed", "finished_at": _now(), "error": message, "eta_s": None}
    try:
        dynamics.keep_epochs(run.path / dynamics.FILE_NAME, len(run.metrics()))
        write_json_atomic(run.progress_path, progress)
    except OSError:
        pass  # a full or read-only disk: readers still get the answer, and the next reader tries to record it again
    return progress
