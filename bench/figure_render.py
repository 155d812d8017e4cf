"""The browser's cost of Explore's scatter figures: Plotly.newPlot to the second frame after it, in headless Chromium.

    python -m bench.figure_render [--data-dir D] [--run RUN_DIR] [--repeats 3]

Explore's shared-link target (drawn within 2.0 s) is held back by the browser's work more than by the
server's (docs/dynamics.md). This isolates the figures: it loads the plotly.min.js that plotly.py ships
(Streamlit's frontend bundles its own), then times, each in a fresh page:

- the t-SNE map as Explore draws it (`charts.embedding_figure`) of the bundled model's test split, its
  shipped map and its own predictions on the real MNIST;
- the same 10,000 points as one SVG scatter (`go.Scatter`), and a WebGL scatter of three points: the
  fixed cost of a WebGL figure (its context and shaders, drawn in software without a GPU);
- with `--run` (a run with dynamics), the dataset-cartography scatter (`charts.cartography_figure`), and
  the map then the cartography in one page, as Explore shows them.

Figures, not asserts: the medians of `--repeats` fresh pages, with the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
from playwright.sync_api import sync_playwright

from bench.harness import DEFAULT_DATA
from mnist_core.analysis import analyze_images
from mnist_core.charts import cartography_figure, embedding_figure
from mnist_core.data import load_split
from mnist_core.dynamics import load_run_dynamics
from mnist_core.pretrained import TEST_MAP_PATH, load_pretrained
from mnist_core.testing.server import CHROMIUM_ARGS

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# Each figure in its own element of Explore's width; the time runs until two frames after newPlot resolves.
RENDER = """async (specs) => {
  const times = [];
  for (const spec of specs) {
    const figure = JSON.parse(spec);
    const element = document.createElement("div");
    element.style.width = "900px";
    document.body.appendChild(element);
    const started = performance.now();
    await Plotly.newPlot(element, figure.data, figure.layout);
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    times.push(performance.now() - started);
  }
  return times;
}"""


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def figures(data_dir: str, run: str | None) -> dict[str, list[str]]:
    """Name -> the figure JSONs one page draws in turn."""
    split = load_split("test", data_dir)
    labels = split.labels.numpy()
    predictions = analyze_images(load_pretrained().model, split.images, split.labels)["probabilities"].argmax(axis=1)
    points = np.load(TEST_MAP_PATH, allow_pickle=False).astype(np.float32)
    indices = np.arange(len(labels))
    the_map = embedding_figure(points, labels, predictions, indices, title="Feature map (t-SNE)").to_json()
    layout = go.Layout(height=460)
    cases = {
        "t-SNE map (WebGL, 11 traces)": [the_map],
        "same points as SVG": [go.Figure([go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers")], layout).to_json()],
        "WebGL scatter, 3 points": [go.Figure([go.Scattergl(x=[0, 1, 2], y=[0, 1, 0], mode="markers")], layout).to_json()],
    }
    if run is not None:
        story = load_run_dynamics(run, labels)
        if story is None:
            sys.exit(f"{run} holds no dynamics for the test split (test_probabilities.npy).")
        cartography = cartography_figure(story.confidence, story.variability, story.correct[-1], indices).to_json()
        cases["cartography (WebGL, 2 traces)"] = [cartography]
        cases["map, then cartography, one page"] = [the_map, cartography]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--run", help="a run folder with dynamics: adds the cartography scatter")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = figures(args.data_dir, args.run)
    script = PLOTLY_JS.read_text(encoding="utf-8")
    times: dict[str, list[list[float]]] = {name: [] for name in cases}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        print(f"Chromium {browser.version}, plotly.min.js of plotly.py {plotly.__version__}, load average {_load()}")
        for _ in range(args.repeats):
            for name, specs in cases.items():  # interleaved, so a change in the load reaches every case
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.set_content("<!doctype html><body></body>")
                page.add_script_tag(content=script)
                times[name].append(page.evaluate(RENDER, specs))
                page.close()
        browser.close()
    print(f"Median of {args.repeats} fresh pages, newPlot to the second frame after it:")
    for name, tries in times.items():
        medians = [statistics.median(values) for values in zip(*tries)]
        print(f"  {name:<34} " + " then ".join(f"{value:5.0f} ms" for value in medians))
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
