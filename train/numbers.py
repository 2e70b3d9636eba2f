"""Numbers written by hand, made from single digits: what the line reader trains on, and what the
numbers benchmark reads (from held-out digits). numpy and Pillow only.

A number is 1 to 6 digits side by side on one line, each scaled by 0.85-1.15 and moved up or down by
up to 3 of its 28 pixels, with gaps between them that are separated (2-12 pixels) or touching (the
digits' columns overlap by 1-3 pixels, so strokes often meet).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from lstm_edge.edge.contract import LINE_HEIGHT, PIXEL_MAX
from lstm_edge.edge.preprocess import line_layout

GAPS = {"separated": (2, 12), "touching": (-3, -1)}
# The line reader's numbers: mostly touching (what it is for), some separated or mixed (a group
# cut wrongly), and a share of single digits (which it must read as one: a wide 0 or a 2 with a tail).
LENGTH_SHARES = {1: 0.15, 2: 0.25, 3: 0.2, 4: 0.2, 5: 0.1, 6: 0.1}
GAP_SHARES = {"touching": 0.6, "mixed": 0.2, "close": 0.2}
GAP_RANGES = {"touching": (-3, -1), "mixed": (-4, 12), "close": (0, 5)}
MAX_LENGTH = max(LENGTH_SHARES)


def distorted(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit (28x28 uint8) as another hand might write it: turned by up to 12 degrees, slanted
    by up to a quarter of its height, and 15% narrower or wider (about its centre)."""
    angle, slant, widen = np.deg2rad(rng.uniform(-12, 12)), rng.uniform(-0.25, 0.25), rng.uniform(0.85, 1.15)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    inverse = np.linalg.inv(turn @ np.array([[1.0, slant], [0.0, 1.0]]) @ np.diag([widen, 1.0]))
    centre = np.array([13.5, 13.5])
    shift = centre - inverse @ centre
    coefficients = (inverse[0, 0], inverse[0, 1], shift[0], inverse[1, 0], inverse[1, 1], shift[1])
    return np.asarray(Image.fromarray(digit).transform((28, 28), Image.AFFINE, coefficients, Image.BILINEAR))


def compose(digits: list[np.ndarray], gaps: list[int], rng: np.random.Generator, augment: bool = False) -> np.ndarray:
    """Digits (28x28 uint8, ink light) side by side on one line, with scale and baseline jitter.

    Args:
      gaps: the pixels between each digit's ink and the next one's (negative: they overlap).
      augment: each digit `distorted` first (training numbers).
    Returns:
      uint8 (height, width), the line with a margin of 8 pixels.
    """
    pieces = []
    for digit in digits:
        if augment:
            turned = distorted(digit, rng)
            digit = turned if turned.any() else digit
        columns = np.flatnonzero(digit.max(axis=0) > 0)
        crop = digit[:, columns[0] : columns[-1] + 1]
        scale = rng.uniform(0.85, 1.15)
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(28 * scale)))
        pieces.append((np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR)), int(rng.integers(-3, 4))))
    margin = 8
    height = 2 * margin + max(p.shape[0] for p, _ in pieces)
    width = 2 * margin + sum(p.shape[1] for p, _ in pieces) + sum(gaps)
    canvas = np.zeros((height, width), np.uint8)
    x = margin
    for (piece, shift), gap in zip(pieces, [*gaps, 0]):
        y = (height - piece.shape[0]) // 2 + shift
        region = canvas[y : y + piece.shape[0], x : x + piece.shape[1]]
        np.maximum(region, piece, out=region)
        x += piece.shape[1] + gap
    return canvas


def random_number(x: np.ndarray, y: np.ndarray, length: int, gaps: tuple[int, int],
                  rng: np.random.Generator, augment: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A number of `length` random digits from (x, y), gaps drawn from the range `gaps`.

    Returns:
      (its line, uint8 as `compose` makes it; its digits' labels).
    """
    index = rng.integers(0, len(x), length)
    line = compose(list(x[index]), [int(g) for g in rng.integers(gaps[0], gaps[1] + 1, length - 1)], rng, augment)
    return line, np.asarray(y[index], np.int32)


def line_examples(x: np.ndarray, y: np.ndarray, count: int, width: int, rng: np.random.Generator,
                  augment: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numbers for the line reader, laid out as the edge lays out a group (`line_layout`).

    Args:
      augment: the share of numbers whose digits are `distorted`.

    Returns:
      (lines float32 (count, 28, width), labels int32 (count, MAX_LENGTH) padded with 0,
      lengths int32 (count,)).
    """
    lines = np.zeros((count, LINE_HEIGHT, width), np.float32)
    labels = np.zeros((count, MAX_LENGTH), np.int32)
    lengths = np.zeros(count, np.int32)
    kinds, kind_p = list(GAP_SHARES), list(GAP_SHARES.values())
    sizes, size_p = list(LENGTH_SHARES), list(LENGTH_SHARES.values())
    for k in range(count):
        length = int(rng.choice(sizes, p=size_p))
        line, digits = random_number(x, y, length, GAP_RANGES[kinds[rng.choice(len(kinds), p=kind_p)]], rng,
                                     augment=bool(rng.random() < augment))
        lines[k] = line_layout(line.astype(np.float32) / PIXEL_MAX, width).input
        labels[k, :length], lengths[k] = digits, length
    return lines, labels, lengths
