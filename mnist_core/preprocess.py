"""A drawn or uploaded digit -> the 28x28 image the model expects, made the way MNIST was made.

MNIST's digits were scaled to fit a 20x20 box keeping their aspect ratio (with
anti-aliased grey levels), then placed in a 28x28 field so that their centre of
mass sits in the middle. A model trained on that has never seen a digit that is
small, off-centre or dark on light, so resizing a whole canvas to 28x28 fails on
exactly the drawings people make. `preprocess` repeats MNIST's recipe:

    find the ink -> crop to it -> fit 20x20 -> centre of mass to the centre pixel -> normalize

and keeps every stage so the Draw page can show them.

Uploads come from strangers on a shared server, so `load_image` checks size,
pixel count, format and animation before decoding anything large.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_core.data import normalize
from mnist_core.errors import BlankImageError, ImageError
from mnist_core.evaluate import predict_logits

SIZE = 28
FIT = 20
# Where MNIST put the centre of mass, in (row, column) pixel indices: every one of its test
# digits has it in [13.5, 14.5) on both axes, spread evenly (std 0.29). So MNIST shifted
# each digit by whole pixels onto pixel 14 (not the geometric middle, 13.5); drawn digits
# go where the model's training digits were.
CENTRE = 14.0

# Ink weaker than this (as a share of full contrast with the background) is noise:
# JPEG ringing, paper texture, a shadow.
NOISE_FLOOR = 0.15
# The strongest ink must reach this contrast, and there must be this many pixels' worth of
# ink, or the image holds no digit.
MIN_CONTRAST = 0.25
MIN_INK_PIXELS = 12.0
# ...or, in a picture smaller than 28x28 (a low-resolution scan), this share of its pixels: a 14x14 "1" has 4 pixels' worth.
MIN_INK_SHARE = 0.015

# The size of an upload is the server's to cap (.streamlit/config.toml, server.maxUploadSize, the one
# setting for it); what protects this process is a cap on decoded pixels, checked from the header. About a 5000x5000 picture (a phone's 12 MP photo fits): decoded as RGBA that is 100 MB,
# already a lot for a small shared server.
MAX_PIXELS = 25_000_000
# Pillow decodes only these; the others it knows (EPS via Ghostscript, for one) are not
# worth their attack surface for a digit.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
UPLOAD_TYPES = ("png", "jpg", "jpeg", "gif", "webp", "bmp")
# A 20x20 digit needs nothing like a photo's resolution; shrinking first keeps memory and time bounded.
WORKING_SIDE = 1024
DISPLAY_SIDE = 280

# Below this top probability the page and the CLI say the model is not sure.
CONFIDENCE_THRESHOLD = 0.7


@dataclass(frozen=True)
class Preprocessed:
    """A digit ready for the model, with the stages that made it (uint8 images, for display)."""

    input: np.ndarray  # the image as given (RGB, RGBA or greyscale), shrunk to at most DISPLAY_SIDE
    cropped: np.ndarray  # the ink inside its bounding box, white on black, framed square, at most DISPLAY_SIDE
    fitted: np.ndarray  # the crop scaled to fit 20x20, shown in a 20x20 frame
    centred: np.ndarray  # 28x28, centre of mass on the centre pixel: what the model sees
    pixels: np.ndarray  # float32 (28, 28) in [0, 1], white ink on black
    tensor: torch.Tensor  # float32 (1, 1, 28, 28), normalized like the training data
    bbox: tuple[int, int, int, int]  # ink bounding box in the input: top, left, bottom, right (exclusive)

    def stages(self, side: int = 168) -> dict[str, np.ndarray]:
        """The four stages by caption, in order, each sized to about `side` pixels for display."""
        top, left, bottom, right = self.bbox
        return {
            "input": _display(self.input, side, grow=True),
            f"cropped to the ink ({right - left}x{bottom - top})": _display(self.cropped, side, grow=True),
            "scaled to fit 20x20": _display(self.fitted, side, grow=True),
            "centred in 28x28": _display(self.centred, side, grow=True),
        }


@dataclass(frozen=True)
class DigitPrediction:
    """The model's answer for one digit: the ten probabilities and what follows from them."""

    probabilities: np.ndarray  # (10,) float

    @property
    def prediction(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        """The k most likely digits with their probabilities, most likely first."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(int(digit), float(self.probabilities[digit])) for digit in order]

    def is_confident(self, threshold: float = CONFIDENCE_THRESHOLD) -> bool:
        """Whether the top probability reaches `threshold`."""
        return self.confidence >= threshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: prediction, confidence and the ten probabilities."""
        return {
            "prediction": self.prediction,
            "confidence": self.confidence,
            "probabilities": [float(p) for p in self.probabilities],
        }


def predict(model: torch.nn.Module, digit: Preprocessed) -> DigitPrediction:
    """The model's probabilities for one preprocessed digit."""
    logits = predict_logits(model, digit.tensor)
    return DigitPrediction(torch.softmax(logits[0].double(), dim=0).numpy())


def preprocess(source: Any) -> Preprocessed:
    """Any image (array, PIL image, file bytes, path or uploaded file) -> an MNIST-style digit.

    Raises ImageError when it cannot be read, BlankImageError when it holds no digit.
    """
    pixels = source if isinstance(source, np.ndarray) else load_image(source)
    ink = ink_map(pixels)
    if _is_mnist_style(ink):
        # Already what the recipe makes: its faint anti-aliased edges are not noise to drop, nor is its peak to stretch.
        top, left, bottom, right = _extent(ink)
        cropped = ink[top:bottom, left:right]
        fitted, centred = cropped, ink
    else:
        top, left, bottom, right = _ink_bbox(ink)
        cropped = ink[top:bottom, left:right]
        fitted = _fit(cropped)
        centred = _centre(fitted)
    tensor = normalize(torch.from_numpy(centred)).reshape(1, 1, SIZE, SIZE)
    return Preprocessed(
        input=_display(pixels),
        cropped=_display(_to_uint8(_frame(cropped, max(cropped.shape)))),
        fitted=_to_uint8(_frame(fitted, FIT)),
        centred=_to_uint8(centred),
        pixels=centred,
        tensor=tensor,
        bbox=(top, left, bottom, right),
    )


def ink_map(pixels: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] (H, W) from a greyscale (H, W), RGB or RGBA (H, W, C) array.

    The ink is the alpha channel when the background (the border) is transparent; otherwise
    it is the brightness difference from the background, whichever way round that is.
    """
    values = _as_float(pixels)
    if values.ndim == 2:
        values = values[:, :, None]
    channels = values.shape[2]
    alpha = values[:, :, -1] if channels in (2, 4) else None
    if channels >= 3:
        # ITU-R 601 luma, as PIL's convert("L"); channel by channel is 5x faster than a strided matmul.
        grey = 0.299 * values[:, :, 0] + 0.587 * values[:, :, 1] + 0.114 * values[:, :, 2]
    else:
        grey = values[:, :, 0]

    if alpha is not None and np.median(_border(alpha)) < 0.5:
        ink = alpha
    else:
        if alpha is not None and alpha.min() < 1.0:
            # Semi-transparent strokes on an opaque background: blend them over that background.
            background = float(np.median(_border(grey)[_border(alpha) >= 0.5]))
            grey = alpha * grey + (1.0 - alpha) * background
        background = float(np.median(_border(grey)))
        if background >= 0.5:
            ink = (background - grey) / background
        else:
            ink = (grey - background) / (1.0 - background)
    return np.clip(ink, 0.0, 1.0).astype(np.float32, copy=False)


def _as_float(pixels: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1], shape (H, W) or (H, W, C) with C in 1..4."""
    array = np.asarray(pixels)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise ImageError(f"An image array must be (height, width) or (height, width, 1-4 channels); got shape {array.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise BlankImageError("The image is empty (no pixels): draw a digit or upload a picture of one.")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer):
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise ImageError("The image array holds NaN or infinite values.")
        # Floats are [0, 1] by convention; anything larger was written on the 0-255 scale.
        return np.clip(values / 255.0 if values.max() > 1.0 else values, 0.0, 1.0)
    raise ImageError(f"Unsupported pixel type {array.dtype}: use uint8, uint16 or float pixels.")


def _border(channel: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels, which is where the background is."""
    if min(channel.shape) <= 2:
        return channel.ravel()
    return np.concatenate([channel[0], channel[-1], channel[1:-1, 0], channel[1:-1, -1]])


def _ink_bbox(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Drop the noise floor in place, stretch the ink to full strength, return its bounding box."""
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise BlankImageError("The image is blank: draw a digit (or upload a picture of one).")
    # Noise is zeroed (it would widen the crop); real ink keeps its grey levels, stretched to
    # full strength as MNIST's strokes are (they peak at 255 whatever the pen).
    ink[ink < NOISE_FLOOR] = 0.0
    np.multiply(ink, 1.0 / peak, out=ink)
    if float(ink.sum()) < min(MIN_INK_PIXELS, MIN_INK_SHARE * ink.size):
        raise BlankImageError("The image is nearly blank (a speck, not a digit): draw a digit.")
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _extent(ink: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box (top, left, bottom, right) of every pixel with any ink."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _is_mnist_style(ink: np.ndarray) -> bool:
    """Whether a picture is already an MNIST digit: 28x28, its ink FIT pixels on the longer side, its centre of mass at CENTRE.

    Every MNIST digit is so (checked on the test set); a drawing or photo with any stray ink or margin is not.
    """
    if ink.shape != (SIZE, SIZE) or float(ink.max()) < MIN_CONTRAST or float(ink.sum()) < MIN_INK_PIXELS:
        return False
    top, left, bottom, right = _extent(ink)
    if max(bottom - top, right - left) != FIT:
        return False
    rows, cols = np.indices(ink.shape, dtype=np.float64)
    mass = float(ink.sum())
    centre = (float((rows * ink).sum()) / mass, float((cols * ink).sum()) / mass)
    return all(CENTRE - 0.5 <= value < CENTRE + 0.5 for value in centre)


def _fit(cropped: np.ndarray) -> np.ndarray:
    """Scale so the longer side is FIT pixels, keeping the aspect ratio, anti-aliased."""
    height, width = cropped.shape
    scale = FIT / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(np.ascontiguousarray(cropped, dtype=np.float32))
    # Lanczos keeps thin strokes' grey levels when shrinking; reducing_gap box-filters a
    # huge crop first so the cost does not grow with the kernel.
    fitted = np.clip(np.asarray(image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.float32), 0.0, 1.0)
    # A thin pen shrunk 10x leaves only faint grey; MNIST's strokes always peak at full white
    # (mean peak 254.9 of 255), so stretch again after the fit.
    peak = float(fitted.max())
    if peak <= 0.0:
        raise BlankImageError("The image is nearly blank (a speck, not a digit): draw a digit.")
    return fitted / peak


def _centre(fitted: np.ndarray) -> np.ndarray:
    """Place in SIZE x SIZE by the whole-pixel shift that puts the centre of mass within half a pixel of CENTRE."""
    rows, cols = np.indices(fitted.shape, dtype=np.float64)
    mass = float(fitted.sum())
    row = float((rows * fitted).sum()) / mass
    col = float((cols * fitted).sum()) / mass
    # The smallest whole shift landing in [CENTRE - 0.5, CENTRE + 0.5): what MNIST did (see CENTRE).
    # A subpixel shift would blur the strokes MNIST kept sharp.
    top = math.ceil(CENTRE - 0.5 - row)
    left = math.ceil(CENTRE - 0.5 - col)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    _paste(out, fitted, top, left)
    return out


def _paste(canvas: np.ndarray, image: np.ndarray, top: int, left: int) -> None:
    """canvas[top:, left:] += image, clipped to the canvas."""
    height, width = image.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, canvas.shape[0]), min(left + width, canvas.shape[1])
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] += image[y0 - top : y1 - top, x0 - left : x1 - left]


def _frame(image: np.ndarray, side: int) -> np.ndarray:
    """`image` centred in a black side x side square."""
    framed = np.zeros((side, side), dtype=np.float32)
    height, width = image.shape
    top, left = (side - height) // 2, (side - width) // 2
    framed[top : top + height, left : left + width] = image
    return framed


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _display(pixels: np.ndarray, side: int = DISPLAY_SIDE, grow: bool = False) -> np.ndarray:
    """uint8 pixels for st.image, about `side` pixels on the longer side.

    Big images shrink (a huge upload is not sent back to the browser); small ones grow by a
    whole factor with nearest-neighbour, because the browser would blur a 28x28 digit.
    """
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        array = _to_uint8(_as_float(array))
    if array.ndim == 3 and array.shape[2] in (1, 2):
        array = array[:, :, 0]
    longer = max(array.shape[:2])
    if longer > side:
        image = Image.fromarray(array)
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        array = np.asarray(image)
    elif grow and longer * 2 <= side:
        factor = side // longer
        array = np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)
    return array


def load_image(source: Any, name: str | None = None) -> np.ndarray:
    """Read an image file safely into a uint8 array (H, W), (H, W, 3) or (H, W, 4).

    `source`: a path, bytes, a binary file object (Streamlit's UploadedFile included) or a PIL image.
    Every problem (empty, not an image, truncated, animated, too many pixels) raises ImageError.
    """
    if isinstance(source, Image.Image):
        return _pixels(source, name or "The image")
    data, name = _read_bytes(source, name)
    if not data:
        raise ImageError(f"{name} is empty (0 bytes): use a PNG or JPEG picture of a digit.")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; here every bomb is an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(_too_many_pixels(name, None)) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image this app reads: use a PNG or JPEG picture of a digit.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name} could not be read as an image ({exc}): use a PNG or JPEG picture.") from None
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageError(_too_many_pixels(name, (width, height)))
        if getattr(image, "is_animated", False):
            # The first frame of an animation is often blank or half drawn; answering for it
            # would look like an answer about the picture. Refusing costs one conversion.
            raise ImageError(f"{name} is animated: use a single still picture (PNG or JPEG).")
        return _pixels(image, name)


def _read_bytes(source: Any, name: str | None) -> tuple[bytes, str]:
    """The raw bytes of a path, bytes or file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "The image"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or path.name
        try:
            return path.read_bytes(), label
        except FileNotFoundError:
            raise ImageError(f"{label}: no such file.") from None
        except IsADirectoryError:
            raise ImageError(f"{label} is a folder, not an image file.") from None
        except OSError as exc:
            raise ImageError(f"{label} cannot be read ({exc.strerror}).") from None
    if hasattr(source, "read"):
        label = name or Path(str(getattr(source, "name", "") or "The upload")).name
        if hasattr(source, "seek"):
            source.seek(0)
        return source.read(), label
    raise ImageError(f"Cannot read an image from a {type(source).__name__}: give a file, bytes or an array.")


def _too_many_pixels(name: str, size: tuple[int, int] | None) -> str:
    side = int(math.sqrt(MAX_PIXELS))
    dims = f" ({size[0]}x{size[1]} pixels)" if size else ""
    return f"{name} is too large{dims}: the limit is {MAX_PIXELS / 1e6:.0f} megapixels (about {side}x{side}). Scale it down."


def _pixels(image: Image.Image, name: str) -> np.ndarray:
    """Decode into uint8 pixels, upright, shrunk to at most WORKING_SIDE on its longer side."""
    try:
        if image.format == "JPEG":
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: far less memory for a photo.
            image.draft("RGB", (WORKING_SIDE, WORKING_SIDE))
        image.load()
        image = ImageOps.exif_transpose(image)
        has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
        if image.mode.startswith(("I", "F")):
            image = _wide_to_l(image)
        elif has_alpha:
            image = image.convert("RGBA")
        elif image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        if max(image.size) > WORKING_SIDE:
            image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX, reducing_gap=2.0)
        return np.asarray(image).copy()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name} is truncated or corrupt ({exc}): save or export it again.") from None


def _wide_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit and float greyscale -> 8-bit, scaled by the range the values use."""
    values = np.asarray(image, dtype=np.float64)
    top = 1.0 if values.max() <= 1.0 else 255.0 if values.max() <= 255 else 65535.0
    return Image.fromarray(np.round(np.clip(values / top, 0, 1) * 255).astype(np.uint8))
