"""Uploads on the Draw page, end to end: every bad file gets a clear message, the session keeps working,
and a decompression bomb never reaches the server's memory."""

from __future__ import annotations

import io
import struct
import zlib

import psutil
import pytest
from PIL import Image

from mnist_core.testing.drawing import draw_digit
from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app
from tests.browser.hosting_support import open_page, server_with_model

ALERT = '[data-testid="stAlert"]'
DROPZONE = '[data-testid="stFileUploaderDropzoneInput"]'
MB = 2**20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_with_model(tmp_path_factory.mktemp("uploads")) as running:
        yield running


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 20_000) -> bytes:
    """A valid greyscale PNG of side x side pixels (400 MP at 20,000) that compresses to a few hundred KB."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + one black row
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


def animated_gif() -> bytes:
    frames = [draw_digit(d, size=(100, 100), box=(30, 15, 70, 85), width=8).convert("P") for d in (3, 8)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    return buffer.getvalue()


def _upload(page, name: str, data: bytes, mime: str) -> None:
    page.locator(DROPZONE).set_input_files({"name": name, "mimeType": mime, "buffer": data})


def _message(page, text: str) -> str:
    alert = page.locator(ALERT, has_text=text).first
    alert.wait_for()
    wait_for_app(page)
    return alert.inner_text()


def test_bad_uploads_get_clear_messages_and_the_session_survives(server, page):
    url, server_pid, _ = server
    open_page(page, url, "Draw")
    page.get_by_text("Upload", exact=True).click()
    wait_for_app(page)
    server_rss = psutil.Process(server_pid).memory_info().rss

    four = _png(draw_digit(4, size=(300, 300), box=(100, 40, 200, 260), width=16, background=235, ink=30))
    cases = [
        ("notes.png", b"%PDF-1.4\nthis is a document, not a picture\n", "image/png", "is not an image"),
        ("half.png", four[: len(four) // 2], "image/png", "truncated or corrupt"),
        ("bomb.png", png_bomb(), "image/png", "bomb.png"),
        ("blink.gif", animated_gif(), "image/gif", "is animated"),
    ]
    for name, data, mime, expected in cases:
        _upload(page, name, data, mime)
        message = _message(page, expected)
        assert name in message, message
        assert_no_exception(page)
        screenshot(page, f"upload_{name.replace('.', '_')}")

    grown = (psutil.Process(server_pid).memory_info().rss - server_rss) / MB
    assert grown < 200, f"the server grew by {grown:.0f} MB while refusing uploads"  # decoding the bomb would take >1 GB

    # Over the server's upload limit (5 MB in .streamlit/config.toml): refused by the uploader, before the server.
    _upload(page, "huge.bmp", b"BM" + b"\x00" * (6 * MB), "image/bmp")
    page.get_by_text("or smaller").first.wait_for()
    screenshot(page, "upload_over_the_limit")

    # After all of that the same session still reads a good picture.
    _upload(page, "four.png", four, "image/png")
    page.locator(ALERT, has_text="It's a").or_(page.locator(ALERT, has_text="Not sure")).first.wait_for()
    wait_for_app(page)
    assert_no_exception(page)
