"""edge/resample.py: Pillow's LANCZOS and BILINEAR resize of a float image, as matrix products,
to a float32's last bits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lstm_edge.edge.resample import BILINEAR, LANCZOS, resize

PILLOW = {LANCZOS: Image.Resampling.LANCZOS, BILINEAR: Image.Resampling.BILINEAR}


@pytest.mark.parametrize("blas", [False, True])
@pytest.mark.parametrize("name", [LANCZOS, BILINEAR])
def test_resize_is_pillows_to_a_float32s_last_bit(name, blas):
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(200):
        height, width = (int(n) for n in rng.integers(1, 160, 2))
        image = rng.random((height, width)).astype(np.float32)
        size = (int(rng.integers(1, 2 * width + 2)), int(rng.integers(1, 2 * height + 2)))  # smaller and larger
        ours = resize(image, size, name, blas=blas)
        pillow = np.asarray(Image.fromarray(image, "F").resize(size, PILLOW[name]))
        assert ours.shape == pillow.shape and ours.dtype == np.float32
        scale = np.maximum(np.abs(pillow), 1.0)
        worst = max(worst, float((np.abs(ours - pillow) / scale).max()))
    assert worst <= 2 * np.finfo(np.float32).eps  # the sums' order and rounding differ, nothing else


def test_an_unchanged_size_is_the_image_itself():
    image = np.random.default_rng(1).random((20, 14)).astype(np.float32)
    assert np.array_equal(resize(image, (14, 20), LANCZOS), image)
