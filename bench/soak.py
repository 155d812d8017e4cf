"""Soak: many draw cycles from a few browser sessions, and the server's memory before and after them.

    python -m bench.soak [--sessions 5] [--cycles 300] [--pace human|robot] [--every 50] [--browser-nice 19]
                         [--duration 1800]
    python -m bench.soak --ci           # 2 sessions, 6 cycles in all, robot pace

It starts its own `streamlit run` on a free local port (fresh runs folder, real MNIST from
$MNIST_DATA_DIR or ../shared/datasets; no training run), makes sure there is a model, and
makes one cold-start visit (the server imports torch and loads the model). Then --sessions
browser contexts open the Draw page and, once all are there, share --cycles draw cycles
between them (Clear, draw a single-stroke digit, wait for the answer; a session's first
cycle has nothing to clear), at a person's pace by default.

It prints the server's resident memory (RSS, and PSS) with every session on Draw before the
first cycle, after every --every cycles and after the last, and the growth from before to
after (the target: at most 50 MB). PSS splits shared library pages between the processes
that map them, torch's among them, so it also moves when other processes on the machine
start or end; the server's RSS and its own pages (USS) do not. Beside the memory: the
server's own time per drawn digit over each stretch (bench/timed_server.py), to show
whether answers slow down as it runs; then the latency report of bench.load_test. The CPU
model and /proc/loadavg are printed beside the figures. Figures, not asserts: the exit
code is non-zero only when a session failed.
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
    App,
    Crowd,
    Memory,
    add_crowd_arguments,
    answers,
    app_with_model,
    cold_start,
    load_average,
    machine_line,
    measure,
    print_latencies,
    server_seconds,
    summarize,
)

MAX_SESSIONS, MAX_CYCLES, MAX_DURATION_S = 8, 1000, 3600
TARGET_GROWTH_MB = 50
SETTLE_S = 3.0  # let the server finish what the last answers started before measuring


async def soak(app: App, args) -> tuple[Crowd, list[tuple[int, Memory]]]:
    """The sessions open Draw, then draw the cycles; memory is sampled before, every `args.every` cycles and after."""
    samples: list[tuple[int, Memory]] = []

    async def sample() -> None:
        samples.append((crowd.drawn, await asyncio.to_thread(measure, app.pid)))

    async def every_stretch() -> None:
        for mark in range(args.every, args.cycles, args.every):  # the last is sampled after the cycles
            while crowd.drawn < mark:
                await asyncio.sleep(0.2)
            await sample()

    share, extra = divmod(args.cycles, args.sessions)
    async with Crowd(app.url, args.sessions, args.duration, args.browser_nice) as crowd:
        await crowd.open()
        await sample()
        sampler = asyncio.create_task(every_stretch())
        await crowd.draw([share + (i < extra) for i in range(args.sessions)], PACES[args.pace])
        sampler.cancel()
        await asyncio.sleep(SETTLE_S)
        await sample()
    return crowd, samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_crowd_arguments(parser)
    parser.add_argument("--cycles", type=int, default=300, help="draw cycles in all, shared between the sessions")
    parser.add_argument("--every", type=int, default=50, help="cycles between memory samples")
    parser.add_argument("--duration", type=float, default=1800, help="seconds the sessions may take in all")
    parser.add_argument("--ci", action="store_true", help="the small CI run: 2 sessions, 6 cycles, robot pace")
    args = parser.parse_args(argv)
    if args.ci:
        args.sessions, args.cycles, args.every, args.pace, args.duration = 2, 6, 3, "robot", 300
    if not (
        1 <= args.sessions <= MAX_SESSIONS
        and args.sessions <= args.cycles <= MAX_CYCLES
        and args.every >= 1
        and 0 < args.duration <= MAX_DURATION_S
    ):
        parser.error(
            f"bounded: 1-{MAX_SESSIONS} sessions, at least one cycle each and {MAX_CYCLES} in all, "
            f"--every at least 1, duration up to {MAX_DURATION_S} s"
        )

    print(f"MNIST Lab soak: {args.cycles} draw cycles over {args.sessions} sessions ({args.pace} pace, browsers at nice "
          f"{args.browser_nice}), no training run\n"
          f"{machine_line()}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mnist-lab-soak-") as workdir:
        app = app_with_model(Path(workdir), args.data_dir, timed=True)
        try:
            print(asyncio.run(cold_start(app.url, args.browser_nice)), flush=True)
            before_crowd = len(app.reruns())  # the cold start's runs are not the soak's
            started = time.monotonic()
            crowd, samples = asyncio.run(soak(app, args))
            soak_s, load_after = time.monotonic() - started, load_average()
            reruns = app.reruns()[before_crowd:]
            time.sleep(SETTLE_S)
            closed = measure(app.pid)
        finally:
            app.stop()

    finished, errors = crowd.finished, crowd.errors
    print(f"\n{len(finished)}/{args.sessions} sessions finished {crowd.drawn} cycles in {soak_s:.0f} s; errors: {len(errors)}")
    for error in errors:
        print(f"  error: {error}")
    print(f"server memory with {args.sessions} sessions on Draw, and the server's own time per drawn digit since the line above:")
    answered = answers(reruns)
    for (cycles, memory), (previous, _) in zip(samples, [(0, None), *samples]):
        stretch = server_seconds(answered[previous:cycles])
        print(f"  {cycles:4d} cycles  {memory.line()}  {summarize(stretch) if stretch else ''}".rstrip())
    print(f"  after the sessions closed: {closed.line()}")
    (_, before), (_, after) = samples[0], samples[-1]
    print(f"growth over {crowd.drawn} cycles: server RSS {after.server_rss - before.server_rss:+.0f} MB, "
          f"its own pages (USS) {after.server_uss - before.server_uss:+.0f} MB, PSS {after.total_pss - before.total_pss:+.0f} MB "
          f"(target: at most {TARGET_GROWTH_MB} MB); "
          f"/proc/loadavg {load_after} after the cycles")  # fmt: skip
    print_latencies(finished, reruns)
    return 1 if errors or len(finished) < args.sessions else 0


if __name__ == "__main__":
    sys.exit(main())
