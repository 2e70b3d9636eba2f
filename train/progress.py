"""The training progress bar: steps, time and the metrics, each figure formatted for a person."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

REDRAW_SECONDS = 0.1  # a terminal redraws at most this often


class ProgressBar:
    """One epoch's bar. On a terminal it redraws in place; elsewhere (a log file, a pipe) it writes
    its final state once, so logs stay one line per epoch."""

    def __init__(self, steps: int, stream: TextIO | None = None, width: int = 30,
                 clock: Callable[[], float] = time.perf_counter):
        self.steps, self.width = steps, width
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.clock = clock
        self.start = self._drawn = clock()

    def update(self, step: int, metrics: dict[str, str]) -> None:
        """Args: step: steps done (1..steps); metrics: name -> figure, already formatted."""
        now = self.clock()
        done = step >= self.steps
        if not done and (not self.interactive or now - self._drawn < REDRAW_SECONDS):
            return
        self._drawn = now
        filled = self.width * step // self.steps
        bar = "=" * max(filled - 1, 0) + (">" if filled < self.width else "=") + "." * (self.width - filled)
        elapsed = now - self.start
        timing = f"{elapsed:.0f}s" if done else f"ETA {elapsed / step * (self.steps - step):.0f}s"
        figures = "".join(f" - {name}: {value}" for name, value in metrics.items())
        line = f"{step}/{self.steps} [{bar}] {timing}{figures}"
        self.stream.write(("\r" + line + "\x1b[K" if self.interactive else line) + ("\n" if done else ""))
        self.stream.flush()
