"""The edge package's expected failures: each becomes one line on stderr in the CLI."""


class EdgeError(Exception):
    """An expected failure of the edge runtime (bad image, bad model)."""


class ImageError(EdgeError):
    """The input could not be turned into a 28x28 digit."""


class NoDigitError(ImageError):
    """The image holds no ink: answering with a digit would be a guess."""


class ModelError(EdgeError):
    """The model file is missing, not TFLite, or breaks the model contract."""


class SeveralDigitsError(ImageError):
    """The image holds several digits where one was expected: answering one would be a guess."""
