"""The gate equations in plain numpy: the reference the TensorFlow cells and exports are checked
against, and the numpy baseline of the benchmark. Needs no TensorFlow.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # equal to 1 / (1 + exp(-x)), without overflow


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits (..., 10), without overflow."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def forward(weights: dict[str, np.ndarray], digits: np.ndarray, dtype=np.float64,
            cell_bound: Optional[float] = None) -> np.ndarray:
    """Class probabilities for digits, one gate equation a line.

    Args:
      weights: the shared layout (train.model.WEIGHT_NAMES).
      digits: float (B, 28, 28) in [0, 1].
      dtype: float64 for the reference; float32 is the benchmark's numpy baseline.
      cell_bound: the cell state is clipped to [-cell_bound, cell_bound] (train.model.ModelConfig).
    Returns:
      (B, 10) probabilities in `dtype`.
    """
    x = np.asarray(digits, dtype)
    weights = {name: np.asarray(value, dtype) for name, value in weights.items()}
    kernel, recurrent = weights["kernel"], weights["recurrent_kernel"]
    units = recurrent.shape[0]
    z_x = x @ kernel + weights["bias"]  # (B, T, 4U)
    h = c = np.zeros((len(x), units), dtype)  # (B, U)
    for t in range(x.shape[1]):
        z = z_x[:, t] + h @ recurrent  # (B, 4U)
        i, f, g, o = np.split(z, 4, axis=-1)  # (B, U) each: input, forget, cell, output
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        if cell_bound is not None:
            c = np.clip(c, -cell_bound, cell_bound)
        h = sigmoid(o) * np.tanh(c)
    return softmax(h @ weights["dense_kernel"] + weights["dense_bias"])  # (B, 10)
