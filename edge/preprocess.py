"""Any picture to the model's input, by MNIST's own recipe (the contract itself is `contract`):
decode (`picture`), find the ink, cut one line into digits (`segment`), and lay each digit out as
MNIST did. Each stage is timed, so a user on a Pi sees where the time goes (`edge-classify -v`).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np

from .contract import CENTRE, FIT_SIZE, IMAGE_SIZE, LINE_HEIGHT, LINE_INK_HEIGHT, LINE_MARGIN
from .errors import NoDigitError, SeveralDigitsError
from .picture import IMAGE_EXTENSIONS, Box, ImageSource, Picture, WholePicture, median, open_picture
from .resample import BILINEAR, LANCZOS, ONE_THREAD_PRODUCT, resize
from .segment import EDGE, MAX_DIGITS, STRONG, segment_digits, touching_runs

__all__ = ["IMAGE_EXTENSIONS", "Box", "ImageSource", "FoundDigits", "TouchingGroup", "read_digits", "find_digits",
           "preprocess_image", "ink_map", "mnist_layout", "line_layout", "render_ascii"]

# Ink weaker than this (fraction of full scale, after the background is removed) is no digit.
MIN_CONTRAST = 0.15
# Unless the background is perfectly flat (MNIST), normalised ink below this is paper texture or
# compression ringing, not ink; flat images keep every level.
TEXTURE_FLOOR = 0.1
# In the finder, normalised ink above this marks where the digits are: far below STRONG, since
# the finder's averaging dims thin strokes (at 0.25, and a finder half as large, 1080p frames lost
# a digit's edge now and then). Ink that still runs past the region's edge makes it the whole picture.
FINDER_INK = 0.15
# A line of digits is worked on reduced by the largest whole factor that leaves it at least this
# many pixels tall. The model reads a 20-pixel digit, but measured against the full work scale on
# held-out digits (1,000 per form, 600 numbers), lines of 32 to 48 pixels cost a measurable few:
# 9 single digits lost for 1 gained in 640x480 frames, 12 touching numbers lost for 2 gained on
# paper; at 72 none beyond noise (3 for 0, and 2 for 1). A 1080p frame's number is then a quarter
# of the pixels, a 12 MP photo of a page held close a ninth.
LINE_PIXELS = 72
STAGES = ("decode", "ink", "segment", "layout")
FRAME_SAMPLES = 4096  # the frame's pixels the paper is measured on, at most (every step-th one)


def operand(value: float, dtype=np.float32) -> np.ndarray:
    """A scalar as a 0-d array of `dtype`, for a ufunc on an array of that dtype (the pipeline's
    float32 levels): the same result as the bare scalar, which NumPy casts to the array's dtype
    too, without the look at its value that NumPy 1.x takes on every call for a Python number (a
    third of a small call's time: 2.4 us against 3.6 us for a 94x46 compare, AMD EPYC Zen 1)."""
    return np.array(value, dtype)


def _constant(value: float, dtype=np.float32) -> np.ndarray:
    """An operand shared between calls and threads: read-only."""
    array = operand(value, dtype)
    array.flags.writeable = False
    return array


_ZERO, _HALF, _ONE = _constant(0.0), _constant(0.5), _constant(1.0)
_STRONG, _TEXTURE_FLOOR = _constant(STRONG), _constant(TEXTURE_FLOOR)
_CORE_NEIGHBOURS = _constant(3, np.int8)  # a strong pixel's 3x3 square holding this many strong pixels: core
_POSITIONS = np.arange(IMAGE_SIZE, dtype=np.float64)  # a laid-out digit's rows' and columns' numbers
_POSITIONS.flags.writeable = False


@dataclass(frozen=True)
class TouchingGroup:
    """Digits that may touch (`segment.touching_runs`), kept whole for a line reader: a group of
    strokes wider than one digit, which the segmenter cut by its column profile (or left whole), or
    digits whose strokes come within a few pixels of each other.

    Attributes:
      first, count: the digits are FoundDigits' inputs[first : first + count].
      ink: float32 (h, w) in [0, 1], their ink alone (other digits' strokes removed).
      origin: where the ink's pixel (0, 0) lies in the input's own pixels, ...
      per: ... and how many of the input's pixels one of the ink's spans, (across, down).
    """

    first: int
    count: int
    ink: np.ndarray
    origin: tuple[float, float]
    per: tuple[float, float]

    def box(self, left: float, right: float) -> Box:
        """The input's pixels under the ink's columns left to right (the group's full height)."""
        (x0, y0), (sx, sy) = self.origin, self.per
        return (math.floor(x0 + left * sx), math.floor(y0), math.ceil(x0 + right * sx),
                math.ceil(y0 + self.ink.shape[0] * sy))


@dataclass(frozen=True)
class FoundDigits:
    """The digits of one line of handwriting, as the model will see them.

    Attributes:
      inputs: each digit's (28, 28) float32 model input, left to right.
      boxes: each digit's (left, top, right, bottom) in the input's own pixels.
      seconds: each stage's wall time, (stage, seconds) for the STAGES.
      touching: the groups wider than a digit, whole, left to right: a line reader
        (`DigitClassifier` with a reader beside its model) reads them again as touching digits.
    """

    inputs: tuple[np.ndarray, ...]
    boxes: tuple[Box, ...]
    seconds: tuple[tuple[str, float], ...]
    touching: tuple[TouchingGroup, ...] = ()

    def single(self) -> np.ndarray:
        """The one digit's model input.

        Raises:
          SeveralDigitsError: several digits were found: one answer for them would be a guess.
        """
        if len(self.inputs) > 1:
            raise SeveralDigitsError(len(self.inputs))
        return self.inputs[0]


def preprocess_image(source: ImageSource) -> np.ndarray:
    """Turn a picture of one digit into the model's input, by MNIST's own recipe.

    Args:
      source: a path, the bytes of an image file, a binary file object, a PIL image, or a numpy
        array (H, W) or (H, W, 3|4), uint8 0-255 or float 0-1: a camera frame goes in as it is.
    Returns:
      float32 array (28, 28) in [0, 1], ink light on dark.
    Raises:
      ImageError: the source is not a readable image (NoDigitError: it holds no ink), or it
        holds several digits (SeveralDigitsError): one answer for them would be a guess.
    """
    return read_digits(source).single()


def find_digits(source: ImageSource, max_digits: int = MAX_DIGITS) -> tuple[list[np.ndarray], list[Box]]:
    """Each digit of one line of handwriting as the model's input, left to right: `read_digits`'
    inputs and boxes, as lists."""
    found = read_digits(source, max_digits)
    return list(found.inputs), list(found.boxes)


def read_digits(source: ImageSource, max_digits: int = MAX_DIGITS) -> FoundDigits:
    """Each digit of one line of handwriting as the model's input, left to right, with its box and
    the time each stage took.

    Args:
      source: as for preprocess_image.
      max_digits: more digit-sized shapes than this is an error.
    Raises:
      ImageError: unreadable, no ink (NoDigitError), several lines, more than max_digits digits
        (TooManyDigitsError).
    """
    clock = [time.perf_counter()]
    picture = open_picture(source)
    clock.append(time.perf_counter())
    ink, (left, top), picture = ink_map(picture)
    clock.append(time.perf_counter())
    segments = segment_digits(ink, max_digits)
    if not segments:
        raise NoDigitError("no digit found: no stroke stands out")
    clock.append(time.perf_counter())
    inputs = tuple(mnist_layout(g.ink) for g in segments)
    clock.append(time.perf_counter())
    sx = picture.original_size[0] / picture.work_size[0]
    sy = picture.original_size[1] / picture.work_size[1]
    boxes = tuple((math.floor((left + g.left) * sx), math.floor((top + g.top) * sy),
                   math.ceil((left + g.right) * sx), math.ceil((top + g.bottom) * sy)) for g in segments)
    touching = tuple(TouchingGroup(run.first, run.count, run.whole.ink,
                                   ((left + run.whole.left) * sx, (top + run.whole.top) * sy), (sx, sy))
                     for run in touching_runs(segments))
    return FoundDigits(inputs, boxes, tuple(zip(STAGES, (b - a for a, b in zip(clock, clock[1:])))), touching)


def ink_map(picture: Picture) -> tuple[np.ndarray, tuple[int, int], Picture]:
    """Find the ink: grey levels with the paper removed, ink 1 and background 0, at the scale the
    digits need, in the region of the picture that holds them.

    Handles either polarity and slow background changes (shadows, uneven light). The finder
    (`_finder_view`) sets the work scale from the line's height, and the region: outside it there
    is no ink. A picture the finder sees no ink in is searched whole.

    Returns:
      (float32 array (h, w) in [0, 1], the region's (left, top) in work-scale pixels, the picture
      at the work scale used).
    Raises:
      NoDigitError: nothing stands out from the background.
    """
    region = None
    seen = _finder_view(picture) if picture.scalable else None
    if seen is not None:
        (left, top, right, bottom), line_height, finder_paper, finder_gray, finder_ink, finder_peak = seen
        # The line's height as decoded, and the whole factor that leaves it LINE_PIXELS tall or more;
        # used when it reduces more than the default work scale does.
        factor = math.floor(line_height * picture.decoded_size[0] / picture.original_size[0] / LINE_PIXELS)
        if factor > 1 and max(picture.decoded_size) / factor <= max(picture.work_size):
            picture = picture.reduced(factor)
        per = picture.work_size[0] / picture.original_size[0]  # work-scale pixels per pixel of the input
        margin = EDGE + 2  # a stroke's faint edge lies beyond the finder's box
        region = (max(0, math.floor(left * per) - margin), max(0, math.floor(top * per) - margin),
                  min(picture.work_size[0], math.ceil(right * per) + margin),
                  min(picture.work_size[1], math.ceil(bottom * per) + margin))
    width, height = picture.work_size
    # When the work scale is the finder's own reduction (a photo of one digit), its paper is
    # measured and its ink found already.
    reused = seen is not None and picture.small and picture.gray() is finder_gray
    paper = finder_paper if reused else Paper.measure(picture)
    found, peak = (finder_ink, finder_peak) if reused else (None, None)
    whole = (0, 0, width, height)
    box = region or whole
    ink = _normalised_ink(picture, paper, box, found, peak)
    # Reused, the region is the finder's own box around all its ink (FINDER_INK and above, well
    # below STRONG), widened: no stroke can reach its edges.
    if box != whole and not reused and _reaches_inner_edge(ink, box, picture.work_size):
        box = whole  # the finder missed ink that goes on past its region: search it all
        ink = _normalised_ink(picture, paper, box, found, peak)
    return ink, box[:2], picture


def _normalised_ink(picture: Picture, paper: Paper, box: Box, found: np.ndarray | None = None,
                     peak: float | None = None) -> np.ndarray:
    """The ink of a box, scaled so that strong strokes reach 1, texture below TEXTURE_FLOOR cleared.

    Args:
      found: the whole work scale's ink as `paper.ink` has it, when it is at hand (else it is made).
      peak: found's k-th largest value (k below), when it is known. The box then holds every value
        that high (the finder's region holds all its strong ink), so its own k-th largest is the same.
    Raises:
      NoDigitError: nothing stands out from the background.
    """
    width, height = picture.work_size

    def raw(box: Box) -> np.ndarray:
        if found is not None:
            return found[box[1] : box[3], box[0] : box[2]]
        return paper.ink(picture.gray(box), box)

    ink = raw(box)
    k = max(1, width * height // 2000)  # the k-th largest of the picture: one hot pixel does not set the scale
    if ink.size < k:
        ink = raw((0, 0, width, height))
    if peak is None:
        peak = _kth_largest(ink, k)
    if peak - paper.noise < MIN_CONTRAST:
        raise NoDigitError("no digit found: nothing stands out from the background")
    ink = np.subtract(ink, operand(paper.noise), dtype=np.float32)  # a new array: `raw` may hand out a view
    np.divide(ink, operand(peak - paper.noise), out=ink)
    if paper.textured:  # not a flat synthetic background (MNIST): paper texture, JPEG ringing
        np.minimum(ink, _ONE, out=ink)
        ink *= ink >= _TEXTURE_FLOOR  # cleared, and all below 0 with it (a product: quicker than a mask's assignment)
    else:
        np.clip(ink, _ZERO, _ONE, out=ink)
    return ink


def _reaches_inner_edge(ink: np.ndarray, box: Box, size: tuple[int, int]) -> bool:
    """Whether a stroke touches an edge of the box that is not the picture's own edge."""
    edges = []
    if box[0] > 0:
        edges.append(ink[:, 0])
    if box[1] > 0:
        edges.append(ink[0])
    if box[2] < size[0]:
        edges.append(ink[:, -1])
    if box[3] < size[1]:
        edges.append(ink[-1])
    return bool(edges) and float(np.concatenate(edges).max()) > STRONG


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest value.

    k is a few thousandths of the values: the k-th largest of every step-th value is a bound no
    greater than the answer, and the values at or above it, about as few as the sample, are all
    that is sorted (selecting the values above the noise first took longer than the sort)."""
    flat = values.ravel()
    step = math.isqrt(len(flat) // k)
    if step > 2:
        sample = flat[::step].copy()  # (np.partition's own copy, without its wrapper)
        sample.partition(len(sample) - k)
        flat = flat[flat >= sample[len(sample) - k, ...]]  # a new array (the bound a 0-d operand: see operand)
    else:
        flat = flat.copy()
    flat.partition(len(flat) - k)
    return float(flat[len(flat) - k])


@dataclass(frozen=True)
class Paper:
    """What the frame of a picture (its outer 2%, where the paper is) says about the paper: which
    way round the ink is, the paper's level under it, and its noise.

    Attributes:
      size: the work-scale (width, height) the level is fitted over.
      invert: dark ink on light paper: the grey levels are turned over to make ink high.
      level: the paper's level, flat (one value) or a quadratic surface (six coefficients of 1, y,
        x, y^2, x^2, xy over coordinates from -0.5 to 0.5).
      noise: the level above which lies ink, not paper texture (after the level is removed).
      textured: the frame is not perfectly flat (a photo or scan, not a synthetic digit).
    """

    size: tuple[int, int]
    invert: bool
    level: tuple[float, ...]
    noise: float
    textured: bool

    @classmethod
    def measure(cls, picture: Picture) -> Paper:
        width, height = picture.work_size
        frame = _frame(width, height)
        if picture.small or isinstance(picture, WholePicture):  # its pixels are at hand: index them
            sample = picture.gray().ravel()[frame.index]
        else:
            sample = np.concatenate([picture.gray(b).ravel() for b in frame.strips])[:: frame.step]
        # Dark ink on light paper: the (upper) median is over 0.5, that is, so are n - n // 2 values or more.
        invert = np.count_nonzero(sample > _HALF) >= len(sample) - len(sample) // 2
        ink = _ONE - sample if invert else sample
        if frame.terms is None:  # small images (MNIST itself, small scans): a flat level
            level = (median(ink),)
            noise = _noise_level(ink - np.float32(level[0]))
        else:
            # A smooth surface fitted to the frame follows a shadow or a light fall-off across the
            # page, and, unlike a filter over the interior, cannot mistake a bold stroke for paper.
            # Least squares by the 6x6 normal equations (the terms are well scaled): fit, then refit
            # without the frame pixels that are ink (a digit may touch the edge).
            terms = frame.terms
            coefficients = _least_squares(terms, ink, frame.projection)
            fitted = _fitted(coefficients, terms).astype(np.float32)
            residual = ink - fitted
            noise = _noise_level(residual)  # reordered: recomputed below
            ink_pixels = np.subtract(ink, fitted, out=residual) > operand(noise)
            if np.count_nonzero(ink_pixels):  # (most photos' frames hold none: their fit stands)
                coefficients = _least_squares(terms, ink, kept=terms * ~ink_pixels)
                noise = _noise_level(ink - _fitted(coefficients, terms).astype(np.float32))
            level = tuple(coefficients.tolist())
        textured = bool(np.maximum.reduce(sample) > np.minimum.reduce(sample))  # (ufuncs: not .max's wrapper)
        return cls((width, height), invert, level, max(0.0, noise), textured)

    def ink(self, gray: np.ndarray, box: Box) -> np.ndarray:
        """The ink of `gray`, the work-scale pixels of `box`: turned ink-up, the paper's level removed.

        Dark ink is (1 - gray) - level, computed as (1 - level) - gray: the surface's own terms
        turned over, then one pass over the pixels, all in float32 (the levels are 8-bit; a float64
        surface took 3.5x as long on a 112x112 finder)."""
        if len(self.level) == 1:
            return (np.float32(1.0 - self.level[0]) - gray) if self.invert else (gray - np.float32(self.level[0]))
        if self.invert:
            surface = self._surface(box, tuple(-c for c in self.level), 1.0)
            return np.subtract(surface, gray, out=surface)
        surface = self._surface(box, self.level)
        return np.subtract(gray, surface, out=surface)

    def _surface(self, box: Box, level: tuple[float, ...], offset: float = 0.0):
        """offset + the quadratic with coefficients `level` on the box's pixels, float32.

        The quadratic is [1, y, y^2] C [1, x, x^2]^T (C holds the coefficients): a product of
        three terms a pixel, by BLAS in bands of rows small enough for it to stay on one thread
        (see resample.ONE_THREAD_PRODUCT), in a third of the time of building it in 2-D passes
        over the pixels (each a loop per row: 60 us for a 112x112 finder, 19 us so, measured on
        AMD EPYC Zen); within a float32's last bit of those passes' sums."""
        c0, cy, cx, cyy, cxx, cxy = level
        rows, columns = _powers(*self.size)
        rows = rows[box[1] : box[3]]
        coefficients = np.array([[offset + c0, cx, cxx], [cy, cxy, 0.0], [cyy, 0.0, 0.0]], np.float32)
        across = coefficients @ columns[:, box[0] : box[2]]  # (3, width): C [1, x, x^2]^T
        surface = np.empty((len(rows), across.shape[1]), np.float32)
        band = max(1, ONE_THREAD_PRODUCT // (3 * across.shape[1]))
        for start in range(0, len(rows), band):
            np.matmul(rows[start : start + band], across, out=surface[start : start + band])
        return surface


@functools.lru_cache(maxsize=32)
def _powers(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The quadratic's terms of a picture's rows, (height, 3) [1, y, y^2], and of its columns,
    (3, width) [1, x, x^2], coordinates from -0.5 to 0.5, float32."""
    y = (np.arange(height) / max(height - 1, 1) - 0.5).astype(np.float32)
    x = (np.arange(width) / max(width - 1, 1) - 0.5).astype(np.float32)
    rows, columns = np.stack([np.ones_like(y), y, y * y], axis=1), np.stack([np.ones_like(x), x, x * x])
    rows.flags.writeable = columns.flags.writeable = False  # shared between calls and threads
    return rows, columns


def _least_squares(terms: np.ndarray, values: np.ndarray, projection: np.ndarray | None = None,
                   kept: np.ndarray | None = None) -> np.ndarray:
    """The coefficients c fitting c @ terms to values: by the 6x6 normal equations (the terms are
    well scaled; `projection`, their solution's matrix, when the terms are a frame's own), or, where
    they are singular (a picture one pixel high), by a full least squares.

    A product of a matrix and a vector is einsum's here, not BLAS's: OpenBLAS shares one this
    size (gemv, 4096 x 6) with its other threads, which then spin for milliseconds after it,
    waiting for more: one more core taken at 100% for nothing (`edge-classify` measured 1.9 cores
    busy for one core's work; a server's clients, and `--jobs`, need that core).

    Args:
      kept: the terms with the columns of the pixels left out of the fit zeroed: a refit without
        them (two thirds of the time of selecting the other pixels' columns, for a finder's frame).
    """
    values = values.astype(np.float64)
    if projection is not None:
        return np.einsum("ij,j->i", projection, values)
    if kept is None:
        kept = terms
    right = np.einsum("ij,j->i", kept, values)
    try:
        return np.linalg.solve(kept @ terms.T, right)  # gemm: 6x6xN stays on one thread
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(kept.T, values, rcond=None)[0]  # a left-out pixel's row is 0: it weighs nothing


def _fitted(coefficients: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """The fitted surface, c @ terms, at the terms' pixels (einsum, not BLAS: see _least_squares)."""
    return np.einsum("i,ij->j", coefficients, terms)


@dataclass(frozen=True)
class _Frame:
    """The frame of a (width, height) picture: its outer 2% (at least a pixel), where the paper is,
    taken as four strips (top, bottom, left, right), and every step-th of its pixels measured.

    Attributes:
      strips: the four boxes.
      step: every step-th frame pixel is measured (a large picture's frame holds tens of thousands).
      index: the measured pixels' indices in the whole picture's raveled pixels.
      terms: (6, pixels) the quadratic's terms 1, y, x, y^2, x^2, xy at those pixels, coordinates
        from -0.5 to 0.5; None where the picture is small enough (64 or less) for a flat level.
      projection: (6, pixels) the inverse of terms @ terms.T (the normal equations' matrix) times
        the terms, which turns the pixels' values into the coefficients fitting them; None where
        that matrix is singular (a picture one pixel high) or there are no terms.
    """

    strips: tuple[Box, ...]
    step: int
    index: np.ndarray
    terms: np.ndarray | None
    projection: np.ndarray | None


@functools.lru_cache(maxsize=32)  # frames of one camera, or one scanner, are all of one size
def _frame(width: int, height: int) -> _Frame:
    edge = max(1, round(0.02 * min(width, height)))
    strips = ((0, 0, width, edge), (0, height - edge, width, height), (0, 0, edge, height),
              (width - edge, 0, width, height))
    rows = np.concatenate([np.repeat(np.arange(b[1], b[3]), b[2] - b[0]) for b in strips])
    cols = np.concatenate([np.tile(np.arange(b[0], b[2]), b[3] - b[1]) for b in strips])
    step = math.ceil(len(rows) / FRAME_SAMPLES)
    rows, cols = rows[::step], cols[::step]
    index = rows * width + cols
    terms = projection = None
    if max(width, height) > 64:
        y, x = rows / max(height - 1, 1) - 0.5, cols / max(width - 1, 1) - 0.5
        terms = np.stack([np.ones_like(y), y, x, y * y, x * x, x * y])
        gram = terms @ terms.T
        if np.linalg.cond(gram) < 1e8:  # singular where the frame is one row or column (1, y, y^2 alike)
            projection = np.linalg.inv(gram) @ terms
    for array in (index, terms, projection):
        if array is not None:
            array.flags.writeable = False  # shared between calls and threads
    return _Frame(strips, step, index, terms, projection)


def _finder_view(picture: Picture) -> tuple[Box, float, Paper, np.ndarray, np.ndarray, float] | None:
    """Where the ink is (with two finder pixels around it: they are coarse) and how tall its line
    is, in the input's own pixels, from the finder: the same recipe on a copy about FINDER_SIZE
    long; and the finder's paper, pixels, ink and its peak (as `_normalised_ink` takes it). None
    when the finder sees no ink (then the picture is searched whole, at the default work scale)."""
    small, span = picture.finder()
    height, width = small.shape
    paper = Paper.measure(WholePicture(small))
    ink = paper.ink(small, (0, 0, width, height))
    peak = _kth_largest(ink, max(1, ink.size // 2000))
    if peak - paper.noise < MIN_CONTRAST:
        return None
    strong = ink > operand(paper.noise + FINDER_INK * (peak - paper.noise))
    any_of = np.logical_or.reduce  # what .any(axis) calls, without its Python wrapper
    rows, cols = any_of(strong, axis=1).nonzero()[0].tolist(), any_of(strong, axis=0).nonzero()[0]
    # The line's height: the tallest run of rows with ink (a speck above it is a run of its own).
    tallest, first = rows[-1] - rows[0] + 1, rows[0]
    if tallest > len(rows):  # not one run of rows (most photos of a digit are)
        tallest = 0
        for above, row in zip(rows, rows[1:] + [rows[-1] + 2]):
            if row - above > 1:
                tallest, first = max(tallest, above - first + 1), row
    line_height = float(tallest) * span
    box = (max(0, math.floor((int(cols[0]) - 2) * span)), max(0, math.floor((rows[0] - 2) * span)),
           math.ceil((int(cols[-1]) + 3) * span), math.ceil((rows[-1] + 3) * span))
    return box, line_height, paper, small, ink, peak


def _noise_level(values: np.ndarray) -> float:
    """Median plus four robust standard deviations: above it lies ink, not paper texture.

    `values` (1-D, the caller's own) are reordered: partitioned in place."""
    middle = median(values, overwrite=True)
    deviations = np.subtract(values, operand(middle, values.dtype))
    spread = 1.4826 * median(np.abs(deviations, out=deviations), overwrite=True)
    return middle + 4.0 * spread


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
        digit = resize(digit, size, LANCZOS if scale < 1 else BILINEAR, blas=True)
        np.minimum(np.maximum(digit, _ZERO, out=digit), _ONE, out=digit)  # np.clip, without its wrapper's checks
    height, width = digit.shape
    total = np.add.reduce  # what .sum calls, without its Python wrapper
    mass = total(digit, axis=None)
    # Dot products of at most 20 terms: one thread (measured: CPU time 1.00x the wall time; a
    # 50,000-term dot took both cores, see _least_squares).
    centre_y = float(np.dot(total(digit, axis=1), _POSITIONS[:height]) / mass)
    centre_x = float(np.dot(total(digit, axis=0), _POSITIONS[:width]) / mass)
    y = min(max(round(CENTRE - centre_y), 0), IMAGE_SIZE - height)
    x = min(max(round(CENTRE - centre_x), 0), IMAGE_SIZE - width)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    canvas[y : y + height, x : x + width] = digit
    return canvas


@dataclass(frozen=True)
class LineLayout:
    """A group of touching digits as the line reader reads it (the contract: `contract.LINE_HEIGHT`).

    Attributes:
      input: float32 (LINE_HEIGHT, width) in [0, 1].
      left: the column of the group's ink where the input's column 0 lies, ...
      scale: ... and the input's columns per column of the group's ink: column x of the input is
        column left + x / scale of the ink it was laid out from.
      aspect: the group's ink, cropped, as wide as this many times its height (how many digits it
        may hold: `lines.count_evidence`).
    """

    input: np.ndarray
    left: float
    scale: float
    aspect: float


def line_layout(ink: np.ndarray, width: int) -> LineLayout:
    """Crop to the ink, scale it LINE_INK_HEIGHT rows high keeping the aspect ratio (squeezed
    across where it would be wider than the input), and place it LINE_MARGIN from the top left.

    Args:
      ink: float array (H, W) in [0, 1], ink 1 and background 0: one group of digits.
      width: the reader's input width.
    Raises:
      NoDigitError: no stroke stands out.
    """
    top, bottom, left, right = _ink_box(ink)
    group = ink[top:bottom, left:right]
    height, group_width = group.shape
    drawn = max(1, min(width - 2 * LINE_MARGIN, round(group_width * LINE_INK_HEIGHT / height)))
    scaled = resize(group, (drawn, LINE_INK_HEIGHT), BILINEAR)
    canvas = np.zeros((LINE_HEIGHT, width), np.float32)
    canvas[LINE_MARGIN : LINE_MARGIN + LINE_INK_HEIGHT, LINE_MARGIN : LINE_MARGIN + drawn] = np.clip(scaled, 0.0, 1.0)
    scale = drawn / group_width
    return LineLayout(canvas, left - LINE_MARGIN / scale, scale, group_width / height)


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """The digit's bounding box: strong ink without lone specks, widened to its faint edges."""
    strong = ink > (_STRONG if ink.dtype == np.float32 else STRONG)
    # A strong pixel counts when at least two of its eight neighbours are strong too: its 3x3
    # square (a sum over rows, then over columns) holds three strong pixels or more.
    height, width = strong.shape
    padded = np.zeros((height + 2, width + 2), np.int8)  # not np.pad: its import costs 50 ms of start-up
    padded[1:-1, 1:-1] = strong
    across = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    core = strong & (across[:-2] + across[1:-1] + across[2:] >= _CORE_NEIGHBOURS)
    if not np.count_nonzero(core):
        core = strong
    if not np.count_nonzero(core):
        raise NoDigitError("no digit found: no stroke stands out")
    top, bottom, left, right = _bounds(core)
    # Anti-aliased edges lie just outside the strong core: take them, but nothing further away.
    margin = math.ceil(0.1 * max(bottom - top, right - left))
    window = (max(0, top - margin), min(height, bottom + margin), max(0, left - margin), min(width, right + margin))
    wt, wb, wl, wr = window
    top, bottom, left, right = _bounds(ink[wt:wb, wl:wr] > _ZERO)
    return wt + top, wt + bottom, wl + left, wl + right


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.logical_or.reduce(mask, axis=1).nonzero()[0]  # mask.any(axis=1), without its Python wrapper
    cols = np.logical_or.reduce(mask, axis=0).nonzero()[0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def render_ascii(digit: np.ndarray) -> str:
    """The 28x28 input as text art, darkest to brightest, so a person sees what the model saw."""
    shades = " .:-=+*#%@"
    levels = np.clip((np.asarray(digit) * (len(shades) - 1)).round().astype(int), 0, len(shades) - 1)
    return "\n".join("".join(shades[v] * 2 for v in row) for row in levels)
