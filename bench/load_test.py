"""Load test: N real browser sessions draw digits at once while one training run trains, on this machine only.

    python -m bench.load_test [--sessions 5] [--draws 8] [--pace human|robot] [--browser-nice 19] [--train-subset N]
                              [--epochs 1] [--trainer-threads T] [--duration 300]
    python -m bench.load_test --ci          # 2 sessions x 3 draws and a 3,000-image run, bounded at 3 minutes

It starts its own `streamlit run` on a free local port (fresh runs folder, real MNIST
from $MNIST_DATA_DIR or ../shared/datasets), makes sure there is a model to draw
against, starts one training run in the server's runs folder (the same call the
Train page makes), then opens N browser contexts in one headless Chromium. Each
opens the app and goes to Draw; once all are there, they draw single-stroke digits
together, clearing in between: at a person's pace by default (a stroke takes 0.8 s,
an answer is read for 2 s), or back to back with --pace robot, the heaviest load the
sessions can make.

The main figure is the server's own time per drawn digit, measured inside the server
process (bench/timed_server.py): from the drawing's rerun request arriving to that
rerun's last message leaving for the browser, counting only the reruns that answer a
drawing. Beside it, the page's own clock: last pointer-up to the answer on screen.
It also prints the server's and the trainer's resident memory, and whether the run
finished. Figures, not asserts; the exit code is non-zero only when a session failed
to get its predictions or the run failed.

The browsers stand in for visitors' own devices, so they start at nice 19 (--browser-nice)
and cannot raise their priority; the server runs at this script's priority (0), the
trainer at its own nice 10. They still share this machine's cores with the server, so
the page's figures here are pessimistic. Bounded: at most 8 sessions, 20 draws each and
--duration seconds (600 at most).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (  # noqa: E402
    PACES,
    Crowd,
    Sampler,
    add_crowd_arguments,
    app_with_model,
    cold_start,
    load_average,
    machine_line,
    measure,
    print_latencies,
)
from mnist_core.config import TrainConfig  # noqa: E402
from mnist_core.launch import start_run  # noqa: E402
from mnist_core.runs import RunStore  # noqa: E402

MAX_SESSIONS, MAX_DRAWS, MAX_DURATION_S = 8, 20, 600


async def load(url: str, args) -> Crowd:
    """All sessions open Draw, then draw together; the crowd keeps what each saw and why any failed."""
    async with Crowd(url, args.sessions, args.duration, args.browser_nice) as crowd:
        await crowd.open()
        await crowd.draw([args.draws] * args.sessions, PACES[args.pace])
    return crowd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_crowd_arguments(parser)
    parser.add_argument("--draws", type=int, default=8, help="digits each session draws")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the training run (fast preset)")
    parser.add_argument("--train-subset", type=int, default=None, help="training images (default: all 60,000)")
    parser.add_argument(
        "--trainer-threads", type=int, default=None, help="the run's CPU threads (default: the trainer's, one per physical core)"
    )
    parser.add_argument("--duration", type=float, default=300, help="seconds the sessions may take in all")
    parser.add_argument("--ci", action="store_true", help="the small CI run: 2 sessions x 3 draws, 3,000 training images")
    args = parser.parse_args(argv)
    if args.ci:
        args.sessions, args.draws, args.train_subset, args.duration = 2, 3, 3000, 180
    if not (1 <= args.sessions <= MAX_SESSIONS and 1 <= args.draws <= MAX_DRAWS and 0 < args.duration <= MAX_DURATION_S):
        parser.error(f"bounded: 1-{MAX_SESSIONS} sessions, 1-{MAX_DRAWS} draws, duration up to {MAX_DURATION_S} s")

    config = TrainConfig.from_preset(
        "fast", epochs=args.epochs, train_subset=args.train_subset, device="cpu", threads=args.trainer_threads
    )
    images = f"{args.train_subset:,}" if args.train_subset else "60,000"
    print(f"MNIST Lab load test: {args.sessions} sessions x {args.draws} draws ({args.pace} pace, browsers at nice "
          f"{args.browser_nice}) while one run trains (fast preset, {args.epochs} epoch(s) on {images} images)\n"
          f"{machine_line()}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mnist-lab-load-") as workdir:
        app = app_with_model(Path(workdir), args.data_dir, timed=True)
        try:
            idle = measure(app.pid)
            cold = asyncio.run(cold_start(app.url, args.browser_nice))
            warm = measure(app.pid)
            before_crowd = len(app.reruns())  # the cold start's runs are not the crowd's
            with Sampler(app.pid) as sampler:
                run = start_run(config, store=RunStore(app.runs_dir), data_dir=args.data_dir, name="load-test")
                sampler.follow(run)
                started = time.monotonic()
                crowd = asyncio.run(load(app.url, args))
                crowd_s = time.monotonic() - started
                deadline = time.monotonic() + max(120.0, args.duration)
                while run.is_active() and time.monotonic() < deadline:
                    time.sleep(0.5)
            reruns = app.reruns()[before_crowd:]
            progress, rows, recorded = run.progress(), len(run.metrics()), run.config()
            if run.is_active():
                run.request_stop()
        finally:
            app.stop()

    print(cold)
    finished, errors = crowd.finished, crowd.errors
    print(f"\n{len(finished)}/{args.sessions} sessions finished in {crowd_s:.0f} s; errors: {len(errors)}")
    for error in errors:
        print(f"  error: {error}")
    print_latencies(finished, reruns)
    print(f"training run: {progress.get('status')}, {rows}/{args.epochs} epoch(s), "
          f"{progress.get('samples_per_s') or 0:,.0f} samples/s in its last epoch, {progress.get('elapsed_s') or 0:.0f} s; "
          f"threads {recorded.threads or 'one per physical core'}, {recorded.precision}")  # fmt: skip
    print(f"memory idle (no session yet):   {idle.line()}")
    print(f"memory after one visit (model): {warm.line()}")
    print(f"memory peak under load:         {sampler.peak.line()}  [{sampler.samples} samples]")
    print(f"/proc/loadavg {load_average()} at the end")
    failed = bool(errors) or len(finished) < args.sessions or progress.get("status") != "finished"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
