"""The digit classifier: an LSTM reads a 28x28 digit as 28 time steps of 28 pixels.

Two cells with one weight layout (Keras' `kernel`, `recurrent_kernel`, `bias`, gates in the order
i, f, c, o): the notebook's `BasicLSTM`, an explicit loop over the steps, and the same loop around
a pre-built `keras.layers.LSTMCell`. Either one's weights load into the other.

The basic cell bounds its cell state to [-1, 1] by default (`cell_bound`): the same accuracy
(99.38% on full MNIST with or without), and an int8 export that keeps the float model's answers,
since an int8 cell state spread over [-14, 14] was the largest source of int8 error (docs/export.md,
"int8 that keeps the float model's answers"). `cell_bound=None` is the notebook's unbounded cell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from lstm_edge.edge.contract import IMAGE_SIZE, NUM_CLASSES

CELLS = ("basic", "keras")
DEFAULT_CELL_BOUND = 1.0  # the basic cell's state lives in [-1, 1]: TFLite fuses the clip into the add
WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias")


@dataclass(frozen=True)
class ModelConfig:
    units: int = 128
    cell: str = "basic"  # "basic": the explicit gate equations; "keras": keras.layers.LSTMCell
    cell_bound: Optional[float] = DEFAULT_CELL_BOUND  # the cell state is clipped to [-bound, bound]; None: not

    def __post_init__(self):
        if self.cell_bound is not None and not (self.cell_bound > 0 and math.isfinite(self.cell_bound)):
            raise ValueError(f"cell bound must be a positive number or none (got {self.cell_bound})")
        if self.cell == "keras" and self.cell_bound is not None:
            raise ValueError("keras.layers.LSTMCell keeps its cell state inside: it cannot be bounded "
                             "(use the basic cell, or no bound)")

    def to_dict(self) -> dict:
        return asdict(self)


def forget_bias_init(shape, dtype=None):
    """Zeros, but ones for the forget gate: the cell remembers by default early in training."""
    units = shape[0] // 4
    return tf.concat([tf.zeros([units]), tf.ones([units]), tf.zeros([2 * units])], axis=0)


def lstm_forward(x, kernel, recurrent_kernel, bias, cell_bound: Optional[float] = None):
    """The gate equations over all time steps; returns the last hidden state.

    Args:
      x: (B, T, F) inputs; kernel (F, 4U), recurrent_kernel (U, 4U), bias (4U), gate blocks in
        Keras' order (input, forget, cell, output).
      cell_bound: clip the cell state to [-cell_bound, cell_bound] after every step; None: not.
    Returns:
      h: (B, U).
    """
    steps, features, units = x.shape[1], x.shape[2], recurrent_kernel.shape[0]
    # Every step's input projection in one 2-D product: the same sums as 28 small ones in far fewer
    # ops. (A broadcast batch matmul, x @ kernel on (B, T, F), made training 25% slower on a CPU.)
    z_x = tf.matmul(tf.reshape(x, [-1, features]), kernel) + bias  # (B*T, 4U)
    z_x = tf.reshape(z_x, [-1, steps, 4 * units])  # (B, T, 4U)
    h = c = None  # the zero state: step 1 skips h @ recurrent_kernel and f * c, both zero
    # unstack, not z_x[:, t]: one op, and its gradient is one stack, not 28 full-size scatters.
    for z in tf.unstack(z_x, axis=1):  # (B, 4U) each
        if h is not None:
            z = z + tf.matmul(h, recurrent_kernel)  # (B, 4U)
        i, f, z_cell, o = tf.split(z, 4, axis=-1)  # (B, U) each
        i, f, o = tf.sigmoid(i), tf.sigmoid(f), tf.sigmoid(o)
        c = i * tf.tanh(z_cell) if c is None else f * c + i * tf.tanh(z_cell)  # (B, U)
        c = bounded(c, cell_bound)
        h = o * tf.tanh(c)  # (B, U)
    return h


def bounded(c, cell_bound: Optional[float]):
    """The cell state clipped to [-cell_bound, cell_bound] (unchanged for None). With a bound of 1
    the TFLite converter fuses the clip into the add before it (RELU_N1_TO_1): no op of its own."""
    return c if cell_bound is None else tf.clip_by_value(c, -cell_bound, cell_bound)


def in_chains(run, x, chains: int):
    """run(x) on `chains` slices of the batch, side by side, joined: the same numbers for each digit.

    The recurrence is a long chain of small ops, each waiting for the last; independent chains give
    TensorFlow's inter-op threads work to run in parallel. Training on 2 CPU cores went from ~6,100
    to ~7,300 digits/s with 2 chains (3 or 4 were no better than 1); see benchmarks/training.py.
    """
    if chains <= 1:
        return run(x)
    n = tf.shape(x)[0]
    parts = [x[(j * n) // chains : ((j + 1) * n) // chains] for j in range(chains)]
    return tf.concat([run(part) for part in parts], axis=0)


class BasicLSTM(keras.layers.Layer):
    """The notebook's LSTM: an explicit loop over the time steps; returns the last hidden state."""

    def __init__(self, units: int, cell_bound: Optional[float] = None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.cell_bound = cell_bound
        self.chains = 1  # see in_chains; the trainer sets it for the machine

    def build(self, input_shape):
        features, gates = input_shape[-1], 4 * self.units
        self.kernel = self.add_weight(name="kernel", shape=(features, gates), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, gates), initializer="orthogonal"
        )
        self.bias = self.add_weight(name="bias", shape=(gates,), initializer=forget_bias_init)

    def call(self, x):  # x: (B, T, F)
        return in_chains(lambda part: lstm_forward(part, self.kernel, self.recurrent_kernel, self.bias,
                                                   self.cell_bound), x, self.chains)


class KerasCellLSTM(keras.layers.Layer):
    """The notebook's second variant: the same loop around a pre-built `keras.layers.LSTMCell`."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.cell = keras.layers.LSTMCell(units, unit_forget_bias=True)
        self.chains = 1  # see in_chains; the trainer sets it for the machine

    def build(self, input_shape):
        self.cell.build((input_shape[0], input_shape[-1]))

    @property
    def kernel(self):
        return self.cell.kernel

    @property
    def recurrent_kernel(self):
        return self.cell.recurrent_kernel

    @property
    def bias(self):
        return self.cell.bias

    def call(self, x):  # x: (B, T, F)
        return in_chains(self._loop, x, self.chains)

    def _loop(self, x):
        h = tf.zeros([tf.shape(x)[0], self.units], x.dtype)  # (B, U)
        states = [h, h]
        for x_t in tf.unstack(x, axis=1):  # (B, F) each
            h, states = self.cell(x_t, states)  # (B, U)
        return h


class DigitLSTM(keras.Model):
    """Digits (B, 28, 28) in [0, 1] -> class logits (B, 10)."""

    def __init__(self, config: ModelConfig = ModelConfig(), **kwargs):
        super().__init__(**kwargs)
        self.config = config
        if config.cell == "basic":
            self.lstm = BasicLSTM(config.units, config.cell_bound, name="lstm")
        else:
            self.lstm = KerasCellLSTM(config.units, name="lstm")
        self.classifier = keras.layers.Dense(NUM_CLASSES, name="classifier")

    def call(self, digits):  # (B, 28, 28)
        return self.classifier(self.lstm(digits))  # (B, 10)


def build_model(config: ModelConfig) -> DigitLSTM:
    """A built DigitLSTM (its weights exist and are initialised)."""
    if config.cell not in CELLS:
        raise ValueError(f"unknown cell {config.cell!r}")
    model = DigitLSTM(config)
    model(tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE]))
    return model


def get_weights(model: DigitLSTM) -> dict[str, np.ndarray]:
    """The weights in the layout both cells share, as numpy arrays keyed by WEIGHT_NAMES."""
    lstm, dense = model.lstm, model.classifier
    variables = (lstm.kernel, lstm.recurrent_kernel, lstm.bias, dense.kernel, dense.bias)
    return {name: np.asarray(v.numpy()) for name, v in zip(WEIGHT_NAMES, variables)}


def set_weights(model: DigitLSTM, weights: dict[str, np.ndarray]) -> None:
    """Load weights in the shared layout (from either cell) into a built model."""
    lstm, dense = model.lstm, model.classifier
    variables = (lstm.kernel, lstm.recurrent_kernel, lstm.bias, dense.kernel, dense.bias)
    for name, variable in zip(WEIGHT_NAMES, variables):
        variable.assign(weights[name])
