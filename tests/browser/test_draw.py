"""Draw page in a real browser: strokes drawn with the mouse on the canvas, uploads, the prediction and its chart."""

from __future__ import annotations

import io
import re
import time

from playwright.sync_api import expect

from mnist_core.testing.drawing import draw_digit, stroke_path
from mnist_core.testing.server import start_server, stop_server
from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app

PREDICTION = '[data-testid="stAlert"]'
STEPS_PER_SEGMENT = 6
COLD_START_MS = 120_000
PREDICTION_MS = 60_000


def open_draw_page(page, app_url: str) -> None:
    """Open the app and go to Draw through the navigation, as a visitor does."""
    page.goto(app_url)
    # The first visit to a fresh server imports torch and loads the model and MNIST: on a busy
    # 2-core machine that has taken over 30 s.
    wait_for_app(page, timeout_ms=COLD_START_MS)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Draw", exact=True).click()
    page.get_by_text("Draw a digit on the canvas").wait_for(timeout=COLD_START_MS)
    wait_for_app(page, timeout_ms=COLD_START_MS)


def canvas_box(page, timeout_s: float = 30.0) -> dict:
    """The drawing surface, once settled: its stacked <canvas> elements all on one box.

    A freshly mounted canvas (first load, or after Clear) lays its layers out over a few
    frames; strokes drawn before that land outside the surface that records them.
    """
    canvases = page.locator("canvas")
    canvases.first.wait_for()
    deadline = time.monotonic() + timeout_s
    while True:
        boxes = [canvas.bounding_box() for canvas in canvases.all()]
        if boxes and all(boxes) and all(box == boxes[0] for box in boxes):
            box = boxes[0]
            assert box["width"] >= 200 and box["height"] >= 200, box
            return box
        assert time.monotonic() < deadline, f"the canvas layers never settled: {boxes}"
        page.wait_for_timeout(200)


def draw(page, digit: int) -> None:
    """Draw `digit` as a person would: one mouse-down/move/up per pen stroke, inside the canvas."""
    box = canvas_box(page)
    inside = (
        box["x"] + 0.25 * box["width"],
        box["y"] + 0.15 * box["height"],
        box["x"] + 0.75 * box["width"],
        box["y"] + 0.85 * box["height"],
    )
    for stroke in stroke_path(digit, inside):
        page.mouse.move(*stroke[0])
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*point, steps=STEPS_PER_SEGMENT)
        page.mouse.up()


def wait_for_prediction(page, text: str) -> str:
    """The message above the chart once the rerun after the drawing has finished."""
    page.locator(PREDICTION, has_text=text).first.wait_for(timeout=PREDICTION_MS)
    wait_for_app(page, timeout_ms=PREDICTION_MS)
    return page.locator(PREDICTION).first.inner_text()


def test_a_link_to_a_page_as_the_first_visit_to_a_fresh_server_gets_the_whole_app(browser, tmp_path, real_data):
    """A shared link to /draw may be a new server's first request. Streamlit then runs pages/draw.py on its own
    (its first multipage mode, for apps with a pages/ folder), without the entry script: no sidebar, no page
    title. The pages send such a run back through the entry script (ui/entry.py)."""
    url, process, runs_dir = start_server(tmp_path, real_data)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{url}/draw")
        page.get_by_text("Draw a digit on the canvas").wait_for(timeout=COLD_START_MS)
        wait_for_app(page, timeout_ms=COLD_START_MS)
        expect(page).to_have_title(re.compile("MNIST Lab"), timeout=COLD_START_MS)  # the entry script's page config
        navigation = page.get_by_test_id("stSidebarNavItems")
        expect(navigation.get_by_role("link", name="Explore errors", exact=True)).to_be_visible(timeout=COLD_START_MS)
        expect(page.get_by_test_id("stSidebar").get_by_text("Model", exact=True)).to_be_visible(timeout=COLD_START_MS)
        assert_no_exception(page)
        # A second visitor by the same link gets the same.
        other = context.browser.new_context().new_page()
        other.goto(f"{url}/draw")
        other.get_by_text("Draw a digit on the canvas").wait_for(timeout=COLD_START_MS)
        link = other.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Explore errors", exact=True)
        expect(link).to_be_visible(timeout=COLD_START_MS)
        other.context.close()
    finally:
        context.close()
        stop_server(process, runs_dir)


def test_draw_a_one_and_get_one(page, app_url):
    open_draw_page(page, app_url)
    draw(page, 1)
    message = wait_for_prediction(page, "It's a")
    assert "It's a 1" in message, message
    chart = page.locator('[data-testid="stPlotlyChart"]')
    chart.first.wait_for()
    assert chart.first.bounding_box()["height"] > 150
    # The stages and the saliency map are images on the page.
    page.get_by_text("centred in 28x28").wait_for()
    page.get_by_text("Why 1").first.wait_for()  # the saliency under the answer (the Inside panel has its own)
    assert_no_exception(page)
    screenshot(page, "draw_one")


def test_clear_then_draw_a_seven(page, app_url):
    open_draw_page(page, app_url)
    draw(page, 1)
    wait_for_prediction(page, "It's a")
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit on the canvas").wait_for()
    wait_for_app(page)
    draw(page, 7)
    message = wait_for_prediction(page, "It's a")
    assert "It's a 7" in message, message
    assert_no_exception(page)
    screenshot(page, "draw_seven_after_clear")


def _upload(page, name: str, data: bytes, mime: str) -> None:
    page.get_by_text("Upload", exact=True).click()
    wait_for_app(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files({"name": name, "mimeType": mime, "buffer": data})


def test_upload_a_photo_style_digit_and_a_broken_file(page, app_url):
    open_draw_page(page, app_url)
    buffer = io.BytesIO()
    draw_digit(4, size=(600, 400), box=(220, 60, 380, 340), width=22, background=235, ink=30).save(buffer, format="PNG")
    _upload(page, "four.png", buffer.getvalue(), "image/png")
    message = wait_for_prediction(page, "It's a")
    assert "It's a 4" in message, message
    screenshot(page, "draw_upload_four")

    # A text file dressed as a PNG, uploaded in its place: a clear message, the page keeps working.
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        {"name": "fake.png", "mimeType": "image/png", "buffer": b"this is not a picture"}
    )
    error = page.locator('[data-testid="stAlert"]', has_text="is not an image")
    error.wait_for()
    wait_for_app(page)
    assert "fake.png" in error.inner_text()
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 0  # no prediction left over from the 4
    assert_no_exception(page)
    screenshot(page, "draw_upload_not_an_image")
