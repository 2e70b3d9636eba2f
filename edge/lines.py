"""Touching digits read whole: the line reader.

The segmenter cuts a line by its column profile, which cannot tell two narrow digits that touch from
one wide digit. The line reader is a second model, exported beside the digit model
(`model.tflite` -> `model.lines.tflite`, with its own manifest): an LSTM that reads a group of
touching digits column by column (the contract's `line_layout`) and answers, at each of its steps,
the probabilities of the ten digits and of CTC's blank. Its reading is the most probable class at
each step, repeats merged and blanks dropped (greedy CTC decoding), so the count of digits is the
model's own answer, never a guess from the group's width.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .contract import BLANK, LINE_CLASSES, LINE_HEIGHT, NUM_CLASSES
from .errors import ModelError
from .runtime import TFLiteModel

LINES_SUFFIX = ".lines.tflite"


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

    def read(self, lines: np.ndarray) -> list[list[LineDigit]]:
        """Each line's digits.

        Args:
          lines: float32 (N, 28, width) in [0, 1], laid out by `preprocess.line_layout`.
        """
        return [ctc_digits(p, self.columns_per_step) for p in self.predict(lines)]
