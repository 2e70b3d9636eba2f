"""Whole numbers from one image: `DigitClassifier.read_number` and `edge-classify --number`; and
the default mode refusing to answer one digit for several."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks.numbers import compose, encode
from lstm_edge.edge import DigitClassifier, NumberReading, UnsureError
from tests.conftest import EDGE_CLASSIFY, run_cli

NUMBERS = 50  # separated 4-digit numbers, paper form: 200 digits
# The same digits read as numbers and one by one: segmentation may cost a few; 6 of 200 is 3 points.
MAX_FEWER_DIGITS = 6


@pytest.fixture(scope="module")
def classifier(int8_model):
    return DigitClassifier(int8_model, runtime="litert")


@pytest.fixture(scope="module")
def numbers(sample):
    rng = np.random.default_rng(7)
    made = []
    for _ in range(NUMBERS):
        index = rng.integers(0, len(sample.x_test), 4)
        line = compose(list(sample.x_test[index]), [int(g) for g in rng.integers(2, 13, 3)], rng)
        made.append((encode(line, "paper", rng), "".join(map(str, sample.y_test[index])), index))
    return made


def test_read_number_keeps_single_digit_accuracy(classifier, numbers, sample):
    as_numbers = as_singles = counted = 0
    for data, truth, index in numbers:
        reading = classifier.read_number(data)
        assert isinstance(reading, NumberReading) and len(reading.digits) == len(reading.boxes)
        counted += len(reading.text) == 4
        as_numbers += sum(a == b for a, b in zip(reading.text, truth)) if len(reading.text) == 4 else 0
        rng = np.random.default_rng(0)
        as_singles += sum(classifier.classify(encode(d, "paper", rng)).digit == int(t)
                          for d, t in zip(sample.x_test[index], truth))
    assert counted >= NUMBERS - 1  # the count of digits, right
    assert as_numbers >= as_singles - MAX_FEWER_DIGITS, (as_numbers, as_singles)


def test_reading_is_frozen_with_boxes_in_image_pixels(classifier, sample):
    rng = np.random.default_rng(3)
    line = compose(list(sample.x_test[[0, 200, 400]]), [10, 10], rng)
    big = Image.fromarray(line).resize((line.shape[1] * 4, line.shape[0] * 4))  # 4x the drawn pixels
    reading = classifier.read_number(big)
    assert len(reading.boxes) == 3 and reading.lowest_confidence == min(p.confidence for p in reading.digits)
    for left, top, right, bottom in reading.boxes:
        assert 0 <= left < right <= big.width and 0 <= top < bottom <= big.height
    assert [b[0] for b in reading.boxes] == sorted(b[0] for b in reading.boxes)
    assert all(b[2] - b[0] > 4 * 8 for b in reading.boxes)  # in image pixels, not the drawn 28-pixel scale
    with pytest.raises(AttributeError):
        reading.text = "0"


def test_cli_number_text_and_json(int8_model, numbers, tmp_path):
    data, truth, _ = numbers[0]
    image = tmp_path / "meter.jpg"
    image.write_bytes(data)
    done = run_cli(*EDGE_CLASSIFY, str(image), "--number", "--model", str(int8_model))
    line = done.stdout.strip()
    assert line.startswith(f"{image}: ") and "(lowest confidence " in line and line.endswith("%)")
    row = json.loads(run_cli(*EDGE_CLASSIFY, str(image), "--number", "--json", "--model", str(int8_model)).stdout)
    assert set(row) == {"path", "number", "confidence", "digits", "runtime"} and len(row["number"]) == 4
    assert [d["digit"] for d in row["digits"]] == [int(c) for c in row["number"]]
    assert all(len(d["box"]) == 4 for d in row["digits"])
    shown = run_cli(*EDGE_CLASSIFY, str(image), "--number", "--show", "--model", str(int8_model)).stdout
    assert len(shown.rstrip("\n").split("\n")) == 1 + 4 * (1 + 28)


def test_default_mode_refuses_several_digits_and_keeps_a_smudged_one(int8_model, numbers, sample, tmp_path):
    (tmp_path / "number.jpg").write_bytes(numbers[0][0])
    smudged = np.zeros((60, 80), np.uint8)
    smudged[16:44, 10:38] = sample.x_test[3]
    smudged[50:52, 60:62] = 255  # a speck beside the digit
    Image.fromarray(smudged).save(tmp_path / "smudged.png")
    done = run_cli(*EDGE_CLASSIFY, str(tmp_path / "number.jpg"), str(tmp_path / "smudged.png"),
                   "--model", str(int8_model), check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"{tmp_path / 'number.jpg'}: error: 4 digits found where one was expected; "
                                   "read them as one number with --number")
    assert done.stdout.startswith(f"{tmp_path / 'smudged.png'}: ")


def test_cli_number_bad_images_fail_alone(int8_model, numbers, sample, tmp_path):
    Image.new("L", (60, 40), 255).save(tmp_path / "blank.png")
    rng = np.random.default_rng(5)
    line = compose(list(sample.x_test[:4]), [6, 6, 6], rng)
    Image.fromarray(np.concatenate([line, line])).save(tmp_path / "two-lines.png")
    Image.fromarray(compose(list(sample.x_test[:5]), [6] * 4, rng)).save(tmp_path / "long.png")
    (tmp_path / "good.jpg").write_bytes(numbers[1][0])
    done = run_cli(*EDGE_CLASSIFY, "--number", "--max-digits", "4", *(str(tmp_path / n) for n in
                   ("blank.png", "two-lines.png", "long.png", "good.jpg")), "--model", str(int8_model), check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 3 and all(": error: " in e for e in errors)
    assert "no digit" in errors[0] and "2 lines" in errors[1]
    assert "more than 4 digits found (--max-digits 4)" in errors[2]
    assert done.stdout.startswith(f"{tmp_path / 'good.jpg'}: ")
    assert run_cli(*EDGE_CLASSIFY, "--number", "--max-digits", "0", "x.png", check=False).returncode == 2


def test_min_confidence_turns_an_unsure_reading_into_a_failed_image(classifier, int8_model, numbers, sample,
                                                                    tmp_path):
    digit = classifier.classify(sample.x_test[0])
    assert classifier.classify(sample.x_test[0], min_confidence=digit.confidence) == digit
    with pytest.raises(UnsureError, match=f"^unsure: the digit {digit.digit} has confidence "):
        classifier.classify(sample.x_test[0], min_confidence=np.nextafter(digit.confidence, 2))
    readings = sorted(((classifier.read_number(data), data) for data, _, _ in numbers[:8]),
                      key=lambda pair: pair[0].lowest_confidence)
    (reading, data), (other, other_data) = readings[0], readings[-1]
    assert reading.lowest_confidence < other.lowest_confidence  # eight readings are not all equally sure
    weakest = min(range(4), key=lambda i: reading.digits[i].confidence)
    kept = classifier.read_number(data, min_confidence=reading.lowest_confidence)  # at the minimum: kept
    assert (kept.text, kept.digits) == (reading.text, reading.digits)
    with pytest.raises(UnsureError) as refused:
        classifier.read_number(data, min_confidence=np.nextafter(reading.lowest_confidence, 2))
    assert str(refused.value).startswith(f"unsure: {reading.text}'s digit {weakest + 1} ({reading.text[weakest]}) "
                                         f"has confidence {reading.lowest_confidence:.1%}, under the minimum ")
    (tmp_path / "unsure.jpg").write_bytes(data)
    (tmp_path / "sure.jpg").write_bytes(other_data)
    # Between the two readings' confidences: the less sure one fails alone, the other is answered.
    minimum = round((reading.lowest_confidence + other.lowest_confidence) / 2, 6)
    done = run_cli(*EDGE_CLASSIFY, "--number", str(tmp_path / "unsure.jpg"), str(tmp_path / "sure.jpg"),
                   "--min-confidence", str(minimum), "--model", str(int8_model), check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{tmp_path / 'unsure.jpg'}: error: unsure: ") and done.stderr.count("\n") == 1
    assert done.stderr.strip().endswith(f"(--min-confidence {minimum:g})")
    assert done.stdout.startswith(f"{tmp_path / 'sure.jpg'}: ") and done.stdout.count("\n") == 1
    for bad in ("-0.1", "1.5"):
        assert run_cli(*EDGE_CLASSIFY, "--min-confidence", bad, "x.png", check=False).returncode == 2
