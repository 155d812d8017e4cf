"""The "Inside the model" panel in a real browser: draw a digit, turn it with the slider until the answer changes."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app
from tests.browser.test_draw import PREDICTION_MS, draw, open_draw_page, wait_for_prediction

STEP_DEGREES = 10  # arrow presses per try; the slider's step is one degree
INSIDE_TOGGLE = "Inside the model: layers, what-if, nudge"


def _prediction(page) -> int:
    text = page.locator('[data-testid="stMarkdownContainer"]', has_text="Prediction:").first.inner_text()
    return int(re.search(r"Prediction: (\d)", text).group(1))


def test_rotate_a_drawn_seven_until_the_answer_changes(page, app_url):
    open_draw_page(page, app_url)
    draw(page, 7)
    assert "It's a 7" in wait_for_prediction(page, "It's a")
    page.get_by_text(INSIDE_TOGGLE).click()
    page.get_by_text("conv1: 32 feature maps").wait_for(timeout=PREDICTION_MS)
    assert _prediction(page) == 7
    rotate = page.get_by_test_id("stSlider").filter(has_text="Rotate (degrees)").get_by_role("slider")
    rotate.focus()
    angle, answer = 0, 7
    while answer == 7 and angle < 60:
        for _ in range(STEP_DEGREES):
            rotate.press("ArrowRight")
        angle = min(angle + STEP_DEGREES, 60)
        expect(rotate).to_have_value(str(angle), timeout=PREDICTION_MS)
        wait_for_app(page, timeout_ms=PREDICTION_MS)
        answer = _prediction(page)
    assert answer != 7, "turned 60 degrees, the drawn 7 is still read as a 7"
    assert_no_exception(page)
    # Tall enough for the whole panel: Streamlit scrolls inside the page, so a full-page shot sees one viewport.
    page.set_viewport_size({"width": 1400, "height": 2900})
    wait_for_app(page, timeout_ms=PREDICTION_MS)
    page.get_by_text("conv1: 32 feature maps").wait_for()
    screenshot(page, "inside_activations")
