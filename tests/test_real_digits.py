"""Digits that did not come from MNIST, and ones that did: what preprocessing and the bundled model make of them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from mnist_core.preprocess import FIT, predict, preprocess
from mnist_core.pretrained import load_pretrained
from mnist_core.testing.drawing import canvas_rgba, draw_digit


@pytest.fixture(scope="module")
def bundled():
    return load_pretrained().model


@pytest.mark.parametrize("digit", range(10))
def test_an_mnist_style_digit_passes_through_unchanged(digit):
    # preprocess makes MNIST-style digits; given one back (as a 28x28 uint8 picture), it must not touch it.
    once = preprocess(canvas_rgba(digit, width=12)).centred
    again = preprocess(once)
    np.testing.assert_array_equal(again.centred, once)
    np.testing.assert_array_equal(again.pixels, once / np.float32(255))
    # The same digit black on white, as a scan of one would be, comes back white on black, unchanged too.
    np.testing.assert_array_equal(preprocess(255 - once).centred, once)


def test_real_mnist_digits_pass_through_bit_for_bit(real_data):
    from mnist_core.data import load_split

    raw = load_split("test", real_data).raw()[:200].numpy()
    changed = [i for i, image in enumerate(raw) if not np.array_equal(preprocess(image).centred, image)]
    assert changed == []


def test_a_28x28_picture_that_is_not_mnist_style_still_goes_through_the_recipe():
    small = np.zeros((28, 28), np.uint8)
    small[10:18, 12:15] = 255  # an 8-pixel stroke: MNIST would have scaled it to 20
    result = preprocess(small)
    rows = np.flatnonzero(result.centred.any(axis=1))
    assert rows[-1] - rows[0] + 1 == FIT


def _photo_of_a_page(digit: int, seed: int) -> bytes:
    """A small dark digit on a large light page with sensor noise, saved as a JPEG, as a phone would."""
    page = draw_digit(digit, size=(1200, 900), box=(560, 400, 620, 480), width=6, background=235, ink=30)
    noisy = np.asarray(page).astype(float) + np.random.default_rng(seed).normal(0, 6, (900, 1200))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


REAL_WORLD = {
    "very thin pen": lambda d: canvas_rgba(d, width=2),
    "very thick pen": lambda d: canvas_rgba(d, width=50),
    "blurred": lambda d: np.asarray(draw_digit(d).filter(ImageFilter.GaussianBlur(8))),
    "low resolution 20x20": lambda d: np.asarray(draw_digit(d).resize((20, 20), Image.Resampling.BILINEAR)),
    "low resolution 12x12": lambda d: np.asarray(draw_digit(d).resize((12, 12), Image.Resampling.BILINEAR)),
    "small digit on a large page, photographed": lambda d: _photo_of_a_page(d, seed=d),
}


@pytest.mark.parametrize("case", list(REAL_WORLD))
def test_the_bundled_model_reads_real_world_digits(bundled, case):
    wrong = []
    for digit in range(10):
        answer = predict(bundled, preprocess(REAL_WORLD[case](digit)))
        if answer.prediction != digit:
            wrong.append(f"{digit} read as {answer.prediction} ({answer.confidence:.0%})")
    assert not wrong, wrong
