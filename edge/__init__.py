"""lstm-edge's edge runtime: classify handwritten digits with a TFLite interpreter, numpy and Pillow.

It imports nothing of the training side and never TensorFlow (but as a last-resort interpreter).
"""

from .classifier import DigitClassifier, NumberReading, Prediction
from .errors import EdgeError, ImageError, ModelError, NoDigitError, SeveralDigitsError
from .preprocess import IMAGE_SIZE, LABELS, find_digits, preprocess_image, scale_pixels

__all__ = [
    "DigitClassifier",
    "Prediction",
    "NumberReading",
    "EdgeError",
    "ImageError",
    "ModelError",
    "NoDigitError",
    "SeveralDigitsError",
    "IMAGE_SIZE",
    "LABELS",
    "preprocess_image",
    "find_digits",
    "scale_pixels",
]
