"""preprocess: drawn and uploaded digits of every style -> the MNIST-style 28x28, and uploads that must be refused."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_core.data import normalize
from mnist_core.errors import BlankImageError, ImageError
from mnist_core.preprocess import (
    CENTRE,
    FIT,
    MAX_PIXELS,
    SIZE,
    DigitPrediction,
    load_image,
    predict,
    preprocess,
)
from mnist_core.testing.drawing import canvas_rgba, centre_of_mass, draw_digit, ink_extent


def png_bytes(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save_args.pop("format", "PNG"), **save_args)
    return buffer.getvalue()


def assert_mnist_style(result) -> None:
    """Centre of mass on MNIST's centre, fitted into 20x20, white on black with full-strength strokes."""
    assert result.pixels.shape == (SIZE, SIZE) and result.pixels.dtype == np.float32
    assert 0.0 <= result.pixels.min() and result.pixels.max() <= 1.0
    row, col = centre_of_mass(result.pixels)
    assert CENTRE - 0.5 <= row < CENTRE + 0.5 and CENTRE - 0.5 <= col < CENTRE + 0.5, (row, col)
    fit_h, fit_w = ink_extent(result.fitted)
    assert max(fit_h, fit_w) == FIT and min(fit_h, fit_w) >= 1
    assert ink_extent(result.pixels) == (fit_h, fit_w)  # moved whole, nothing cut off
    # Background black, strokes full strength, as in MNIST.
    assert result.pixels[0].max() == 0 and result.pixels.max() > 0.95
    assert torch.allclose(result.tensor, normalize(torch.from_numpy(result.pixels)).reshape(1, 1, SIZE, SIZE))


@pytest.mark.slow  # reads the real MNIST
def test_centre_is_where_mnist_puts_the_centre_of_mass(real_data):
    from mnist_core.data import load_split

    pixels = load_split("test", real_data).raw().float()
    index = torch.arange(SIZE, dtype=torch.float32)
    mass = pixels.sum(dim=(1, 2))
    rows = (pixels.sum(dim=2) * index).sum(dim=1) / mass
    cols = (pixels.sum(dim=1) * index).sum(dim=1) / mass
    # Every MNIST digit was shifted by whole pixels so its centre of mass is within half a pixel of pixel 14.
    for centres in (rows, cols):
        assert ((centres >= CENTRE - 0.5) & (centres < CENTRE + 0.5)).all()
        assert abs(centres.mean().item() - CENTRE) < 0.05


@pytest.mark.slow  # reads the real MNIST
def test_mnist_digits_come_through_unchanged(real_data):
    # MNIST's digits were made by this recipe, so preprocessing one must give it back.
    from mnist_core.data import load_split

    raw = load_split("test", real_data).raw()[:500].numpy()
    results = np.stack([preprocess(image).pixels for image in raw])
    difference = np.abs(results - raw / 255.0)
    assert difference.mean() < 0.01
    # Per image: nearly all match to within a fifth of full strength everywhere. The rest lose
    # faint edge pixels below the noise floor, or were not 20 pixels on their longer side, and
    # are rescaled a little.
    assert (difference.max(axis=(1, 2)) < 0.2).mean() > 0.9


# Every style the canvas or a file can come in, each holding the same white-on-black "7".
STYLES = {
    "canvas RGBA, opaque black background": lambda: canvas_rgba(7),
    "RGBA, opaque white background, black ink": lambda: np.asarray(
        draw_digit(7, mode="RGBA", background=(255, 255, 255, 255), ink=(0, 0, 0, 255))
    ),
    "RGBA, transparent background, coloured ink": lambda: np.asarray(
        draw_digit(7, mode="RGBA", background=(0, 0, 0, 0), ink=(230, 40, 90, 255))
    ),
    "RGBA, transparent background, black ink": lambda: np.asarray(
        draw_digit(7, mode="RGBA", background=(0, 0, 0, 0), ink=(0, 0, 0, 255))
    ),
    "RGB white on black": lambda: np.asarray(draw_digit(7, mode="RGB", background=(0, 0, 0), ink=(255, 255, 255))),
    "RGB dark blue on cream": lambda: np.asarray(draw_digit(7, mode="RGB", background=(250, 245, 225), ink=(20, 20, 120))),
    "greyscale uint8 black on white": lambda: np.asarray(draw_digit(7, background=255, ink=0)),
    "greyscale float in [0, 1]": lambda: np.asarray(draw_digit(7)).astype(np.float64) / 255.0,
    "greyscale (H, W, 1)": lambda: np.asarray(draw_digit(7))[:, :, None],
    "PNG bytes": lambda: png_bytes(draw_digit(7, background=255, ink=0)),
    "PIL image": lambda: draw_digit(7),
}


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_gives_the_same_mnist_style_digit(style):
    reference = preprocess(canvas_rgba(7))
    result = preprocess(STYLES[style]())
    assert_mnist_style(result)
    # Same drawing, same digit, whichever way round and in whatever container it came.
    np.testing.assert_allclose(result.pixels, reference.pixels, atol=0.03)
    assert result.bbox == reference.bbox


@pytest.mark.parametrize(
    "corner", [(0, 0), (170, 150), (0, 150), (85, 70)], ids=["top-left", "bottom-right", "bottom-left", "middle"]
)
def test_position_on_the_canvas_does_not_matter(corner):
    # One drawing pasted anywhere on a 280x280 canvas: the same crop, hence the same digit.
    drawing = draw_digit(3, size=(110, 130), box=(10, 10, 100, 120), width=10)
    reference = preprocess(np.asarray(drawing))
    canvas = Image.new("L", (280, 280))
    canvas.paste(drawing, corner)
    result = preprocess(np.asarray(canvas))
    assert_mnist_style(result)
    np.testing.assert_array_equal(result.pixels, reference.pixels)
    assert result.bbox[:2] == (reference.bbox[0] + corner[1], reference.bbox[1] + corner[0])


def test_off_centre_digit_is_centred_not_resized_with_the_canvas():
    result = preprocess(canvas_rgba(1, box=(230, 10, 270, 110), width=10))
    assert_mnist_style(result)
    top, left, bottom, right = result.bbox
    assert left >= 220 and bottom <= 120  # the crop found the ink in the corner
    # A tall thin "1" fills the 20 rows of the box and only a few columns.
    height, width = ink_extent(result.fitted)
    assert height == FIT and width < 8


def test_tiny_digit_is_scaled_up_to_fill_the_box():
    result = preprocess(canvas_rgba(2, box=(140, 140, 148, 152), width=2))
    assert_mnist_style(result)
    assert result.cropped.shape[0] <= 20


def test_huge_canvas_is_scaled_down_quickly():
    image = canvas_rgba(5, size=(3000, 3000), box=(300, 200, 2700, 2800), width=180)
    start = time.perf_counter()
    result = preprocess(image)
    elapsed = time.perf_counter() - start
    assert_mnist_style(result)
    assert max(result.input.shape[:2]) <= 280  # the display copy is not the 36 MB original
    assert elapsed < 10  # generous: this is a crash guard for a 2-core machine, not a benchmark


@pytest.mark.parametrize("width", [1, 3, 40, 70])
def test_thin_and_thick_strokes(width):
    result = preprocess(canvas_rgba(0, width=width))
    assert_mnist_style(result)
    # The 20x20 fit keeps a ring: the middle of the zero stays dark whatever the pen.
    assert result.pixels[13:15, 13:15].max() < 0.5


@pytest.mark.parametrize("size", [(600, 200), (150, 900)], ids=["wide", "tall"])
def test_non_square_uploads(size):
    width, height = size
    box = (20, 20, width - 20, height - 20)
    upload = png_bytes(draw_digit(0, size=size, box=box, width=12, background=255, ink=0))
    result = preprocess(upload)
    assert_mnist_style(result)
    fit_h, fit_w = ink_extent(result.fitted)
    # The aspect ratio survives the fit: a wide zero stays wide, a tall one tall.
    assert (fit_w > fit_h) == (width > height)


def test_jpeg_photo_of_paper_with_noise():
    rng = np.random.default_rng(0)
    paper = np.asarray(draw_digit(4, size=(640, 480), box=(200, 100, 420, 400), width=22, background=215, ink=40))
    noisy = np.clip(paper.astype(int) + rng.integers(-12, 13, paper.shape), 0, 255).astype(np.uint8)
    upload = png_bytes(Image.fromarray(noisy).convert("RGB"), format="JPEG", quality=70)
    result = preprocess(upload)
    assert_mnist_style(result)
    top, left, bottom, right = result.bbox
    # The crop is the digit, not the paper's noise.
    assert 180 <= left and right <= 440 and 80 <= top and bottom <= 420


def test_semi_transparent_strokes_on_an_opaque_background_count_as_ink():
    image = np.asarray(draw_digit(7, mode="RGBA", background=(255, 255, 255, 255), ink=(0, 0, 0, 128)))
    assert_mnist_style(preprocess(image))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((280, 280, 4), np.uint8),  # untouched transparent canvas
        np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]),  # opaque black canvas
        np.full((200, 300), 255, np.uint8),
        np.full((50, 50, 3), 128, np.uint8),
        np.clip(200 + np.random.default_rng(1).integers(-15, 16, (100, 100)), 0, 255).astype(np.uint8),
    ],
    ids=["transparent", "black", "white", "grey", "faint-noise"],
)
def test_blank_images_say_draw_a_digit(image):
    with pytest.raises(BlankImageError, match="draw a digit"):
        preprocess(image)


def test_a_speck_is_nearly_blank():
    image = np.zeros((280, 280), np.uint8)
    image[100:102, 50:52] = 255
    with pytest.raises(BlankImageError, match="nearly blank"):
        preprocess(image)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((10, 10, 5), np.uint8), "shape"),
        (np.zeros((0, 10), np.uint8), "empty"),
        (np.full((10, 10), np.nan), "NaN"),
        (np.zeros((10, 10), np.complex64), "pixel type"),
    ],
    ids=["five-channels", "no-pixels", "nan", "complex"],
)
def test_bad_arrays_raise_image_errors(array, message):
    with pytest.raises(ImageError, match=message):
        preprocess(array)


def test_uploaded_file_objects_and_paths(tmp_path):
    data = png_bytes(draw_digit(9, background=255, ink=0))
    path = tmp_path / "nine.png"
    path.write_bytes(data)
    upload = io.BytesIO(data)
    upload.name = "nine.png"
    upload.read()  # a file object read once already (Streamlit reruns) must still work
    results = [preprocess(path), preprocess(str(path)), preprocess(upload), preprocess(data)]
    for result in results:
        np.testing.assert_array_equal(result.pixels, results[0].pixels)


def test_image_modes_decode(tmp_path):
    digit = draw_digit(6, background=255, ink=0)
    reference = preprocess(digit).pixels
    sixteen_bit = Image.fromarray(np.asarray(digit).astype(np.uint16) * 257)
    palette = digit.convert("P")
    palette.info["transparency"] = 255  # the white background is transparent
    for image in (sixteen_bit, palette, digit.convert("1"), digit.convert("CMYK").convert("RGB"), digit.convert("LA")):
        result = preprocess(png_bytes(image))
        assert_mnist_style(result)
        np.testing.assert_allclose(result.pixels, reference, atol=0.3)


def test_jpeg_exif_orientation_is_applied():
    upright = draw_digit(7, size=(300, 200), box=(100, 20, 200, 180), background=255, ink=0)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how a sideways phone stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    result = preprocess(png_bytes(stored, format="JPEG", quality=95, exif=exif))
    reference = preprocess(png_bytes(upright, format="JPEG", quality=95))
    np.testing.assert_allclose(result.pixels, reference.pixels, atol=0.15)


# --- Uploads that must be refused with a clear message, never a crash ---------------------------


def _png_claiming(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header claims width x height: what a decompression bomb looks like to a parser."""
    data = png_bytes(Image.new("L", (8, 8)))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    patched = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:8] + patched + data[8 + 4 + 4 + 13 + 4 :]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"hello, this is not an image", "not an image"),
        (b"", "empty"),
        (b"%PDF-1.4\n" + b"0" * 1000, "not an image"),
        (png_bytes(draw_digit(3))[:300], "truncated|could not be read"),
        (_png_claiming(20000, 20000), "too large"),
        (_png_claiming(6000, 5000), "too large"),
        (png_bytes(draw_digit(3), format="TIFF"), "not an image this app reads"),
    ],
    ids=["text", "empty", "pdf", "truncated-png", "bomb-20000x20000", "over-pixel-limit", "tiff"],
)
def test_bad_uploads_are_refused_clearly(data, message):
    with pytest.raises(ImageError, match=message):
        preprocess(data)


def test_a_real_decompression_bomb_is_refused_before_decoding():
    # 6000x6000 black pixels compress to a few kB; decoding them would take 36 MB per upload.
    bomb = png_bytes(Image.new("L", (6000, 6000)), optimize=True)
    assert len(bomb) < 100_000 and 6000 * 6000 > MAX_PIXELS
    with pytest.raises(ImageError, match="too large .6000x6000"):
        load_image(bomb)


def test_animated_gif_is_refused_and_a_still_gif_is_read():
    frames = [draw_digit(d).convert("P") for d in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ImageError, match="animated"):
        preprocess(buffer.getvalue())
    assert_mnist_style(preprocess(png_bytes(frames[0], format="GIF")))


def test_a_large_file_is_judged_by_its_pixels_not_its_bytes(tmp_path):
    """The upload size is the server's one setting (.streamlit/config.toml); a big scan given to the CLI still reads."""
    noise = np.random.default_rng(0).integers(0, 256, size=(2400, 2400), dtype=np.uint8)
    noise[800:1600, 1100:1300] = 255  # a bright bar on the noise: a "1"
    path = tmp_path / "scan.png"
    Image.fromarray(noise).save(path, compress_level=0)
    assert path.stat().st_size > 5 * 2**20
    assert preprocess(path).pixels.shape == (28, 28)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        preprocess(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        preprocess(tmp_path)


def test_messages_do_not_reveal_server_paths(tmp_path):
    path = tmp_path / "notes.png"
    path.write_bytes(b"plain text")
    with pytest.raises(ImageError) as info:
        preprocess(path)
    assert str(tmp_path) not in str(info.value) and "notes.png" in str(info.value)


# --- The prediction around the model --------------------------------------------------------------


def test_digit_prediction_top_and_confidence():
    answer = DigitPrediction(np.array([0.05, 0.6, 0.0, 0.3, 0.05, 0, 0, 0, 0, 0]))
    assert answer.prediction == 1 and answer.confidence == pytest.approx(0.6)
    assert answer.top(3) == [(1, 0.6), (3, 0.3), (0, 0.05)]
    assert not answer.is_confident() and answer.is_confident(0.5)
    assert answer.to_dict()["prediction"] == 1 and len(answer.to_dict()["probabilities"]) == 10


def test_predict_returns_the_models_softmax():
    from mnist_core.model import MnistCNN

    torch.manual_seed(0)
    model = MnistCNN().eval()
    digit = preprocess(canvas_rgba(8))
    answer = predict(model, digit)
    with torch.no_grad():
        expected = torch.softmax(model(digit.tensor), dim=1)[0].numpy()
    np.testing.assert_allclose(answer.probabilities, expected, atol=1e-5)
    assert answer.probabilities.sum() == pytest.approx(1.0)


def test_bundled_model_reads_drawn_digits():
    from mnist_core.pretrained import load_pretrained, pretrained_available

    if not pretrained_available():
        pytest.fail("the bundled model (mnist_core/pretrained/mnist_cnn.pt) is missing")
    model = load_pretrained().model
    cases = {
        "canvas, medium pen": lambda d: canvas_rgba(d),
        "thin pen": lambda d: canvas_rgba(d, width=5),
        "thick pen": lambda d: canvas_rgba(d, width=34),
        "small, off-centre": lambda d: canvas_rgba(d, box=(200, 180, 260, 260), width=7),
        "black on white upload": lambda d: png_bytes(
            draw_digit(d, size=(400, 300), box=(40, 30, 180, 270), width=16, background=255, ink=0)
        ),
        "coloured ink, transparent": lambda d: np.asarray(
            draw_digit(d, mode="RGBA", background=(0, 0, 0, 0), ink=(40, 90, 230, 255))
        ),
    }
    wrong = []
    for name, make in cases.items():
        for digit in range(10):
            answer = predict(model, preprocess(make(digit)))
            if answer.prediction != digit:
                wrong.append(f"{name}: {digit} read as {answer.prediction} ({answer.confidence:.0%})")
    assert not wrong, wrong


def test_stages_for_display_are_small_crisp_and_in_order():
    result = preprocess(canvas_rgba(1, box=(200, 20, 260, 200), width=12))
    stages = result.stages(side=168)
    captions = list(stages)
    assert captions[0] == "input" and captions[-1] == "centred in 28x28"
    top, left, bottom, right = result.bbox
    assert captions[1] == f"cropped to the ink ({right - left}x{bottom - top})"
    for image in stages.values():
        assert image.dtype == np.uint8 and 84 < max(image.shape[:2]) <= 168
    # The 28x28 is enlarged by whole pixels (6x), not blurred: each block is one value.
    centred = stages["centred in 28x28"]
    assert centred.shape == (168, 168)
    np.testing.assert_array_equal(centred[::6, ::6], result.centred)
    # The crop is shown square, so a thin "1" keeps its shape instead of being stretched.
    cropped = stages[captions[1]]
    assert cropped.shape[0] == cropped.shape[1]
