"""lstm-edge's edge runtime: classify handwritten digits with a TFLite interpreter, numpy and Pillow.

It imports nothing of the training side and never TensorFlow (but as a last-resort interpreter).
The names below are imported on first use: training and export import the image contract
(`contract`, numpy only) through this package without loading Pillow or an interpreter.
"""

import importlib

_HOMES = {
    "DigitClassifier": "classifier",
    "Prediction": "classifier",
    "NumberReading": "classifier",
    "EdgeError": "errors",
    "ImageError": "errors",
    "ModelError": "errors",
    "NoDigitError": "errors",
    "SeveralDigitsError": "errors",
    "TooManyDigitsError": "errors",
    "UnsureError": "errors",
    "IMAGE_SIZE": "contract",
    "LABELS": "contract",
    "scale_pixels": "contract",
    "preprocess_image": "preprocess",
    "find_digits": "preprocess",
}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
