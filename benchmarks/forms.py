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


def paper_frame(ink_uint8: np.ndarray, size: tuple[int, int], fill: float = 0.6, rng=None) -> np.ndarray:
    """A camera frame (RGB uint8, `size` = (width, height)) of grey paper lit unevenly, with the ink
    (one digit or a line of them, MNIST's polarity) written dark across `fill` of its width."""
    rng = rng or np.random.default_rng(0)
    width, height = size
    ink_height, ink_width = ink_uint8.shape
    scale = min(fill * width / ink_width, 0.8 * height / ink_height)
    drawn = (max(1, round(ink_width * scale)), max(1, round(ink_height * scale)))
    ink = np.asarray(Image.fromarray(ink_uint8).resize(drawn, Image.BILINEAR), np.float32) / 255
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 175 + 25 * (cols / width) - 15 * (rows / height)  # a lamp off to one side
    grey = light + rng.normal(0, 3, (height, width)).astype(np.float32)
    left = (width - drawn[0]) // 2 + int(rng.integers(-width // 20, width // 20 + 1))
    top = (height - drawn[1]) // 2 + int(rng.integers(-height // 20, height // 20 + 1))
    left, top = min(max(left, 0), width - drawn[0]), min(max(top, 0), height - drawn[1])
    grey[top : top + drawn[1], left : left + drawn[0]] *= 1 - 0.75 * ink
    rgb = np.stack([grey, grey * 0.97, grey * 0.92], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8)
