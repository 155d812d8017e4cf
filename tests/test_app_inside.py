"""The "Inside the model" panel and the Robustness page, driven by AppTest."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from mnist_core import robustness
from tests.app_support import app, serve, trained_run


def _panel_script():
    import streamlit as st

    from mnist_core.preprocess import preprocess
    from mnist_core.pretrained import load_pretrained
    from mnist_core.testing.drawing import canvas_rgba
    from ui import inside

    @st.cache_resource
    def bundled():
        return load_pretrained()

    inside.panel(bundled(), preprocess(canvas_rgba(7)).pixels, key="t")


def _requested_panel_script():
    import streamlit as st

    from mnist_core.preprocess import preprocess
    from mnist_core.pretrained import load_pretrained
    from mnist_core.testing.drawing import canvas_rgba
    from ui import inside

    if st.session_state.get("digit_drawn", True):  # False: as the Draw page with a cleared canvas shows no panel
        inside.panel(load_pretrained(), preprocess(canvas_rgba(7)).pixels, key="t", on_request=True)


def test_a_panel_opened_on_request_stays_open_after_a_run_without_it():
    at = AppTest.from_function(_requested_panel_script, default_timeout=60).run()
    assert not at.exception and not [s for s in at.slider if s.key == "t_rotation"]  # closed until asked for
    at.toggle(key="t_open").set_value(True).run()
    assert [s for s in at.slider if s.key == "t_rotation"]
    at.session_state["digit_drawn"] = False
    at.run()
    assert not at.toggle
    at.session_state["digit_drawn"] = True
    at.run()
    assert not at.exception and at.toggle(key="t_open").value is True
    assert [s for s in at.slider if s.key == "t_rotation"]


def _prediction(at: AppTest) -> str:
    (line,) = [m.value for m in at.markdown if m.value.startswith("**Prediction:")]
    return line


@pytest.fixture
def panel() -> AppTest:
    return AppTest.from_function(_panel_script, default_timeout=60).run()


def test_sliders_update_the_prediction_and_reset_restores_it(panel):
    assert not panel.exception
    assert _prediction(panel).startswith("**Prediction: 7**")
    panel.slider(key="t_rotation").set_value(60.0).run()
    assert not _prediction(panel).startswith("**Prediction: 7**")  # the bundled model reads a 7 turned 60° as a 4
    panel.button(key="t_reset").click().run()
    assert panel.slider(key="t_rotation").value == 0.0
    assert _prediction(panel).startswith("**Prediction: 7**")
    for name, value in (("noise", 0.3), ("scale", 0.5), ("shift_x", 6.0), ("stroke", 2.0)):
        panel.slider(key=f"t_{name}").set_value(value).run()
    panel.toggle(key="t_erase").set_value(True).run()
    assert not panel.exception and _prediction(panel).startswith("**Prediction: ")


def test_each_view_renders_and_names_its_method(panel):
    captions = lambda: " ".join(c for image in panel.image for c in image.captions) + " ".join(c.value for c in panel.caption)  # noqa: E731
    assert "conv1: 32 feature maps" in captions() and "conv2: 64 feature maps" in captions()
    panel.slider(key="t_conv1_map").set_value(5).run()
    assert "conv1 filter 5 (3x3)" in captions()
    panel.segmented_control(key="t_view").set_value("Sweep").run()
    assert "The answer changes at" in captions() and "(7→" in captions()  # turned far enough, the 7 is read otherwise
    panel.segmented_control(key="t_view").set_value("Occlusion vs gradients").run()
    assert "Method: occlusion" in captions() and "Method: integrated gradients" in captions()
    panel.segmented_control(key="t_view").set_value("Make it a …").run()
    panel.selectbox(key="t_target").set_value(3).run()
    panel.button(key="t_nudge_go").click().run()
    assert any("makes the model say 3" in s.value for s in panel.success)
    assert not panel.exception


def test_robustness_page_computes_on_demand_then_shows_the_cached_chart(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data))
    monkeypatch.setenv("MNIST_LAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(robustness, "_memory", {})
    monkeypatch.setattr(robustness, "SEVERITIES", {"rotation": (15.0, 30.0, 45.0), "noise": (0.1, 0.2, 0.4)})
    at = app("pages/robustness.py")
    assert not at.exception
    assert not at.get("plotly_chart")
    at.button(key="robustness_main_compute").click().run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    assert any(c.value.startswith("Clean test accuracy") for c in at.caption)
    again = app("pages/robustness.py")  # a new session: the report comes from the cache, no button
    assert len(again.get("plotly_chart")) == 1 and not [b for b in again.button if b.key == "robustness_main_compute"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run on tiny data, trained by the real CLI (once for this module)."""
    return trained_run(tmp_path_factory.mktemp("inside"), "inside", epochs=2)


def test_explore_sample_detail_opens_the_panel_on_request(trained, tmp_path, monkeypatch):
    serve(monkeypatch, trained.data_dir, trained.runs_dir, tmp_path / "cache", bundled=False)
    at = app("pages/explore.py")
    at.segmented_control(key="explore_show").set_value("All").run()
    next(b for b in at.button if b.label.startswith("#")).click().run()
    assert not at.exception and not [s for s in at.slider if s.key == "explore_inside_rotation"]
    at.toggle(key="explore_inside_open").set_value(True).run()
    assert not at.exception
    captions = lambda: [c for image in at.image for c in image.captions]  # noqa: E731
    assert "unchanged" in captions() and "conv2: 64 feature maps, 14x14, after ReLU" in captions()
    at.slider(key="explore_inside_scale").set_value(0.5).run()
    at.slider(key="explore_inside_rotation").set_value(60.0).run()
    assert not at.exception and _prediction(at).startswith("**Prediction: ")
    assert "changed" in captions() and "unchanged" not in captions()


def test_robustness_page_puts_a_second_models_chart_beside_the_first(trained, tmp_path, monkeypatch):
    serve(monkeypatch, trained.data_dir, trained.runs_dir, tmp_path / "cache")
    monkeypatch.setattr(robustness, "_memory", {})
    monkeypatch.setattr(robustness, "SEVERITIES", {"rotation": (15.0, 30.0, 45.0)})
    at = app("pages/robustness.py")
    other = at.selectbox(key="robustness_other")
    assert other.value == "(none)" and any(option.startswith(f"{trained.run.id.split('-', 2)[2]} · ") for option in other.options)
    other.select_index(1).run()
    for key in ("robustness_main_compute", "robustness_other_compute"):
        at.button(key=key).click().run()
    assert not at.exception
    titles = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert len(titles) == 2 and '"this model (sidebar)"' in titles[0] and '"the compared model"' in titles[1]
