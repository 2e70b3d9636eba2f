"""The TFLite interpreters the edge can run a model on: their names, the packages that provide them,
and which are installed. Nothing is imported here (the command lines need the names fast); loading
one is `runtime.load_runtime`'s job.
"""

from __future__ import annotations

import importlib.util

# Best first: LiteRT is maintained and fastest (XNNPACK); tflite-runtime is what older Pi images
# have; TensorFlow only as a last resort, since the edge must never need it. TFLM (tflite-micro)
# shows what a microcontroller would answer; it is only ever used when asked for by name.
AUTO_RUNTIMES = ("litert", "tflite-runtime", "tensorflow")
RUNTIMES = (*AUTO_RUNTIMES, "tflite-micro")
DEVICE_RUNTIMES = ("litert", "tflite-runtime")  # what a device runs (TensorFlow is the training side's)
MODULES = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime", "tensorflow": "tensorflow",
           "tflite-micro": "tflite_micro"}
DISTRIBUTIONS = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime", "tensorflow": "tensorflow",
                 "tflite-micro": "tflite-micro"}


def installed_runtimes() -> list[str]:
    """The runtimes whose package is installed, best first (nothing is imported)."""
    return [name for name in RUNTIMES if importlib.util.find_spec(MODULES[name]) is not None]


def installed_device_runtimes() -> list[str]:
    """The installed runtimes a device would run (LiteRT, tflite-runtime), best first."""
    return [name for name in installed_runtimes() if name in DEVICE_RUNTIMES]
