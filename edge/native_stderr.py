"""What native code (C++ interpreters, TensorFlow, TFLM) writes to file descriptor 2, redirected for
a moment: Python's own errors still raise. A leaf module: the runtimes, export and training use it."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def native_stderr_silenced():
    """Send what C++ writes to file descriptor 2 to /dev/null for a moment."""
    with open(os.devnull, "wb") as null, native_stderr_to(null):
        yield


@contextlib.contextmanager
def native_stderr_to(file):
    """Send what C++ writes to file descriptor 2 into `file` (an open binary file) for a moment."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        yield
        return
    try:
        os.dup2(file.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
