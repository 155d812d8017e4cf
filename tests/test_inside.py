"""Inside the model: activations and their pictures, what-if transformations, the sweep, occlusion, the adversarial nudge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_core import activations, adversarial, probes
from mnist_core.model import MnistCNN
from mnist_core.preprocess import preprocess
from mnist_core.pretrained import load_pretrained
from mnist_core.testing.drawing import canvas_rgba, centre_of_mass


@pytest.fixture
def model() -> MnistCNN:
    torch.manual_seed(0)
    return MnistCNN().eval()


@pytest.fixture(scope="module")
def bundled():
    return load_pretrained().model


@pytest.fixture(scope="module")
def seven() -> np.ndarray:
    """A drawn 7 as the model sees it: ink in [0, 1], 28x28."""
    return preprocess(canvas_rgba(7)).pixels


def _blob(row: int = 14, col: int = 14, radius: int = 3) -> np.ndarray:
    rows, cols = np.indices((28, 28))
    return (((rows - row) ** 2 + (cols - col) ** 2) <= radius**2).astype(np.float32)


def _conv_by_hand(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3x3 convolution with zero padding 1, as nine shifted matrix products: x (C, H, W) -> (K, H, W)."""
    channels, height, width = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((weight.shape[0], height, width), np.float64) + bias[:, None, None]
    for dy in range(3):
        for dx in range(3):
            window = padded[:, dy : dy + height, dx : dx + width]
            out += np.einsum("kc,chw->khw", weight[:, :, dy, dx], window)
    return out


def _pool(x: np.ndarray) -> np.ndarray:
    c, h, w = x.shape
    return x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


def test_activations_match_a_forward_pass_by_hand(model):
    rng = np.random.default_rng(3)
    pixels = rng.random((28, 28)).astype(np.float32) * _blob(radius=8)
    result = activations.activations(model, pixels)
    assert result.conv1.shape == (32, 28, 28)
    assert result.conv2.shape == (64, 14, 14)
    assert result.fc1.shape == (128,)
    assert result.logits.shape == (10,)

    weights = {name: p.detach().double().numpy() for name, p in model.named_parameters()}
    x = ((pixels - 0.1307) / 0.3081)[None].astype(np.float64)
    conv1 = np.maximum(_conv_by_hand(x, weights["conv1.weight"], weights["conv1.bias"]), 0)
    conv2 = np.maximum(_conv_by_hand(_pool(conv1), weights["conv2.weight"], weights["conv2.bias"]), 0)
    fc1 = np.maximum(weights["fc1.weight"] @ _pool(conv2).ravel() + weights["fc1.bias"], 0)
    logits = weights["fc2.weight"] @ fc1 + weights["fc2.bias"]
    np.testing.assert_allclose(result.conv1, conv1, atol=1e-4)
    np.testing.assert_allclose(result.conv2, conv2, atol=1e-4)
    np.testing.assert_allclose(result.fc1, fc1, atol=1e-4)
    np.testing.assert_allclose(result.logits, logits, atol=1e-4)
    assert result.probabilities.sum() == pytest.approx(1.0)
    assert int(result.probabilities.argmax()) == int(logits.argmax())


def test_activations_read_uint8_pixels_like_ink(model):
    pixels = (_blob() * 255).astype(np.uint8)
    np.testing.assert_allclose(
        activations.activations(model, pixels).logits, activations.activations(model, _blob()).logits, atol=1e-5
    )


def test_grid_image_tiles_every_map_with_the_brightest_white(model):
    maps = np.zeros((32, 28, 28), np.float32)
    maps[5, 10, 10] = 4.0  # the strongest unit of all
    maps[6] = 1.0
    image = activations.grid_image(maps, columns=8, scale=3, gap=2)
    assert image.shape == (4 * 84 + 5 * 2, 8 * 84 + 9 * 2, 3)
    assert image.dtype == np.uint8
    tile = lambda k: image[2 + (k // 8) * 86 : 2 + (k // 8) * 86 + 84, 2 + (k % 8) * 86 : 2 + (k % 8) * 86 + 84]  # noqa: E731
    assert tile(5).max() == 255 and tile(5)[30, 30].tolist() == [255, 255, 255]
    assert tile(6).min() == tile(6).max() == 64  # a quarter of the peak, shared scale
    assert tile(7).max() == 0


def test_filters_are_conv1s_kernels_and_signed_colours_tell_sign_apart(model):
    filters = activations.conv1_filters(model)
    assert filters.shape == (32, 3, 3)
    np.testing.assert_array_equal(filters, model.conv1.weight.detach().numpy()[:, 0])
    image = activations.grid_image(np.array([[[1.0]], [[-1.0]], [[0.0]]]), columns=3, scale=1, gap=0, signed=True)
    red, blue, zero = image[0, 0], image[0, 1], image[0, 2]
    assert red[0] > red[2] and blue[2] > blue[0]
    assert zero.tolist() == [255, 255, 255]


def test_zero_transformations_are_the_identity():
    pixels = torch.from_numpy(np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32))
    np.testing.assert_allclose(probes.warp(pixels, 0.0, 1.0, 0.0, 0.0).numpy(), pixels.numpy(), atol=1e-5)
    np.testing.assert_array_equal(probes.apply(pixels, probes.Transform()).numpy(), pixels.numpy())
    assert probes.Transform().is_identity() and not probes.Transform(rotation=5).is_identity()


def test_a_shift_moves_the_centre_of_mass_by_the_shift():
    blob = _blob(13, 12)
    moved = probes.transformed(blob, probes.Transform(shift_x=4, shift_y=-3))
    (row0, col0), (row1, col1) = centre_of_mass(blob), centre_of_mass(moved)
    assert col1 - col0 == pytest.approx(4, abs=1e-4)
    assert row1 - row0 == pytest.approx(-3, abs=1e-4)


def test_rotation_turns_anticlockwise_about_the_centre_and_scale_grows_about_it():
    dot = _blob(13.5, 20.5, 1)  # right of the centre (13.5, 13.5)
    turned = probes.transformed(dot, probes.Transform(rotation=90))
    row, col = centre_of_mass(turned)
    assert row == pytest.approx(13.5 - 7, abs=0.3) and col == pytest.approx(13.5, abs=0.3)  # now above the centre
    grown = probes.transformed(dot, probes.Transform(scale=1.5))
    assert centre_of_mass(grown)[1] == pytest.approx(13.5 + 7 * 1.5, abs=0.3)
    assert grown.sum() > 1.8 * dot.sum()  # area grows with the square of the scale


def test_stroke_noise_and_erase():
    ring = _blob(radius=8) - _blob(radius=5)
    thick, thin = probes.transformed(ring, probes.Transform(stroke=1)), probes.transformed(ring, probes.Transform(stroke=-1))
    assert thick.sum() > ring.sum() * 1.3 and thin.sum() < ring.sum() * 0.7
    assert (thick >= ring).all() and (thin <= ring).all()
    noisy = probes.transformed(ring, probes.Transform(noise=0.3, seed=4))
    assert np.array_equal(noisy, probes.transformed(ring, probes.Transform(noise=0.3, seed=4)))
    assert not np.array_equal(noisy, probes.transformed(ring, probes.Transform(noise=0.3, seed=5)))
    assert noisy.min() >= 0 and noisy.max() <= 1
    erased = probes.transformed(ring, probes.Transform(erase=(0, 0, 14, 28)))
    assert erased[:14].max() == 0 and np.array_equal(erased[14:], ring[14:])


def test_the_sweep_is_each_setting_computed_in_one_batch(bundled, seven):
    result = probes.sweep(bundled, seven, "rotation", steps=13)
    assert result.values[0] == -60 and result.values[-1] == 60 and len(result.values) == 13
    assert result.probabilities.shape == (13, 10)
    for value, row in zip(result.values, result.probabilities):
        alone = probes.probabilities(bundled, probes.apply(activations.as_pixels(seven), probes.Transform(rotation=float(value))))
        np.testing.assert_allclose(row, alone[0], atol=1e-5)
    assert result.predictions[6] == 7  # the unrotated drawing


def test_sweep_changes_mark_where_the_answer_moves():
    probabilities = np.eye(10)[[7, 7, 1, 1, 1, 4]]
    changes = probes.Sweep("scale", np.arange(6.0), probabilities).changes()
    assert changes == [(2.0, 7, 1), (5.0, 1, 4)]
    with pytest.raises(ValueError, match="unknown sweep"):
        probes.sweep(MnistCNN(), np.zeros((28, 28)), "twist")


def test_occlusion_over_blank_background_changes_nothing(bundled, seven):
    result = probes.occlusion(bundled, seven)
    assert result.target == 7 and result.map.shape == (28, 28)
    blank = [k for k, (top, left) in enumerate(result.positions) if seven[top : top + 6, left : left + 6].max() == 0]
    assert blank, "the drawing leaves empty corners"
    assert np.all(result.drops[blank] == 0)
    assert result.drops.max() > 0.05  # hiding some part of the 7 does matter
    assert result.positions[:, 0].max() == result.positions[:, 1].max() == 22  # patches reach the last row and column


def test_the_nudge_stays_within_epsilon_and_gets_the_target(bundled, seven):
    result = adversarial.nudge(bundled, seven, target=3)
    assert result.found and 0 < result.epsilon <= adversarial.MAX_EPSILON
    assert np.abs(result.perturbation).max() <= result.epsilon + 1e-6
    assert result.image.min() >= 0 and result.image.max() <= 1
    again = probes.probabilities(bundled, activations.as_pixels(result.image))[0]
    assert int(again.argmax()) == 3
    np.testing.assert_allclose(again, result.after, atol=1e-6)
    assert "3" in result.message()


def test_the_nudge_says_when_no_epsilon_up_to_the_bound_works(bundled, seven):
    result = adversarial.nudge(bundled, seven, target=3, max_epsilon=0.001)
    assert not result.found and result.image is None
    assert result.message() == "No epsilon up to 0.001 makes the model say 3."
    already = adversarial.nudge(bundled, seven, target=7)
    assert already.epsilon == 0 and already.message() == "The model already says 7."
