"""lstm-edge: an LSTM handwritten-digit classifier, trained (`lstm_edge.train`), exported to a quantized
TFLite model with proven accuracy parity (`lstm_edge.export`), and run on a Raspberry Pi with only a
TFLite interpreter, numpy and Pillow (`lstm_edge.edge`).

    from lstm_edge import DigitClassifier

    prediction = DigitClassifier("model.tflite").classify("digit.png")

The names below come from `lstm_edge.edge` and are imported on first use, so that `import lstm_edge`
(which every console script does first) costs nothing; none of them needs TensorFlow.
"""

import os as _os

# The repository keeps edge/, train/ and export/ at its top; a wheel maps them into this package
# (pyproject.toml, [tool.setuptools] package-dir). In a checkout they lie beside this folder.
if not _os.path.isdir(_os.path.join(__path__[0], "edge")):
    __path__.append(_os.path.dirname(__path__[0]))

__all__ = [
    "DigitClassifier",
    "Prediction",
    "NumberReading",
    "EdgeError",
    "ImageError",
    "NoDigitError",
    "UnsureError",
    "ModelError",
]


def __getattr__(name: str):
    if name in __all__:
        from . import edge

        return getattr(edge, name)  # edge imports each name's module on first use
    raise AttributeError(f"module 'lstm_edge' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
