"""Server time of the Explore page on the 10,000 test images: first render, then each kind of interaction.

    python -m bench.explore_speed [--data-dir ../shared/datasets] [--checkpoint PATH] [--repeats 3] [--threads N]

Runs the real app in-process with Streamlit's AppTest (no browser: this is the
script time a server spends per rerun). The model is the bundled one, or
--checkpoint. "First render" starts with nothing cached (no analysis in memory
or on disk, MNIST not yet loaded) in a process that has already imported
everything, like a running server; "after restart" has only the disk cache.
Interactions are timed after the nearest-neighbour bank (the training split's
features, computed in the background after the first render) is ready; the
time that took is printed too. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent

from streamlit.testing.v1 import AppTest  # noqa: E402

from mnist_core import analysis, data  # noqa: E402
from mnist_core.catalog import ModelSource  # noqa: E402

PAGE = "pages/explore.py"


def timed(action) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine the CPU time is the steadier figure."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def tile_buttons(at: AppTest) -> list:
    return [button for button in at.button if button.label.startswith("#")]


def wait_for_bank(timeout_s: float = 600) -> float:
    """Seconds until no background analysis is running any more."""
    started = time.perf_counter()
    while analysis._prefetching and time.perf_counter() - started < timeout_s:
        time.sleep(0.05)
    return time.perf_counter() - started


def interactions(at: AppTest, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Each kind of interaction `repeats` times, with different values; (wall, CPU) seconds per rerun."""
    result: dict[str, list[tuple[float, float]]] = {}

    def record(name: str, action) -> None:
        result.setdefault(name, []).append(timed(action))
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception[0].value}")

    cells = [(4, "9"), (7, "2"), (3, "5")]
    for r in range(repeats):
        record("rerun, nothing changed", lambda: at.run())
        t, p = cells[r % len(cells)]
        at.session_state["explore_cm"] = {"selection": {"rows": [], "columns": [], "cells": [[t, p]]}}
        record("select a confusion cell", lambda: at.run())
        at.selectbox(key="explore_pred").set_value(None)
        record("filter: true digit, any prediction", lambda: at.selectbox(key="explore_true").set_value(r + 1).run())
        record("filter: show all", lambda: at.segmented_control(key="explore_show").set_value("All").run())
        record("next page", lambda: at.number_input(key="explore_page").set_value(2 + r).run())
        record("sort by loss", lambda: at.selectbox(key="explore_sort").set_value("loss" if r % 2 == 0 else "confidence").run())
        points = [{"customdata": [i, 0]} for i in range(100 * r, 100 * r + 40)]
        at.session_state["explore_map"] = {"selection": {"points": points, "point_indices": [], "box": [], "lasso": []}}
        record("box/lasso on the map", lambda: at.run())
        record("open a sample", lambda: tile_buttons(at)[r % len(tile_buttons(at))].click().run())
        record("confusion: row-normalized toggle", lambda: at.toggle(key="explore_normalized").set_value(r % 2 == 0).run())
        record(
            "view: suspected label errors",
            lambda: at.segmented_control(key="explore_view").set_value("Suspected label errors").run(),
        )
        suspects = tile_buttons(at)
        if suspects:  # a very good model may contradict almost no label
            record("open a suspect", lambda: suspects[r % len(suspects)].click().run())
        record("view: gallery", lambda: at.segmented_control(key="explore_view").set_value("Gallery").run())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR", str(REPO.parent / "shared" / "datasets")))
    parser.add_argument("--checkpoint", help="model to explore (default: the bundled model)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's choice); 1 avoids OpenMP spinning on a busy machine"
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from mnist_core.pretrained import PRETRAINED_PATH

    checkpoint = Path(args.checkpoint or PRETRAINED_PATH).resolve()
    if not checkpoint.is_file():
        sys.exit(f"no checkpoint at {checkpoint}: pass --checkpoint PATH")
    os.environ["MNIST_DATA_DIR"] = str(Path(args.data_dir).resolve())
    os.chdir(REPO)
    source = ModelSource("bench", "Benchmarked model", checkpoint)
    with tempfile.TemporaryDirectory() as tmp, mock.patch("ui.models.available_models", lambda *a, **k: [source]):
        os.environ["MNIST_LAB_RUNS_DIR"] = str(Path(tmp) / "runs")
        os.environ["MNIST_LAB_CACHE_DIR"] = str(Path(tmp) / "cache")

        # Warm the process (imports, Streamlit start-up) on the Home page, then forget every cached result.
        AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=600).run()
        analysis.clear_memory()
        data._load_cached.cache_clear()

        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=600)
        at.run()
        first = timed(lambda: at.switch_page(PAGE).run())
        if at.exception:
            raise RuntimeError(at.exception[0].value)
        bank = wait_for_bank()
        times = interactions(at, args.repeats)

        analysis.clear_memory()  # a restarted server: the analyses come from the disk cache
        data._load_cached.cache_clear()
        again = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=600)
        again.run()
        restart = timed(lambda: again.switch_page(PAGE).run())
        wait_for_bank()  # let the background read finish before the interpreter exits

    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Explore page server time; torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {load:.1f}"
    )
    print("  wall s = elapsed here; cpu s = CPU time of this process (all its threads) for the same step")
    print(
        f"  first render, nothing cached            {first[0]:6.2f} wall {first[1]:6.2f} cpu  (load MNIST test, one model pass, PCA, render)"
    )
    print(
        f"  neighbour bank ready (background)       {bank:6.2f} wall              after the first render (60,000 training images)"
    )
    print(f"  first render after restart (disk cache) {restart[0]:6.2f} wall {restart[1]:6.2f} cpu")
    print(f"  interactions, median (max) of {args.repeats}:")
    for name, values in times.items():
        walls, cpus = [v[0] for v in values], [v[1] for v in values]
        print(
            f"    {name:<36} {statistics.median(walls):6.3f} ({max(walls):.3f}) wall {statistics.median(cpus):6.3f} ({max(cpus):.3f}) cpu"
        )
    everything = [v for values in times.values() for v in values]
    print(
        f"  slowest interaction                     {max(v[0] for v in everything):6.3f} wall {max(v[1] for v in everything):6.3f} cpu"
    )


if __name__ == "__main__":
    main()
