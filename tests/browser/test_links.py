"""A shared Explore link followed in a real browser, as the first visit to a server that has never analysed its model."""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import pytest
from playwright.sync_api import expect

from mnist_core import maps
from mnist_core.analysis import analyze
from mnist_core.catalog import available_models
from mnist_core.checkpoint import load_checkpoint
from mnist_core.cli import main as cli_main
from mnist_core.data import load_split
from mnist_core.gallery import PAGE_SIZE
from mnist_core.runs import Run, RunStore
from mnist_core.testing.server import start_server, stop_server
from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app
from tests.browser.test_explore import SLOW_MS
from ui.links import link_value
from ui.maps import PRECOMPUTED
from ui.maps import caption as map_caption


@pytest.fixture(scope="module")
def linked(tmp_path_factory, real_data) -> Iterator[tuple[str, Run]]:
    """A finished run (1 epoch on 2,000 real images, by the CLI the app launches), then a server started after it:
    (URL, run).

    start_server's runs folder is `tmp/runs`, so the run trained there is the server's; its analysis cache starts
    empty, so the first link is the first time this server meets the run's model.
    """
    tmp = tmp_path_factory.mktemp("links")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_LAB_RUNS_DIR", str(tmp / "runs"))
        # The run leaves PCA's map, not t-SNE's: a link opens either the same way, and t-SNE of the 10,000 test
        # images takes 25 s on an idle 2-core machine and minutes on a busy one.
        patch.setattr(maps, "TSNE_MIN_POINTS", 10**9)
        patch.setattr(signal, "signal", lambda *args: None)  # the CLI's Ctrl+C handler would outlive it in pytest
        command = ["train", "--data-dir", str(real_data), "--preset", "fast", "--epochs", "1", "--train-subset", "2000",
                   "--device", "cpu", "--name", "linked"]  # fmt: skip
        assert cli_main(command) == 0
    url, process, runs_dir = start_server(tmp, real_data)
    (run,) = RunStore(runs_dir).list()
    yield url, run
    stop_server(process, runs_dir)


def explore_link(url: str, **params: str) -> str:
    return f"{url}/explore?{urlencode(params)}"


def sidebar_model(page):
    """The sidebar's model picker: a combobox whose value is the chosen model's label."""
    return page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model")


def metric_value(page, label: str):
    """The value of the metric called exactly `label` ("errors" is also in "Suspected label errors")."""
    label = page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    return page.get_by_test_id("stMetric").filter(has=label).get_by_test_id("stMetricValue")


def expect_overview_drawn(page, map_text: str) -> None:
    """The four metrics, the confusion matrix and the feature map (Plotly's legend is drawn last) are on the page."""
    expect(page.get_by_test_id("stMetric")).to_have_count(4, timeout=SLOW_MS)
    expect(page.locator('.st-key-explore_cm [data-testid="stDataFrame"] canvas').first).to_be_visible(timeout=SLOW_MS)
    expect(page.locator(".st-key-explore_map .js-plotly-plot .legend .traces")).to_have_count(
        11, timeout=SLOW_MS
    )  # ten digits, errors
    # The first drawing's stills (ui/charts.py) have all become charts, without a click.
    expect(page.locator('[class*="_still"] img')).to_have_count(0, timeout=SLOW_MS)
    expect(page.get_by_text(map_text)).to_be_visible(timeout=SLOW_MS)


def test_a_link_opens_its_run_and_sample_on_a_fresh_server(page, linked, real_data):
    url, run = linked
    result = analyze(load_checkpoint(run.checkpoint_path), load_split("test", real_data), use_disk=False)
    summary = result.evaluation.summary()
    index = int(np.flatnonzero(result.predictions != result.labels)[-1])  # an error: both classes' saliency and neighbours
    given, predicted = int(result.labels[index]), int(result.predictions[index])

    page.goto(explore_link(url, model=run.id, split="test", sample=str(index)))
    heading = page.get_by_text(f"Sample #{index} of the test split")
    heading.wait_for(timeout=SLOW_MS)  # after the model's pass over the test split and the training-set neighbour bank
    page.get_by_text(f"Labelled {given} (given class)").wait_for(timeout=SLOW_MS)
    wait_for_app(page, SLOW_MS)

    assert_no_exception(page)
    expect(page.get_by_text("The link's")).to_have_count(0, timeout=SLOW_MS)  # no "not available" or "not an index" warning
    name = run.id.split("-", 2)[2]  # the picker names a run by its name first (ids are YYYYMMDD-HHMMSS-name)
    expect(sidebar_model(page)).to_have_value(re.compile(rf"^{re.escape(name)} · {summary['accuracy']:.2%} · "), timeout=SLOW_MS)
    expect_overview_drawn(page, map_caption(run.progress()["map_method"], PRECOMPUTED))
    # The gallery's digits, left out of the first drawing so that the linked sample comes sooner, follow by themselves.
    opens = page.get_by_test_id("stMain").get_by_role("button", name=re.compile(r"^#\d+$"))
    expect(opens).to_have_count(min(PAGE_SIZE, summary["errors"]), timeout=SLOW_MS)
    expect(page.get_by_text("The digits follow in a moment")).to_have_count(0, timeout=SLOW_MS)
    expect(metric_value(page, "Accuracy")).to_have_text(f"{summary['accuracy']:.2%}", timeout=SLOW_MS)
    expect(metric_value(page, f"Errors of {summary['n']:,}")).to_have_text(f"{summary['errors']:,}", timeout=SLOW_MS)
    expect(page.get_by_text(f"Given label {given}, predicted {predicted} with")).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_text(f"towards {predicted} (predicted)", exact=True)).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_text(f"towards {given} (given)", exact=True)).to_be_visible(timeout=SLOW_MS)
    query = parse_qs(urlparse(page.url).query)
    assert query["model"] == [run.id] and query["sample"] == [str(index)], page.url  # the address bar still links here
    expect(heading).to_be_in_viewport(timeout=SLOW_MS)  # the page scrolled to what the link was shared for
    screenshot(page, "link-opened-sample")
    page.get_by_role("heading", name="Explore errors").scroll_into_view_if_needed()
    screenshot(page, "link-opened")
    page.get_by_text(f"Labelled {given} (given class)").scroll_into_view_if_needed()
    screenshot(page, "link-opened-sample-neighbours")


def test_a_link_to_a_run_without_its_bank_shows_the_neighbours_once_the_page_is_drawn(page, linked, real_data, tmp_path):
    # A run trained before its folder kept the training split's outputs: this server computes the neighbour bank,
    # and nothing but the waiting fragment's timer starts it (no click, no other interaction).
    _, run = linked
    shutil.copytree(run.path, tmp_path / "runs" / run.id, ignore=shutil.ignore_patterns("train"))
    url, process, runs_dir = start_server(tmp_path, real_data)
    try:
        page.goto(explore_link(url, model=run.id, split="test", sample="0"))
        page.get_by_text("nearest images appear here by themselves").wait_for(timeout=SLOW_MS)
        page.get_by_text(re.compile(r"^Labelled \d \((predicted|given) class\)$")).first.wait_for(timeout=SLOW_MS)
        assert_no_exception(page)
        expect(page.get_by_text("nearest images appear here by themselves")).to_have_count(0, timeout=SLOW_MS)
    finally:
        stop_server(process, runs_dir)


def test_a_link_with_bad_values_says_so_and_shows_the_default(page, linked):
    url, run = linked
    default = available_models(RunStore(run.path.parent))[0]
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    garbage = "<script>alert(1)</script>"
    page.goto(explore_link(url, model="20990101-000000-gone", split="sideways", sample="10000", true=garbage))
    page.get_by_text("Open a sample (the # button under a digit)").wait_for(timeout=SLOW_MS)
    wait_for_app(page, SLOW_MS)

    assert_no_exception(page)
    for says in (
        "The link's model '20990101-000000-gone' is not available (unknown, deleted or not finished): showing the default.",
        "The link's split='sideways' is not one of test, train: ignored.",
        "The link's sample '10000' is not an index of this split (0 to 9,999): no sample opened.",
        re.compile(r"^The link's true=.* is not one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9: ignored\.$"),
    ):
        expect(page.get_by_text(says)).to_be_visible(timeout=SLOW_MS)
    expect(sidebar_model(page)).to_have_value(default.label, timeout=SLOW_MS)
    expect_overview_drawn(page, "of the penultimate layer")
    # The stills' replacement by charts is no interaction: what the page said about the link is still there.
    expect(page.get_by_text("The link's split='sideways' is not one of test, train: ignored.")).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_text(re.compile(r"^Sample #\d+ of the"))).to_have_count(0, timeout=SLOW_MS)
    assert page.locator('[data-testid="stAlert"] script').count() == 0 and not dialogs  # the garbage stays text
    query = parse_qs(urlparse(page.url).query)  # the address bar now links to the default view, without the bad values
    assert query["model"] == [link_value(default.key)] and query["split"] == ["test"], page.url
    assert not {"sample", "true"} & set(query), page.url
    screenshot(page, "link-bad-values")
