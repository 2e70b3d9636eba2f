"""Both cells share one weight layout and compute the notebook's gate equations."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from train.model import ModelConfig, build_model, get_weights, lstm_forward, set_weights  # noqa: E402
from train.reference import forward  # noqa: E402


@pytest.fixture(scope="module")
def digits(sample):
    return sample.x_test[:64].astype(np.float32) / 255


def probabilities(model, digits):
    return tf.nn.softmax(model(digits)).numpy()


def test_basic_and_keras_cells_agree_on_the_same_weights(digits):
    basic = build_model(ModelConfig(units=32, cell="basic"))
    keras_cell = build_model(ModelConfig(units=32, cell="keras"))
    set_weights(keras_cell, get_weights(basic))
    np.testing.assert_allclose(probabilities(keras_cell, digits), probabilities(basic, digits), atol=1e-6)
    # and back: the layout is the same both ways
    other = build_model(ModelConfig(units=32, cell="basic"))
    set_weights(other, get_weights(keras_cell))
    np.testing.assert_allclose(probabilities(other, digits), probabilities(basic, digits), atol=1e-6)


@pytest.mark.parametrize("cell", ["basic", "keras"])
def test_cells_match_the_numpy_gate_equations(cell, digits):
    model = build_model(ModelConfig(units=48, cell=cell))
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(0, 0.3, v.shape).astype(np.float32) for k, v in get_weights(model).items()}
    set_weights(model, weights)
    np.testing.assert_allclose(probabilities(model, digits), forward(weights, digits), atol=1e-5)


def test_forget_gate_bias_starts_at_one():
    bias = get_weights(build_model(ModelConfig(units=16)))["bias"]
    np.testing.assert_array_equal(bias[16:32], 1.0)
    np.testing.assert_array_equal(np.delete(bias, np.s_[16:32]), 0.0)


def test_serving_gate_order_is_the_same_math(digits):
    from export.convert import serving_order

    weights = get_weights(build_model(ModelConfig(units=24)))
    order = serving_order(24)
    h_keras = lstm_forward(digits, weights["kernel"], weights["recurrent_kernel"], weights["bias"])
    h_serving = lstm_forward(digits, weights["kernel"][:, order], weights["recurrent_kernel"][:, order],
                             weights["bias"][order], gates="ifoc")
    np.testing.assert_allclose(h_serving.numpy(), h_keras.numpy(), atol=1e-6)
    assert sorted(order) == list(range(96))


def test_model_shapes():
    model = build_model(ModelConfig(units=128))
    assert model(np.zeros((3, 28, 28), np.float32)).shape == (3, 10)
    assert sum(int(np.prod(v.shape)) for v in model.weights) == 81_674  # the notebook's 128-unit model



@pytest.mark.parametrize("cell", ["basic", "keras"])
@pytest.mark.parametrize("chains", [2, 3])
def test_chains_give_each_digit_the_same_answer(cell, chains, digits):
    """Training runs the batch as side-by-side slices (train.model.in_chains): the same numbers for
    every digit, batch sizes that do not divide evenly included."""
    model = build_model(ModelConfig(units=32, cell=cell))
    whole = probabilities(model, digits[:61])
    model.lstm.chains = chains
    np.testing.assert_allclose(probabilities(model, digits[:61]), whole, atol=1e-6)
    if cell == "basic":  # the keras cell's bias refuses an empty slice; the trainer never makes one
        assert probabilities(model, digits[:1]).shape == (1, 10)
