"""A run's trained model with what the benchmark steps measure it against: the test split, the
TensorFlow float model's probabilities on it, and the export's own calibration digits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from lstm_edge.edge.contract import scale_pixels
from lstm_edge.export.publish import calibration_digits
from lstm_edge.train.loop import predict_logits
from lstm_edge.train.model import get_weights
from lstm_edge.train.reference import softmax
from lstm_edge.train.run import load_run, restore_model


@dataclass(frozen=True)
class Trained:
    model: Any  # the restored Keras model (train.model.DigitLSTM)
    weights: dict[str, np.ndarray]  # train.model.get_weights
    dataset: str
    digits: np.ndarray  # float32 (N, 28, 28): the run's test split
    labels: np.ndarray  # (N,)
    probabilities: np.ndarray  # float64 (N, 10): the float model's, the reference for agreement
    calibration: np.ndarray  # float32: the digits an export calibrates int8 on (same choice, same seed)
    cell_bound: Optional[float] = None  # train.model.ModelConfig.cell_bound


def load_trained(run_path: str) -> Trained:
    run = load_run(run_path)
    data = run.load_data()
    model = restore_model(run)
    digits = scale_pixels(data.x_test)
    return Trained(model, get_weights(model), data.name, digits, data.y_test,
                   softmax(predict_logits(model, digits).astype(np.float64)), calibration_digits(run, data),
                   run.model.cell_bound)
