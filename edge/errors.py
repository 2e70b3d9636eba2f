"""The edge package's expected failures. Each message says what is wrong with the input; the
command lines add what to type instead (edge.cli.describe)."""

from __future__ import annotations


class EdgeError(Exception):
    """An expected failure of the edge runtime (bad image, bad model)."""


class ModelError(EdgeError):
    """The model file is missing, not TFLite, or breaks the model contract."""


class ImageError(EdgeError):
    """The input could not be turned into the model's digits."""


class NoDigitError(ImageError):
    """The image holds no ink: answering with a digit would be a guess."""


class SeveralDigitsError(ImageError):
    """The image holds several digits where one was expected: answering one would be a guess."""

    def __init__(self, count: int):
        super().__init__(f"{count} digits found where one was expected")
        self.count = count


class TooManyDigitsError(ImageError):
    """More digit-shaped pieces than a number may have: noise or a text, not one number."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} digits found")
        self.limit = limit


class UnsureError(ImageError):
    """The model's answer is less sure than the caller asked for: a reading to check by eye, not to
    act on."""

    def __init__(self, answer: str, confidence: float, minimum: float):
        super().__init__(f"unsure: {answer} has confidence {confidence:.1%}, under the minimum {minimum:.1%}")
        self.confidence, self.minimum = confidence, minimum
