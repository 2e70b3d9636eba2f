"""Checkpoint weights -> a TFLite flatbuffer, in one of the quantization modes.

The serving graph is the trained model's own math (`train.model.lstm_forward`, the same gate
equations and cell bound) with the weights frozen as constants, a fixed batch-1 input
`[1, 28, 28]` float32 (the edge resizes it for batches) and softmax probabilities out. Its layout
(`serving_forward`) is chosen for int8 (benchmarks/layouts.py measures the alternatives):

- the three sigmoid gates (i, f, o) and the cell candidate come from separate products, so in
  int8 each has its own scale: the candidate's pre-activation spans about a third of the gates'
  range, and one shared scale (a 4U-wide product sliced apart: a slice keeps its input's scale)
  coarsened tanh's input threefold;
- one sigmoid serves the three gates; the zero initial state lets step 1 skip its recurrent
  products and the forget gate;
- with a cell bound of 1 the clip fuses into the cell's add (RELU_N1_TO_1).
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import tensorflow as tf

from lstm_edge.edge.contract import IMAGE_SIZE
from lstm_edge.edge.native_stderr import native_stderr_silenced
from lstm_edge.train.model import bounded

from .errors import ExportError
from .modes import MODES

SERVING_BATCH = 1  # a fixed batch lets XNNPACK take the int8 graph (a dynamic one fails to prepare)


def serving_order(units: int) -> np.ndarray:
    """Column order taking Keras' gate blocks (i, f, c, o) to the serving order (i, f, o, c)."""
    return np.concatenate([np.arange(g * units, (g + 1) * units) for g in (0, 1, 3, 2)])


def serving_forward(x, weights: dict[str, np.ndarray], cell_bound: Optional[float] = None):
    """`train.model.lstm_forward`'s arithmetic in the export's layout; returns the last hidden state (B, U).

    x: (B, T, F) float32. The weights are taken in Keras' gate order and baked in as constants.
    """
    steps, features = x.shape[1], x.shape[2]
    units = weights["recurrent_kernel"].shape[0]
    order = serving_order(units)
    kernel, recurrent, bias = (weights["kernel"][:, order], weights["recurrent_kernel"][:, order],
                               weights["bias"][order])
    gates, cell = slice(0, 3 * units), slice(3 * units, 4 * units)  # columns of i, f, o | of c
    x_flat = tf.reshape(x, [-1, features])

    def input_projections(part):  # every step's in one product: (B, width) per step
        z_x = tf.matmul(x_flat, tf.constant(kernel[:, part])) + tf.constant(bias[part])
        return tf.unstack(tf.reshape(z_x, [-1, steps, part.stop - part.start]), axis=1)

    recurrent_gates, recurrent_cell = tf.constant(recurrent[:, gates]), tf.constant(recurrent[:, cell])
    h = c = None
    for z_gates, z_cell in zip(input_projections(gates), input_projections(cell)):  # (B, 3U), (B, U)
        if h is not None:
            z_gates = z_gates + tf.matmul(h, recurrent_gates)
            z_cell = z_cell + tf.matmul(h, recurrent_cell)
        if c is None:  # step 1 has no use for f: a split with an unused output stayed float in int8
            i, o = tf.sigmoid(z_gates[:, :units]), tf.sigmoid(z_gates[:, 2 * units :])
            c = i * tf.tanh(z_cell)
        else:
            i, f, o = tf.split(tf.sigmoid(z_gates), 3, axis=-1)  # (B, U) each
            c = f * c + i * tf.tanh(z_cell)
        c = bounded(c, cell_bound)
        h = o * tf.tanh(c)
    return h


def serving_function(weights: dict[str, np.ndarray], cell_bound: Optional[float] = None,
                     batch_size: int = SERVING_BATCH, forward=serving_forward):
    """A concrete function: digits (batch, 28, 28) float32 in [0, 1] -> probabilities (batch, 10).

    forward: (x, weights, cell_bound) -> h; another layout of the same arithmetic (benchmarks/layouts.py).
    """
    dense_kernel, dense_bias = tf.constant(weights["dense_kernel"]), tf.constant(weights["dense_bias"])

    @tf.function(input_signature=[tf.TensorSpec([batch_size, IMAGE_SIZE, IMAGE_SIZE], tf.float32, name="digits")])
    def serve(digits):
        h = forward(digits, weights, cell_bound)  # (B, U)
        return {"probabilities": tf.nn.softmax(tf.matmul(h, dense_kernel) + dense_bias)}  # (B, 10)

    return serve.get_concrete_function()


def convert(weights: dict[str, np.ndarray], mode: str, representative: Optional[np.ndarray] = None,
            function=None, cell_bound: Optional[float] = None) -> bytes:
    """Convert the weights' serving graph to a TFLite flatbuffer.

    Args:
      weights: the shared weight layout (train.model.get_weights).
      mode: one of MODES.
      cell_bound: the model's cell bound (train.model.ModelConfig.cell_bound).
      representative: float32 digits (N, 28, 28) to calibrate int8 and int16x8 activations.
      function: another serving graph of the same signature (the benchmark's layout candidates);
        default serving_function(weights, cell_bound).
    Returns:
      the .tflite bytes.
    Raises:
      ExportError: unknown mode, missing calibration digits, or a converter failure.
    """
    if mode not in MODES:
        raise ExportError(f"unknown quantization mode {mode!r}; choose from {', '.join(MODES)}")
    # The weights are constants, so no variables need tracking; a bare Module says so.
    function = serving_function(weights, cell_bound) if function is None else function
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], tf.Module())
    if mode != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # tflite-runtime 2.14 lacks FULLY_CONNECTED v12 (per-channel dense weights): stay loadable.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode in ("int8", "int16x8"):
        if representative is None or len(representative) == 0:
            raise ExportError(f"mode {mode} needs representative digits to calibrate")
        digits = np.asarray(representative, np.float32)
        converter.representative_dataset = lambda: ([digits[i : i + SERVING_BATCH]] for i in range(len(digits)))
        if mode == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            converter.inference_input_type = converter.inference_output_type = tf.int16
    try:
        with warnings.catch_warnings(), native_stderr_silenced():  # the converter's chatter is not for users
            warnings.simplefilter("ignore")
            model = converter.convert()
    except Exception as e:  # the converter raises ConverterError, RuntimeError, ValueError...
        raise ExportError(f"the TFLite converter failed for mode {mode}: {str(e).splitlines()[0][:200]}") from None
    return strip_names(model)


def strip_names(model: bytes) -> bytes:
    """Drop tensor names and signature strings: bytes the interpreter never needs on a Pi."""
    from tensorflow.lite.tools import flatbuffer_utils

    parsed = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    flatbuffer_utils.strip_strings(parsed)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))
