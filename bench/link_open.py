"""Seconds from following a shared Explore link to a finished run until the page has drawn it, on fresh servers.

    python -m bench.link_open [--run RUN_DIR] [--sample INDEX] [--repeats 3] [--warm-up] [--data-dir ../shared/datasets]

Each repeat starts a new `streamlit run` of this checkout whose runs folder holds a copy of the run and whose
analysis cache is empty, then opens /explore?model=<run id>&split=test&sample=<index> in a newly started headless
Chromium as that server's first visit (with --warm-up, after a visit to the Home page, so the server has
imported torch but still never analysed the model, and the browser has the app's code in its cache, as a visitor
who has opened the app before). The page's own clock (performance.now(), from the start of
navigation) notes when the DOM first holds each of: the four metrics, the confusion matrix's grid, the feature
map (the first drawing's still loaded, or the interactive chart's legend, which Plotly draws last), the sample's
detail heading with its class probabilities, the interactive map that replaces the still (not in the target), and
finally everything drawn: the nearest neighbours of the sample, every image loaded and the script finished.

Without --run a run is trained first (fast preset, 1 epoch on 5,000 images, its end-of-run map included); the
test split is the real one from --data-dir (10,000 images). The sample defaults to the test image the run is
least sure of. The browser shares this machine's CPUs with the server, as it would not for a visitor, and has no GPU,
so the map's WebGL scatter is drawn in software: the figures are pessimistic. Prints median and max beside the issue's target; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from bench.harness import DEFAULT_DATA, App, launch_browser, load_average, machine_line, train_quick_run, wait_idle
from mnist_core.catalog import USABLE_STATUSES
from mnist_core.maps import PROBABILITIES_FILE
from mnist_core.runs import Run, RunStore, is_run_id

TARGET_S = 2.0  # issue 13: a finished run's Explore page opened by a link is drawn within 2.0 s on 2 cores
TIMEOUT_MS = 600_000  # a bound for a stuck page, not a pace
DONE = "everything drawn"
# What the target covers: the nearest neighbours come later by design (a background pass), so they are not in it.
TARGET_MILESTONES = ("metrics", "confusion matrix", "map", "sample detail")
# Milestones, top of the page to bottom: name -> a test of the DOM (JavaScript, `sample` in scope). Streamlit loads
# an element's code on first use, so on a busy machine the browser may show a later one first.
MILESTONES = {
    "metrics": """document.querySelectorAll('[data-testid="stMetric"]').length >= 4""",
    "confusion matrix": """!!document.querySelector('.st-key-explore_cm [data-testid="stDataFrame"] canvas')""",
    # The map drawn: its still (a session's first drawing, ui/charts.py) loaded, or the interactive chart's legend.
    "map": """drawnStill('explore_map') || document.querySelectorAll('.st-key-explore_map .js-plotly-plot .legend .traces').length >= 10""",
    # The detail's heading and its class probabilities, still or interactive.
    "sample detail": """[...document.querySelectorAll('h3')].some((h) => h.textContent.includes(`Sample #${sample} of the test split`))
        && (drawnStill('explore_probs') || !!document.querySelector('.st-key-explore_probs .js-plotly-plot'))""",
    "neighbours": """[...document.querySelectorAll('[data-testid="stCaptionContainer"]')].some((c) => /^Labelled \\d/.test(c.textContent))""",
    # Not in the target: the interactive map that replaces the still once the browser is idle.
    "interactive map": """document.querySelectorAll('.st-key-explore_map .js-plotly-plot .legend .traces').length >= 10""",
}
# Installed before Streamlit's own code: each DOM change (and each image load) checks the milestones not yet seen.
# A problem (an exception box, a link warning) ends the wait too, so a broken page is reported rather than timed.
CLOCK = """((sample, done) => {
    const marks = window.__linkOpen = {};
    const tests = {%s};
    const drawnStill = (key) => [...document.querySelectorAll(`.st-key-${key}_still img`)].some((i) => i.complete && i.naturalWidth > 0);
    const imagesLoaded = () => [...document.querySelectorAll('[data-testid="stMain"] img')].every((i) => i.complete && i.naturalWidth > 0);
    const check = () => {
        if (!document.body) return;
        for (const [name, test] of Object.entries(tests)) if (!(name in marks) && test()) marks[name] = performance.now();
        const problem = document.querySelector('[data-testid="stException"]')
            || [...document.querySelectorAll('[data-testid="stAlert"]')].find((a) => a.textContent.includes("The link's"));
        if (problem && !("problem" in marks)) marks.problem = problem.textContent.slice(0, 300);
        const finished = document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]');
        if (!(done in marks) && Object.keys(tests).every((name) => name in marks) && finished && imagesLoaded()) {
            marks[done] = performance.now();
        }
    };
    new MutationObserver(check).observe(document, {childList: true, subtree: true, attributes: true, characterData: true});
    document.addEventListener("load", check, true);
})(%d, %s);"""


def clock(sample: int) -> str:
    """CLOCK for a link to `sample`."""
    tests = ", ".join(f"{json.dumps(name)}: () => {test}" for name, test in MILESTONES.items())
    return CLOCK % (tests, sample, json.dumps(DONE))  # noqa: UP031 (JavaScript braces make str.format unreadable)


def least_sure(run: Path) -> int:
    """The test image the run's end-of-run analysis is least sure of (0 when the run has none)."""
    try:
        return int(np.load(run / PROBABILITIES_FILE).max(axis=1).argmin())
    except (OSError, ValueError):
        return 0


def finished_run(path: Path) -> Path:
    """`path`, if it is a finished or stopped run with a checkpoint (a link names a run by its folder's name)."""
    run = Run(path)
    if not is_run_id(path.name) or not run.has_checkpoint() or run.status() not in USABLE_STATUSES:
        raise SystemExit(f"{path} is not a finished run folder (a run id as its name, model.pt, status finished or stopped)")
    return path


async def open_link(url: str, run_id: str, sample: int, warm_up: bool) -> dict[str, float]:
    """One visit by the link in a fresh browser context: seconds from navigation to each milestone."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            if warm_up:  # in the same context, so the link's page finds the app's code in the browser's cache
                home = await context.new_page()
                await home.goto(url)
                await wait_idle(home, TIMEOUT_MS)
                await home.close()
            await context.add_init_script(clock(sample))
            page = await context.new_page()
            await page.goto(f"{url}/explore?{urlencode({'model': run_id, 'split': 'test', 'sample': sample})}")
            await page.wait_for_function(
                f"() => {json.dumps(DONE)} in window.__linkOpen || 'problem' in window.__linkOpen",
                polling=100,
                timeout=TIMEOUT_MS,
            )
            marks = await page.evaluate("() => window.__linkOpen")
        finally:
            await browser.close()
    if "problem" in marks:
        raise SystemExit(f"the page shows a problem instead of the linked view: {marks['problem']}")
    return {name: ms / 1000 for name, ms in marks.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run folder (default: train one, 1 epoch on 5,000 images)")
    parser.add_argument("--sample", type=int, help="the linked test image (default: the one the run is least sure of)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers, one link each (default: 3)")
    parser.add_argument("--warm-up", action="store_true", help="visit the Home page first: only the model's analysis is cold")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mnist-lab-link-") as scratch:
        if args.run is None:
            started = time.perf_counter()
            train_quick_run(Path(scratch) / "trained", args.data_dir, "link-open")
            (trained,) = RunStore(Path(scratch) / "trained").list()
            run = trained.path
            made = f"trained here in {time.perf_counter() - started:.0f} s (fast preset, 1 epoch on 5,000 images)"
        else:
            run = finished_run(args.run.resolve())
            made = "given"
        sample = least_sure(run) if args.sample is None else args.sample
        print(f"Explore link to run {run.name} ({made}), test split of {args.data_dir}, sample {sample}")
        print(machine_line())
        print(f"first visit to each fresh server{' after a visit to Home' if args.warm_up else ''}; seconds from navigation:")
        repeats = []
        for attempt in range(1, args.repeats + 1):
            workdir = Path(scratch) / f"server-{attempt}"
            shutil.copytree(run, workdir / "runs" / run.name)  # the fresh server's runs folder: this run alone
            started = time.perf_counter()
            app = App(workdir, args.data_dir)
            up = time.perf_counter() - started
            try:
                marks = asyncio.run(open_link(app.url, run.name, sample, args.warm_up))
            finally:
                app.stop()
            repeats.append(marks)
            steps = ", ".join(f"{name} {marks[name]:.2f}" for name in (*MILESTONES, DONE))
            print(f"  {attempt}: {steps}  (server up in {up:.1f} s; load average {load_average()})", flush=True)

    drawn = [max(marks[name] for name in TARGET_MILESTONES) for marks in repeats]
    print(f"drawn ({', '.join(TARGET_MILESTONES)}): median {statistics.median(drawn):.2f} s, "
          f"max {max(drawn):.2f} s over {len(drawn)} fresh servers; target {TARGET_S} s on 2 cores")  # fmt: skip
    print(
        "median per milestone: " + ", ".join(f"{name} {statistics.median(m[name] for m in repeats):.2f} s" for name in MILESTONES)
    )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
