"""Golden digits: a few test digits with the answers the export verified, shipped beside the model
so that `edge-doctor` can prove on the user's own device that the model still gives them.

The sidecar (`model.golden.npz`) holds the digits as uint8 pixels, their labels, the float model's
probabilities and the exported model's outputs on each runtime it was verified on; the manifest
carries its sha256, so an altered sidecar is refused like an altered model.
"""

from __future__ import annotations

import io
from typing import Mapping

import numpy as np

from lstm_edge.edge.contract import NUM_CLASSES

GOLDEN_DIGITS = 32
PER_CLASS = 3  # the class's least sure digit and its first two others


def choose_golden(labels: np.ndarray, reference: np.ndarray, count: int = GOLDEN_DIGITS) -> np.ndarray:
    """Indices of `count` test digits: class-balanced, with the ones the float model is least sure of.

    Args:
      labels: (N,) true digits.
      reference: (N, 10) the float model's probabilities.
    Returns:
      sorted int indices.
    """
    confidence = reference.max(-1)
    chosen: list[int] = []
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(labels == digit)
        if len(members) == 0:
            continue
        least_sure = int(members[np.argmin(confidence[members])])
        chosen += [least_sure] + [int(i) for i in members if i != least_sure][: PER_CLASS - 1]
    for i in np.argsort(confidence, kind="stable"):  # the least sure of all fill the rest
        if len(chosen) >= count:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return np.array(sorted(chosen[:count]), np.int64)


def golden_bytes(indices: np.ndarray, pixels: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                 outputs: Mapping[str, np.ndarray]) -> bytes:
    """The sidecar's bytes (a compressed .npz).

    Args:
      pixels: (N, 28, 28) uint8 test digits; labels, reference: as for choose_golden.
      outputs: runtime name -> (N, 10) the exported model's probabilities there.
    """
    arrays = {"digits": np.asarray(pixels[indices], np.uint8), "labels": np.asarray(labels[indices], np.int64),
              "float_probabilities": np.asarray(reference[indices], np.float32),
              **{f"outputs-{runtime}": np.asarray(p[indices], np.float32) for runtime, p in outputs.items()}}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()
