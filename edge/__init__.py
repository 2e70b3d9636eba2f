"""lstm-edge's edge runtime: classify handwritten digits with a TFLite interpreter, numpy and Pillow.

It imports nothing of the training side and never TensorFlow (but as a last-resort interpreter).
"""

from .classifier import DigitClassifier, Prediction
from .errors import EdgeError, ImageError, ModelError, NoDigitError
from .preprocess import IMAGE_SIZE, LABELS, preprocess_image, scale_pixels

__all__ = [
    "DigitClassifier",
    "Prediction",
    "EdgeError",
    "ImageError",
    "ModelError",
    "NoDigitError",
    "IMAGE_SIZE",
    "LABELS",
    "preprocess_image",
    "scale_pixels",
]
