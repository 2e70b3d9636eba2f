"""Any picture to the model's input, by MNIST's own recipe (the contract itself is `contract`):
decode, find the ink, cut one line into digits (`segment`), and lay each digit out as MNIST did.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .contract import CENTRE, FIT_SIZE, IMAGE_SIZE, PIXEL_MAX
from .errors import ImageError, NoDigitError, SeveralDigitsError
from .segment import MAX_DIGITS, segment_digits

# Refuse before decoding: a 100 MP image would take seconds and gigabytes to decode.
MAX_PIXELS = 50_000_000
# Photos are reduced to this long side before the ink is searched for; a digit needs no more.
WORK_SIZE = 512
# Ink weaker than this (fraction of full scale, after the background is removed) is no digit.
MIN_CONTRAST = 0.15
# Unless the background is perfectly flat (MNIST), normalised ink below this is paper texture or
# compression ringing, not ink; flat images keep every level.
TEXTURE_FLOOR = 0.1
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels, as PIL has boxes
ImageSource = Union[str, "os.PathLike[str]", bytes, Image.Image, np.ndarray, Any]


def preprocess_image(source: ImageSource) -> np.ndarray:
    """Turn a picture of one digit into the model's input, by MNIST's own recipe.

    Args:
      source: a path, the bytes of an image file, a binary file object, a PIL image, or a numpy
        array (H, W) or (H, W, 3|4), uint8 0-255 or float 0-1.
    Returns:
      float32 array (28, 28) in [0, 1], ink light on dark.
    Raises:
      ImageError: the source is not a readable image (NoDigitError: it holds no ink), or it
        holds several digits: one answer for them would be a guess (read them with find_digits).
    """
    inputs, _ = find_digits(source)
    if len(inputs) > 1:
        raise SeveralDigitsError(len(inputs))
    return inputs[0]


def find_digits(source: ImageSource, max_digits: int = MAX_DIGITS) -> tuple[list[np.ndarray], list[Box]]:
    """Each digit of one line of handwriting as the model's input, left to right.

    Args:
      source: as for preprocess_image.
      max_digits: more digit-sized shapes than this is an error.
    Returns:
      (inputs: float32 (28, 28) arrays, boxes: (left, top, right, bottom) of each digit in the
      image's own pixels).
    Raises:
      ImageError: unreadable, no ink (NoDigitError), several lines, more than max_digits digits.
    """
    image = load_image(source)
    ink = ink_map(image)
    segments = segment_digits(ink, max_digits)
    if not segments:
        raise NoDigitError("no digit found: no stroke stands out")
    sx, sy = image.width / ink.shape[1], image.height / ink.shape[0]  # the ink map may be reduced
    boxes = [(math.floor(g.left * sx), math.floor(g.top * sy), math.ceil(g.right * sx), math.ceil(g.bottom * sy))
             for g in segments]
    return [mnist_layout(g.ink) for g in segments], boxes


def load_image(source: ImageSource) -> Image.Image:
    """Open and decode an image, refusing empty, foreign, truncated and oversized files.

    Returns:
      a decoded PIL image, EXIF orientation applied.
    """
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _image_from_array(source)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError("empty input: zero bytes")
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ImageError("no such file")
        if os.path.isdir(path):
            raise ImageError("is a folder, not an image")
        if os.path.getsize(path) == 0:
            raise ImageError("empty file: zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS decides, below
            image = Image.open(source)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise ImageError("not an image Pillow can read") from None
    except OSError as e:
        raise ImageError(f"cannot open: {e.strerror or e}") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"image is {width}x{height} ({width * height / 1e6:.0f} MP); "
            f"the limit is {MAX_PIXELS / 1e6:.0f} MP"
        )
    try:
        # JPEG can decode straight to a smaller size: much faster for photos.
        image.draft("L" if image.mode in ("L", "RGB", "CMYK", "YCbCr") else None, (WORK_SIZE, WORK_SIZE))
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as e:
        raise ImageError(f"truncated or corrupt image ({e})") from None


def _image_from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        if array.dtype != np.uint8:
            array = _float_to_uint8(array)
        return Image.fromarray(array, "RGB" if array.shape[-1] == 3 else "RGBA")
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(f"an image array must be (H, W) or (H, W, 3|4); got shape {array.shape}")
    if array.dtype == np.uint8:
        return Image.fromarray(array, "L")
    return Image.fromarray(_unit_float(array), "F")


def _unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ImageError(f"an image array must be numeric; got {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ImageError("the image array holds NaN or infinite values")
    if array.min() < 0 or array.max() > 1:
        raise ImageError("a float image array must hold values in [0, 1] (or pass uint8 0-255)")
    return array.astype(np.float32)


def _float_to_uint8(array: np.ndarray) -> np.ndarray:
    return np.round(_unit_float(array) * PIXEL_MAX).astype(np.uint8)


def ink_map(image: Image.Image) -> np.ndarray:
    """Find the ink: grey levels with the paper removed, ink 1 and background 0.

    Handles any mode (16-bit and float included), transparency, either polarity, and slow
    background changes (shadows, uneven light), and reduces large images to WORK_SIZE.

    Returns:
      float32 array (H, W) in [0, 1].
    Raises:
      NoDigitError: nothing stands out from the background.
    """
    gray, alpha = _gray_and_alpha(image)  # (H, W) in [0, 1] each
    if alpha is not None:
        if alpha.max() < 0.5:
            raise NoDigitError("no digit found: the image is transparent")
        opaque = gray[alpha >= 0.5]
        # Put the ink on a background that contrasts with it: white ink on a transparent canvas
        # must not vanish on white.
        backdrop = 1.0 if _median(opaque) < 0.5 else 0.0
        gray = gray * alpha + backdrop * (1.0 - alpha)

    frame = _frame(gray)
    ink = 1.0 - gray if _median(frame) > 0.5 else gray  # dark ink on light paper: invert
    ink = ink - _background(ink)
    noise = max(0.0, _noise_level(_frame(ink)))
    k = max(1, ink.size // 2000)  # the k-th largest: one hot pixel does not set the scale
    peak = float(np.partition(ink.ravel(), ink.size - k)[ink.size - k])
    if peak - noise < MIN_CONTRAST:
        raise NoDigitError("no digit found: nothing stands out from the background")
    ink = np.clip((ink - noise) / (peak - noise), 0.0, 1.0).astype(np.float32)
    if np.ptp(frame) > 0:  # not a flat synthetic background (MNIST): paper texture, JPEG ringing
        ink[ink < TEXTURE_FLOOR] = 0.0
    return ink


def _gray_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if has_alpha:
        image = image.convert("RGBA")
    elif image.mode.startswith("I") or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        if array.ndim != 2:
            raise ImageError(f"unsupported image mode {image.mode}")
        top = 1.0 if image.mode == "F" and array.max() <= 1 else 255.0
        if image.mode.startswith("I;16") or array.max() > 255:
            top = 65535.0
        image = Image.fromarray(np.clip(array / top, 0, 1).astype(np.float32), "F")
    else:
        image = image.convert("L")
    if max(image.size) > WORK_SIZE:
        image = image.copy()
        image.thumbnail((WORK_SIZE, WORK_SIZE), Image.Resampling.BOX)
    if has_alpha:
        rgba = np.asarray(image, dtype=np.float32) / PIXEL_MAX
        gray = np.asarray(image.convert("RGB").convert("L"), dtype=np.float32) / PIXEL_MAX
        return gray, rgba[..., 3]
    array = np.asarray(image, dtype=np.float32)
    return (array if image.mode == "F" else array / PIXEL_MAX), None


def _median(values: np.ndarray) -> float:
    """The (upper) median; np.median drags in numpy.ma, 12 ms of a cold start."""
    values = np.ravel(values)
    return float(np.partition(values, len(values) // 2)[len(values) // 2])


def _frame(array: np.ndarray) -> np.ndarray:
    """The outer frame of pixels: where the paper is, almost always."""
    width = max(1, round(0.02 * min(array.shape)))
    return np.concatenate(
        [array[:width].ravel(), array[-width:].ravel(), array[:, :width].ravel(), array[:, -width:].ravel()]
    )


def _background(ink: np.ndarray) -> np.ndarray | float:
    """The paper's own level under the ink, so that shadows and uneven light are not ink.

    Small images (MNIST itself, small scans) get a flat level. Larger ones get a smooth quadratic
    surface fitted to the frame, where the paper is: it follows a shadow or a light fall-off across
    the page, and, unlike a filter over the interior, it cannot mistake a bold stroke for paper.
    """
    if max(ink.shape) <= 64:
        return _median(_frame(ink))
    height, width = ink.shape
    rows, cols = np.mgrid[0:height, 0:width]
    y, x = rows / max(height - 1, 1) - 0.5, cols / max(width - 1, 1) - 0.5
    terms = [np.ones_like(y), y, x, y * y, x * x, x * y]
    basis = np.stack([_frame(t) for t in terms], axis=1)  # (frame pixels, 6)
    frame = _frame(ink)
    paper = np.ones(len(frame), bool)
    for _ in range(2):  # fit, then refit without the frame pixels that are ink (a digit may touch the edge)
        coefficients = np.linalg.lstsq(basis[paper], frame[paper], rcond=None)[0]
        residual = frame - basis @ coefficients
        paper = residual <= _noise_level(residual)
    return sum(c * t for c, t in zip(coefficients, terms)).astype(np.float32)


def _noise_level(values: np.ndarray) -> float:
    """Median plus four robust standard deviations: above it lies ink, not paper texture."""
    median = _median(values)
    spread = 1.4826 * _median(np.abs(values - median))
    return median + 4.0 * spread


def mnist_layout(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit into FIT_SIZE keeping the aspect ratio, centre by mass in IMAGE_SIZE.

    Args:
      ink: float array (H, W) in [0, 1], ink 1 and background 0.
    Returns:
      float32 array (28, 28) in [0, 1].
    """
    top, bottom, left, right = _ink_box(ink)
    digit = ink[top:bottom, left:right]
    height, width = digit.shape
    scale = FIT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != (width, height):
        resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR
        digit = np.asarray(Image.fromarray(np.ascontiguousarray(digit, np.float32), "F").resize(size, resample))
        digit = np.clip(digit, 0.0, 1.0)
    height, width = digit.shape
    mass = digit.sum()
    rows, cols = np.arange(height), np.arange(width)
    centre_y = float(digit.sum(axis=1) @ rows / mass)
    centre_x = float(digit.sum(axis=0) @ cols / mass)
    y = min(max(round(CENTRE - centre_y), 0), IMAGE_SIZE - height)
    x = min(max(round(CENTRE - centre_x), 0), IMAGE_SIZE - width)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    canvas[y : y + height, x : x + width] = digit
    return canvas


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """The digit's bounding box: strong ink without lone specks, widened to its faint edges."""
    strong = ink > 0.4
    # A strong pixel counts when at least two of its eight neighbours are strong too.
    height, width = strong.shape
    padded = np.zeros((height + 2, width + 2), np.int8)  # not np.pad: its import costs 50 ms of start-up
    padded[1:-1, 1:-1] = strong
    neighbours = sum(
        padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    core = strong & (neighbours >= 2)
    if not core.any():
        core = strong
    if not core.any():
        raise NoDigitError("no digit found: no stroke stands out")
    top, bottom, left, right = _bounds(core)
    # Anti-aliased edges lie just outside the strong core: take them, but nothing further away.
    margin = math.ceil(0.1 * max(bottom - top, right - left))
    window = (max(0, top - margin), min(height, bottom + margin), max(0, left - margin), min(width, right + margin))
    wt, wb, wl, wr = window
    top, bottom, left, right = _bounds(ink[wt:wb, wl:wr] > 0)
    return wt + top, wt + bottom, wl + left, wl + right


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def render_ascii(digit: np.ndarray) -> str:
    """The 28x28 input as text art, darkest to brightest, so a person sees what the model saw."""
    shades = " .:-=+*#%@"
    levels = np.clip((np.asarray(digit) * (len(shades) - 1)).round().astype(int), 0, len(shades) - 1)
    return "\n".join("".join(shades[v] * 2 for v in row) for row in levels)
