"""Pillow's resampling of a float image, as two small matrix products.

A digit's ink is brought to the model's 20 pixels, and a group of touching digits to the line
reader's 28 rows, by Pillow's LANCZOS or BILINEAR filter. On images this small Pillow's own
resize of a mode "F" image costs more in its set-up and copies than in its arithmetic (~150 us
for 94x68 -> 14x20 here, half of laying a digit out). The same filter taps, computed once per
pair of sizes, applied as two products, do the same sums in 40% of the time; the answers are
Pillow's within a float32's last bits (the sums' order differs: tests/edge/test_resample.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np

LANCZOS, BILINEAR = "lanczos", "bilinear"
# OpenBLAS multiplies matrices on one thread below this many multiply-adds (its SMP_THRESHOLD_MIN,
# 65536, times GEMM_MULTITHREAD_THRESHOLD, 4), on every core above it: measured here, a product's
# CPU time over its wall time was 1.00 at 200,000 multiply-adds, 2.00 at 360,000 (two cores).
ONE_THREAD_PRODUCT = 262_144


def _lanczos(x: float) -> float:
    if x == 0.0:
        return 1.0
    if -3.0 <= x < 3.0:
        return 3.0 * math.sin(math.pi * x) * math.sin(math.pi * x / 3.0) / (math.pi * math.pi * x * x)
    return 0.0


def _bilinear(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


FILTERS = {LANCZOS: (_lanczos, 3.0), BILINEAR: (_bilinear, 1.0)}


@functools.lru_cache(maxsize=512)  # digits come in a few dozen sizes
def taps(size_in: int, size_out: int, name: str) -> np.ndarray:
    """The (size_out, size_in) float64 weights Pillow's `precompute_coeffs` gives one axis."""
    function, support = FILTERS[name]
    scale = size_in / size_out
    stretch = max(scale, 1.0)  # a reduction widens the filter to cover every input pixel
    support *= stretch
    weights = np.zeros((size_out, size_in))
    for out in range(size_out):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        count = min(int(centre + support + 0.5), size_in) - first
        row = [function((x + first - centre + 0.5) / stretch) for x in range(count)]
        total = sum(row)
        weights[out, first : first + count] = [w / total for w in row] if total != 0.0 else row
    weights.flags.writeable = False  # shared between calls and threads
    return weights


def resize(image: np.ndarray, size: tuple[int, int], name: str, blas: bool = False) -> np.ndarray:
    """`image` (float32 (h, w)) resized to `size` (width, height) as Pillow's resize of a mode "F"
    image with that filter: across first, rounded to float32, then down.

    Args:
      blas: multiply by BLAS where it stays on one thread (a digit's products in half einsum's
        time here: 84x62 -> 15x20, 28 us against 71 us), else by einsum (no BLAS: a second core
        taken for nothing, see preprocess._least_squares). The two sum in different orders, a
        float32's last bit apart: the line reader's training lines (`train.numbers`, through
        `preprocess.line_layout`) keep einsum's, so that a reader trained again is the same reader.
    """
    width, height = size
    out = image
    if width != image.shape[1]:
        across = taps(image.shape[1], width, name)
        pixels = out.astype(np.float64)
        if blas and pixels.size * width < ONE_THREAD_PRODUCT:
            out = (pixels @ across.T).astype(np.float32)
        else:
            out = np.einsum("ij,kj->ik", pixels, across).astype(np.float32)
    if height != image.shape[0]:
        down = taps(image.shape[0], height, name)
        pixels = out.astype(np.float64)
        if blas and pixels.size * height < ONE_THREAD_PRODUCT:
            out = (down @ pixels).astype(np.float32)
        else:
            out = np.einsum("ij,jk->ik", down, pixels).astype(np.float32)
    return out
