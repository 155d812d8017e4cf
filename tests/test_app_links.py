"""Shareable Explore links driven by AppTest: a fresh session opening a link gets that view; bad values get the default."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from mnist_core import analysis
from tests.app_support import APP, TrainedRun, serve, stills, texts, trained_run
from tests.trained import FLIPPED
from ui import charts, idle

pytestmark = pytest.mark.integration  # every test here opens a page on a model trained for it

PAGE = "pages/explore.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainedRun:
    return trained_run(tmp_path_factory.mktemp("links"), "linked", epochs=3, flipped=FLIPPED)


@pytest.fixture
def env(trained, tmp_path, monkeypatch):
    """The bundled model (the picker's default) and one finished run with dynamics."""
    serve(monkeypatch, trained.data_dir, trained.runs_dir, tmp_path / "cache")
    run = trained.run
    yield run
    analysis.clear_memory()


def open_link(**params: str) -> AppTest:
    """A fresh session whose first Explore run carries these query parameters."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params = dict(params)
    at.switch_page(PAGE).run()
    return at


def _scrolls(at: AppTest) -> list:
    """The scripts that scroll the page to the sample detail (the browser runs them; AppTest only lists them)."""
    return [element for element in at.get("html") if "scrollIntoView" in element.proto.body]


def test_a_link_selects_its_model_opens_its_sample_and_restores_filters(env):
    run = env
    at = open_link(model=run.id, split="test", sample="17", compare="bundled", story="never-learned", show="all")
    assert not at.exception
    assert not at.warning, texts(at.warning)
    assert at.selectbox(key="model_key").value == f"run:{run.id}"
    assert "Sample #17 of the test split" in texts(at.subheader)
    assert at.selectbox(key="explore_compare").value == "bundled"
    assert at.selectbox(key="explore_story").value == "never learned"
    assert at.segmented_control(key="explore_show").value == "All"
    # The address bar keeps describing the view.
    assert at.query_params["model"] == run.id and at.query_params["sample"] == "17"
    assert at.query_params["story"] == "never-learned" and at.query_params["compare"] == "bundled"
    # The page scrolls to the linked sample once, and never again on later reruns (that would yank the reader back).
    assert len(_scrolls(at)) == 1 and _scrolls(at)[0].proto.unsafe_allow_javascript
    at.run()
    assert not at.exception and not _scrolls(at)


def _gallery_buttons(at: AppTest) -> list:
    return [button for button in at.button if (button.key or "").startswith("gallery_")]


class _Clock:
    """time.monotonic for ui/idle.py: each script run reads the time the test set."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_links_first_drawing_shows_stills_then_charts_once_the_browser_is_idle(env, monkeypatch):
    run = env
    clock = _Clock()
    monkeypatch.setattr(idle.time, "monotonic", clock)
    at = open_link(model=run.id, split="test", sample="17")
    assert not at.exception
    # No Plotly in the first drawing: the map, the cartography and the sample's charts are pictures of their figures.
    assert not at.get("plotly_chart")
    assert stills(at) == ["explore_map", "explore_cartography", "explore_story_curve", "explore_probs"]
    # Nor the gallery's digits: the linked sample is drawn first, and they follow.
    assert not _gallery_buttons(at) and "The digits follow in a moment" in texts(at.caption)
    # A timed rerun that comes late (the browser still drawing) changes nothing.
    clock.now += 1.0
    at.run()
    assert not at.exception and not at.get("plotly_chart") and len(stills(at)) == 4
    # One on time: the browser is sent a blank chart that loads Plotly's code, and the stills stay.
    clock.now += charts.POLL_S
    at.run()
    assert not at.exception and len(stills(at)) == 4
    assert [chart.key for chart in at.get("plotly_chart")] == [charts.WARM_UP]
    # Late again (the browser compiling Plotly's code): still nothing changes.
    clock.now += 1.0
    at.run()
    assert not at.exception and len(stills(at)) == 4 and [chart.key for chart in at.get("plotly_chart")] == [charts.WARM_UP]
    # On time: the page reruns with the interactive charts where the stills were, and stays so.
    clock.now += charts.POLL_S
    at.run()
    assert not at.exception and not stills(at)
    keys = [chart.key for chart in at.get("plotly_chart")]
    assert keys == ["explore_map", "explore_cartography", "explore_story_curve", "explore_probs"]
    assert _gallery_buttons(at) and "The digits follow in a moment" not in texts(at.caption)
    clock.now += 60.0
    at.run()
    assert [chart.key for chart in at.get("plotly_chart")] == keys and not stills(at)


def test_a_links_messages_stay_while_its_charts_are_redrawn_and_go_at_the_first_interaction(env):
    at = open_link(split="sideways", sample="99999")
    said = ["split='sideways' is not one of test, train", "sample '99999' is not an index of this split"]
    assert all(part in texts(at.warning) for part in said)
    # The run that replaces the stills with charts (ui/charts.py flags it, then reruns the page): the visitor did
    # nothing, so the messages stay. (In a browser the timed reruns before it are the fragment's alone.)
    at.session_state[charts.INTERACTIVE] = True
    at.session_state[charts.REDRAW] = True
    at.run()
    assert not at.exception and at.get("plotly_chart") and all(part in texts(at.warning) for part in said)
    # The visitor's first interaction: the messages have been read.
    at.selectbox(key="explore_true").set_value(3).run()
    assert not at.exception and not at.warning


def test_the_address_bar_follows_what_is_opened(env):
    at = open_link()
    assert not at.exception
    assert at.query_params.get("model") == "bundled" and "sample" not in at.query_params
    first = next(b for b in at.button if b.label.startswith("#"))
    first.click().run()
    assert at.query_params["sample"] == first.label[1:]
    assert not _scrolls(at)  # a sample opened on the page is already in view
    at.selectbox(key="explore_true").set_value(3).run()
    assert at.query_params["true"] == "3"


@pytest.mark.parametrize(
    "params, says",
    [
        ({"model": "20990101-000000-deleted"}, "model '20990101-000000-deleted' is not available"),
        ({"model": "../../etc/passwd"}, "is not available"),
        ({"sample": "99999"}, "not an index of this split (0 to 199)"),
        ({"sample": "-3"}, "not an index of this split"),
        ({"sample": "seven"}, "not an index of this split"),
        ({"split": "validation"}, "split='validation' is not one of test, train"),
        ({"true": "12"}, "true='12' is not one of"),
        ({"compare": "nothing"}, "comparison model 'nothing' is not available"),
        ({"story": "sometimes", "cell": "<script>"}, "story='sometimes' is not one of"),
    ],
)
def test_bad_values_give_a_message_and_the_default(env, params, says):
    at = open_link(**params)
    assert not at.exception
    assert says in texts(at.warning)
    assert at.selectbox(key="model_key").value == "bundled"
    assert not any(s.value.startswith("Sample #") for s in at.subheader)
    assert at.segmented_control(key="explore_split").value == "test"
