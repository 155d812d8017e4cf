"""Start training runs in the background, as child processes of `python -m mnist_core train`.

A child process isolates the training's memory and threads from the server, keeps
training when a browser tab closes, and writes the same run files as the CLI. The
UI then only reads the run directory. The child runs at a lower CPU priority, so
on a small host the server answers visitors first and training takes what is left.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
from filelock import FileLock

from mnist_core.analysis import CACHE_DIR_ENV
from mnist_core.config import TrainConfig
from mnist_core.data import DATA_DIR_ENV, resolve_data_dir
from mnist_core.errors import RunError
from mnist_core.limits import check_config, current_limits
from mnist_core.runs import ACTIVE, RUNS_DIR_ENV, Run, RunStore, mark_failed

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
# Nice value of trainer processes. At 10 a busy trainer gets about a tenth of a CPU core that
# the server also wants, so a prediction is not queued behind a training step.
TRAINER_NICE = 10


def max_concurrent_runs() -> int:
    """The server-wide limit on runs training at once ($MNIST_LAB_MAX_RUNS, default 1)."""
    return current_limits().max_runs


@contextlib.contextmanager
def _store_lock(store: RunStore) -> Iterator[None]:
    """One process at a time counts active runs and creates a new one, so two clicks cannot both pass the limit."""
    store.root.mkdir(parents=True, exist_ok=True)
    with FileLock(store.root / ".lock"):
        yield


def start_run(
    config: TrainConfig,
    store: RunStore | None = None,
    data_dir: str | os.PathLike | None = None,
    name: str | None = None,
    max_runs: int | None = None,
) -> Run:
    """Create a queued run and start its trainer process; refuses when the concurrency limit is reached."""
    check_config(config)
    return _launch("train", config, config.to_args(), store, data_dir, name, max_runs)


def start_audit(
    config,
    store: RunStore | None = None,
    data_dir: str | os.PathLike | None = None,
    name: str | None = None,
    max_runs: int | None = None,
) -> Run:
    """Create a queued label audit (an AuditConfig) and start its process; it counts as one run against the limit."""
    check_config(config.train)
    return _launch("audit", config, config.to_args(), store, data_dir, name or "audit", max_runs)


def _launch(command_name: str, config, args: list[str], store, data_dir, name, max_runs) -> Run:
    """Under the store lock, check the limit and create the run; then start `python -m mnist_core COMMAND` for it."""
    store = store or RunStore()
    limit = max_runs if max_runs is not None else max_concurrent_runs()
    try:
        with _store_lock(store):
            active = [run for run in store.list() if run.status() in ACTIVE]
            if len(active) >= limit:
                names = ", ".join(run.id for run in active)
                raise RunError(
                    f"{len(active)} run(s) already training ({names}); this server allows {limit} at a time. "
                    "Wait for it to finish or stop it."
                )
            run = store.create(config, name)
    except OSError as exc:
        raise RunError(f"Cannot write to the runs folder ({exc.strerror}); check that it exists and is writable.") from exc

    command = [
        sys.executable, "-m", "mnist_core", command_name,
        *args,
        "--data-dir", str(resolve_data_dir(data_dir).resolve()),
        "--out", str(run.path.resolve()),
    ]  # fmt: skip
    try:
        with open(run.log_path, "wb") as log:
            # Started from the folder that holds this package, so `-m mnist_core` finds this very copy, installed
            # or not; every path the trainer needs is passed to it absolute.
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=_PACKAGE_PARENT, env=_child_environment(), start_new_session=True,
            )  # fmt: skip
    except OSError as exc:
        mark_failed(run, f"Could not start the trainer process ({exc.strerror}).")
        raise RunError(f"Could not start the trainer process ({exc.strerror}).") from exc
    _lower_priority(process.pid)
    threading.Thread(target=_reap, args=(process, run), name=f"reap-{run.id}", daemon=True).start()
    return run


def _child_environment() -> dict[str, str]:
    """The server's environment, with the folders it names made absolute (the trainer runs in another folder)."""
    env = dict(os.environ)
    for name in (CACHE_DIR_ENV, RUNS_DIR_ENV, DATA_DIR_ENV):
        if env.get(name):
            env[name] = str(Path(env[name]).expanduser().resolve())
    return env


def _lower_priority(pid: int) -> None:
    """Renice the new trainer before it starts its compute threads (they inherit the value): best effort."""
    try:
        psutil.Process(pid).nice(TRAINER_NICE)
    except psutil.Error:
        pass  # it has already ended (the reaper says why), or it already runs at a lower priority


def _reap(process: subprocess.Popen, run: Run) -> None:
    """Wait for the trainer (so it leaves no zombie) and record a crash that it could not record itself."""
    code = process.wait()
    progress = run.progress()  # a dead trainer's run is marked failed by progress() itself
    if progress.get("status") in ACTIVE:
        mark_failed(run, f"The trainer exited with code {code}. {run.log_tail()}".strip())
