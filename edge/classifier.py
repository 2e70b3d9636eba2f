"""Task code: digits in, predictions out. The interpreter plumbing is in `runtime`."""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from .contract import IMAGE_SIZE
from .errors import ImageError, NoDigitError, TooManyDigitsError, UnsureError
from .lines import LineDigit, LineModel, lines_path
from .picture import Box, ImageSource
from .preprocess import FoundDigits, TouchingGroup, line_layout, mnist_layout, preprocess_image, read_digits
from .runtime import TFLiteModel
from .segment import MAX_DIGITS

# The segmenter's one digit stays one where the line reader splits it in two, if the digit model is
# at least SURE_ALONE sure of it, the reader less than SURE_SPLIT sure of one of the two, and the group
# narrower than a wide digit (WIDE_DIGIT times its height: single digits the reader split were 1.2-1.8).
# Chosen on 18,000 held-out single digits and 15,600 numbers of 2-6 digits, touching and separated
# (MNIST's test split and the sample's, three image forms, the quickstart's 128-unit reader): single
# digits read as other than one 83 -> 69, numbers lost 2, gained none (the 96-unit reader: 18 -> 9).
SURE_ALONE = 0.8
SURE_SPLIT = 0.5
WIDE_DIGIT = 1.6


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one digit.

    Attributes:
      digit: the most probable class, 0-9.
      confidence: its probability.
      probabilities: the ten class probabilities, by digit.
    """

    digit: int
    confidence: float
    probabilities: tuple[float, ...]

    @classmethod
    def from_probabilities(cls, probabilities: np.ndarray) -> Prediction:
        values = tuple(probabilities.tolist())
        confidence = max(values)
        return cls(values.index(confidence), confidence, values)  # the first most probable, as np.argmax

    def assured(self, min_confidence: float) -> Prediction:
        """This prediction, when its confidence is min_confidence or more.

        Raises:
          UnsureError: it is less sure.
        """
        if self.confidence < min_confidence:
            raise UnsureError(f"the digit {self.digit}", self.confidence, min_confidence)
        return self

    def top_k(self, k: int = 3) -> tuple[tuple[int, float], ...]:
        """The k most probable (digit, probability) pairs, most probable first."""
        order = sorted(range(len(self.probabilities)), key=lambda d: -self.probabilities[d])
        return tuple((d, self.probabilities[d]) for d in order[:k])

    def to_dict(self, top_k: int = 1) -> dict:
        """As `edge-classify --json` prints it (without the path and runtime it adds)."""
        return {"digit": self.digit, "confidence": round(self.confidence, 6),
                "top_k": [{"digit": d, "probability": round(p, 6)} for d, p in self.top_k(top_k)]}


@dataclass(frozen=True)
class NumberReading:
    """A number read from one line of handwritten digits.

    Attributes:
      text: the digits, left to right ("4721": leading zeros kept).
      digits: each digit's Prediction, left to right.
      boxes: each digit's (left, top, right, bottom) in the image's pixels.
      inputs: each digit's 28x28 model input, as the model saw it.
    """

    text: str
    digits: tuple[Prediction, ...]
    boxes: tuple[Box, ...]
    inputs: tuple[np.ndarray, ...]

    @property
    def lowest_confidence(self) -> float:
        """The least sure digit's confidence: the number is as trustworthy as its weakest digit."""
        return min(p.confidence for p in self.digits)

    def assured(self, min_confidence: float) -> NumberReading:
        """This reading, when its least sure digit's confidence is min_confidence or more.

        Raises:
          UnsureError: a digit is less sure; the error names it.
        """
        if self.lowest_confidence < min_confidence:
            weakest = min(range(len(self.digits)), key=lambda i: self.digits[i].confidence)
            raise UnsureError(f"{self.text}'s digit {weakest + 1} ({self.text[weakest]})", self.lowest_confidence,
                              min_confidence)
        return self

    def to_dict(self) -> dict:
        """As `edge-classify --number --json` prints it (without the path and runtime it adds)."""
        return {"number": self.text, "confidence": round(self.lowest_confidence, 6),
                "digits": [{"digit": p.digit, "confidence": round(p.confidence, 6), "box": list(b)}
                           for p, b in zip(self.digits, self.boxes)]}


def as_model_input(item: ImageSource, preprocess: bool = True) -> np.ndarray:
    """One item as the model's (28, 28) float32 input.

    Args:
      item: anything `preprocess_image` reads; with preprocess=False, a ready (28, 28) array in [0, 1].
    Raises:
      ImageError: the item cannot be read, or a ready array breaks the contract.
    """
    if preprocess:
        return preprocess_image(item)
    array = np.asarray(item)
    if array.shape != (IMAGE_SIZE, IMAGE_SIZE) or array.dtype.kind not in "fiub":
        raise ImageError(f"preprocess=False needs a (28, 28) array in [0, 1]; got {array.dtype} {array.shape}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise ImageError("preprocess=False needs values in [0, 1]")
    return array


class DigitClassifier:
    """Classifies handwritten digits with an exported lstm-edge model.

    Safe to share between threads (a web server's, say): every call gets its own answers. Reading
    an image is pure work that threads do side by side; the model's interpreter holds state while it
    runs, so each inference borrows one of `interpreters` interpreters for its duration (1: calls
    take turns; 16 threads on two cores classified as many images per second with 1 as with 2:
    docs/serve.md).

    Args:
      model_path: the `.tflite` model (its manifest, when beside it, is checked).
      runtime: "auto", "litert", "tflite-runtime" or "tensorflow".
      threads: interpreter threads; None lets the runtime choose.
      interpreters: how many inferences may run at once.
      lines: the line reader that reads touching digits whole in `read_number` (`lines`): "auto"
        for the one beside the model when there is one (`model.lines.tflite`), a path, or None for
        none (groups of touching digits are then cut by their column profile alone).
    Raises:
      ModelError: a model cannot be used.
    """

    def __init__(self, model_path: str | os.PathLike[str], runtime: str = "auto", threads: Optional[int] = None,
                 interpreters: int = 1, lines: Optional[str | os.PathLike[str]] = "auto"):
        if interpreters < 1:
            raise ValueError(f"interpreters must be at least 1 (got {interpreters})")
        self.model, self.interpreters = TFLiteModel(model_path, runtime=runtime, threads=threads), interpreters
        self._idle: queue.SimpleQueue[TFLiteModel] = queue.SimpleQueue()
        self._idle.put(self.model)
        for _ in range(interpreters - 1):
            self._idle.put(TFLiteModel(model_path, runtime=runtime, threads=threads))
        if lines == "auto":
            lines = lines_path(model_path) if os.path.isfile(lines_path(model_path)) else None
        self.lines_path = None if lines is None else os.fspath(lines)
        self._line_settings = (runtime, threads)
        self._lines: Optional[LineModel] = None
        self._lines_lock = threading.Lock()
        self._idle_lines: queue.SimpleQueue[LineModel] = queue.SimpleQueue()

    @property
    def lines(self) -> Optional[LineModel]:
        """The line reader (None without one), loaded on first use: a single digit never waits for it
        (loading it took ~55 ms here, a sixth of `edge-classify`'s start).

        Raises:
          ModelError: it cannot be used.
        """
        if self.lines_path is not None and self._lines is None:
            with self._lines_lock:
                if self._lines is None:
                    runtime, threads = self._line_settings
                    models = [LineModel(self.lines_path, runtime=runtime, threads=threads)
                              for _ in range(self.interpreters)]
                    for model in models:
                        self._idle_lines.put(model)
                    self._lines = models[0]
        return self._lines

    @property
    def runtime(self) -> str:
        """The runtime in use, with its version: "litert 2.3.0"."""
        return f"{self.model.runtime.name} {self.model.runtime.version}"

    def classify(self, item: ImageSource, preprocess: bool = True, min_confidence: float = 0.0) -> Prediction:
        """Classify one digit: a path, image bytes, a PIL image or an array.

        Args:
          min_confidence: an answer less sure than this is refused (UnsureError), not returned.
        Returns:
          a Prediction.
        Raises:
          ImageError: the item cannot be read (NoDigitError: it holds no ink; UnsureError: the
            answer is under min_confidence).
        """
        return self.classify_many([item], preprocess=preprocess)[0].assured(min_confidence)

    def probabilities(self, digits: np.ndarray) -> np.ndarray:
        """The model's probabilities for digits already in its form.

        Args:
          digits: float32 (N, 28, 28) in [0, 1].
        Returns:
          float32 (N, 10).
        """
        return self._predict(np.asarray(digits, np.float32))

    def classify_many(self, items: Iterable[ImageSource], preprocess: bool = True) -> list[Prediction]:
        """Classify many digits, batching the inference.

        Returns:
          one Prediction per item, in order.
        Raises:
          ImageError: an item cannot be read (the CLI prepares items one by one to go on past it).
        """
        digits = [as_model_input(item, preprocess) for item in items]
        if not digits:
            return []
        return [Prediction.from_probabilities(p) for p in self._predict(_batch(digits))]

    def read_number(self, item: ImageSource, max_digits: int = MAX_DIGITS,
                    min_confidence: float = 0.0) -> NumberReading:
        """Read the whole number in one line of handwritten digits: each digit found, put through
        MNIST's recipe as a single digit is, and all of them through one batched inference.

        Args:
          min_confidence: a reading whose least sure digit is under this is refused (UnsureError).
            How often a wrong reading is sure anyway: docs/benchmarks.md, "Whole numbers".
        Returns:
          a NumberReading.
        Raises:
          ImageError: unreadable, no ink, several lines, more than max_digits digits, or (UnsureError)
            a digit under min_confidence.
        """
        return self.reading(read_digits(item, max_digits), max_digits).assured(min_confidence)

    def reading(self, found: FoundDigits, max_digits: int = MAX_DIGITS) -> NumberReading:
        """The number in digits found by `preprocess.read_digits`: one batched inference, and with a
        line reader, one more for each run of digits that may touch, which it reads whole; its
        digits stand there, unless it and the segmenter both see one digit, or it splits unsurely
        in two what the segmenter sees as one digit the digit model is sure of (SURE_ALONE,
        SURE_SPLIT, WIDE_DIGIT): the digit model's answer then stands. On touching numbers the
        reader's digits did better than the digit model's even where both counted alike (68%
        against 66% read whole: docs/edge.md)."""
        predictions = [Prediction.from_probabilities(p) for p in self._predict(_batch(found.inputs))]
        boxes, inputs = list(found.boxes), list(found.inputs)
        if found.touching and self.lines is not None:  # the reader is loaded only for a run that needs it
            groups = found.touching
            for group, (aspect, digits) in reversed(list(zip(groups, self._read_lines(groups)))):
                if not digits or len(digits) == group.count == 1:
                    continue  # one digit to both: the digit model's answer stands
                if (group.count == 1 and len(digits) == 2 and aspect < WIDE_DIGIT
                        and predictions[group.first].confidence >= SURE_ALONE
                        and min(float(d.probabilities.max()) for d in digits) < SURE_SPLIT):
                    continue  # a sure digit, split unsurely: it stands
                span = slice(group.first, group.first + group.count)
                predictions[span] = [Prediction.from_probabilities(d.probabilities) for d in digits]
                boxes[span], inputs[span] = _cut(group, digits)
        if len(predictions) > max_digits:  # the reader counted more than the segmenter's limit
            raise TooManyDigitsError(max_digits)
        return NumberReading("".join(str(p.digit) for p in predictions), tuple(predictions), tuple(boxes),
                             tuple(inputs))

    def _read_lines(self, groups: tuple[TouchingGroup, ...]) -> list[tuple[float, list[LineDigit]]]:
        """Each group's aspect (`LineLayout.aspect`) and digits as the line reader reads them,
        centres in the group's ink columns."""
        model = self._idle_lines.get()
        try:
            layouts = [line_layout(g.ink, model.width) for g in groups]
            readings = model.read(np.stack([layout.input for layout in layouts]), [layout.aspect for layout in layouts])
        finally:
            self._idle_lines.put(model)
        return [(layout.aspect, [LineDigit(d.digit, d.probabilities, layout.left + d.centre / layout.scale)
                                 for d in digits]) for layout, digits in zip(layouts, readings)]

    def _predict(self, digits: np.ndarray) -> np.ndarray:
        """Probabilities from an interpreter no other thread is using meanwhile."""
        model = self._idle.get()
        try:
            return model.predict(digits)
        finally:
            self._idle.put(model)


def _batch(digits) -> np.ndarray:
    """(28, 28) digits as one (N, 28, 28) batch: np.array, a fourth of np.stack's time for a few."""
    return np.array(digits, np.float32)


def _cut(group: TouchingGroup, digits: list[LineDigit]) -> tuple[list, list]:
    """Each digit's box and a 28x28 view of it (for a person to see: `edge-classify --show`), the
    group cut halfway between the centres the line reader read the digits at."""
    width = group.ink.shape[1]
    bounds = [0.0, *((a.centre + b.centre) / 2 for a, b in zip(digits, digits[1:])), float(width)]
    boxes, inputs = [], []
    for left, right in zip(bounds, bounds[1:]):
        boxes.append(group.box(left, right))
        piece = group.ink[:, max(0, int(left)) : max(int(left) + 1, min(width, int(np.ceil(right))))]
        try:
            inputs.append(mnist_layout(piece))
        except NoDigitError:  # a cut with no stroke of its own: nothing to show
            inputs.append(np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32))
    return boxes, inputs
