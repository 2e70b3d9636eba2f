"""Touching digits read whole: the line reader, trained and exported through the real CLIs
(`lstm-edge train-lines`, `lstm-edge export-lines`), beside the fixture's digit model."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

from benchmarks.numbers import compose, encode
from lstm_edge.edge import DigitClassifier, ModelError
from lstm_edge.edge.classifier import SURE_ALONE, SURE_SPLIT
from lstm_edge.edge.contract import BLANK, LINE_CLASSES, LINE_HEIGHT, LINE_INK_HEIGHT, LINE_MARGIN
from lstm_edge.edge.lines import (
    ASPECT_BASE,
    ASPECT_PER_DIGIT,
    LineDigit,
    LineModel,
    count_evidence,
    ctc_digits,
    ctc_readings,
    lines_path,
    read_group,
)
from lstm_edge.edge.preprocess import FoundDigits, TouchingGroup, line_layout, read_digits
from tests.bars import (
    LINE_READER_ARGS,
    LINE_READER_INT8_TOLERANCE_PP,
    LINE_SINGLES_MAX_SPLIT,
    LINE_TOUCHING_MIN_GAIN,
    LINE_TOUCHING_MIN_WHOLE,
)
from tests.conftest import EDGE_CLASSIFY, LSTM_EDGE, run_cli

TOUCHING = 50  # touching 4-digit numbers of held-out digits, paper form
SINGLES = 200  # held-out single digits, paper form


@pytest.fixture(scope="session")
def line_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lines") / "run"
    run_cli(*LSTM_EDGE, "train-lines", "--dataset", "mnist-sample", *LINE_READER_ARGS, "--out", str(out))
    return out


@pytest.fixture(scope="session")
def with_reader(int8_model, line_run, tmp_path_factory):
    """The fixture's int8 digit model in a folder of its own, with an int8 line reader beside it."""
    folder = tmp_path_factory.mktemp("with-reader")
    model = folder / "model.tflite"
    shutil.copy(int8_model, model)
    shutil.copy(int8_model.with_suffix(".json"), folder / "model.json")
    shutil.copy(int8_model.with_name(int8_model.stem + ".golden.npz"), folder / "model.golden.npz")
    done = run_cli(*LSTM_EDGE, "export-lines", str(line_run), "--quantize", "--out", lines_path(model),
                   "--tolerance", str(LINE_READER_INT8_TOLERANCE_PP))
    assert "wrote " in done.stdout
    return model


def touching_numbers(sample, count, seed=11):
    rng = np.random.default_rng(seed)
    made = []
    for _ in range(count):
        index = rng.integers(0, len(sample.x_test), 4)
        line = compose(list(sample.x_test[index]), [int(g) for g in rng.integers(-3, 0, 3)], rng)
        made.append((encode(line, "paper", rng), "".join(map(str, sample.y_test[index]))))
    return made


def test_ctc_decoding_merges_repeats_drops_blanks_and_keeps_doubled_digits():
    steps = [7, 7, BLANK, 1, 1, BLANK, 1, BLANK, BLANK, 4]
    probabilities = np.full((len(steps), LINE_CLASSES), 0.01, np.float32)
    for t, label in enumerate(steps):
        probabilities[t, label] = 0.9
    probabilities[1, 7] = 0.95  # where the 7 is surest
    digits = ctc_digits(probabilities, columns_per_step=2)
    assert [d.digit for d in digits] == [7, 1, 1, 4]  # the blank between the 1s keeps both
    assert digits[0].probabilities[7] == pytest.approx(0.95) and digits[0].probabilities.shape == (10,)
    assert [d.centre for d in digits] == [2.0, 8.0, 13.0, 19.0]  # middle of its steps, in columns
    assert ctc_digits(np.eye(LINE_CLASSES, dtype=np.float32)[[BLANK] * 5], 2) == []


def test_the_beam_sums_every_alignment_of_a_reading():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.full(LINE_CLASSES, 0.3), size=4) + 0.01  # 4 steps: 11^4 paths, enumerated
    probabilities /= probabilities.sum(axis=1, keepdims=True)  # every label likely enough to be followed
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(LINE_CLASSES), repeat=len(probabilities)):
        reading = tuple(label for i, label in enumerate(path) if label != BLANK and (i == 0 or path[i - 1] != label))
        totals[reading] = totals.get(reading, 0.0) + float(np.prod(probabilities[np.arange(4), path]))
    readings = ctc_readings(probabilities, beam=10_000)  # no reading dropped: exact
    scale = totals[readings[0][0]] / readings[0][1]  # the beam's probabilities are relative
    assert len(readings) == len([t for t in totals.values() if t > 0])
    for reading, probability, starts in readings[:50]:
        assert probability * scale == pytest.approx(totals[reading], rel=1e-6)
        assert len(starts) == len(reading) and list(starts) == sorted(starts)
    best = max(totals, key=totals.get)
    assert ctc_readings(probabilities)[0][0] == best  # the default beam finds the likeliest


def narrow_one_dropped() -> np.ndarray:
    """A 7, a 1 the reader is less sure of than of a gap (at one step), then a 4: greedy reads 74."""
    steps = [7, 7, 7, BLANK, BLANK, BLANK, 4, 4, 4]
    probabilities = np.full((len(steps), LINE_CLASSES), 0.001, np.float32)
    for t, label in enumerate(steps):
        probabilities[t, label] = 0.99
    probabilities[4, 1], probabilities[4, BLANK] = 0.45, 0.54
    return probabilities


def test_a_reading_whose_count_fits_the_groups_width_wins_over_greedy():
    probabilities = narrow_one_dropped()
    assert [d.digit for d in ctc_digits(probabilities, 2)] == [7, 4]
    assert [d.digit for d in read_group(probabilities, 2)] == [7, 4]  # no aspect: greedy
    two, three = ASPECT_BASE + 2 * ASPECT_PER_DIGIT, ASPECT_BASE + 3 * ASPECT_PER_DIGIT
    assert [d.digit for d in read_group(probabilities, 2, aspect=two)] == [7, 4]  # as wide as two digits
    digits = read_group(probabilities, 2, aspect=three)  # as wide as three: the 1 is there
    assert [d.digit for d in digits] == [7, 1, 4]
    assert digits[1].probabilities[1] == pytest.approx(0.45) and digits[1].probabilities.shape == (10,)
    assert digits[0].centre < digits[1].centre < digits[2].centre
    assert count_evidence(3, three) > count_evidence(2, three) and count_evidence(2, two) > count_evidence(3, two)


def test_the_count_evidence_is_what_touching_numbers_measure(sample):
    """The aspect of n touching training digits, as read_digits finds the group, is the constants' line."""
    rng = np.random.default_rng(4)
    for count in (2, 3, 4, 5):
        aspects = []
        for _ in range(100):  # the mean's spread is then ~0.04; seeds 4-99 stayed within 0.1 of the line
            index = rng.integers(0, len(sample.x_train), count)
            line = compose(list(sample.x_train[index]), [int(g) for g in rng.integers(-3, 0, count - 1)], rng)
            found = read_digits(encode(line, "paper", rng))
            if len(found.touching) == 1 and found.touching[0].count == len(found.inputs):
                group = found.touching[0].ink
                aspects.append(line_layout(group, 4096).aspect)
        assert len(aspects) >= 50, (count, len(aspects))
        assert np.mean(aspects) == pytest.approx(ASPECT_BASE + ASPECT_PER_DIGIT * count, abs=0.15), count


def test_line_layout_is_the_contract():
    ink = np.zeros((60, 200), np.float32)
    ink[10:50, 30:40] = 1.0  # a stroke 40 rows high, columns 30-39 ...
    ink[10:50, 150:170] = 1.0  # ... and another, 120 columns on
    layout = line_layout(ink, 128)
    assert layout.input.shape == (LINE_HEIGHT, 128) and layout.input.dtype == np.float32
    rows = np.flatnonzero(layout.input.max(axis=1) > 0.5)
    assert rows[0] == LINE_MARGIN and rows[-1] == LINE_MARGIN + LINE_INK_HEIGHT - 1
    assert layout.scale == pytest.approx(0.5)  # 40 rows to 20: half the columns too
    columns = np.flatnonzero(layout.input.max(axis=0) > 0.5)
    assert layout.left + columns[0] / layout.scale == pytest.approx(30, abs=1)
    assert layout.left + columns[-1] / layout.scale == pytest.approx(169, abs=2)
    squeezed = line_layout(np.ones((20, 400), np.float32), 128)  # wider than the input: squeezed across
    assert squeezed.input[LINE_MARGIN:-LINE_MARGIN, LINE_MARGIN:-LINE_MARGIN].min() > 0.5


def test_the_reader_reads_touching_numbers_the_segmenter_cannot(with_reader, sample):
    alone, reader = DigitClassifier(with_reader, lines=None), DigitClassifier(with_reader)
    assert alone.lines is None and reader.lines is not None
    numbers = touching_numbers(sample, TOUCHING)
    by_segmenter = sum(alone.read_number(data).text == truth for data, truth in numbers)
    by_reader = sum(reader.read_number(data).text == truth for data, truth in numbers)
    assert by_reader >= LINE_TOUCHING_MIN_WHOLE, (by_reader, by_segmenter)
    assert by_reader >= by_segmenter + LINE_TOUCHING_MIN_GAIN, (by_reader, by_segmenter)


def test_a_single_digit_is_still_read_as_one(with_reader, sample):
    reader, rng = DigitClassifier(with_reader), np.random.default_rng(5)
    split = sum(len(reader.read_number(encode(digit, "paper", rng)).text) != 1 for digit in sample.x_test[:SINGLES])
    assert split <= LINE_SINGLES_MAX_SPLIT, split


@pytest.mark.parametrize("digit_model, reader, ink_width, expected", [
    (SURE_ALONE + 0.01, (0.99, SURE_SPLIT - 0.01), 28, "7"),  # a sure digit, split unsurely: it stands
    (SURE_ALONE + 0.01, (SURE_SPLIT + 0.01, 0.99), 28, "14"),  # a sure split stands
    (SURE_ALONE - 0.01, (0.99, SURE_SPLIT - 0.01), 28, "14"),  # an unsure digit: the reader's split stands
    (SURE_ALONE + 0.01, (0.99, SURE_SPLIT - 0.01), 56, "14"),  # wider than a digit: the reader's split stands
])
def test_one_sure_digit_stays_one_where_the_reader_splits_it_unsurely(with_reader, monkeypatch, digit_model,
                                                                      reader, ink_width, expected):
    classifier = DigitClassifier(with_reader)
    ink = np.zeros((28, ink_width), np.float32)
    ink[4:24, 4:-4] = 1.0  # 20 rows high; 20 or 48 columns wide (aspect 1 or 2.4)
    found = FoundDigits((ink[:, :28],), ((0, 0, ink_width, 28),), (),
                        (TouchingGroup(0, 1, ink, (0.0, 0.0), (1.0, 1.0)),))
    answer = np.full((1, 10), (1 - digit_model) / 9, np.float32)
    answer[0, 7] = digit_model
    monkeypatch.setattr(classifier, "_predict", lambda digits: answer)

    def split(digit: int, sure: float, centre: float) -> LineDigit:
        probabilities = np.full(10, (1 - sure) / 10, np.float32)
        probabilities[digit] = sure
        return LineDigit(digit, probabilities, centre)

    read = [(line_layout(ink, classifier.lines.width).aspect,
             [split(1, reader[0], ink_width / 4), split(4, reader[1], 3 * ink_width / 4)])]
    monkeypatch.setattr(classifier, "_read_lines", lambda groups: read)
    assert classifier.reading(found).text == expected


def test_a_reading_by_the_reader_has_a_box_and_a_view_per_digit(with_reader, sample):
    reader = DigitClassifier(with_reader)
    data, truth = touching_numbers(sample, 1, seed=3)[0]
    reading = reader.read_number(data)
    assert len(reading.digits) == len(reading.boxes) == len(reading.inputs) == len(reading.text)
    lefts = [b[0] for b in reading.boxes]
    assert lefts == sorted(lefts) and all(b[0] < b[2] and b[1] < b[3] for b in reading.boxes)
    assert all(i.shape == (28, 28) for i in reading.inputs)
    assert all(0 < p.confidence <= 1 and len(p.probabilities) == 10 for p in reading.digits)


def test_edge_classify_number_uses_the_reader_beside_the_model(with_reader, sample, tmp_path):
    numbers = touching_numbers(sample, 10, seed=21)
    paths = []
    for k, (data, _) in enumerate(numbers):
        paths.append(tmp_path / f"n{k}.jpg")
        paths[-1].write_bytes(data)
    done = run_cli(*EDGE_CLASSIFY, *map(str, paths), "--number", "--json", "--model", str(with_reader))
    read = [json.loads(line)["number"] for line in done.stdout.splitlines()]
    expected = [DigitClassifier(with_reader).read_number(data).text for data, _ in numbers]
    assert read == expected


def test_the_line_model_is_refused_as_a_digit_model_and_the_other_way_round(with_reader, int8_model):
    with pytest.raises(ModelError, match=r"is not \[batch, 28, width\]"):
        LineModel(int8_model)
    with pytest.raises(ModelError, match=r"is not \[batch, 28, 28\]"):
        DigitClassifier(lines_path(with_reader))


def test_export_lines_refuses_a_digit_run_in_one_line(trained_run, tmp_path):
    out = tmp_path / "model.lines.tflite"
    done = run_cli(*LSTM_EDGE, "export-lines", str(trained_run), "--out", str(out), check=False)
    assert done.returncode == 1 and not out.exists()
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"Error: {trained_run}: not a line reader's run folder (no lines.json)"
    assert "Traceback" not in done.stderr


def test_failed_line_parity_leaves_the_earlier_reader_untouched(line_run, with_reader, tmp_path, monkeypatch):
    from lstm_edge.export import lines as export_lines_module
    from lstm_edge.export.errors import ExportError

    out = tmp_path / "model.lines.tflite"
    shutil.copy(lines_path(with_reader), out)
    before = out.read_bytes()

    def garbled(model, lines_file, runtime, lines=False):
        count, steps = np.load(lines_file).shape[0], LineModel(lines_path(with_reader)).answer_shape[0]
        return np.eye(LINE_CLASSES, dtype=np.float32)[np.full((count, steps), 3)], \
            {"runtime": runtime, "version": "x", "io": {}}

    monkeypatch.setattr(export_lines_module, "run_edge", garbled)
    with pytest.raises(ExportError, match="parity failed, .* left untouched"):
        export_lines_module.export_lines(line_run, "int8", out, runtimes=["litert"])
    assert out.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--width", "113"], "--width: width must be a multiple of 2"),
    (["--lines", "5"], "Invalid value for '--lines'"),
])
def test_bad_train_lines_arguments(tmp_path, args, message):
    done = run_cli(*LSTM_EDGE, "train-lines", "--dataset", "mnist-sample", *args, "--out", str(tmp_path / "r"),
                   check=False)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


def test_edge_doctor_checks_the_reader_beside_the_model(with_reader, tmp_path):
    from tests.conftest import EDGE_DOCTOR

    done = run_cli(*EDGE_DOCTOR, "--model", str(with_reader), "--json")
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["line reader"]["status"] == "ok" and "hash matches" in checks["line reader"]["detail"]
    for name in ("model.tflite", "model.json", "model.golden.npz", "model.lines.tflite", "model.lines.json"):
        shutil.copy(with_reader.parent / name, tmp_path / name)
    (tmp_path / "model.lines.tflite").write_bytes((tmp_path / "model.lines.tflite").read_bytes()[:-1] + b"x")
    done = run_cli(*EDGE_DOCTOR, "--model", str(tmp_path / "model.tflite"), "--json", check=False)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert done.returncode == 1 and checks["line reader"]["status"] == "fail"
    assert "does not match its manifest" in checks["line reader"]["detail"]
