"""Interpreter plumbing on small purpose-built models: the contract, state, quantization.

The models are built by TensorFlow in a child process and checked in fresh processes too:
tflite-runtime cannot create an interpreter in a process that has imported TensorFlow."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from lstm_edge.edge.runtime import Codec
from tests.conftest import EXPECTED_RUNTIMES, run_cli

RUNTIMES = EXPECTED_RUNTIMES

BUILD = textwrap.dedent("""
    import sys
    import tensorflow as tf

    class Accumulator(tf.Module):
        # Each invoke adds the digit's mean ink to a stored total: without a reset, answers drift.
        def __init__(self):
            super().__init__()
            self.total = tf.Variable(tf.zeros([1, 10]))

        @tf.function(input_signature=[tf.TensorSpec([1, 28, 28], tf.float32)])
        def __call__(self, digits):
            self.total.assign_add(tf.fill([1, 10], tf.reduce_mean(digits)))
            return tf.nn.softmax(self.total * tf.range(10, dtype=tf.float32))

    def convert(module, function, resource_variables=False):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], module)
        converter.experimental_enable_resource_variables = resource_variables
        return converter.convert()

    wrong = tf.function(lambda x: tf.nn.softmax(x[:, :10]), input_signature=[tf.TensorSpec([1, 32], tf.float32)])
    open(sys.argv[1] + "/wrong.tflite", "wb").write(convert(tf.Module(), wrong))
    accumulator = Accumulator()
    open(sys.argv[1] + "/stateful.tflite", "wb").write(convert(accumulator, accumulator.__call__, True))
""")

CHECK_WRONG = textwrap.dedent("""
    import sys
    from lstm_edge.edge import ModelError
    from lstm_edge.edge.runtime import TFLiteModel
    try:
        TFLiteModel(sys.argv[1], runtime=sys.argv[2])
    except ModelError as e:
        assert "input shape [1, 32] is not [batch, 28, 28]" in str(e), e
    else:
        raise AssertionError("a [1, 32] model was accepted")
""")

CHECK_STATE = textwrap.dedent("""
    import sys
    import numpy as np
    from lstm_edge.edge.runtime import TFLiteModel
    model = TFLiteModel(sys.argv[1], runtime=sys.argv[2])
    assert model.stateful
    digits = np.full((4, 28, 28), 0.5, np.float32)
    first = model.predict(digits)
    np.testing.assert_allclose(first, np.repeat(first[:1], 4, axis=0), atol=1e-7)
    np.testing.assert_allclose(model.predict(digits[:1]), first[:1], atol=1e-7)
""")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small-models")
    run_cli("-c", BUILD, str(folder))
    return folder


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrong_shapes_are_refused(models, runtime):
    run_cli("-c", CHECK_WRONG, str(models / "wrong.tflite"), runtime)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_state_is_reset_before_every_digit(models, runtime):
    run_cli("-c", CHECK_STATE, str(models / "stateful.tflite"), runtime)


def test_quantize_round_trip():
    tensor = {"dtype": np.int8, "quantization": (1 / 255, -128)}
    pixels = np.arange(256, dtype=np.float32) / 255  # every uint8 pixel level
    q = Codec(tensor).quantize(pixels)
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127
    np.testing.assert_allclose(Codec(tensor).dequantize(q), pixels, atol=1e-6)  # exact for uint8 pixels
    assert Codec(tensor).quantize(np.array([5.0]))[0] == 127  # clipped, not wrapped
    assert Codec({"dtype": np.float32, "quantization": (0.0, 0)}).quantize(pixels).dtype == np.float32
    # int8 reads back through a 256-entry table, int16 through arithmetic: the same values
    every_int8 = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(Codec(tensor).dequantize(every_int8),
                                  (every_int8.astype(np.float32) + np.float32(128)) * np.float32(1 / 255))
    int16 = {"dtype": np.int16, "quantization": (1 / 32768, 0)}
    levels = np.linspace(-1, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(Codec(int16).dequantize(Codec(int16).quantize(levels)), levels, atol=1.01 / 32768)
    assert Codec(int16).quantize(np.array([2.0, -2.0])).tolist() == [32767, -32768]
