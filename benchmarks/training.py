"""Training throughput, side by side: lstm-edge's compiled train step against the same network as
`keras.layers.LSTM` trained with `model.fit`. Epochs alternate between the two, so both see the
same machine noise; the first epoch of each (tracing) is not counted.

    python -m benchmarks.training [--epochs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from lstm_edge.edge.contract import IMAGE_SIZE, NUM_CLASSES, scale_pixels  # noqa: E402
from lstm_edge.train.data import load_dataset  # noqa: E402
from lstm_edge.train.loop import TrainConfig, Trainer  # noqa: E402
from lstm_edge.train.model import ModelConfig, build_model  # noqa: E402


def keras_lstm_model(units: int) -> keras.Model:
    """The same network with Keras' own LSTM layer (same gates, same Dense(10) head)."""
    model = keras.Sequential([
        keras.Input((IMAGE_SIZE, IMAGE_SIZE)),
        keras.layers.LSTM(units, unit_forget_bias=True),
        keras.layers.Dense(NUM_CLASSES),
    ])
    model.compile(keras.optimizers.Adam(0.01, global_clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def measure(epochs: int = 5, dataset: str = "mnist-sample", units: int = 128, batch_size: int = 100) -> dict:
    """Digits per second of each trainer, per epoch after the first, and their medians and ratio."""
    keras.utils.set_random_seed(0)
    data = load_dataset(dataset)
    config = TrainConfig(epochs=epochs, batch_size=batch_size)
    strategy = tf.distribute.get_strategy()
    model = build_model(ModelConfig(units=units))
    optimizer = keras.optimizers.Adam(config.lr)
    trainer = Trainer(model, optimizer, data, config, strategy)
    baseline = keras_lstm_model(units)
    x, y = scale_pixels(data.x_train), data.y_train
    ours, theirs = [], []
    for epoch in range(1, epochs + 1):
        result = trainer.fit_epoch(epoch)
        start = time.perf_counter()
        baseline.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        keras_rate = len(x) / (time.perf_counter() - start)
        if epoch > 1:  # epoch 1 includes tracing for both
            ours.append(result.digits_per_second)
            theirs.append(keras_rate)
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    return {
        "dataset": data.name,
        "digits": len(x),
        "batch_size": batch_size,
        "units": units,
        "epochs_timed": len(ours),
        "lstm_edge_digits_per_second": ours,
        "keras_fit_digits_per_second": theirs,
        "lstm_edge_median": ours_median,
        "keras_fit_median": theirs_median,
        "ratio": ours_median / theirs_median,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.epochs)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"lstm-edge {result['lstm_edge_median']:,.0f} digits/s, keras.layers.LSTM + fit "
              f"{result['keras_fit_median']:,.0f} digits/s: ratio {result['ratio']:.2f} "
              f"(medians of {result['epochs_timed']} epochs)")


if __name__ == "__main__":
    main()
