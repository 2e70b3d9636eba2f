"""Scoring predictions: accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lstm_edge.edge.contract import NUM_CLASSES


@dataclass(frozen=True)
class Evaluation:
    """How a model did on labelled digits.

    Attributes:
      accuracy: fraction of digits right.
      per_class: accuracy for each true digit 0-9 (NaN where a digit has no examples).
      confusion: counts, confusion[true][predicted].
    """

    accuracy: float
    per_class: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]
    count: int

    def to_dict(self) -> dict:
        out = asdict(self)
        out["per_class"] = {str(d): (None if np.isnan(a) else a) for d, a in enumerate(self.per_class)}
        out["confusion"] = [list(row) for row in self.confusion]
        return out

    def report(self) -> str:
        """A text report: accuracy, per-class accuracy, confusion matrix."""
        lines = [f"accuracy: {100 * self.accuracy:.2f}% of {self.count:,} digits", "", "per class:"]
        lines += [f"  {d}: {100 * a:6.2f}%" for d, a in enumerate(self.per_class)]
        lines += ["", "confusion (rows: true digit, columns: predicted):"]
        lines.append("     " + "".join(f"{d:>6}" for d in range(NUM_CLASSES)))
        lines += [f"  {t}  " + "".join(f"{n:>6}" for n in row) for t, row in enumerate(self.confusion)]
        return "\n".join(lines)


def score(labels: np.ndarray, predicted: np.ndarray) -> Evaluation:
    """Score predicted digits against true labels (both int arrays of shape (N,))."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / totals
    return Evaluation(
        accuracy=float(np.mean(labels == predicted)) if len(labels) else float("nan"),
        per_class=tuple(float(a) for a in per_class),
        confusion=tuple(tuple(int(n) for n in row) for row in confusion),
        count=int(len(labels)),
    )
