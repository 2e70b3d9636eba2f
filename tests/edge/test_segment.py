"""Finding the digits of one line: components, strokes of one digit merged, specks dropped, lines
and counts refused."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmarks.numbers import compose
from lstm_edge.edge import ImageError, segment
from lstm_edge.edge.segment import label_runs, segment_digits, touching_runs


def flood_fill_count(mask: np.ndarray) -> int:
    """8-connected components the slow, obvious way."""
    seen = np.zeros_like(mask)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            r, c = stack.pop()
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        stack.append((rr, cc))
    return count


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_run_labelling_finds_the_8_connected_components(mask):
    runs, labels = label_runs(mask)
    assert sum(e - s for _, s, e in runs) == mask.sum()
    assert len(set(labels)) == flood_fill_count(mask)


@pytest.mark.parametrize("seed", range(4))
def test_the_union_in_python_and_in_whole_arrays_label_alike(seed):
    """Few touching runs are joined in plain Python, many in NumPy: the labels must not depend on which."""
    rng = np.random.default_rng(seed)
    for mask in (rng.random((12, 14)) < 0.5, rng.random((80, 90)) < 0.55):  # a few pairs, then thousands
        labelled = []
        for few in (10**9, -1):  # all in Python, all in NumPy
            with patch.object(segment, "FEW_RUNS", few):
                labelled.append(label_runs(mask))
        (runs, labels), (runs_np, labels_np) = labelled
        assert np.array_equal(runs, runs_np) and np.array_equal(labels, labels_np)
        assert len(set(labels.tolist())) == flood_fill_count(mask)


def test_strokes_hanging_from_one_top_or_from_several_label_as_flood_fill_does(sample):
    """A digit's stroke whose runs all hang from its first (a 7, a 1) is labelled without a union;
    one whose runs hang from several tops (the arms of a 4, a U, a W) by joining the tops. Both
    must count what a flood fill counts, with the union in Python and in NumPy alike."""
    u = np.zeros((9, 9), bool)
    u[:, 1] = u[:, 7] = u[8, 1:8] = True  # two tops, joined at the bottom
    w = np.zeros((7, 13), bool)
    w[:, 0] = w[:, 6] = w[:, 12] = w[6, :] = True  # three tops
    beside = np.zeros((9, 14), bool)
    beside[:, :9], beside[4:7, 11:13] = u, True  # a second stroke's top after the first's two: numbered 1
    masks = [u, w, ~u, beside, np.eye(6, dtype=bool)[::-1]]  # the last: a diagonal, each run touching one above
    masks += [ink(image) > segment.STRONG for image in sample.x_test[:60]]
    one_stroke = 0
    for mask in masks:
        labelled = []
        for few in (10**9, -1):  # in Python, in NumPy (where the runs do not all hang from one top)
            with patch.object(segment, "FEW_RUNS", few):
                labelled.append(label_runs(mask))
        (runs, labels), (runs_np, labels_np) = labelled
        assert np.array_equal(runs, runs_np) and np.array_equal(labels, labels_np)
        assert len(set(labels.tolist())) == flood_fill_count(mask)
        assert labels[0] == 0 and np.all(np.diff(np.maximum.accumulate(labels)) <= 1)  # numbered in order
        one_stroke += flood_fill_count(mask) == 1 and not labels.any()
    assert one_stroke >= 20  # most MNIST digits are one stroke


@pytest.mark.parametrize("seed", range(3))
def test_a_lone_strokes_segment_is_the_one_its_runs_draw(sample, seed):
    """One stroke in the picture: its segment is cut from the strokes as they lie, not drawn from its
    runs; the two must be the same pixels, at any edge of the picture too."""
    rng = np.random.default_rng(seed)
    checked = 0
    for index in rng.choice(len(sample.x_test), 40, replace=False):
        digit = ink(sample.x_test[index])
        for picture in (digit, np.pad(digit, ((3, 1), (0, 5)))):  # at the picture's edge, and inside it
            picture = np.maximum(picture, np.float32(0.05))  # faint ink everywhere: the mask's reach shows
            strong = picture > segment.STRONG
            pieces = segment._components(*label_runs(strong))
            if len(pieces) != 1:
                continue
            drawn, cut = segment._segment_of(picture, pieces[0]), segment._segment_of(picture, pieces[0], strong)
            assert (drawn.top, drawn.bottom, drawn.left, drawn.right) == (cut.top, cut.bottom, cut.left, cut.right)
            assert np.array_equal(drawn.ink, cut.ink)
            checked += 1
    assert checked >= 40  # most MNIST digits are one stroke


def ink(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255


def test_separated_digits_come_left_to_right_with_their_boxes(sample):
    rng = np.random.default_rng(0)
    for _ in range(20):
        index = rng.integers(0, 1000, 4)
        line = compose(list(sample.x_test[index]), [8, 8, 8], rng)
        segments = segment_digits(ink(line))
        assert len(segments) == 4
        lefts = [g.left for g in segments]
        assert lefts == sorted(lefts) and all(a.right <= b.left for a, b in zip(segments, segments[1:]))


def test_a_digit_drawn_in_pieces_is_one_digit():
    canvas = np.zeros((40, 40), np.uint8)
    canvas[14:34, 10:13] = canvas[14:17, 10:26] = canvas[31:34, 10:26] = canvas[17:34, 23:26] = 255  # body
    canvas[6:9, 22:36] = 255  # the bar of a 5, drawn apart, mostly right of the body
    assert len(segment_digits(ink(canvas))) == 1


def test_specks_and_dots_are_dropped(sample):
    canvas = np.zeros((60, 80), np.uint8)
    canvas[16:44, 10:38] = sample.x_test[3]
    canvas[50:52, 60:62] = 255  # a speck far below and beside
    canvas[20:21, 70:71] = 255
    assert len(segment_digits(ink(canvas))) == 1


def test_nothing_found_in_empty_ink():
    assert segment_digits(np.zeros((20, 20), np.float32)) == []


def test_several_lines_are_refused(sample):
    rng = np.random.default_rng(1)
    line = compose(list(sample.x_test[:3]), [6, 6], rng)
    with pytest.raises(ImageError, match="2 lines"):
        segment_digits(ink(np.concatenate([line, line])))


def test_too_many_digits_are_refused(sample):
    rng = np.random.default_rng(2)
    line = compose(list(sample.x_test[:5]), [6] * 4, rng)
    with pytest.raises(ImageError, match="more than 4 digits"):
        segment_digits(ink(line), max_digits=4)


def test_digits_that_may_touch_are_kept_whole_for_a_reader(sample):
    """Digits whose strokes overlap across, or a group wider than a digit (cut or not), form a run
    the segmenter hands a line reader whole; digits with clear gaps form none."""
    rng = np.random.default_rng(4)
    digits = [sample.x_test[i] for i in (300, 450, 0, 600)]  # 3, 4, 0, 6: none of them narrow
    apart = compose(digits, [10, 10, 10], rng).astype(np.float32) / 255
    assert touching_runs(segment_digits(apart)) == []
    close = compose(digits, [-2, 10, 10], rng).astype(np.float32) / 255  # the first two overlap across
    segments = segment_digits(close)
    runs = touching_runs(segments)
    assert len(runs) == 1 and runs[0].first == 0 and runs[0].count == len(segments) - 2
    whole = runs[0].whole
    assert whole.ink.shape == (whole.bottom - whole.top, whole.right - whole.left)
    assert whole.left == segments[0].left and whole.right >= segments[runs[0].count - 1].right
    one = compose([sample.x_test[0], sample.x_test[150]], [-2], rng).astype(np.float32) / 255  # a 1 into a 0
    run = touching_runs(segment_digits(one))  # merged into one digit, or two that touch: read whole either way
    assert len(run) == 1 and run[0].first == 0
    wide = np.zeros((40, 200), np.float32)
    wide[5:35, 10:190] = 0.0
    wide[5:35, 10:14] = wide[5:35, 186:190] = wide[5:9, 10:190] = wide[31:35, 10:190] = 1.0  # one wide ring
    cut = touching_runs(segment_digits(wide))
    assert len(cut) == 1 and cut[0].count >= 1


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=30),
                  elements=st.booleans()))
def test_strokes_grow_by_a_square_of_edge_pixels_within_their_box(strokes):
    """A lone stroke's segment keeps the faint ink within EDGE pixels of it, every way, diagonally too."""
    reach = segment.EDGE
    expected = np.zeros_like(strokes)
    for y, x in zip(*np.nonzero(strokes)):
        expected[max(0, y - reach) : y + reach + 1, max(0, x - reach) : x + reach + 1] = True
    assert np.array_equal(segment._grown(strokes), expected)
