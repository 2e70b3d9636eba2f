"""The suite's bars in one place. Each counts whole digits and carries the slack that its test set's
size and the fixture's training noise call for: another CPU rounds floats otherwise, so the same
seed trains other weights there; LSTM_EDGE_TEST_SEED stands in for another CPU. `tests/test_bars.py`
proves that each family still fails on a damaged model.

Each check returns its failures as sentences (empty: it holds), so a test asserts there are none
and a damage test asserts there are some, through the same code.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from lstm_edge.edge.doctor import FLOAT_TOLERANCE, INT8_TOLERANCE_STEPS, compare_outputs
from lstm_edge.export.verify import FLOAT_TOLERANCE as FLOAT_TOLERANCE_EXPORT

FIXTURE_SEED = int(os.environ.get("LSTM_EDGE_TEST_SEED", "0"))

# The fixture model (8 epochs on 3,600 of the 4,000 sample digits, 400 validating) scored 932-954 of
# the 1,000 held-out digits over seeds 0-3 (AMD EPYC Zen 4; 936-947 with --cell-bound none); 910
# leaves ~2 points for other CPUs, while a broken model is far below (~100).
HELD_OUT_MIN_CORRECT = 910

# int8 against float on the 1,000 held-out digits, seeds 0-3 (AMD EPYC Zen 4, the bounded cell and the
# export's split layout): 1-5 answers changed and at most 2 correct digits lost per runtime (the
# unbounded cell: 3-11 and 7). Changes come one digit at a time, roughly Poisson with a mean
# near 4: more than 10 has a chance well under 1 in 1,000. The fixture (8 epochs, no --augment) is a
# weaker model than the quickstart's, so the fixture exports with these bars, looser than the
# export's own defaults (0.4 points, 99.5%), which the quickstart model meets.
HELD_OUT_DIGITS = 1000
INT8_MAX_LOST = 6  # digits, of 1,000: --tolerance 0.6
INT8_MAX_CHANGED = 10  # digits, of 1,000: --min-agreement 99
EXPORT_BARS = ("--tolerance", f"{100 * INT8_MAX_LOST / HELD_OUT_DIGITS:g}",
               "--min-agreement", f"{100 - 100 * INT8_MAX_CHANGED / HELD_OUT_DIGITS:g}")

# The full-MNIST recipe's int8 export on its 10,000 test digits: issue 14's bars as they stand (at
# least 99.8% the float model's digit, top-class p99 within 0.05, accuracy within 0.1 point). Seen
# (AMD EPYC Zen 4; LiteRT, tflite-runtime): seed 0, 3 and 5 changed, p99 0.015, 3 digits gained;
# seed 1, 6 and 3 changed, p99 0.025 and 0.022, 4 and 3 digits lost.
FULL_MNIST_MAX_CHANGED = 20  # of 10,000
FULL_MNIST_MAX_P99 = 0.05
FULL_MNIST_MAX_ACCURACY_DRIFT = 10  # digits of 10,000 either way: 0.1 point
FLOAT_MAX_DIFFERENCE = FLOAT_TOLERANCE_EXPORT  # float32 against TensorFlow: the export's own bar

# A file through the MNIST recipe against the same digit as a raw array, 500 digits per form: the
# recipe re-renders each digit, so near-ties flip either way: over seeds 0-3, from 3 fewer to 4 more
# right (an earlier recipe, without segmentation, lost 11 on one form at seed 3); 10 is 2 points.
FILES_MAX_FEWER = 10
# The CLI's accuracy on 500 held-out PNGs: the fixture gets ~475; 450 is the floor (90%).
CLI_MIN_CORRECT_OF_500 = 450


def held_out_failures(correct: int, digits: int = HELD_OUT_DIGITS) -> list[str]:
    floor = HELD_OUT_MIN_CORRECT * digits // HELD_OUT_DIGITS
    return [] if correct >= floor else [f"{correct} of {digits} held-out digits right, below {floor}"]


def parity_failures(check: Mapping, float_correct: int, mode: str) -> list[str]:
    """A runtime's parity record (the manifest's `verified_on` entry) against the suite's bars."""
    if mode == "none":
        difference = check["max_difference"]
        return [] if difference <= FLOAT_MAX_DIFFERENCE else [f"{check['runtime']}: probabilities differ by "
                                                              f"{difference:.2e} > {FLOAT_MAX_DIFFERENCE:.0e}"]
    failures = []
    lost = float_correct - check["correct"]
    if lost > INT8_MAX_LOST:
        failures.append(f"{check['runtime']}: loses {lost} digits > {INT8_MAX_LOST}")
    if check["changed"] > INT8_MAX_CHANGED:
        failures.append(f"{check['runtime']}: {check['changed']} answers changed > {INT8_MAX_CHANGED}")
    return failures


def full_mnist_int8_failures(check: Mapping, float_correct: int) -> list[str]:
    """A runtime's parity record for the full-MNIST recipe's int8 export, against issue 14's bars."""
    failures = []
    if check["changed"] > FULL_MNIST_MAX_CHANGED:
        failures.append(f"{check['runtime']}: {check['changed']} of {check['digits']:,} answers changed "
                        f"> {FULL_MNIST_MAX_CHANGED}")
    if check["top_difference_p99"] > FULL_MNIST_MAX_P99:
        failures.append(f"{check['runtime']}: top-class p99 {check['top_difference_p99']:.3f} > {FULL_MNIST_MAX_P99}")
    if abs(check["correct"] - float_correct) > FULL_MNIST_MAX_ACCURACY_DRIFT:
        failures.append(f"{check['runtime']}: {check['correct']} right against float's {float_correct}: more than "
                        f"{FULL_MNIST_MAX_ACCURACY_DRIFT} apart")
    return failures


def files_failures(raw_digits: Sequence[int], file_digits: Sequence[int], labels: np.ndarray) -> list[str]:
    raw, files = int(np.sum(np.asarray(raw_digits) == labels)), int(np.sum(np.asarray(file_digits) == labels))
    return [] if files >= raw - FILES_MAX_FEWER else [f"files {files} right, raw arrays {raw}: more than "
                                                      f"{FILES_MAX_FEWER} fewer"]


# Two devices on the same model: edge-doctor's own comparison and tolerances (edge/doctor.py says
# what they were measured against: up to 12/256 between x86 and ARM on one runtime). Seen over seeds
# 0-3 on 80 images: LiteRT gave the same bytes on x86 and emulated ARM; one near-tie (top two 19/256
# apart) flipped between x86 and ARM tflite-runtime. On top of the doctor's rule, the median image
# must be equal to one output step, which a model computing something else cannot meet.
DEVICE_INT8_TOLERANCE = INT8_TOLERANCE_STEPS / 256  # the int8 softmax's output step is 1/256
DEVICE_FLOAT_TOLERANCE = FLOAT_TOLERANCE
DEVICE_MAX_MEDIAN_DIFFERENCE = 1 / 256


def device_failures(reference: Mapping[str, Sequence[float]], other: Mapping[str, Sequence[float]],
                    quantized: bool) -> list[str]:
    """Two devices' probabilities per image: name -> the 10 probabilities."""
    if reference.keys() != other.keys():
        return [f"images differ: {sorted(set(reference) ^ set(other))[:5]}"]
    names = sorted(reference)
    expected = np.array([reference[n] for n in names], np.float64)
    actual = np.array([other[n] for n in names], np.float64)
    tolerance = DEVICE_INT8_TOLERANCE if quantized else DEVICE_FLOAT_TOLERANCE
    failures = compare_outputs(expected, actual, tolerance, names)
    median = float(np.median(np.abs(actual - expected).max(-1))) if names else 0.0
    if quantized and median > DEVICE_MAX_MEDIAN_DIFFERENCE:
        failures.append(f"median probability difference {median:.4f} > {DEVICE_MAX_MEDIAN_DIFFERENCE:.4f}")
    return failures


def fused_failures(answers: np.ndarray, float_answers: np.ndarray, max_changed: int) -> list[str]:
    changed = int(np.sum(np.asarray(answers) != np.asarray(float_answers)))
    return [] if changed <= max_changed else [f"{changed} of {len(answers)} answers differ > {max_changed}"]

# The line reader the tests train (tests/edge/test_lines.py): smaller and shorter than the
# quickstart's, at a higher rate, read with the fixture's int8 digit model on 50 touching 4-digit
# numbers of held-out digits (paper form) and 200 single held-out digits. Seen (AMD EPYC Zen 3): it
# read 58.6% of its held-out numbers whole (2% after epoch 1, 42% after 3: CTC finds the digits
# late, and another CPU's rounding may find them an epoch later); 18, 16 and 13 of 50 touching
# numbers for three sets of numbers, where the segmenter alone read 8, 9 and 8; no single digit
# read as two. The bars keep a reader that learnt something and is used, with room for a slower start.
LINE_READER_ARGS = ("--lines", "20000", "--epochs", "6", "--units", "64", "--lr", "0.01")
LINE_TOUCHING_MIN_WHOLE = 10  # of 50
LINE_TOUCHING_MIN_GAIN = 4  # numbers of 50 over the segmenter alone
LINE_SINGLES_MAX_SPLIT = 2  # of 200 single digits read as more than one (1%)
# Its int8 export's parity: accuracy points of its 1,000 held-out numbers the int8 reader may lose
# (`export-lines --tolerance`; the quickstart's reader exports at the default, 1). Seen (AMD EPYC Zen,
# family 23 model 1): trained on the same recipe, int8 read 59.4% and 59.7% against the float 59.3%
# (litert, tflite-runtime); trained on lines a float32's last bit apart (another summation order in
# the layout's resize), it lost 12 and 16 numbers. The gate itself is tested apart, on a garbled model.
LINE_READER_INT8_TOLERANCE_PP = 3
