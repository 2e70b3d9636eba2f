"""TensorFlow's C++ log kept off the user's terminal unless they ask for it.

On a machine without a GPU, importing TensorFlow 2.21 writes oneDNN notes, "Could not find cuda
drivers" and "failed call to cuInit" to file descriptor 2, some of them before absl's logging has
read TF_CPP_MIN_LOG_LEVEL: the variable alone cannot hide them, so the import runs with the
descriptor silenced. Python errors still raise; `--verbose`, or TF_CPP_MIN_LOG_LEVEL set by the
user, leaves everything as TensorFlow writes it.
"""

from __future__ import annotations

import os

USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")  # read before anything of ours sets it


def import_tensorflow_quietly(verbose: bool = False) -> None:
    """Import TensorFlow (once per process) with its C++ log hidden, unless asked for."""
    if verbose or USER_LOG_LEVEL is not None:
        import tensorflow  # noqa: F401

        return
    from lstm_edge.edge.native_stderr import native_stderr_silenced

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # the lines after the import too (cuInit's error)
    with native_stderr_silenced():
        import tensorflow  # noqa: F401
