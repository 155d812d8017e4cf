"""Server memory: idle, with the model loaded, with 5 sessions open, and during one training run on the full set.

    python -m bench.memory [--sessions 5] [--pages Draw,"Explore errors",Home,Train,Runs] [--train-subset N]

Starts its own `streamlit run` on a free local port (real MNIST from $MNIST_DATA_DIR
or ../shared/datasets, a fresh runs folder) and measures, in order:

  1. idle: the server started, no visitor yet (Streamlit runs no page before one connects)
  2. model loaded: one visitor on the Draw page drew a digit (torch imported, the model cached)
  3. N sessions: N visitors spread over --pages (Draw pages draw a digit), all still connected
  4. training: one run (fast preset, 1 epoch, the full 60,000 images unless --train-subset) with the N
     sessions still connected, sampled twice a second until it ends; the peak is reported

Each line gives the server's and the trainer's resident memory (RSS) and their
proportional set size (PSS): RSS counts the shared torch libraries once per
process, PSS splits them, so the PSS total is what the two take from the machine
(and what a container's memory limit sees). Figures, not asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (  # noqa: E402
    DEFAULT_DATA,
    App,
    Memory,
    Sampler,
    app_with_model,
    draw_and_predict,
    launch_browser,
    measure,
    open_session,
    wait_idle,
)
from mnist_core.config import TrainConfig  # noqa: E402
from mnist_core.launch import start_run  # noqa: E402
from mnist_core.runs import RunStore  # noqa: E402

MAX_SESSIONS = 8
TRAIN_TIMEOUT_S = 900
SETTLE_S = 3.0  # let the server finish what a visit started (caches, background work) before measuring


async def visit(browser, url: str, page_name: str, digit: int):
    """A visitor who opens the app and goes to `page_name` (drawing a digit there if it is Draw); stays connected."""
    session = await open_session(browser, url)
    if page_name != "Home":
        await session.page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=page_name, exact=True).click()
        await wait_idle(session.page)
    if page_name == "Draw":
        await draw_and_predict(session, digit, first=True)
    return session


async def scenario(app: App, args) -> list[tuple[str, Memory]]:
    from playwright.async_api import async_playwright

    figures = [("idle, no session", measure(app.pid))]
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        sessions = [await visit(browser, app.url, "Draw", 1)]
        await asyncio.sleep(SETTLE_S)
        figures.append(("model loaded (1 session on Draw)", measure(app.pid)))
        for i in range(1, args.sessions):
            sessions.append(await visit(browser, app.url, args.pages[i % len(args.pages)], (2, 3, 7, 0)[i % 4]))
        await asyncio.sleep(SETTLE_S)
        pages = ", ".join(args.pages[i % len(args.pages)] for i in range(args.sessions))
        figures.append((f"{args.sessions} sessions ({pages})", measure(app.pid)))

        config = TrainConfig.from_preset("fast", epochs=1, train_subset=args.train_subset, device="cpu")
        with Sampler(app.pid) as sampler:
            run = start_run(config, store=RunStore(app.runs_dir), data_dir=app.data_dir, name="memory")
            sampler.follow(run)
            started = time.monotonic()
            while run.is_active() and time.monotonic() - started < TRAIN_TIMEOUT_S:
                if args.max_train_s and time.monotonic() - started > args.max_train_s and not run.stop_requested():
                    run.request_stop()
                await asyncio.sleep(0.5)
        images = f"{args.train_subset:,}" if args.train_subset else "all 60,000"
        progress = run.progress()
        done = f"{run.status()} at epoch {progress.get('epoch')}, batch {progress.get('batch')}/{progress.get('batches')}"
        figures.append((f"peak while training ({images} images; {done}) + {args.sessions} sessions", sampler.peak))
        await browser.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--pages", default="Draw,Explore errors,Home,Train,Runs", help="comma-separated pages, visited in turn")
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--max-train-s", type=float, default=None, help="stop the run (it saves, then ends) after this long")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    args.pages = [name.strip() for name in args.pages.split(",") if name.strip()]
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be 1-{MAX_SESSIONS}")
    with tempfile.TemporaryDirectory(prefix="mnist-lab-memory-") as workdir:
        app = app_with_model(Path(workdir), args.data_dir)
        try:
            figures = asyncio.run(scenario(app, args))
        finally:
            app.stop()
    print("\nMNIST Lab server memory (MB)")
    for label, memory in figures:
        print(f"  {label:62s} {memory.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
