"""What the load, soak and memory benchmarks share: a local app server (optionally timing its reruns from inside), a
model to draw against, memory samples of the server and its trainer, browser sessions that draw digits as people do
(Playwright's async API, Debian's Chromium), a crowd of them, and the latency report.

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

from bench.timed_server import ANSWER_TEXT, TIMINGS_ENV, Rerun, read_reruns  # noqa: E402
from mnist_core.precision import cpu_model  # noqa: E402
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
    (an empty analysis cache, as after a deploy: the Explore page computes its analyses in the server).

    It is the tests' server (mnist_core.testing.server), with bench.timed_server as its entry instead of
    `-m streamlit`: plain Streamlit, unless `timed`, when the server notes when each rerun's request arrives and
    its last message leaves (`reruns()` reads them back).
    """

    def __init__(self, workdir: Path, data_dir: Path, env: dict[str, str] | None = None, timed: bool = False):
        self.data_dir = data_dir
        self.timings = workdir / "reruns.jsonl" if timed else None
        env = {**({TIMINGS_ENV: str(self.timings)} if timed else {}), **(env or {})}
        self.url, self.process, self.runs_dir = start_server(workdir, data_dir, env, module="bench.timed_server")

    def reruns(self) -> list[Rerun]:
        """The runs the timed server has finished sending so far (bench/timed_server.py), oldest first."""
        return read_reruns(self.timings) if self.timings else []

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_server(self.process, self.runs_dir)


def machine_line() -> str:
    """This machine and how busy it is, in one line: every benchmark prints it before its figures."""
    return f"{cpu_model()}, {os.cpu_count()} CPU cores; /proc/loadavg {load_average()} before starting"


def app_with_model(workdir: Path, data_dir: Path, timed: bool = False) -> App:
    """An App whose Draw page has a model to answer with (`ensure_model`); prints which model."""
    app = App(workdir, data_dir, timed=timed)
    try:
        print(f"model: {ensure_model(app.runs_dir, data_dir)}", flush=True)
    except BaseException:
        app.stop()
        raise
    return app


def ensure_model(runs_dir: Path, data_dir: Path) -> str:
    """The bundled model when shipped; otherwise a quick run (1 epoch on 5,000 images) so the Draw page has a model."""
    if pretrained_available():
        return "bundled model"
    train_quick_run(runs_dir, data_dir, "bench-model")
    return "a 1-epoch model trained on 5,000 images (no bundled model in this checkout)"


def train_quick_run(runs_dir: Path, data_dir: Path, name: str, train_subset: int = 5000) -> None:
    """A finished run in `runs_dir` by the CLI the app launches: fast preset, 1 epoch on `train_subset` images, and its
    end-of-run analysis (the 2-D map) included."""
    env = {**os.environ, "MNIST_LAB_RUNS_DIR": str(runs_dir)}
    command = [sys.executable, "-m", "mnist_core", "train", "--data-dir", str(data_dir), "--preset", "fast",
               "--epochs", "1", "--train-subset", str(train_subset), "--device", "cpu", "--name", name]  # fmt: skip
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=600)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (/proc/loadavg), beside which every figure here is read."""
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "n/a"


@dataclass
class Memory:
    """Resident memory of one process tree in MB: rss counts shared library pages in every process, pss splits them
    (so it moves when other processes mapping the same libraries start or end), uss counts the server's own pages."""

    server_rss: float = 0.0
    trainer_rss: float = 0.0
    total_rss: float = 0.0
    total_pss: float = 0.0
    server_uss: float = 0.0

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
            result.server_rss, result.server_uss = info.rss / MB, info.uss / MB
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


async def launch_browser(playwright, nice: int = 0):
    """Debian's Chromium, headless (Playwright's own browser download cannot work offline), `nice` steps below this
    script's priority and never above the server's."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    launcher = without_priority_boost(executable, nice)
    return await playwright.chromium.launch(executable_path=launcher, headless=True, args=CHROMIUM_ARGS)


def without_priority_boost(executable: str, nice: int = 0) -> str:
    """A launcher for `executable` that cannot raise its own priority, when this runs as root, and that starts it
    `nice` steps lower (`executable` itself when there is nothing to change).

    Chromium started by root sets nice -8 on its browser and GPU processes' main threads and its compositor threads,
    above the app server at 0. They then took the server's CPU first: a test artifact, as visitors' browsers do not
    run on the server. Without CAP_SYS_NICE those calls fail and Chromium stays at the niceness it started with.
    """
    setpriv = shutil.which("setpriv") if os.geteuid() == 0 else None
    prefix = [setpriv, "--inh-caps=-sys_nice", "--bounding-set=-sys_nice"] if setpriv else []
    if nice:
        prefix += ["nice", "-n", str(nice)]
    if not prefix:
        return executable
    launcher = Path(tempfile.gettempdir()) / f"mnist-lab-chromium-without-priority-boost-nice{nice}"
    draft = launcher.with_suffix(f".{os.getpid()}")  # renamed into place: a browser starting meanwhile never reads half a file
    draft.write_text(f'#!/bin/sh\nexec {shlex.join([*prefix, executable])} "$@"\n')
    draft.chmod(0o755)
    draft.replace(launcher)
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


def add_crowd_arguments(parser) -> None:
    """The options every crowd benchmark (load test, soak) takes: sessions, their pace, the browsers' niceness, data."""
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--pace", choices=sorted(PACES), default="human", help="how fast each session draws and reads")
    parser.add_argument(
        "--browser-nice", type=int, default=19, help="niceness of the browsers (0-19), which stand in for visitors' own devices"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)


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
    "page: draw -> prediction": ("up", "shown"),
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


@dataclass
class Visitor:
    """One session of a crowd: what it is doing, and why it stopped if it failed."""

    number: int
    session: Session | None = None
    step: str = "starting"
    error: str | None = None
    done: bool = False


class Crowd:
    """Visitors in one headless Chromium (`nice` steps below this script), each in a browser context of its own.

    `open()` brings every one to the Draw page; `draw()` then has them all draw at once. Loading Streamlit's frontend
    costs a browser seconds of CPU, and here the browsers share the server's cores, so a digit timed while another
    session still loads would measure that test artifact, which on a hosted instance happens on each visitor's own
    device. A visitor that fails is left out from then on, with the step it failed at; `deadline_s` bounds it all.
    """

    def __init__(self, url: str, sessions: int, deadline_s: float, nice: int = 0):
        self.url, self.nice = url, nice
        self.deadline = time.monotonic() + deadline_s
        self.visitors = [Visitor(number) for number in range(1, sessions + 1)]
        self.drawn = 0  # digits drawn and answered so far, by all visitors

    async def __aenter__(self) -> Crowd:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self._browser = await launch_browser(self._playwright, self.nice)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._browser.close()
        await self._playwright.stop()

    @property
    def finished(self) -> list[Session]:
        """The sessions that did all they were asked to."""
        return [visitor.session for visitor in self.visitors if visitor.done]

    @property
    def errors(self) -> list[str]:
        return [visitor.error for visitor in self.visitors if visitor.error]

    async def open(self) -> None:
        """Every visitor opens the app, then the Draw page."""

        async def arrive(visitor: Visitor) -> None:
            visitor.step = "opening the app"
            visitor.session = await open_session(self._browser, self.url)
            visitor.step = "opening the Draw page"
            await open_draw_page(visitor.session)

        await self._each(arrive)

    async def draw(self, draws: list[int], pace: Pace) -> None:
        """Visitor i draws draws[i] single-stroke digits, clearing the canvas between them, all at once."""

        async def cycles(visitor: Visitor) -> None:
            for turn in range(draws[visitor.number - 1]):
                visitor.step = f"drawing digit {turn + 1}"
                digit = DIGITS[(visitor.number - 1 + turn) % len(DIGITS)]
                await draw_and_predict(visitor.session, digit, first=turn == 0, pace=pace)
                self.drawn += 1
            visitor.done = True

        await self._each(cycles)

    async def _each(self, action) -> None:
        """`action(visitor)` for every visitor still in, all at once, until the deadline."""
        tasks = {asyncio.create_task(action(visitor)): visitor for visitor in self.visitors if not visitor.error}
        if not tasks:
            return
        _, pending = await asyncio.wait(list(tasks), timeout=max(0.0, self.deadline - time.monotonic()))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task, visitor in tasks.items():
            if task in pending:
                visitor.error = f"session {visitor.number}, {visitor.step}: did not finish within the time limit"
            elif task.exception():
                reason = (str(task.exception()).splitlines() or [type(task.exception()).__name__])[0]
                visitor.error = f"session {visitor.number}, {visitor.step}: {reason}"


async def cold_start(url: str, nice: int = 0) -> str:
    """One visitor's first visit and digit, timed apart: it makes the server import torch and load the model."""
    async with Crowd(url, 1, deadline_s=600, nice=nice) as crowd:
        await crowd.open()
        await crowd.draw([1], PACES["robot"])
    if crowd.errors:
        return f"cold start failed: {crowd.errors[0]}"
    timings = crowd.visitors[0].session.timings
    return (f"cold start (first visit: server imports torch, loads the model): open app {timings['open app'][0]:.1f} s, "
            f"Draw page {timings['open Draw page'][0]:.1f} s")  # fmt: skip


# ---------------------------------------------------------------- the report

# The server's own time for a drawn digit (see bench/timed_server.py), then its parts: Rerun fields, start to end.
SERVER_STEPS = {
    "server: drawing in -> answer out": ("arrived", "sent"),
    "  drawing in -> rerun starts": ("arrived", "started"),
    "  rerun starts -> verdict queued": ("started", "verdict"),
    "  verdict queued -> rerun ends": ("verdict", "finished"),
    "  rerun ends -> answer out": ("finished", "sent"),
}
# How the report names the runs it counts (Rerun.answers_a_drawing).
ANSWERS_ARE = ("an answer: a fragment rerun asked for by a browser that finished with the verdict, "
               "\"It's a N\" or \"Not sure\", among its messages")  # fmt: skip


def answers(reruns: list[Rerun]) -> list[Rerun]:
    """The runs that answer a drawing, in the order they left the server."""
    return [rerun for rerun in reruns if rerun.answers_a_drawing]


def slowest(answered: list[Rerun], count: int = 5) -> str:
    """The `count` slowest answers as "T s (drawing N of its session, at +A s)", A counted from the first drawing's
    arrival: whether the tail is one moment (the crowd's first drawings together, say) or spread over the run."""
    if not answered:
        return "none"
    by_arrival = sorted(answered, key=lambda rerun: rerun.arrived)
    first, drawn, labels = by_arrival[0].arrived, {}, {}
    for rerun in by_arrival:
        drawn[rerun.session] = drawn.get(rerun.session, 0) + 1
        labels[id(rerun)] = f"drawing {drawn[rerun.session]} of its session, at +{rerun.arrived - first:.1f} s"
    worst = sorted(answered, key=lambda rerun: rerun.sent - rerun.arrived, reverse=True)[:count]
    return "; ".join(f"{rerun.sent - rerun.arrived:.2f} s ({labels[id(rerun)]})" for rerun in worst)


def server_seconds(reruns: list[Rerun], step: str = "server: drawing in -> answer out") -> list[float]:
    """Each run's seconds in one of SERVER_STEPS (by default the whole: the drawing's arrival to the answer's leaving)."""
    start, end = SERVER_STEPS[step]
    return [getattr(rerun, end) - getattr(rerun, start) for rerun in reruns]


def print_latencies(sessions: list[Session], reruns: list[Rerun]) -> None:
    """Per-action latencies: opening, the server's own time per drawn digit (the main figure, from `reruns`), the
    page's clock from the last pointer-up to the answer on screen, and whether the answers were right."""

    def line(label: str, values: list[float]) -> None:
        print(f"  {label:34s} n={len(values):3d}  {summarize(values)}")

    for action in ("open app", "open Draw page"):
        line(action, [value for session in sessions for value in session.timings.get(action, [])])
    answered = answers(reruns)
    print(f"  in the server's process: {len(answered)} answers among {sum(rerun.fragment for rerun in reruns)} "
          f"fragment reruns, {len(reruns)} runs in all ({ANSWERS_ARE})")  # fmt: skip
    for step in SERVER_STEPS:
        line(step, server_seconds(answered, step))
    print(f"  the slowest answers: {slowest(answered)}")
    print("  in the page's clock:")
    for action in DRAW_STEPS:
        line(action, [value for session in sessions for value in session.timings.get(action, [])])
    predictions = [(digit, text) for session in sessions for digit, text in session.predictions]
    right = sum(text == f"It's a {digit}" for digit, text in predictions)
    print(f"  predictions matching the drawn digit: {right}/{len(predictions)}")
