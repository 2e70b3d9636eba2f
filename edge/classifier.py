"""Task code: digits in, predictions out. The interpreter plumbing is in `runtime`."""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from .contract import IMAGE_SIZE
from .errors import ImageError, UnsureError
from .picture import Box, ImageSource
from .preprocess import FoundDigits, preprocess_image, read_digits
from .runtime import TFLiteModel
from .segment import MAX_DIGITS


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
        digit = int(np.argmax(probabilities))
        return cls(digit, float(probabilities[digit]), tuple(float(p) for p in probabilities))

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
    Raises:
      ModelError: the model cannot be used.
    """

    def __init__(self, model_path: str | os.PathLike[str], runtime: str = "auto", threads: Optional[int] = None,
                 interpreters: int = 1):
        if interpreters < 1:
            raise ValueError(f"interpreters must be at least 1 (got {interpreters})")
        self.model, self.interpreters = TFLiteModel(model_path, runtime=runtime, threads=threads), interpreters
        self._idle: queue.SimpleQueue[TFLiteModel] = queue.SimpleQueue()
        self._idle.put(self.model)
        for _ in range(interpreters - 1):
            self._idle.put(TFLiteModel(model_path, runtime=runtime, threads=threads))

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
        return [Prediction.from_probabilities(p) for p in self._predict(np.stack(digits))]

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
        return self.reading(read_digits(item, max_digits)).assured(min_confidence)

    def reading(self, found: FoundDigits) -> NumberReading:
        """The number in digits found by `preprocess.read_digits`: one batched inference."""
        predictions = tuple(Prediction.from_probabilities(p) for p in self._predict(np.stack(found.inputs)))
        return NumberReading("".join(str(p.digit) for p in predictions), predictions, found.boxes, found.inputs)

    def _predict(self, digits: np.ndarray) -> np.ndarray:
        """Probabilities from an interpreter no other thread is using meanwhile."""
        model = self._idle.get()
        try:
            return model.predict(digits)
        finally:
            self._idle.put(model)
