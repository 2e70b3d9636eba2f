"""The forms a user's digit images come in, made from MNIST-style arrays (ink light on dark, uint8):
the tests and the benchmarks draw them the same way."""

from __future__ import annotations

import numpy as np
from PIL import Image


def paper_photo(ink_uint8: np.ndarray, scale: int = 8, rng=None) -> Image.Image:
    """Dark ink on light, slightly textured paper, upscaled, in RGB (save it as a JPEG)."""
    rng = rng or np.random.default_rng(0)
    height, width = ink_uint8.shape
    big = np.asarray(Image.fromarray(ink_uint8).resize((width * scale, height * scale), Image.BILINEAR), np.float32)
    paper = 235 + rng.normal(0, 4, big.shape)
    ink = paper - big / 255 * 200
    rgb = np.stack([ink, ink * 0.98, ink * 0.95], -1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def off_centre_transparent(ink_uint8: np.ndarray, canvas: int = 300) -> Image.Image:
    """Small black strokes, off-centre on a large transparent canvas (alpha carries the strokes):
    a 28-pixel-high image drawn 56 pixels high, 30 pixels from the top, ending 44 from the right."""
    height, width = ink_uint8.shape
    size = (min(canvas - 50, 2 * width), 2 * height)
    small = np.asarray(Image.fromarray(ink_uint8).resize(size, Image.BILINEAR))
    canvas_width = max(canvas, size[0] + 60)
    rgba = np.zeros((canvas, canvas_width, 4), np.uint8)
    left = canvas_width - 44 - size[0]
    rgba[30 : 30 + size[1], left : left + size[0], 3] = small
    return Image.fromarray(rgba, "RGBA")
