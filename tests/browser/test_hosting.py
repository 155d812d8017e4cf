"""Hosting in a real browser: XSRF protection stays on, and sessions never see each other's state."""

from __future__ import annotations

import tomllib
import urllib.error
import urllib.request
from http.cookiejar import CookieJar

import pytest

from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app
from tests.browser.hosting_support import open_page, server_with_model
from tests.browser.test_draw import draw
from tests.conftest import REPO

PREDICTION = '[data-testid="stAlert"]:has-text("It\'s a"), [data-testid="stAlert"]:has-text("Not sure")'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_with_model(tmp_path_factory.mktemp("hosting")) as running:
        yield running


def _put(url: str, headers: dict[str, str], opener) -> int:
    request = urllib.request.Request(url, data=b"x" * 10, method="PUT", headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_xsrf_protection_is_on(server):
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    url, _, _ = server
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{url}/_stcore/health", timeout=10).read()  # sets the XSRF cookie, as the page load does
    token = next(cookie.value for cookie in jar if cookie.name == "_streamlit_xsrf")
    upload = f"{url}/_stcore/upload_file/not-a-session/some-file"
    # A cross-site form or script has the cookie at most, never the token: refused before anything else.
    assert _put(upload, {}, opener) == 403
    assert _put(upload, {"X-Xsrftoken": "forged"}, opener) == 403
    # With the token the XSRF check passes and the request fails later, on its made-up session.
    assert _put(upload, {"X-Xsrftoken": token}, opener) == 400


def _brush(page) -> str:
    return page.get_by_test_id("stSliderThumbValue").first.inner_text().strip()


def test_sessions_are_isolated(server, browser):
    """What one visitor draws, picks or switches never shows up in another visitor's session."""
    url, _, _ = server
    alice = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    bob = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        open_page(alice, url, "Draw")
        open_page(bob, url, "Draw")
        draw(alice, 7)
        alice.locator(PREDICTION).first.wait_for()
        wait_for_app(alice)
        alice.get_by_role("slider").first.focus()
        alice.keyboard.press("End")  # brush width to its maximum
        wait_for_app(alice)
        alice_brush = _brush(alice)
        assert alice_brush == "40"

        bob.reload()
        wait_for_app(bob)
        open_page(bob, url, "Draw")
        assert bob.locator(PREDICTION).count() == 0, "Bob sees a prediction for a digit he never drew"
        bob.get_by_text("Draw a digit on the canvas").wait_for()
        assert _brush(bob) == "20", "Bob's brush follows Alice's"
        screenshot(bob, "hosting_second_session_untouched")

        # Bob switches to Upload; Alice, after a rerun of her own, still has her canvas and her prediction.
        bob.get_by_text("Upload", exact=True).click()
        wait_for_app(bob)
        alice.get_by_role("slider").first.press("ArrowLeft")
        wait_for_app(alice)
        assert alice.locator("canvas").count() >= 1 and alice.locator('[data-testid="stFileUploaderDropzoneInput"]').count() == 0
        alice.locator(PREDICTION).first.wait_for()
        assert_no_exception(alice)
        assert_no_exception(bob)
    finally:
        alice.context.close()
        bob.context.close()
