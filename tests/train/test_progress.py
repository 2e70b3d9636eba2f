"""The training progress bar."""

from __future__ import annotations

import io

from train.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_per_epoch():
    stream = io.StringIO()
    bar = ProgressBar(4, stream, width=8)
    for step in range(1, 5):
        bar.update(step, {"loss": "0.1234", "digits/s": f"{6643.6244:,.0f}"})
    assert stream.getvalue() == "4/4 [========] 0s - loss: 0.1234 - digits/s: 6,644\n"


def test_a_terminal_redraws_in_place():
    stream = Terminal()
    bar = ProgressBar(2, stream, width=4)
    bar._drawn = -1.0  # long ago: the first step draws
    bar.update(1, {"loss": "0.5"})
    bar.update(2, {"loss": "0.25"})
    out = stream.getvalue()
    assert out.startswith("\r1/2 [=>..] ETA") and out.endswith("\r2/2 [====] 0s - loss: 0.25\x1b[K\n")
