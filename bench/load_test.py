"""Load test: N real browser sessions draw digits at once while one training run trains, on this machine only.

    python -m bench.load_test [--sessions 5] [--draws 8] [--pace human|robot] [--train-subset N] [--epochs 1] [--duration 300]
    python -m bench.load_test --ci          # 2 sessions x 3 draws and a 3,000-image run, bounded at 3 minutes

It starts its own `streamlit run` on a free local port (fresh runs folder, real MNIST
from $MNIST_DATA_DIR or ../shared/datasets), makes sure there is a model to draw
against, starts one training run in the server's runs folder (the same call the
Train page makes), then opens N browser contexts in one headless Chromium. Each
opens the app and goes to Draw; once all are there, they draw single-stroke digits
together, clearing in between: at a person's pace by default (a stroke takes 0.8 s,
an answer is read for 2 s), or back to back with --pace robot, the heaviest load the
sessions can make.
It prints per-action latency (median, p95, max), the server's and the trainer's
resident memory, and whether the run finished. Figures, not asserts; the exit
code is non-zero only when a session failed to get its predictions or the run failed.

Bounded: at most 8 sessions, 20 draws each and --duration seconds (600 at most);
the browsers share this machine's CPU with the server, so latencies here are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (  # noqa: E402
    DEFAULT_DATA,
    DIGITS,
    DRAW_STEPS,
    PACES,
    App,
    Sampler,
    draw_and_predict,
    ensure_model,
    launch_browser,
    measure,
    open_draw_page,
    open_session,
    summarize,
)
from mnist_core.config import TrainConfig  # noqa: E402
from mnist_core.launch import start_run  # noqa: E402
from mnist_core.runs import RunStore  # noqa: E402

MAX_SESSIONS, MAX_DRAWS, MAX_DURATION_S = 8, 20, 600
ACTIONS = ("open app", "open Draw page", *DRAW_STEPS)


async def visitor(browser, url: str, draws: int, index: int, pace, ready: asyncio.Barrier):
    """One person: open the app, go to Draw, wait for the others, draw `draws` digits; a failure says at which step."""
    step = "opening the app"
    try:
        session = await open_session(browser, url)
        step = "opening the Draw page"
        await open_draw_page(session)
        step = "waiting for the other sessions to open Draw"
        await ready.wait()
        for turn in range(draws):
            step = f"drawing digit {turn + 1}"
            await draw_and_predict(session, DIGITS[(index + turn) % len(DIGITS)], first=turn == 0, pace=pace)
        await session.page.context.close()
    except Exception as exc:
        await ready.abort()  # the others stop waiting for this one
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RuntimeError(f"session {index + 1}, {step}: {reason}") from exc
    return session


async def crowd(url: str, sessions: int, draws: int, deadline_s: float, pace=PACES["robot"]):
    """All visitors at once in one Chromium; returns (finished sessions, errors).

    They start drawing together once every one has the Draw page open. Loading Streamlit's frontend costs a browser
    seconds of CPU; here the browsers share the server's cores, so a draw timed while another session still loads
    would measure that test artifact, which on a hosted instance happens on each visitor's own device.
    """
    from playwright.async_api import async_playwright

    ready = asyncio.Barrier(sessions)
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        tasks = [asyncio.create_task(visitor(browser, url, draws, i, pace, ready)) for i in range(sessions)]
        done, pending = await asyncio.wait(tasks, timeout=deadline_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await browser.close()
    finished = [task.result() for task in done if not task.exception()]
    errors = [str(task.exception()) for task in done if task.exception()]
    errors += ["did not finish within the time limit"] * len(pending)
    return finished, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--draws", type=int, default=8, help="digits each session draws")
    parser.add_argument("--pace", choices=sorted(PACES), default="human", help="how fast each session draws and reads")
    parser.add_argument(
        "--browser-nice", type=int, default=0, help="niceness of the browsers (0-19), which stand in for visitors' own devices"
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the training run (fast preset)")
    parser.add_argument("--train-subset", type=int, default=None, help="training images (default: all 60,000)")
    parser.add_argument("--duration", type=float, default=300, help="seconds the sessions may take in all")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--ci", action="store_true", help="the small CI run: 2 sessions x 3 draws, 3,000 training images")
    args = parser.parse_args(argv)
    if args.ci:
        args.sessions, args.draws, args.train_subset, args.duration = 2, 3, 3000, 180
    if not (1 <= args.sessions <= MAX_SESSIONS and 1 <= args.draws <= MAX_DRAWS and 0 < args.duration <= MAX_DURATION_S):
        parser.error(f"bounded: 1-{MAX_SESSIONS} sessions, 1-{MAX_DRAWS} draws, duration up to {MAX_DURATION_S} s")

    config = TrainConfig.from_preset("fast", epochs=args.epochs, train_subset=args.train_subset, device="cpu")
    images = f"{args.train_subset:,}" if args.train_subset else "60,000"
    print(f"MNIST Lab load test: {args.sessions} sessions x {args.draws} draws ({args.pace} pace) while one run trains "
          f"(fast preset, {args.epochs} epoch(s) on {images} images); {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f} before starting", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mnist-lab-load-") as workdir:
        app = App(Path(workdir), args.data_dir)
        try:
            print(f"model: {ensure_model(app.runs_dir, args.data_dir)}", flush=True)
            idle = measure(app.pid)
            os.nice(args.browser_nice)  # only the browsers (and this script) started from here on: not the server
            # A first visit imports torch and loads the model in the server: timed apart, as a cold start.
            cold, _ = asyncio.run(crowd(app.url, 1, 1, MAX_DURATION_S))
            warm = measure(app.pid)
            with Sampler(app.pid) as sampler:
                run = start_run(config, store=RunStore(app.runs_dir), data_dir=args.data_dir, name="load-test")
                sampler.follow(run)
                started = time.monotonic()
                finished, errors = asyncio.run(crowd(app.url, args.sessions, args.draws, args.duration, PACES[args.pace]))
                crowd_s = time.monotonic() - started
                deadline = time.monotonic() + max(120.0, args.duration)
                while run.is_active() and time.monotonic() < deadline:
                    time.sleep(0.5)
            progress, rows = run.progress(), len(run.metrics())
            if run.is_active():
                run.request_stop()
        finally:
            app.stop()

    for session in cold:
        print(f"cold start (first visit: server imports torch, loads the model): open app {session.timings['open app'][0]:.1f} s, "
              f"Draw page {session.timings['open Draw page'][0]:.1f} s")  # fmt: skip
    print(f"\n{len(finished)}/{args.sessions} sessions finished in {crowd_s:.0f} s; errors: {len(errors)}")
    for error in errors:
        print(f"  error: {error}")
    for action in ACTIONS:
        values = [v for session in finished for v in session.timings.get(action, [])]
        print(f"  {action:30s} n={len(values):3d}  {summarize(values)}")
    answers = [(digit, text) for session in finished for digit, text in session.predictions]
    right = sum(text == f"It's a {digit}" for digit, text in answers)
    print(f"  predictions matching the drawn digit: {right}/{len(answers)}")
    print(f"training run: {progress.get('status')}, {rows}/{args.epochs} epoch(s), "
          f"{progress.get('samples_per_s') or 0:,.0f} samples/s in its last epoch, {progress.get('elapsed_s') or 0:.0f} s")  # fmt: skip
    print(f"memory idle (no session yet):   {idle.line()}")
    print(f"memory after one visit (model): {warm.line()}")
    print(f"memory peak under load:         {sampler.peak.line()}  [{sampler.samples} samples]")
    failed = bool(errors) or len(finished) < args.sessions or progress.get("status") != "finished"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
