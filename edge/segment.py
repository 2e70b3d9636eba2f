"""The digits of one line of handwriting in an ink map: connected strokes, merged when they belong
to one digit (the bar of a 5, a broken 4), split when two digits touch, dots and specks dropped,
left to right. numpy only: a run-length labelling, so the work grows with the strokes, not the
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from .errors import ImageError, TooManyDigitsError

STRONG = 0.4  # ink above this is stroke; fainter is anti-aliasing, texture or ringing
_STRONG = np.array(STRONG, np.float32)  # for float32 ink: an operand quicker than the float (preprocess.operand)
EDGE = 2  # pixels around a stroke where its anti-aliased edge lies
SAME_DIGIT_OVERLAP = 0.5  # strokes whose columns overlap by this share of the narrower one are one digit
STACKED_GAP = 0.25  # one stroke above another, this share of the tallest digit apart or closer: one digit
FRAGMENT_HEIGHT = 0.5  # a stroke shorter than this share of the tallest ...
FRAGMENT_GAP = 0.3  # ... this close beside a full-height one (share of the tallest) belongs to it
FULL_HEIGHT = 0.7  # strokes this share of the tallest digit's height or taller, side by side, may be two digits
DUST = 0.02  # stroke pieces under this share of the biggest one's area, and small, are dust: never merged
SPECK_AREA = 0.08  # a group with less stroke than this share of the biggest digit's ...
SPECK_SIZE = 0.35  # ... and smaller than this share of the tallest digit is a dot or a speck
TOUCHING_ASPECT = 1.2  # a group this many times wider than tall may hold touching digits ...
WAIST = 0.45  # ... where its column profile thins to this share of its median column (a wide 0 does not)
DIGIT_ASPECT = 0.8  # a digit's width over its height, for guessing how many touch
LINE_HEIGHT = 0.5  # a band of rows this share of the tallest band's height ...
LINE_INK = 0.1  # ... holding this share of the ink ...
LINE_GAP = 0.25  # ... this share of its height away from the next is a line of its own
MAX_DIGITS = 12
TOUCHING_GAP = 0.05  # digits whose strokes come closer across than this share of the taller one's height may touch
# Runs, at most, joined in plain Python (`_union_few`): a digit has 80-170; between 200 and 400 the
# Python loop and the whole-array rounds of `_union_many` came even (AMD EPYC Zen).
FEW_RUNS = 300


@dataclass(frozen=True)
class Segment:
    """One digit: its box in ink-map pixels and its ink alone (other digits' strokes removed)."""

    top: int
    bottom: int
    left: int
    right: int
    ink: np.ndarray  # (bottom - top, right - left) float32 in [0, 1]
    # A digit of a group wider than one digit (touching digits, or one wide digit): the whole group
    # (one object shared by the group's digits), for a reader of touching digits to read whole.
    group: Optional[Segment] = None


def label_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of a boolean image, by runs: the runs and which touch in whole-array
    operations, their union in plain Python where they are few.

    Returns:
      runs: (n, 3) int (row, start, stop) of every horizontal run of True, in raster order;
      labels: (n,) each run's component, numbered from 0 in order of first appearance.
    """
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), bool)
    padded[:, 1:-1] = mask
    return _label_padded(padded)


def _label_padded(padded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`label_runs` of a mask held in the middle of `padded`, a blank column either side."""
    # Every row starts and ends on a padding 0, so its changes alternate: a run's start, then its stop.
    flat = padded.ravel()
    changes = (flat[1:] != flat[:-1]).nonzero()[0]
    row_length = padded.shape[1]
    change_rows, columns = np.divmod(changes, row_length)  # a run's start and its stop lie in its own row
    runs = np.empty((len(columns) // 2, 3), changes.dtype)  # not np.stack: a third of its time for ~100 runs
    runs[:, 0], runs[:, 1:] = change_rows[0::2], columns.reshape(-1, 2)
    if len(runs) == 0:
        return runs, np.zeros(0, np.intp)
    # Runs i (row r) and j (row r - 1) touch, diagonally too, when start_j <= stop_i and stop_j >= start_i.
    # Keyed by row * span + column (span = row_length + 1: the change's own index plus its row), the
    # runs of row r - 1 touching run i are one contiguous range: from the first whose stop key is at
    # least i's start key less a span to the last whose start key is at most i's stop key less a span.
    keys = changes + change_rows
    above = keys - (row_length + 1)
    first = keys[1::2].searchsorted(above[0::2], "left")  # (np.searchsorted's wrapper: 2 us more)
    last = keys[0::2].searchsorted(above[1::2], "right")
    if np.count_nonzero(last[1:] > first[1:]) == len(runs) - 1:  # each run below the first touches one above
        return runs, np.zeros(len(runs), np.intp)  # one tree
    counts = np.maximum(last - first, 0)
    if len(runs) <= FEW_RUNS:
        return runs, _union_few(first.tolist(), counts.tolist())
    ours = np.repeat(np.arange(len(runs)), counts)
    theirs = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(len(ours))
    parent = _union_many(len(runs), ours, theirs)
    # Components numbered by their roots, in order: a root is its own parent.
    roots = parent == np.arange(len(runs))
    return runs, (np.cumsum(roots) - 1)[parent]


def _union_few(first: list[int], counts: list[int]) -> np.ndarray:
    """Each run's component, numbered from 0 in order of first appearance, in plain Python: run i
    touches runs first[i] .. first[i] + counts[i] - 1 of the row above (runs in raster order).

    Each run hangs from the first run it touches above: a tree whose top touches none. Trees are
    joined, by a union of their tops (the smaller wins), only where a run touches several; a
    digit's hundred-odd runs have a few tops, so the loop does little more than copy a top."""
    up = list(range(len(first)))  # a top's parent among the tops: itself, until it is joined to another
    top = [0] * len(first)
    for i, (f, c) in enumerate(zip(first, counts)):
        if c == 1:
            top[i] = top[f]
        elif c == 0:
            top[i] = i
        else:
            a = top[f]
            while up[a] != a:
                up[a] = a = up[up[a]]
            for b in top[f + 1 : f + c]:
                while up[b] != b:
                    up[b] = b = up[up[b]]
                if b < a:
                    up[a] = a = b
                elif a < b:
                    up[b] = a
            top[i] = a
    number: dict[int, int] = {}  # each top's component: in order, a top's root is numbered before the top
    found = 0
    for t in sorted(set(top)):
        root = t
        while up[root] != root:
            root = up[root]
        if root == t:
            number[t], found = found, found + 1
        else:
            number[t] = number[root]
    return np.array([number[t] for t in top])


def _union_many(count: int, ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """As `_union_few`, in whole-array operations: union by the smaller index, then pointer jumping."""
    parent = np.arange(count)
    while True:
        a, b = parent[ours], parent[theirs]
        apart = a != b
        if not apart.any():
            break
        a, b = a[apart], b[apart]
        np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
        while True:
            jumped = parent[parent]
            if not (jumped != parent).any():
                break
            parent = jumped
    return parent


@dataclass(eq=False)
class _Group:
    top: int
    bottom: int
    left: int
    right: int
    area: int
    runs: np.ndarray  # (n, 3) row, start, stop
    beside: bool = False  # two strokes of full height side by side were merged: a narrow digit touching another?

    def absorb(self, other: _Group) -> None:
        self.top, self.bottom = min(self.top, other.top), max(self.bottom, other.bottom)
        self.left, self.right = min(self.left, other.left), max(self.right, other.right)
        self.area += other.area
        self.runs = np.concatenate([self.runs, other.runs])


def _components(runs: np.ndarray, labels: np.ndarray) -> list[_Group]:
    """The components `label_runs` found, each a group with its box, area and runs."""
    if len(runs) == 0:
        return []
    if not np.count_nonzero(labels):  # one stroke (a clean digit): its runs are in raster order already
        rows, lefts, rights = runs[:, 0], runs[:, 1], runs[:, 2]
        return [_Group(int(rows[0]), int(rows[-1]) + 1, int(np.minimum.reduce(lefts)), int(np.maximum.reduce(rights)),
                       int(np.add.reduce(rights - lefts)), runs)]  # (ufuncs: not .min's wrapper)
    order = np.argsort(labels, kind="stable")
    ordered_labels = labels[order]
    bounds = (ordered_labels[1:] != ordered_labels[:-1]).nonzero()[0] + 1
    starts = np.concatenate([[0], bounds])
    ordered = runs[order]
    rows, lefts, rights = ordered[:, 0], ordered[:, 1], ordered[:, 2]
    tops, bottoms = np.minimum.reduceat(rows, starts), np.maximum.reduceat(rows, starts) + 1
    left, right = np.minimum.reduceat(lefts, starts), np.maximum.reduceat(rights, starts)
    areas = np.add.reduceat(rights - lefts, starts)
    ends = [*bounds.tolist(), len(ordered)]
    return [_Group(t, b, le, r, a, ordered[s:e]) for t, b, le, r, a, s, e in
            zip(tops.tolist(), bottoms.tolist(), left.tolist(), right.tolist(), areas.tolist(), starts.tolist(), ends)]


def _merge_same_digit(groups: list[_Group], tallest: int) -> list[_Group]:
    """Strokes of one digit: columns that overlap much (a broken 4), or one stroke above another
    and close beside it (the bar of a 5): digits in one line never stand on each other."""
    merged: list[_Group] = []
    for g in sorted(groups, key=lambda g: g.left):
        for m in merged:
            overlap = min(m.right, g.right) - max(m.left, g.left)  # negative: the gap between them
            stacked = g.top >= m.bottom or m.top >= g.bottom
            if (overlap >= SAME_DIGIT_OVERLAP * min(m.right - m.left, g.right - g.left)
                    or (stacked and overlap > -STACKED_GAP * tallest)):
                m.beside |= not stacked and min(m.bottom - m.top, g.bottom - g.top) >= FULL_HEIGHT * tallest
                m.absorb(g)
                break
        else:
            merged.append(g)
    return merged


def _merge_fragments(groups: list[_Group], tallest: int) -> list[_Group]:
    """A short stroke close beside a full-height one is part of that digit (a 5's bar drawn apart,
    a pen's slip beside a 1): the digits of one line are of one height, within a third."""
    full = [g for g in groups if g.bottom - g.top >= FRAGMENT_HEIGHT * tallest]
    kept = list(full)
    for g in groups:
        if any(g is f for f in full):
            continue
        gaps = [(max(f.left - g.right, g.left - f.right), i) for i, f in enumerate(full)]
        gap, nearest = min(gaps) if gaps else (tallest, -1)
        if gap <= FRAGMENT_GAP * tallest:
            full[nearest].absorb(g)
        else:
            kept.append(g)
    return kept


def _segment_of(ink: np.ndarray, group: _Group, alone: Optional[np.ndarray] = None) -> Segment:
    """The group as one digit: its strokes and the faint edges around them, nobody else's, in its
    box widened by the edges' reach.

    Args:
      alone: the ink map's strokes (ink > STRONG), when they are all this group's (one stroke in
        the picture, as in most photos of one digit): its pixels are then taken as they lie.
    """
    top, left = max(0, group.top - EDGE), max(0, group.left - EDGE)
    bottom, right = min(ink.shape[0], group.bottom + EDGE), min(ink.shape[1], group.right + EDGE)
    height, width = bottom - top, right - left
    if alone is not None:
        mask = _grown(alone[top:bottom, left:right])
    else:
        # The strokes grown by a (2 EDGE + 1)-pixel square: each run drawn widened by EDGE, as +1 at
        # its start and -1 past its end (bincount: many times quicker than np.add.at), summed: each
        # run ends in its own row (the extra column), so one running sum over all rows starts each
        # row from 0. Then the rows grown EDGE up and down, each a shift of the box's pixels as one
        # flat run (a 2-D slice costs a loop per row). (Widened, no run reaches the extra column.)
        row_length, size = width + 1, height * (width + 1)
        at = (group.runs[:, 0] - top) * row_length
        starts = at + np.maximum(group.runs[:, 1] - EDGE, left) - left
        stops = at + np.minimum(group.runs[:, 2] + EDGE, right) - left
        cover = np.bincount(starts, minlength=size) - np.bincount(stops, minlength=size)
        flat = np.cumsum(cover) > 0
        for _ in range(EDGE):
            flat[row_length:] |= flat[:-row_length]
            flat[:-row_length] |= flat[row_length:]
        mask = flat.reshape(height, row_length)[:, :width]
    return Segment(top, bottom, left, right, np.multiply(ink[top:bottom, left:right], mask, dtype=np.float32))


def _grown(strokes: np.ndarray) -> np.ndarray:
    """`strokes` (bool) grown by a (2 EDGE + 1)-pixel square, within their box.

    The box, with EDGE blank columns either side and EDGE blank rows above and below (one more
    below), is one flat run. Each step ORs the run with itself shifted, into a new and shorter
    array (an OR in place over its own shifted self makes NumPy copy it first), so that each value
    comes to hold its window of 1, 2, 4 ... up to 2 EDGE + 1 pixels along the row, then the same
    over rows: the window starting at a pixel of the padded box is the square around the box's
    pixel there. 28 us for a digit's 94x46 strokes, against 39 us by shifts in place (AMD EPYC Zen 1)."""
    height, width = strokes.shape
    row = width + 2 * EDGE
    padded = np.zeros((height + 2 * EDGE + 1, row), bool)
    padded[EDGE : EDGE + height, EDGE : EDGE + width] = strokes
    grown = padded.ravel()
    for stride in (1, row):
        covered = 1
        while covered < 2 * EDGE + 1:
            step = min(covered, 2 * EDGE + 1 - covered)
            grown = grown[: -step * stride] | grown[step * stride :]
            covered += step
    return grown[: height * row].reshape(height, row)[:, :width]


def _split_touching(whole: Segment, group: _Group, height: int) -> list[Segment]:
    """A group much wider than a digit: cut it where the ink is thinnest near each expected border,
    if it thins there at all and every part is a digit's height (else it is one wide digit)."""
    width = whole.right - whole.left
    count = max(2, round((group.right - group.left) / (DIGIT_ASPECT * height)))
    profile = whole.ink.sum(axis=0)
    cuts = [0]
    for k in range(1, count):
        centre = k * width // count
        reach = max(1, width // (3 * count))
        lo, hi = max(cuts[-1] + 1, centre - reach), min(width - 1, centre + reach)
        cuts.append(lo + int(np.argmin(profile[lo:hi])) if hi > lo else centre)
    cuts.append(width)
    strokes = profile[profile > 0]
    waist = WAIST * float(np.sort(strokes)[len(strokes) // 2])
    if all(profile[c] > waist for c in cuts[1:-1]):  # no thin neck: a wide 0 or 2
        return [whole]
    segments = []
    for a, b in zip(cuts, cuts[1:]):
        part = whole.ink[:, a:b]
        rows = np.flatnonzero(part.max(axis=1) > STRONG)
        if len(rows) < FRAGMENT_HEIGHT * height:  # a tail or a flourish, not a digit
            return [whole]
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        segments.append(Segment(whole.top + top, whole.top + bottom, whole.left + a, whole.left + b,
                                np.ascontiguousarray(part[top:bottom])))
    return segments


def _check_one_line(runs: np.ndarray) -> None:
    """Several lines are bands of rows with ink, each tall and holding much ink, with a wide gap
    between them. (A digit broken across, or a 5's bar drawn apart, leaves a narrow gap, or a
    thin band.)

    Args:
      runs: the strokes' runs, as `label_runs` gives them (in raster order)."""
    rows = runs[:, 0]
    if len(rows) == 0 or rows[-1] - rows[0] < np.count_nonzero(rows[1:] != rows[:-1]) + 1:
        return  # one band of rows (most pictures: every row from the first inked to the last is), or none
    inked = np.bincount(rows, weights=runs[:, 2] - runs[:, 1]).astype(np.int64)  # ink per row, to the last inked
    steps = np.diff((inked > 0).astype(np.int8), prepend=0, append=0)
    firsts, ends = (steps == 1).nonzero()[0], (steps == -1).nonzero()[0]
    if len(firsts) < 2:
        return
    totals = np.add.reduceat(inked, firsts)  # each band's ink (the rows between bands hold none)
    bands = list(zip(firsts.tolist(), ends.tolist(), totals.tolist()))
    tallest, total = max(b - a for a, b, _ in bands), sum(ink for _, _, ink in bands)
    lines = [(a, b) for a, b, ink in bands if b - a >= LINE_HEIGHT * tallest and ink >= LINE_INK * total]
    apart = sum(1 for (a0, b0), (a1, b1) in zip(lines, lines[1:]) if a1 - b0 >= LINE_GAP * min(b0 - a0, b1 - a1))
    if apart:
        raise ImageError(f"the ink lies in {apart + 1} lines; read one line at a time (crop the image to it)")


def segment_digits(ink: np.ndarray, max_digits: int = MAX_DIGITS) -> list[Segment]:
    """The digits of one line in an ink map, left to right.

    Args:
      ink: float (H, W) in [0, 1], ink 1 (preprocess.ink_map).
      max_digits: more digit-sized shapes than this is an error, not a number.
    Returns:
      one Segment per digit (none when the ink holds no stroke).
    Raises:
      ImageError: digits in more than one line, or more than max_digits digits.
    """
    padded = np.zeros((ink.shape[0], ink.shape[1] + 2), bool)  # the strokes, as `label_runs` pads them
    strong = np.greater(ink, _STRONG if ink.dtype == np.float32 else STRONG, out=padded[:, 1:-1])
    runs, labels = _label_padded(padded)
    _check_one_line(runs)
    pieces = _components(runs, labels)
    if not pieces:
        return []
    alone = strong if len(pieces) == 1 else None  # one stroke: its digit's segment is cut from it as it lies
    biggest = max(g.area for g in pieces)
    tallest = max(g.bottom - g.top for g in pieces)
    pieces = [g for g in pieces if g.area >= DUST * biggest or g.bottom - g.top >= SPECK_SIZE * tallest]
    groups = _merge_fragments(_merge_same_digit(pieces, tallest), tallest)
    biggest = max(g.area for g in groups)
    tallest = max(g.bottom - g.top for g in groups)
    digits = [g for g in groups
              if g.area >= SPECK_AREA * biggest or max(g.bottom - g.top, g.right - g.left) >= SPECK_SIZE * tallest]
    segments: list[Segment] = []
    typical = sorted(g.bottom - g.top for g in digits)[len(digits) // 2]
    for g in sorted(digits, key=lambda g: g.left):
        height = max(g.bottom - g.top, typical)
        if g.right - g.left > TOUCHING_ASPECT * height:
            whole = _segment_of(ink, g, alone)
            segments += [replace(part, group=whole) for part in _split_touching(whole, g, height)]
        elif g.beside:  # one digit to the segmenter, which a reader may see as two
            whole = _segment_of(ink, g, alone)
            segments.append(replace(whole, group=whole))
        else:
            segments.append(_segment_of(ink, g, alone))
        if len(segments) > max_digits:
            raise TooManyDigitsError(max_digits)
    return segments


@dataclass(frozen=True)
class Touching:
    """Digits side by side that may touch: a group wider than one digit (cut by its column profile,
    or left whole), strokes of full height side by side merged into one digit (a 1 against a 0),
    or digits whose strokes come within TOUCHING_GAP of each other across.

    Attributes:
      first, count: the digits are segments[first : first + count].
      whole: all of their ink, as one Segment.
    """

    first: int
    count: int
    whole: Segment


def touching_runs(segments: list[Segment]) -> list[Touching]:
    """The runs of digits that may touch, left to right, for a reader that reads them whole."""
    runs, i = [], 0
    while i < len(segments):
        j = i + 1
        while j < len(segments) and ((segments[j].group is not None and segments[j].group is segments[j - 1].group)
                                     or _close(segments[j - 1], segments[j])):
            j += 1
        part = segments[i:j]
        if len(part) > 1 or part[0].group is not None:
            runs.append(Touching(i, len(part), _joined(part)))
        i = j
    return runs


def _close(a: Segment, b: Segment) -> bool:
    a_columns, b_columns = np.flatnonzero(a.ink.max(axis=0) > STRONG), np.flatnonzero(b.ink.max(axis=0) > STRONG)
    if not len(a_columns) or not len(b_columns):
        return False
    gap = (b.left + int(b_columns[0])) - (a.left + int(a_columns[-1]) + 1)
    return gap < TOUCHING_GAP * max(a.bottom - a.top, b.bottom - b.top)


def _joined(part: list[Segment]) -> Segment:
    """The segments' ink in one box (a group's whole ink, not its cut pieces)."""
    wholes = list({id(g.group or g): g.group or g for g in part}.values())
    top, bottom = min(g.top for g in wholes), max(g.bottom for g in wholes)
    left, right = min(g.left for g in wholes), max(g.right for g in wholes)
    ink = np.zeros((bottom - top, right - left), np.float32)
    for g in wholes:
        region = ink[g.top - top : g.bottom - top, g.left - left : g.right - left]
        np.maximum(region, g.ink, out=region)
    return Segment(top, bottom, left, right, ink)
