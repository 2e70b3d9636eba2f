"""A decoded input at the scales the pipeline reads it: what `preprocess` finds the digits in.

The model sees each digit at the *work scale*: the picture reduced by area (Pillow's BOX filter) so
that its long side is at most WORK_SIZE, never enlarged. A large picture is not brought to the work
scale whole: `preprocess` first looks for the ink in a small copy (`finder`, about FINDER_SIZE
long), then asks for the work-scale pixels of the region that holds it and of the thin frame
along the edges where the paper is measured (`gray`). Each of those pixels is resampled as the
whole work-scale picture has it (to Pillow's rounding: a grey level, here and there), so what the
model sees does not depend on the region.
A camera frame goes straight in as a numpy array; a JPEG decodes at the smallest DCT scale that
still leaves the work scale its pixels.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from typing import Any, Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import jpeg
from .contract import PIXEL_MAX
from .errors import ImageError, NoDigitError

# Refuse before decoding: a 100 MP image would take seconds and gigabytes to decode.
MAX_PIXELS = 50_000_000
# Photos are reduced to this long side before the ink is searched for; a digit needs no more.
WORK_SIZE = 512
# The finder's long side: enough to see where digits are, a few percent of the work scale's pixels.
FINDER_SIZE = 128
# Work-scale pictures up to this many pixels are taken whole: a finder would save too little.
SMALL_PICTURE = 160_000
# A uint8 frame up to this many pixels is converted to grey whole (a 1080p frame in about 2 ms);
# a larger one only where the pipeline looks: a 12 MP frame whole would take 10 ms and more.
GREY_WHOLE_PIXELS = 2_500_000
_PIXEL_MAX = np.array(PIXEL_MAX, np.float32)  # as an operand: a 0-d array costs NumPy less than a scalar
EXIF_ORIENTATION = 0x0112
ORIENTATION_SOURCES = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")  # Pillow's getexif reads these
DRAFT_MODES = ("L", "RGB", "CMYK", "YCbCr")  # what JPEG's DCT scaling can decode straight to grey
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels, as PIL has boxes
ImageSource = Union[str, "os.PathLike[str]", bytes, Image.Image, np.ndarray, Any]


class Picture:
    """An input's grey levels in [0, 1] (float32), at the work scale.

    Attributes:
      original_size: (width, height) in the input's own pixels, EXIF orientation applied.
      decoded_size: (width, height) as decoded (a JPEG's DCT scaling makes it smaller).
      work_size: (width, height) at the work scale: at most WORK_SIZE long, or less (`reduced`).
    """

    scalable = False  # whether `reduced` can bring it to a smaller work scale than the default

    def __init__(self, original_size: tuple[int, int], work_size: tuple[int, int]):
        self.original_size, self.decoded_size, self.work_size = original_size, work_size, work_size
        self._whole: Optional[np.ndarray] = None

    @property
    def small(self) -> bool:
        """Small enough to be taken whole, without a finder."""
        return self.work_size[0] * self.work_size[1] <= SMALL_PICTURE

    def gray(self, box: Optional[Box] = None) -> np.ndarray:
        """The work-scale grey levels of `box` (work-scale pixels; None: all of them), float32 (h, w)."""
        if self.small and self._whole is None:
            self._whole = self._resample(None)
        if self._whole is not None:
            return self._whole if box is None else self._whole[box[1] : box[3], box[0] : box[2]]
        return self._resample(box)

    def finder(self) -> tuple[np.ndarray, float]:
        """A small grey copy (about FINDER_SIZE long) to look for the ink in, and how many of the
        input's own pixels one of its pixels spans."""
        raise NotImplementedError

    def reduced(self, factor: int) -> Picture:
        """The same picture whose work scale is its decoded pixels averaged in factor x factor blocks."""
        raise NotImplementedError

    def _resample(self, box: Optional[Box]) -> np.ndarray:
        raise NotImplementedError


def work_size(size: tuple[int, int], limit: int = WORK_SIZE) -> tuple[int, int]:
    """The (width, height) of a picture of `size` reduced to `limit` long: Pillow's thumbnail sizes."""
    width, height = size
    if width <= limit and height <= limit:
        return size
    aspect = width / height
    if aspect <= 1:  # as Image.thumbnail rounds: the nearer of floor and ceil, by the aspect they keep
        return _round_aspect(limit * aspect, lambda n: abs(aspect - n / limit)), limit
    return limit, _round_aspect(limit / aspect, lambda n: 0 if n == 0 else abs(aspect - limit / n))


def _round_aspect(number: float, key) -> int:
    return max(min(math.floor(number), math.ceil(number), key=key), 1)


class _Resampled(Picture):
    """A picture whose work scale is any reduction of its decoded pixels: by default the whole
    picture resampled by area to WORK_SIZE long; `reduced`, an integer block average, which is
    exact box by box and several times cheaper."""

    scalable = True

    def __init__(self, original_size: tuple[int, int], decoded_size: tuple[int, int]):
        super().__init__(original_size, work_size(decoded_size))
        self.decoded_size, self.factor = decoded_size, 0  # 0: resampled to work_size, not block-averaged
        self._finder: Optional[tuple[int, np.ndarray]] = None  # (factor, pixels): an exact block average

    def reduced(self, factor: int) -> Picture:
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.factor, twin._whole = factor, None
        twin.work_size = (math.ceil(self.decoded_size[0] / factor), math.ceil(self.decoded_size[1] / factor))
        if self._finder is not None and self._finder[0] == factor:  # the finder is that reduction already
            twin._whole = self._finder[1]
        return twin

    def _source_box(self, box: Box) -> tuple[float, float, float, float]:
        """The decoded pixels a work-scale box covers (floats, at the default scale)."""
        if self.factor:
            width, height = self.decoded_size
            return (box[0] * self.factor, box[1] * self.factor, min(width, box[2] * self.factor),
                    min(height, box[3] * self.factor))
        sx, sy = self.decoded_size[0] / self.work_size[0], self.decoded_size[1] / self.work_size[1]
        return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


class _GreyImage(_Resampled):
    """An 8-bit grey PIL image at its decoded size, resampled to the work scale a box at a time."""

    def __init__(self, image: Image.Image, original_size: tuple[int, int]):
        super().__init__(original_size, image.size)
        self.image = image

    def _resample(self, box: Optional[Box]) -> np.ndarray:
        box = box or (0, 0, *self.work_size)
        if self.factor > 1:
            region = self.image.reduce(self.factor, box=tuple(int(v) for v in self._source_box(box)))
        elif self.image.size == self.work_size:
            region = self.image.crop(box)
        else:
            region = self.image.resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.BOX,
                                       box=self._source_box(box))
        return _levels(region)

    def finder(self) -> tuple[np.ndarray, float]:
        factor = max(1, math.ceil(max(self.image.size) / FINDER_SIZE))
        small = _levels(self.image.reduce(factor))
        self._finder = factor, small
        return small, factor * self.original_size[0] / self.image.width


class _PixelArray(_Resampled):
    """A large uint8 camera frame, (H, W) grey or (H, W, 3) RGB, kept as the caller's array: only
    the pixels a box needs are converted, as Pillow would convert the whole frame."""

    small = False  # however small its work scale, the whole frame would have to be converted

    def __init__(self, array: np.ndarray):
        height, width = array.shape[:2]
        super().__init__((width, height), (width, height))
        self.array = array

    def _resample(self, box: Optional[Box]) -> np.ndarray:
        box = box or (0, 0, *self.work_size)
        height, width = self.array.shape[:2]
        x0, y0, x1, y1 = self._source_box(box)
        if self.factor > 1:
            region = _grey_image(self.array[int(y0) : int(y1), int(x0) : int(x1)]).reduce(self.factor)
            return _levels(region)
        # The source pixels the box's BOX filter reads, and a pixel more: the same sums as the whole frame's.
        left, top = max(0, math.floor(x0) - 1), max(0, math.floor(y0) - 1)
        right, bottom = min(width, math.ceil(x1) + 1), min(height, math.ceil(y1) + 1)
        region = _grey_image(self.array[top:bottom, left:right])
        region = region.resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.BOX,
                               box=(x0 - left, y0 - top, x1 - left, y1 - top))
        return _levels(region)

    def finder(self) -> tuple[np.ndarray, float]:
        # Every `step`-th pixel, then averaged in blocks: a stroke wider than `step` source pixels
        # shows. At the work scale a narrower one would be under a pixel wide, too thin to read.
        height, width = self.array.shape[:2]
        step = max(1, max(width, height) // (2 * FINDER_SIZE))
        sampled = _grey_image(self.array[::step, ::step])
        factor = max(1, math.ceil(max(sampled.size) / FINDER_SIZE))
        small = _levels(sampled.reduce(factor))
        return small, step * factor


class WholePicture(Picture):
    """Brought to the work scale whole: transparent, 16-bit and float pictures, whose grey levels
    depend on the whole picture (the backdrop a transparent canvas gets)."""

    def __init__(self, gray: np.ndarray, original_size: Optional[tuple[int, int]] = None):
        size = (gray.shape[1], gray.shape[0])
        super().__init__(original_size or size, size)
        self._whole = gray

    def reduced(self, factor: int) -> Picture:
        return self


def _levels(image: Image.Image) -> np.ndarray:
    """An 8-bit grey image's levels in [0, 1], float32: its bytes as they are, then one division
    (what `np.asarray(image, np.float32) / PIXEL_MAX` gives, in half the time on small images)."""
    pixels = np.frombuffer(image.tobytes(), np.uint8).reshape(image.height, image.width)
    return np.divide(pixels, _PIXEL_MAX, dtype=np.float32)


def _grey_image(array: np.ndarray) -> Image.Image:
    """A uint8 (H, W) or (H, W, 3) array as an 8-bit grey PIL image (Pillow's own RGB -> L)."""
    array = np.ascontiguousarray(array)  # Pillow copies a strided array byte by byte: 15 ms for 5 MB
    if array.ndim == 2:
        return Image.fromarray(array, "L")
    return Image.fromarray(array, "RGB").convert("L")


def open_picture(source: ImageSource) -> Picture:
    """Decode an input, refusing empty, foreign, truncated and oversized files.

    Args:
      source: a path, the bytes of an image file, a binary file object, a PIL image, or a numpy
        array (H, W) or (H, W, 3|4), uint8 0-255 or float 0-1.
    Raises:
      ImageError: it cannot be read (NoDigitError: it is wholly transparent).
    """
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _from_image(source, source.size)
    image, original_size = _decode(source)
    return _from_image(image, original_size)


def _decode(source) -> tuple[Image.Image, tuple[int, int]]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not source:
            raise ImageError("empty input: zero bytes")
        plain = _plain_jpeg(bytes(source))
        if plain is not None:
            return plain
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
            with open(path, "rb") as file:
                data = file.read(len(jpeg.START))
                if data == jpeg.START:  # a JPEG: read whole (decoding reads it all anyway)
                    data += file.read()
        except OSError as e:
            raise ImageError(f"cannot open: {e.strerror or e}") from None
        if data.startswith(jpeg.START):
            plain = _plain_jpeg(data)
            if plain is not None:
                return plain
            source = io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS decides, below
            image = Image.open(source)
    except Image.DecompressionBombError:
        raise ImageError(f"the image claims more pixels than Pillow will decode (a decompression bomb?); "
                         f"the limit is {MAX_PIXELS / 1e6:.0f} MP") from None
    except UnidentifiedImageError:
        raise ImageError("not an image Pillow can read") from None
    except OSError as e:
        raise ImageError(f"cannot open: {e.strerror or e}") from None
    width, height = size = image.size
    _check_pixels(size)
    try:
        if image.mode in DRAFT_MODES:  # JPEG decodes straight to grey, and smaller (other formats ignore it)
            image.draft("L", _draft_size(size))
        image.load()
        decoded = image.size
        if _may_be_turned(image) and image.getexif().get(EXIF_ORIENTATION, 1) != 1:  # stored turned: turn it
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as e:
        raise ImageError(f"truncated or corrupt image ({e})") from None
    return image, (height, width) if image.size != decoded else size


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"image is {width}x{height} ({width * height / 1e6:.0f} MP); "
                         f"the limit is {MAX_PIXELS / 1e6:.0f} MP")


def _draft_size(size: tuple[int, int]) -> tuple[int, int]:
    """What a JPEG is decoded to at least: the smallest DCT scale (1/2, 1/4, 1/8) leaving the long
    side at least WORK_SIZE. (A 4032x3024 photo at 1/8, 504 px, decodes in 10% less time than at
    1/4, 1008 px, but 1080p frames decoded to 480 px lost 4 numbers of 60 for none gained: not
    worth it.)"""
    keep = WORK_SIZE / max(size)  # both sides at least this share of their size
    return math.ceil(size[0] * keep), math.ceil(size[1] * keep)


def _plain_jpeg(data: bytes) -> Optional[tuple[Image.Image, tuple[int, int]]]:
    """A plain JPEG (`jpeg`) decoded to grey as `Image.open` and `draft` would, without their
    Python; None for any other file."""
    size = jpeg.plain_size(data)
    if size is None:
        return None
    _check_pixels(size)
    try:
        return jpeg.decode_grey(data, size, jpeg.dct_scale(size, _draft_size(size))), size
    except (OSError, ValueError) as e:
        raise ImageError(f"truncated or corrupt image ({e})") from None


def _may_be_turned(image: Image.Image) -> bool:
    """Whether the image holds what `getexif` reads an orientation from (EXIF, a PNG's raw profile,
    TIFF tags, XMP): reading none costs more than the rest of a small JPEG's header."""
    return hasattr(image, "tag_v2") or any(key in image.info for key in ORIENTATION_SOURCES)


def _from_image(image: Image.Image, original_size: tuple[int, int]) -> Picture:
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if has_alpha or image.mode.startswith("I") or image.mode == "F":
        return WholePicture(_whole_gray(image, has_alpha), original_size)
    return _GreyImage(image if image.mode == "L" else image.convert("L"), original_size)


def _from_array(array: np.ndarray) -> Picture:
    if array.ndim == 3 and array.shape[-1] in (3, 4) and min(array.shape[:2]) >= 1:
        if array.dtype != np.uint8:
            array = _float_to_uint8(array)
        if array.shape[-1] == 3:
            return _from_pixels(array)
        return _from_image(Image.fromarray(np.ascontiguousarray(array), "RGBA"), (array.shape[1], array.shape[0]))
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(f"an image array must be (H, W) or (H, W, 3|4); got shape {array.shape}")
    if array.dtype == np.uint8:
        return _from_pixels(array)
    return _from_image(Image.fromarray(_unit_float(array), "F"), (array.shape[1], array.shape[0]))


def _from_pixels(array: np.ndarray) -> Picture:
    """A uint8 frame: converted to grey whole when that is cheap, else kept and converted by the box."""
    height, width = array.shape[:2]
    if width * height <= GREY_WHOLE_PIXELS:
        return _GreyImage(_grey_image(array), (width, height))
    return _PixelArray(array)


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


def median(values: np.ndarray, overwrite: bool = False) -> float:
    """The (upper) median; np.median drags in numpy.ma, 12 ms of a cold start.

    Args:
      overwrite: `values` (1-D) may be reordered, as np.median's overwrite_input: no copy is made."""
    if not (overwrite and values.ndim == 1):
        values = values.flatten()  # a copy to partition in place (np.partition's wrapper costs as much again)
    middle = len(values) // 2
    values.partition(middle)
    return float(values[middle])


def _whole_gray(image: Image.Image, has_alpha: bool) -> np.ndarray:
    """The grey levels of a transparent, 16-bit or float picture at the work scale; a transparent
    canvas goes on a backdrop that contrasts with its ink, so white ink on it does not vanish on white."""
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
    if max(image.size) > WORK_SIZE:
        image = image.copy()
        image.thumbnail((WORK_SIZE, WORK_SIZE), Image.Resampling.BOX)
    if not has_alpha:
        return np.asarray(image, dtype=np.float32)
    alpha = np.asarray(image, dtype=np.float32)[..., 3] / PIXEL_MAX
    gray = np.asarray(image.convert("RGB").convert("L"), dtype=np.float32) / PIXEL_MAX
    if alpha.max() < 0.5:
        raise NoDigitError("no digit found: the image is transparent")
    backdrop = 1.0 if median(gray[alpha >= 0.5]) < 0.5 else 0.0
    return gray * alpha + backdrop * (1.0 - alpha)
