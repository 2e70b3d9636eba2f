"""Both cells share one weight layout and compute the notebook's gate equations."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from lstm_edge.train.model import ModelConfig, build_model, get_weights, lstm_forward, set_weights  # noqa: E402
from lstm_edge.train.reference import forward  # noqa: E402


@pytest.fixture(scope="module")
def digits(sample):
    return sample.x_test[:64].astype(np.float32) / 255


def probabilities(model, digits):
    return tf.nn.softmax(model(digits)).numpy()


def test_basic_and_keras_cells_agree_on_the_same_weights(digits):
    basic = build_model(ModelConfig(units=32, cell="basic", cell_bound=None))
    keras_cell = build_model(ModelConfig(units=32, cell="keras", cell_bound=None))
    set_weights(keras_cell, get_weights(basic))
    np.testing.assert_allclose(probabilities(keras_cell, digits), probabilities(basic, digits), atol=1e-6)
    # and back: the layout is the same both ways
    other = build_model(ModelConfig(units=32, cell="basic", cell_bound=None))
    set_weights(other, get_weights(keras_cell))
    np.testing.assert_allclose(probabilities(other, digits), probabilities(basic, digits), atol=1e-6)


@pytest.mark.parametrize("cell, cell_bound", [("basic", 1.0), ("basic", None), ("keras", None)])
def test_cells_match_the_numpy_gate_equations(cell, cell_bound, digits):
    model = build_model(ModelConfig(units=48, cell=cell, cell_bound=cell_bound))
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(0, 0.3, v.shape).astype(np.float32) for k, v in get_weights(model).items()}
    set_weights(model, weights)
    np.testing.assert_allclose(probabilities(model, digits), forward(weights, digits, cell_bound=cell_bound),
                               atol=1e-5)


def test_the_bound_holds_the_cell_state_and_changes_the_answer(digits):
    rng = np.random.default_rng(1)
    model = build_model(ModelConfig(units=16))
    weights = {k: rng.normal(0, 1.0, v.shape).astype(np.float32) for k, v in get_weights(model).items()}
    bounded_p, free_p = forward(weights, digits, cell_bound=1.0), forward(weights, digits)
    assert np.abs(bounded_p - free_p).max() > 1e-3  # with large weights the cell state leaves [-1, 1]
    x = digits.astype(np.float64)
    # h = o * tanh(c) with |c| <= 1 keeps |h| <= tanh(1): the clip is really there, every step
    h = lstm_forward(tf.constant(digits), weights["kernel"], weights["recurrent_kernel"], weights["bias"], 1.0)
    assert np.abs(h.numpy()).max() <= np.tanh(1.0) + 1e-6 and x.shape[0] == h.shape[0]


def test_a_keras_cell_cannot_be_bounded():
    with pytest.raises(ValueError, match="cannot be bounded"):
        ModelConfig(cell="keras", cell_bound=1.0)
    with pytest.raises(ValueError, match="positive"):
        ModelConfig(cell_bound=0.0)


def test_forget_gate_bias_starts_at_one():
    bias = get_weights(build_model(ModelConfig(units=16)))["bias"]
    np.testing.assert_array_equal(bias[16:32], 1.0)
    np.testing.assert_array_equal(np.delete(bias, np.s_[16:32]), 0.0)


@pytest.mark.parametrize("cell_bound", [1.0, None])
def test_the_export_layout_is_the_same_math(digits, cell_bound):
    from lstm_edge.export.convert import serving_forward, serving_order

    rng = np.random.default_rng(2)
    model = build_model(ModelConfig(units=24, cell_bound=cell_bound))
    weights = {k: rng.normal(0, 0.5, v.shape).astype(np.float32) for k, v in get_weights(model).items()}
    h_model = lstm_forward(digits, weights["kernel"], weights["recurrent_kernel"], weights["bias"], cell_bound)
    h_serving = serving_forward(tf.constant(digits), weights, cell_bound)
    np.testing.assert_allclose(h_serving.numpy(), h_model.numpy(), atol=1e-6)
    assert sorted(serving_order(24)) == list(range(96))


def test_model_shapes():
    model = build_model(ModelConfig(units=128))
    assert model(np.zeros((3, 28, 28), np.float32)).shape == (3, 10)
    assert sum(int(np.prod(v.shape)) for v in model.weights) == 81_674  # the notebook's 128-unit model



@pytest.mark.parametrize("cell", ["basic", "keras"])
@pytest.mark.parametrize("chains", [2, 3])
def test_chains_give_each_digit_the_same_answer(cell, chains, digits):
    """Training runs the batch as side-by-side slices (train.model.in_chains): the same numbers for
    every digit, batch sizes that do not divide evenly included."""
    model = build_model(ModelConfig(units=32, cell=cell, cell_bound=1.0 if cell == "basic" else None))
    whole = probabilities(model, digits[:61])
    model.lstm.chains = chains
    np.testing.assert_allclose(probabilities(model, digits[:61]), whole, atol=1e-6)
    if cell == "basic":  # the keras cell's bias refuses an empty slice; the trainer never makes one
        assert probabilities(model, digits[:1]).shape == (1, 10)
