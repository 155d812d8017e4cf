"""Start training runs in the background, as child processes of `python -m mnist_core train`, and 2-D maps.

A child process isolates the training's memory and threads from the server, keeps
training when a browser tab closes, and writes the same run files as the CLI. The
UI then only reads the run directory. The child runs at a lower CPU priority, so
on a small host the server answers visitors first and training takes what is left.
"""

from __future__ import annotations

import contextlib
import json
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
from mnist_core.files import write_json_atomic, write_text_atomic
from mnist_core.limits import check_config, current_limits
from mnist_core.runs import ACTIVE, RUNS_DIR_ENV, Run, RunStore, mark_failed

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
# Nice value of trainer processes (and of their session's scheduling group: see _lower_priority). At 10 a busy
# trainer gets about a tenth of a CPU core that the server also wants, so a prediction is not queued behind a
# training step.
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


MAP_JOB_FILE, MAP_ERROR_FILE = "running.json", "error.log"
# 0/false/no/off: the server never starts a map process (a small host keeps its memory; maps stay PCA where
# nothing was precomputed).
BACKGROUND_MAPS_ENV = "MNIST_LAB_BACKGROUND_MAPS"


def background_maps() -> bool:
    """Whether this server computes missing maps in the background ($MNIST_LAB_BACKGROUND_MAPS, default on)."""
    return os.environ.get(BACKGROUND_MAPS_ENV, "").strip().lower() not in ("0", "false", "no", "off")


def start_map(checkpoint: str | os.PathLike, split: str, out: str | os.PathLike, data_dir=None) -> str:
    """Compute a model's 2-D map of a split into `out` (`python -m mnist_core analyze`) unless it is under way.

    One map at a time for the whole server: t-SNE keeps a core busy for a minute or more, and the
    child holds a second copy of torch, so a second visitor's map waits for the first. Returns
    "computing" (this map is being computed), "waiting" (another one is), or "failed" (it was
    tried and failed: `out/error.log` says why, and it is not tried again), or "off" (this
    server computes no maps: see `background_maps`).
    """
    if not background_maps():
        return "off"
    out = Path(out)
    jobs = out.parent
    if (out / MAP_ERROR_FILE).is_file():
        return "failed"
    jobs.mkdir(parents=True, exist_ok=True)
    with FileLock(jobs / ".lock"):
        running = _running_map(jobs / MAP_JOB_FILE)
        if running is not None:
            return "computing" if running == str(out) else "waiting"
        out.mkdir(exist_ok=True)
        command = [
            sys.executable, "-m", "mnist_core", "analyze",
            "--checkpoint", str(Path(checkpoint).resolve()),
            "--split", split,
            "--data-dir", str(resolve_data_dir(data_dir).resolve()),
            "--out", str(out.resolve()),
        ]  # fmt: skip
        log_path = out / "analyze.log"
        try:
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                    cwd=_PACKAGE_PARENT, env=_child_environment(), start_new_session=True,
                )  # fmt: skip
        except OSError as exc:
            write_text_atomic(out / MAP_ERROR_FILE, f"Could not start the map's process ({exc.strerror}).")
            return "failed"
        write_json_atomic(jobs / MAP_JOB_FILE, {"pid": process.pid, "out": str(out)})
    _lower_priority(process.pid)
    threading.Thread(target=_reap_map, args=(process, out, log_path), name=f"map-{out.name}", daemon=True).start()
    return "computing"


def map_error(out: str | os.PathLike) -> str | None:
    """Why the background map in `out` failed, or None."""
    try:
        return (Path(out) / MAP_ERROR_FILE).read_text(encoding="utf-8").strip() or "The map's process failed."
    except OSError:
        return None


def _running_map(job_file: Path) -> str | None:
    """The output folder of the map process that is running now, or None (no job file, or its process has ended)."""
    try:
        job = json.loads(job_file.read_text(encoding="utf-8"))
        process = psutil.Process(int(job["pid"]))
        alive = process.status() != psutil.STATUS_ZOMBIE and "analyze" in process.cmdline()
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
    return str(job["out"]) if alive else None


def _reap_map(process: subprocess.Popen, out: Path, log_path: Path) -> None:
    """Wait for the map process; when it ends without a map, keep its last words so that it is not retried forever."""
    code = process.wait()
    if code != 0:
        try:
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        except OSError:
            tail = []
        write_text_atomic(out / MAP_ERROR_FILE, " ".join(tail) or f"The map's process exited with code {code}.")


def _child_environment() -> dict[str, str]:
    """The server's environment, with the folders it names made absolute (the trainer runs in another folder)."""
    env = dict(os.environ)
    for name in (CACHE_DIR_ENV, RUNS_DIR_ENV, DATA_DIR_ENV):
        if env.get(name):
            env[name] = str(Path(env[name]).expanduser().resolve())
    return env


def _lower_priority(pid: int) -> None:
    """Renice the new trainer (or map process) and its session's scheduling group: best effort."""
    try:
        # Before it starts its compute threads: they inherit the value.
        psutil.Process(pid).nice(TRAINER_NICE)
    except psutil.Error:
        pass  # it has already ended (the reaper says why), or it already runs at a lower priority
    # The child leads a session of its own (start_new_session). Where the kernel groups processes by session
    # (CONFIG_SCHED_AUTOGROUP, on in this project's machines' kernels), it shares the CPU out between the
    # groups first, and a process's nice only weighs against the other members of its group: the trainer's group
    # took as much CPU as the server's whole group until the group itself was reniced (docs/performance.md).
    try:
        Path(f"/proc/{pid}/autogroup").write_text(f"{TRAINER_NICE}\n", encoding="ascii")
    except OSError:
        pass  # no such groups here (another kernel or system), or the process has already ended


def _reap(process: subprocess.Popen, run: Run) -> None:
    """Wait for the trainer (so it leaves no zombie) and record a crash that it could not record itself."""
    code = process.wait()
    progress = run.progress()  # a dead trainer's run is marked failed by progress() itself
    if progress.get("status") in ACTIVE:
        mark_failed(run, f"The trainer exited with code {code}. {run.log_tail()}".strip())
