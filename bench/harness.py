"""What the load and memory benchmarks share: a local app server, a model to draw against, memory samples of the
server and its trainer, and browser sessions that draw digits as people do (Playwright's async API, Debian's Chromium).

Only local servers are ever driven: `check_local` refuses any other address.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import psutil

REPO = Path(__file__).resolve().parent.parent

from mnist_core.pretrained import pretrained_available  # noqa: E402
from mnist_core.testing.drawing import resample, stroke_path  # noqa: E402
from mnist_core.testing.server import CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("MNIST_DATA_DIR") or REPO.parent / "shared" / "datasets")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MB = 2**20
# Single-stroke digits: one mouse-up, so one rerun, is one prediction to time.
DIGITS = (0, 1, 2, 3, 7)


def check_local(url: str) -> str:
    """The URL, if it points at this machine; anything else is refused."""
    host = urlparse(url).hostname
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"refusing {url}: the benchmarks only drive a server on this machine ({', '.join(sorted(LOCAL_HOSTS))})")
    return url.rstrip("/")


class App:
    """A `streamlit run streamlit_app.py` of this checkout on a free local port, with its own runs and cache folders
    (an empty analysis cache, as after a deploy: the Explore page computes its analyses in the server)."""

    def __init__(self, workdir: Path, data_dir: Path, env: dict[str, str] | None = None):
        env = {"MNIST_LAB_CACHE_DIR": str(workdir / "cache"), **(env or {})}
        self.url, self.process, self.runs_dir = start_server(workdir, data_dir, env)
        self.data_dir = data_dir

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_server(self.process, self.runs_dir)


def ensure_model(runs_dir: Path, data_dir: Path) -> str:
    """The bundled model when shipped; otherwise a quick run (1 epoch on 5,000 images) so the Draw page has a model."""
    if pretrained_available():
        return "bundled model"
    env = {**os.environ, "MNIST_LAB_RUNS_DIR": str(runs_dir)}
    command = [sys.executable, "-m", "mnist_core", "train", "--data-dir", str(data_dir), "--preset", "fast",
               "--epochs", "1", "--train-subset", "5000", "--device", "cpu", "--name", "bench-model"]  # fmt: skip
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=600)
    return "a 1-epoch model trained on 5,000 images (no bundled model in this checkout)"


@dataclass
class Memory:
    """Resident memory of one process tree in MB: rss counts shared library pages in every process, pss splits them."""

    server_rss: float = 0.0
    trainer_rss: float = 0.0
    total_rss: float = 0.0
    total_pss: float = 0.0

    def peak(self, other: Memory) -> Memory:
        return Memory(*(max(a, b) for a, b in zip(vars(self).values(), vars(other).values())))

    def line(self) -> str:
        trainer = f" + trainer {self.trainer_rss:5.0f}" if self.trainer_rss else ""
        return f"server {self.server_rss:5.0f}{trainer} = {self.total_rss:5.0f} MB RSS ({self.total_pss:5.0f} MB PSS)"


def measure(pid: int, extra_pids: tuple[int, ...] = ()) -> Memory:
    """Memory of the server `pid`, its child processes (trainers it launched) and any `extra_pids` (trainers)."""
    try:
        server = psutil.Process(pid)
        others = {p.pid: p for p in server.children(recursive=True)}
    except psutil.Error:
        return Memory()
    for extra in extra_pids:
        try:
            others.setdefault(extra, psutil.Process(extra))
        except psutil.Error:
            pass
    result = Memory()
    for process in [server, *others.values()]:
        try:
            info = process.memory_full_info()
        except psutil.Error:
            continue
        if process is server:
            result.server_rss = info.rss / MB
        else:
            result.trainer_rss += info.rss / MB
        result.total_rss += info.rss / MB
        result.total_pss += info.pss / MB
    return result


class Sampler:
    """Samples `measure` every `interval` seconds in a thread and keeps the peak; `trainers` can grow while it runs."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.trainers: list[int] = []
        self.peak = Memory()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = self.peak.peak(measure(self.pid, tuple(self.trainers)))
            self.samples += 1
            self._stop.wait(self.interval)

    def follow(self, run) -> None:
        """Also sample `run`'s trainer once it has started (its own process, not the server's child)."""
        pid = trainer_pid(run)
        if pid:
            self.trainers.append(pid)


def trainer_pid(run, timeout: float = 120.0) -> int | None:
    """The pid a run's trainer recorded in progress.json once it started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = run.progress()
        if progress.get("pid"):
            return progress["pid"]
        if progress.get("status") not in ("queued", "running"):
            return None
        time.sleep(0.2)
    return None


def summarize(values: list[float]) -> str:
    """'median x s, p95 y s, max z s' of latencies in seconds."""
    if not values:
        return "no samples"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return f"median {statistics.median(ordered):5.2f} s  p95 {p95:5.2f} s  max {ordered[-1]:5.2f} s"


# ---------------------------------------------------------------- browser sessions


async def launch_browser(playwright):
    """Debian's Chromium, headless (Playwright's own browser download cannot work offline), at no higher priority
    than the server."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    return await playwright.chromium.launch(executable_path=without_priority_boost(executable), headless=True, args=CHROMIUM_ARGS)


def without_priority_boost(executable: str) -> str:
    """A launcher for `executable` that cannot raise its own priority, when this runs as root (else `executable`).

    Chromium started by root sets nice -8 on its browser and GPU processes' main threads and its compositor threads,
    above the app server at 0. They then took the server's CPU first: a test artifact, as visitors' browsers do not
    run on the server. Without CAP_SYS_NICE those calls fail and Chromium stays at this script's niceness.
    """
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        return executable
    launcher = Path(tempfile.gettempdir()) / "mnist-lab-chromium-without-priority-boost"
    launcher.write_text(
        f'#!/bin/sh\nexec {shlex.quote(setpriv)} --inh-caps=-sys_nice --bounding-set=-sys_nice {shlex.quote(executable)} "$@"\n'
    )
    launcher.chmod(0o755)
    return str(launcher)


async def wait_idle(page, timeout_ms: int = 60_000) -> None:
    """The app is connected and its script has finished running."""
    await page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=timeout_ms)
    await page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


@dataclass(frozen=True)
class Pace:
    """How fast a visitor works: seconds per pen stroke (0: as fast as Playwright moves) and seconds spent
    reading an answer before clearing for the next digit."""

    stroke_s: float
    read_s: float


# A person draws a digit's stroke in about a second, its mouse or finger reporting ~60 moves a second,
# and looks at the answer for a couple of seconds. A robot does both at once, back to back.
PACES = {"human": Pace(stroke_s=0.8, read_s=2.0), "robot": Pace(stroke_s=0.0, read_s=0.0)}
MOVES_PER_S = 60


async def trace(page, stroke: list[tuple[float, float]], seconds: float) -> None:
    """Move the pressed mouse along `stroke`: in `seconds` at MOVES_PER_S, or as fast as possible when 0."""
    if seconds <= 0:
        for point in stroke[1:]:
            await page.mouse.move(*point, steps=4)
        return
    moves = resample(stroke, max(2, round(seconds * MOVES_PER_S)))
    for point in moves[1:]:
        await page.mouse.move(*point)
        await asyncio.sleep(seconds / len(moves))


@dataclass
class Session:
    """One visitor: a browser context of its own (cookies, Streamlit session) and the latencies it saw."""

    page: object
    timings: dict[str, list[float]] = field(default_factory=dict)
    predictions: list[tuple[int, str]] = field(default_factory=list)

    def record(self, action: str, seconds: float) -> None:
        self.timings.setdefault(action, []).append(seconds)


async def open_session(browser, url: str) -> Session:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    await context.add_init_script(CLOCK)
    session = Session(await context.new_page())
    started = time.perf_counter()
    await session.page.goto(url)
    await wait_idle(session.page)
    session.record("open app", time.perf_counter() - started)
    return session


async def open_draw_page(session: Session) -> None:
    page = session.page
    started = time.perf_counter()
    await page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Draw", exact=True).click()
    await page.get_by_text("Draw a digit on the canvas").wait_for()
    await wait_idle(page)
    session.record("open Draw page", time.perf_counter() - started)


async def settled_canvas(page, timeout_s: float = 30.0) -> dict:
    """The canvas's box once its stacked layers share it: a fresh canvas (after Clear too) lays them out over a few frames."""
    canvases = page.locator("canvas")
    await canvases.first.wait_for()
    deadline = time.monotonic() + timeout_s
    while True:
        boxes = [await canvas.bounding_box() for canvas in await canvases.all()]
        if boxes and all(boxes) and all(box == boxes[0] for box in boxes):
            return boxes[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the canvas layers never settled: {boxes}")
        await page.wait_for_timeout(200)


# Timed in the page's own clock (Playwright's own polling backs off to 500 ms steps). CLOCK is installed in each
# page before Streamlit's code: it notes the last pointer-up, the first message the page sends after it (the canvas
# sends the drawing after its 200 ms debounce) and the first message back that carries an answer. WATCH_ANSWER arms
# it before a drawing and notes the first animation frame after an answer is in the DOM.
ANSWER_TEXT = r"It's a|Not sure"
CLOCK = """(() => {
    const answer = new RegExp(%s);
    const decoder = new TextDecoder();
    window.addEventListener("pointerup", () => {
        if (window.__mnistLab) window.__mnistLab.up = performance.now();
    }, {capture: true});
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener("message", (event) => {
                const clock = window.__mnistLab;
                if (!clock || clock.sent === null || clock.back !== null || !(event.data instanceof ArrayBuffer)) return;
                if (answer.test(decoder.decode(event.data))) clock.back = performance.now();
            });
        }
        send(data) {
            const clock = window.__mnistLab;
            if (clock && clock.up !== null && clock.sent === null) clock.sent = performance.now();
            return super.send(data);
        }
    };
})();""" % json.dumps(ANSWER_TEXT)  # noqa: UP031 (JavaScript braces make str.format unreadable)
WATCH_ANSWER = """() => {
    const clock = window.__mnistLab = {up: null, sent: null, back: null, shown: null};
    const answer = new RegExp(%s);
    const answered = () => [...document.querySelectorAll('[data-testid="stAlert"]')].some((a) => answer.test(a.textContent));
    const observer = new MutationObserver(() => {
        if (clock.up === null || !answered()) return;
        observer.disconnect();
        requestAnimationFrame(() => { clock.shown = performance.now(); });
    });
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
}""" % json.dumps(ANSWER_TEXT)  # noqa: UP031
# What draw_and_predict records: the whole wait, then its parts (the parts need CLOCK; open_session installs it).
DRAW_STEPS = {
    "draw -> prediction": ("up", "shown"),
    "  pointer-up -> drawing sent": ("up", "sent"),
    "  drawing sent -> answer back": ("sent", "back"),
    "  answer back -> on screen": ("back", "shown"),
}


async def draw_and_predict(session: Session, digit: int, first: bool, pace: Pace = PACES["robot"]) -> None:
    """Clear the canvas (after reading the last answer), draw `digit` with the mouse, time mouse-up to the answer on screen."""
    page = session.page
    if not first:
        await asyncio.sleep(pace.read_s)
        await page.get_by_role("button", name="Clear").click()
        await page.get_by_text("Draw a digit on the canvas").wait_for()
        await wait_idle(page)
    box = await settled_canvas(page)
    inside = (box["x"] + 0.25 * box["width"], box["y"] + 0.15 * box["height"],
              box["x"] + 0.75 * box["width"], box["y"] + 0.85 * box["height"])  # fmt: skip
    await page.evaluate(WATCH_ANSWER)
    for stroke in stroke_path(digit, inside):
        await page.mouse.move(*stroke[0])
        await page.mouse.down()
        await trace(page, stroke, pace.stroke_s)
        await page.mouse.up()
    await page.wait_for_function("() => window.__mnistLab.shown !== null", timeout=60_000)
    clock = await page.evaluate("() => window.__mnistLab")
    for action, (start, end) in DRAW_STEPS.items():
        if clock[start] is not None and clock[end] is not None:
            session.record(action, (clock[end] - clock[start]) / 1000)
    answer = await page.locator('[data-testid="stAlert"]', has_text=re.compile(ANSWER_TEXT)).first.inner_text()
    found = re.search(r"It's a \d|Not sure", answer)
    session.predictions.append((digit, found.group(0) if found else "?"))
    await wait_idle(page)
