"""Touching digits read whole: the line reader.

The segmenter cuts a line by its column profile, which cannot tell two narrow digits that touch from
one wide digit. The line reader is a second model, exported beside the digit model
(`model.tflite` -> `model.lines.tflite`, with its own manifest): an LSTM that reads a group of
touching digits column by column (the contract's `line_layout`) and answers, at each of its steps,
the probabilities of the ten digits and of CTC's blank. Its reading is the most probable class at
each step, repeats merged and blanks dropped (greedy CTC decoding), so the count of digits is the
model's own answer, never a guess from the group's width.

Where the group's shape is known, the greedy reading is checked against the reader's other likely
readings (CTC prefix beam search: each reading's probability summed over every way of aligning it),
each weighed by how likely a group that wide is to hold that many digits (`count_evidence`): a
narrow 1 the greedy reading merges into its neighbour, or a digit it reads twice at a junction,
costs a reading whose count does not fit the group's width.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .contract import BLANK, LINE_CLASSES, LINE_HEIGHT, NUM_CLASSES
from .errors import ModelError
from .runtime import TFLiteModel

LINES_SUFFIX = ".lines.tflite"
# A group of n touching digits, cropped to its ink, is about ASPECT_BASE + ASPECT_PER_DIGIT * n times
# as wide as it is high, give or take SPREAD_BASE + SPREAD_PER_DIGIT * n: measured on numbers of the
# offline sample's training digits touching by 1-3 pixels, as `read_digits` finds them (n = 2-6: mean
# 1.36, 1.76, 2.27, 2.65, 3.22; spread 0.25, 0.31, 0.35, 0.39, 0.41). tests/edge/test_lines.py
# measures it again.
ASPECT_BASE, ASPECT_PER_DIGIT = 0.43, 0.46
SPREAD_BASE, SPREAD_PER_DIGIT = 0.17, 0.04
# How much the count's evidence weighs against the reader's own probabilities (log scale). On touching
# numbers of held-out digits on paper (not the benchmark's: 300 each of seeds 7, 11 and 13, 1,000 of
# seed 5), 0.5 read 1.6-2.7 points more of them whole than greedy decoding; on seed 7, 1.0 gained 0.6
# and 2.0 lost 3.7.
COUNT_WEIGHT = 0.5
BEAM = 8  # readings kept at each step of the beam search
UNLIKELY = 1e-3  # a digit less probable than this at a step does not start or continue a reading there


def lines_path(model_path: str | os.PathLike[str]) -> str:
    """Where the line reader of a digit model lies: `model.tflite` -> `model.lines.tflite`."""
    return os.path.splitext(os.fspath(model_path))[0] + LINES_SUFFIX


@dataclass(frozen=True)
class LineDigit:
    """One digit of a group, as the line reader read it.

    Attributes:
      digit: 0-9.
      probabilities: the ten digits' probabilities at the step where this one is surest (with the
        blank's, they sum to 1: a digit the reader half takes for a gap is half sure).
      centre: where it lies, in columns of the reader's input (the middle of its steps).
    """

    digit: int
    probabilities: np.ndarray
    centre: float


def ctc_digits(probabilities: np.ndarray, columns_per_step: float) -> list[LineDigit]:
    """Greedy CTC decoding of one group.

    Args:
      probabilities: (steps, 11) float, the ten digits then the blank, per step.
      columns_per_step: the reader's input columns each step reads.
    Returns:
      the digits read, left to right.
    """
    best = probabilities.argmax(axis=-1)
    starts = np.flatnonzero(np.diff(best, prepend=-1) != 0)
    stops = np.append(starts[1:], len(best))
    digits = []
    for start, stop in zip(starts.tolist(), stops.tolist()):
        label = int(best[start])
        if label == BLANK:
            continue
        surest = start + int(np.argmax(probabilities[start:stop, label]))
        digits.append(LineDigit(label, np.asarray(probabilities[surest, :NUM_CLASSES], np.float32),
                                (start + stop) / 2 * columns_per_step))
    return digits


def count_evidence(count: int, aspect: float) -> float:
    """The log-likelihood, up to a constant, that a group `aspect` times as wide as high holds
    `count` digits."""
    mean, spread = ASPECT_BASE + ASPECT_PER_DIGIT * count, SPREAD_BASE + SPREAD_PER_DIGIT * count
    return -0.5 * ((aspect - mean) / spread) ** 2 - math.log(spread)


def ctc_readings(probabilities: np.ndarray, beam: int = BEAM) -> list[tuple[tuple[int, ...], float, tuple[int, ...]]]:
    """The likeliest readings of one group by CTC prefix beam search.

    Args:
      probabilities: (steps, 11) float, the ten digits then the blank, per step.
    Returns:
      (digits, probability, the step each digit starts at), likeliest first; the probabilities are
      relative (rescaled at every step), comparable between the readings of one group only.
    """
    # reading -> (probability of it so far ending in a blank, ending in its last digit, start steps)
    beams: dict[tuple[int, ...], tuple[float, float, tuple[int, ...]]] = {(): (1.0, 0.0, ())}
    for step, p in enumerate(probabilities.astype(np.float64)):
        blank, likely = float(p[BLANK]), (p[:NUM_CLASSES] > UNLIKELY).nonzero()[0].tolist()
        grown: dict[tuple[int, ...], list] = {}
        for reading, (ends_blank, ends_digit, starts) in beams.items():
            _grow(grown, reading, (ends_blank + ends_digit) * blank, 0.0, starts)
            last = reading[-1] if reading else None
            for digit in likely:
                q = float(p[digit])
                if digit == last:  # the same digit again: its run goes on, or after a blank a new one
                    _grow(grown, reading, 0.0, ends_digit * q, starts)
                    if ends_blank:
                        _grow(grown, (*reading, digit), 0.0, ends_blank * q, (*starts, step))
                else:
                    _grow(grown, (*reading, digit), 0.0, (ends_blank + ends_digit) * q, (*starts, step))
        kept = sorted(grown.items(), key=lambda item: -(item[1][0] + item[1][1]))[:beam]
        total = sum(e[0] + e[1] for _, e in kept) or 1.0  # rescaled: 64 steps would underflow
        beams = {reading: (e[0] / total, e[1] / total, e[2]) for reading, e in kept}
    return sorted(((r, b + d, s) for r, (b, d, s) in beams.items()), key=lambda item: -item[1])


def _grow(grown: dict, reading: tuple[int, ...], ends_blank: float, ends_digit: float, starts: tuple[int, ...]) -> None:
    """Add one way of reaching `reading` at this step: the same reading by another alignment sums
    with it, keeping the likelier alignment's start steps."""
    entry = grown.get(reading)
    if entry is None:
        grown[reading] = [ends_blank, ends_digit, starts, ends_blank + ends_digit]
        return
    if ends_blank + ends_digit > entry[3]:
        entry[2], entry[3] = starts, ends_blank + ends_digit
    entry[0] += ends_blank
    entry[1] += ends_digit


def read_group(probabilities: np.ndarray, columns_per_step: float, aspect: Optional[float] = None) -> list[LineDigit]:
    """One group's digits: the greedy reading (`ctc_digits`), or, given the group's aspect, the
    likeliest of the beam's readings once each is weighed by `count_evidence`.

    Args:
      probabilities: (steps, 11) float, the ten digits then the blank, per step.
      columns_per_step: the reader's input columns each step reads.
      aspect: the group's width over its height (`preprocess.LineLayout.aspect`); None: greedy only.
    """
    greedy = ctc_digits(probabilities, columns_per_step)
    if aspect is None:
        return greedy

    def score(reading: tuple[tuple[int, ...], float, tuple[int, ...]]) -> float:
        digits, probability, _ = reading
        if not digits or probability <= 0.0:
            return -math.inf
        return math.log(probability) + COUNT_WEIGHT * count_evidence(len(digits), aspect)

    best = max(ctc_readings(probabilities), key=score, default=None)
    if best is None or score(best) == -math.inf or list(best[0]) == [d.digit for d in greedy]:
        return greedy
    digits, _, starts = best
    ends = (*starts[1:], len(probabilities))
    found = []
    for digit, start, end in zip(digits, starts, ends):
        surest = start + int(np.argmax(probabilities[start:end, digit]))
        found.append(LineDigit(digit, np.asarray(probabilities[surest, :NUM_CLASSES], np.float32),
                               (surest + 0.5) * columns_per_step))
    return found


class LineModel(TFLiteModel):
    """A line reader (`[batch, 28, width]` in, `[batch, steps, 11]` probabilities out) in an interpreter.

    Raises:
      ModelError: missing, foreign, truncated or wrongly shaped model; manifest mismatch.
    """

    def _check_shapes(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
        if len(in_shape) != 3 or in_shape[1] != LINE_HEIGHT or in_shape[2] < 4 * LINE_HEIGHT:
            raise ModelError(f"{self.path}: input shape {list(in_shape)} is not [batch, 28, width] (a line reader)")
        if len(out_shape) != 3 or out_shape[2] != LINE_CLASSES or not 0 < out_shape[1] <= in_shape[2]:
            raise ModelError(f"{self.path}: output shape {list(out_shape)} is not [batch, steps, 11]")

    def predict(self, lines: np.ndarray, batch_size: int = 1) -> np.ndarray:
        """Probabilities (N, steps, 11) for lines (N, 28, width), one line an invoke: the graph's
        reshapes are made for its batch of one (XNNPACK fails to prepare it resized)."""
        return super().predict(lines, batch_size)

    @property
    def width(self) -> int:
        """The input's columns."""
        return self.item_shape[1]

    @property
    def columns_per_step(self) -> float:
        return self.item_shape[1] / self.answer_shape[0]

    def read(self, lines: np.ndarray, aspects: Optional[list[float]] = None) -> list[list[LineDigit]]:
        """Each line's digits.

        Args:
          lines: float32 (N, 28, width) in [0, 1], laid out by `preprocess.line_layout`.
          aspects: each line's group's aspect (`LineLayout.aspect`), weighing its readings' digit
            counts (`read_group`); None: greedy decoding.
        """
        aspects = aspects or [None] * len(lines)
        return [read_group(p, self.columns_per_step, a) for p, a in zip(self.predict(lines), aspects)]
