"""Checkpoint weights -> a TFLite flatbuffer, in one of the quantization modes.

The serving graph is the trained model's own math (`train.model.lstm_forward`) with the weights
frozen as constants, a fixed batch-1 input `[1, 28, 28]` float32 (the edge resizes it for batches)
and softmax probabilities out. Two layout choices cost nothing in accuracy and save ops:
the gate blocks are stored as i, f, o, c so one sigmoid serves three gates, and the zero initial
state lets step 1 skip its recurrent product.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import tensorflow as tf

from edge.preprocess import IMAGE_SIZE
from edge.runtime import native_stderr_silenced
from train.model import lstm_forward

from .errors import ExportError
from .modes import MODES

SERVING_BATCH = 1  # a fixed batch lets XNNPACK take the int8 graph (a dynamic one fails to prepare)


def serving_order(units: int) -> np.ndarray:
    """Column order taking Keras' gate blocks (i, f, c, o) to the serving order (i, f, o, c)."""
    return np.concatenate([np.arange(g * units, (g + 1) * units) for g in (0, 1, 3, 2)])


def serving_function(weights: dict[str, np.ndarray], batch_size: int = SERVING_BATCH):
    """A concrete function: digits (batch, 28, 28) float32 in [0, 1] -> probabilities (batch, 10)."""
    units = weights["recurrent_kernel"].shape[0]
    order = serving_order(units)
    kernel = tf.constant(weights["kernel"][:, order])
    recurrent_kernel = tf.constant(weights["recurrent_kernel"][:, order])
    bias = tf.constant(weights["bias"][order])
    dense_kernel, dense_bias = tf.constant(weights["dense_kernel"]), tf.constant(weights["dense_bias"])

    @tf.function(input_signature=[tf.TensorSpec([batch_size, IMAGE_SIZE, IMAGE_SIZE], tf.float32, name="digits")])
    def serve(digits):
        h = lstm_forward(digits, kernel, recurrent_kernel, bias, gates="ifoc")  # (B, U)
        return {"probabilities": tf.nn.softmax(tf.matmul(h, dense_kernel) + dense_bias)}  # (B, 10)

    return serve.get_concrete_function()


def convert(weights: dict[str, np.ndarray], mode: str, representative: Optional[np.ndarray] = None,
            function=None) -> bytes:
    """Convert the weights' serving graph to a TFLite flatbuffer.

    Args:
      weights: the shared weight layout (train.model.get_weights).
      mode: one of MODES.
      representative: float32 digits (N, 28, 28) to calibrate int8 and int16x8 activations.
      function: another serving graph of the same signature (the benchmark's layout candidates);
        default serving_function(weights).
    Returns:
      the .tflite bytes.
    Raises:
      ExportError: unknown mode, missing calibration digits, or a converter failure.
    """
    if mode not in MODES:
        raise ExportError(f"unknown quantization mode {mode!r}; choose from {', '.join(MODES)}")
    # The weights are constants, so no variables need tracking; a bare Module says so.
    function = serving_function(weights) if function is None else function
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
