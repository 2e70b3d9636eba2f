"""The training progress bar, on a clock the test sets."""

from __future__ import annotations

import io

from lstm_edge.train.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_one_line_per_epoch():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(4, stream, width=8, clock=clock)
    for step in range(1, 5):
        clock.now += 3.0
        bar.update(step, {"loss": "0.1234", "digits/s": f"{6643.6244:,.0f}"})
    assert stream.getvalue() == "4/4 [========] 12s - loss: 0.1234 - digits/s: 6,644\n"


def test_a_terminal_redraws_in_place_with_the_time_left():
    stream, clock = Terminal(), Clock()
    bar = ProgressBar(4, stream, width=4, clock=clock)
    clock.now += 2.0
    bar.update(1, {"loss": "0.5"})  # 2 s for a step: 6 s for the other three
    clock.now += 0.05
    bar.update(2, {"loss": "0.4"})  # within a redraw's interval: not drawn
    clock.now += 5.95
    bar.update(4, {"loss": "0.25"})
    assert stream.getvalue() == ("\r1/4 [>...] ETA 6s - loss: 0.5\x1b[K"
                                 "\r4/4 [====] 8s - loss: 0.25\x1b[K\n")
