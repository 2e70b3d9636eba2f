"""The line reader: an LSTM that reads a group of touching digits column by column, trained with
CTC (Graves et al., 2006) on numbers made of training digits (`numbers`), so that it says how many
digits a group holds and which, where the segmenter can only guess from the group's width.

Its input is the edge's line layout (`edge.contract`, LINE_*): 28 rows, `width` columns; it reads
STRIDE columns a step (28 x STRIDE pixels), forwards and backwards (two LSTMs with the digit model's
gate equations, cell state bounded to [-1, 1] for int8), and answers 11 probabilities a step: the
ten digits, then CTC's blank.

    RUN/lines.json     settings, dataset, each epoch's loss and held-out accuracy, versions
    RUN/weights.npz    the weights (LINE_WEIGHTS), float32
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from lstm_edge.edge.contract import BLANK, LINE_CLASSES, LINE_HEIGHT
from lstm_edge.edge.lines import ctc_digits

from .errors import TrainError

STRIDE = 2  # input columns a step reads (default): a 20-pixel-high digit is 5-10 steps wide
CELL_BOUND = 1.0
DIRECTIONS = ("forward", "backward")
LINE_WEIGHTS = tuple(f"{d}_{w}" for d in DIRECTIONS for w in ("kernel", "recurrent_kernel", "bias")) + (
    "dense_kernel", "dense_bias")
CONFIG = "lines.json"
WEIGHTS = "weights.npz"
KIND = "lstm-edge-line-reader/1"
HELD_OUT_NUMBERS = 1000
DECAY = 0.8  # the learning rate's factor per epoch


@dataclass(frozen=True)
class LineConfig:
    units: int = 128  # per direction (96 read 8.5 points fewer touching numbers whole: docs/training.md)
    width: int = 128  # input columns: up to ~8 touching digits; a wider group is squeezed
    stride: int = STRIDE  # input columns a step reads
    lines: int = 60_000  # numbers made once from the training digits, read every epoch
    augment: float = 0.5  # the share of them whose digits are turned, slanted and widened (numbers.distorted)
    epochs: int = 12
    batch_size: int = 100
    lr: float = 0.005  # Adam's, times DECAY every epoch
    clip_norm: float = 5.0
    seed: int = 0

    def __post_init__(self):
        if not 0 <= self.augment <= 1:
            raise ValueError(f"augment must be a share from 0 to 1 (got {self.augment})")
        if self.stride not in (1, 2, 4):
            raise ValueError(f"stride must be 1, 2 or 4 (got {self.stride})")
        if self.width % self.stride or self.width < 4 * LINE_HEIGHT:
            raise ValueError(f"width must be a multiple of {self.stride} and at least {4 * LINE_HEIGHT} "
                             f"(got {self.width})")

    @property
    def steps(self) -> int:
        return self.width // self.stride


def lstm_states(x, kernel, recurrent_kernel, bias, reverse: bool = False):
    """The digit model's gate equations (Keras' gate order i, f, c, o), every step's hidden state.

    Args:
      x: (B, T, F); kernel (F, 4U), recurrent_kernel (U, 4U), bias (4U): tensors or constants.
      reverse: read the steps last to first (the states still come back in the input's order).
    Returns:
      (B, T, U).
    """
    import tensorflow as tf

    steps, features, units = x.shape[1], x.shape[2], recurrent_kernel.shape[0]
    z_x = tf.reshape(tf.matmul(tf.reshape(x, [-1, features]), kernel) + bias, [-1, steps, 4 * units])
    inputs = tf.unstack(z_x, axis=1)
    h = c = None
    states = []
    for z in inputs[::-1] if reverse else inputs:
        if h is None:  # the zero state: slices, not a split whose forget gate nobody uses (int8 keeps it float)
            c = tf.sigmoid(z[:, :units]) * tf.tanh(z[:, 2 * units : 3 * units])
            o = tf.sigmoid(z[:, 3 * units :])
        else:
            i, f, z_cell, o = tf.split(z + tf.matmul(h, recurrent_kernel), 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(z_cell)
            o = tf.sigmoid(o)
        c = tf.clip_by_value(c, -CELL_BOUND, CELL_BOUND)
        h = o * tf.tanh(c)
        states.append(h)
    return tf.stack(states[::-1] if reverse else states, axis=1)


def line_logits(lines, weights: dict, stride: int = STRIDE):
    """Lines (B, 28, width) -> logits (B, steps, 11), for training (variables) and export (constants) alike."""
    import tensorflow as tf

    width = lines.shape[2]
    columns = tf.reshape(tf.transpose(lines, [0, 2, 1]), [-1, width // stride, LINE_HEIGHT * stride])
    states = [lstm_states(columns, weights[f"{d}_kernel"], weights[f"{d}_recurrent_kernel"], weights[f"{d}_bias"],
                          reverse=d == "backward") for d in DIRECTIONS]
    both = tf.concat(states, axis=-1)  # (B, T, 2U)
    units2 = both.shape[2]
    logits = tf.matmul(tf.reshape(both, [-1, units2]), weights["dense_kernel"]) + weights["dense_bias"]
    return tf.reshape(logits, [-1, width // stride, LINE_CLASSES])


def initial_weights(config: LineConfig) -> dict[str, np.ndarray]:
    """Glorot input and output weights, orthogonal recurrent ones, forget-gate bias 1."""
    rng = np.random.default_rng(config.seed)
    features, units = LINE_HEIGHT * config.stride, config.units

    def glorot(shape):
        limit = math.sqrt(6 / sum(shape))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    def orthogonal(rows, cols):
        q, r = np.linalg.qr(rng.normal(size=(cols, rows)))
        return (q * np.sign(np.diag(r))).T.astype(np.float32)

    weights = {}
    for d in DIRECTIONS:
        bias = np.zeros(4 * units, np.float32)
        bias[units : 2 * units] = 1.0
        weights.update({f"{d}_kernel": glorot((features, 4 * units)),
                        f"{d}_recurrent_kernel": orthogonal(units, 4 * units), f"{d}_bias": bias})
    weights["dense_kernel"] = glorot((2 * units, LINE_CLASSES))
    weights["dense_bias"] = np.zeros(LINE_CLASSES, np.float32)
    return weights


def read_lines(probabilities: np.ndarray) -> list[str]:
    """Each line's digits, as the edge decodes them."""
    return ["".join(str(d.digit) for d in ctc_digits(p, 1)) for p in probabilities]


def truths(labels: np.ndarray, lengths: np.ndarray) -> list[str]:
    return ["".join(str(int(d)) for d in row[:n]) for row, n in zip(labels, lengths)]


@dataclass(frozen=True)
class LineEpoch:
    epoch: int
    loss: float
    held_out_accuracy: float  # whole numbers read right, of HELD_OUT_NUMBERS made of test digits
    seconds: float


def train_lines(config: LineConfig, dataset: Optional[str], data_path: Optional[str], out: Path,
                on_epoch: Optional[Callable[[LineEpoch], None]] = None) -> list[LineEpoch]:
    """Train a line reader into the folder `out` (written after every epoch).

    Raises:
      TrainError: bad data, a folder that holds something else, a diverging loss.
    """
    import keras
    import tensorflow as tf

    from .data import load_dataset
    from .numbers import line_examples

    if (out / CONFIG).exists() or (out.exists() and any(out.iterdir())):
        raise TrainError(f"{out} is not empty: choose another --out")
    dataset = None if data_path else (dataset or "mnist")
    data = load_dataset(dataset, data_path)
    rng = np.random.default_rng(config.seed)
    lines, labels, lengths = line_examples(data.x_train, data.y_train, config.lines, config.width, rng,
                                           config.augment)
    test = line_examples(data.x_test, data.y_test, HELD_OUT_NUMBERS, config.width, rng)
    keras.utils.set_random_seed(config.seed)
    weights = {name: tf.Variable(value, name=name) for name, value in initial_weights(config).items()}
    variables = [weights[name] for name in LINE_WEIGHTS]
    optimizer = keras.optimizers.Adam(config.lr, clipnorm=config.clip_norm)
    steps = tf.fill([config.batch_size], config.steps)

    @tf.function(reduce_retracing=True)
    def step(x, y, n):
        with tf.GradientTape() as tape:
            logits = line_logits(x, weights, config.stride)
            loss = tf.reduce_mean(tf.nn.ctc_loss(y, logits, n, steps[: tf.shape(x)[0]], logits_time_major=False,
                                                 blank_index=BLANK))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function(reduce_retracing=True)
    def probabilities(x):
        return tf.nn.softmax(line_logits(x, weights, config.stride))

    history: list[LineEpoch] = []
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    order_rng = np.random.default_rng(config.seed + 1)
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        optimizer.learning_rate.assign(config.lr * DECAY ** (epoch - 1))
        order = order_rng.permutation(len(lines))
        losses = [float(step(lines[i], labels[i], lengths[i]))
                  for i in (order[b : b + config.batch_size] for b in range(0, len(order), config.batch_size))]
        loss = float(np.mean(losses))
        if not math.isfinite(loss):
            raise TrainError(f"epoch {epoch}: the loss diverged ({loss}); try a lower --lr")
        read = read_lines(np.concatenate([probabilities(test[0][b : b + 500]).numpy()
                                          for b in range(0, len(test[0]), 500)]))
        accuracy = float(np.mean([a == b for a, b in zip(read, truths(test[1], test[2]))]))
        history.append(LineEpoch(epoch, loss, accuracy, time.perf_counter() - start))
        save(out, config, {name: v.numpy() for name, v in weights.items()}, history, data, dataset, data_path,
             created)
        if on_epoch:
            on_epoch(history[-1])
    return history


def save(out: Path, config: LineConfig, weights: dict[str, np.ndarray], history: list[LineEpoch], data,
         dataset: Optional[str], data_path: Optional[str], created: str) -> None:
    from .run import versions

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (WEIGHTS + ".tmp.npz")
    np.savez(tmp, **weights)
    os.replace(tmp, out / WEIGHTS)
    record = {"kind": KIND, "model": asdict(config), "cell_bound": CELL_BOUND,
              "dataset": dataset, "data_path": str(Path(data_path).resolve()) if data_path else None,
              "data": data.describe(), "epochs_done": history[-1].epoch,
              "held_out_accuracy": history[-1].held_out_accuracy, "history": [asdict(h) for h in history],
              "versions": versions(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
              "created": created, "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    tmp = out / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out / CONFIG)


@dataclass(frozen=True)
class LineRun:
    """A line reader's run folder, read back."""

    path: Path
    config: LineConfig
    record: dict
    weights: dict[str, np.ndarray]


def is_line_run(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def load_line_run(path: Path) -> LineRun:
    """Raises TrainError: not a line reader's run folder, or a damaged one."""
    path = Path(path)
    try:
        record = json.loads((path / CONFIG).read_text())
        if record.get("kind") != KIND:
            raise TrainError(f"{path}: not a line reader's run ({CONFIG} says {record.get('kind')!r})")
        config = LineConfig(**record["model"])
        with np.load(path / WEIGHTS) as stored:
            weights = {name: np.asarray(stored[name], np.float32) for name in LINE_WEIGHTS}
    except FileNotFoundError as e:
        raise TrainError(f"{path}: not a line reader's run folder (no {Path(e.filename).name})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TrainError(f"{path}: a damaged line reader run ({type(e).__name__}: {e})") from None
    return LineRun(path, config, record, weights)
