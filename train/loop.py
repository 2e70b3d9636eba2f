"""The training loop: a compiled train step under a tf.distribute strategy, one epoch at a time."""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from edge.preprocess import IMAGE_SIZE, scale_pixels

from .data import Dataset
from .errors import TrainError

DEVICES = ("auto", "cpu", "gpu")
STRATEGIES = ("none", "mirrored")
EVAL_BATCH = 1000


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the defaults are the notebook's (Adam at 0.01, batch 100, 2 epochs)."""

    epochs: int = 2
    batch_size: int = 100
    lr: float = 0.01
    clip_norm: float = 5.0  # gradients are clipped to this global norm
    seed: int = 0
    augment: bool = False

    def __post_init__(self):
        if self.epochs < 1:
            raise TrainError(f"--epochs must be at least 1 (got {self.epochs})")
        if self.batch_size < 1:
            raise TrainError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainError(f"--lr must be a positive number (got {self.lr})")
        if not (self.clip_norm > 0 and math.isfinite(self.clip_norm)):
            raise TrainError(f"--clip-norm must be a positive number (got {self.clip_norm})")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EpochResult:
    """One epoch's numbers: training loss and accuracy, accuracy on the test split, speed."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    digits_per_second: float

    def to_dict(self) -> dict:
        return asdict(self)


def configure_device(device: str) -> str:
    """Make TensorFlow use the device asked for; call before any tensor exists.

    Returns:
      a short description of the devices training will use.
    Raises:
      TrainError: a GPU was demanded and TensorFlow sees none.
    """
    if device not in DEVICES:
        raise TrainError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise TrainError("--device gpu: TensorFlow sees no GPU (check the CUDA install, or use --device cpu)")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    return f"{len(gpus)} GPU" + ("s" if len(gpus) != 1 else "") if gpus else "CPU"


def make_strategy(name: str) -> tf.distribute.Strategy:
    """"none": the default strategy. "mirrored": every local GPU (or the CPU), or, with TF_CONFIG
    naming a cluster, every worker's devices through MultiWorkerMirroredStrategy."""
    if name == "none":
        return tf.distribute.get_strategy()
    if name != "mirrored":
        raise TrainError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


def augment(digits: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Small random affine changes: rotation up to 10 degrees, scale 0.9-1.1, shift up to 2 pixels.

    Args:
      digits: (B, 28, 28) float32.
      seed: a stateless seed, shape (2,): the same seed gives the same changes.
    """
    n = tf.shape(digits)[0]
    u = tf.random.stateless_uniform([n, 4], seed, minval=-1.0, maxval=1.0)  # (B, 4)
    angle, scale = u[:, 0] * (10.0 * math.pi / 180.0), 1.0 + 0.1 * u[:, 1]
    shift_x, shift_y = 2.0 * u[:, 2], 2.0 * u[:, 3]
    centre = (IMAGE_SIZE - 1) / 2.0
    # The transform maps each output pixel back to its source: the inverse rotation and scale.
    a0, a1 = tf.cos(angle) / scale, tf.sin(angle) / scale
    b0, b1 = -a1, a0
    cx, cy = centre + shift_x, centre + shift_y
    a2 = centre - (a0 * cx + a1 * cy)
    b2 = centre - (b0 * cx + b1 * cy)
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)  # (B, 8)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=digits[..., None],
        transforms=transforms,
        output_shape=[IMAGE_SIZE, IMAGE_SIZE],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return images[..., 0]


class Trainer:
    """Trains a model on a dataset under a strategy; `fit` runs epochs, `evaluate` scores the test split.

    The model and optimizer must have been created under `strategy.scope()`.
    """

    def __init__(self, model, optimizer, data: Dataset, config: TrainConfig, strategy: tf.distribute.Strategy):
        self.model, self.optimizer, self.config, self.strategy = model, optimizer, config, strategy
        self.x_train, self.y_train = scale_pixels(data.x_train), data.y_train
        self.x_test, self.y_test = scale_pixels(data.x_test), data.y_test
        self._train_step = tf.function(self._distributed_step)
        self._predict = tf.function(lambda x: model(x, training=False))

    def _replica_step(self, digits, labels):
        with tf.GradientTape() as tape:
            logits = self.model(digits, training=True)  # (b, 10)
            per_digit = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_digit)
        variables = self.model.trainable_variables
        gradients, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), self.config.clip_norm)
        self.optimizer.apply_gradients(zip(gradients, variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), labels), tf.float32))
        return tf.reduce_sum(per_digit), correct

    def _distributed_step(self, digits, labels):
        loss_sum, correct = self.strategy.run(self._replica_step, args=(digits, labels))
        reduce = tf.distribute.ReduceOp.SUM
        return self.strategy.reduce(reduce, loss_sum, axis=None), self.strategy.reduce(reduce, correct, axis=None)

    def _epoch_dataset(self, epoch: int) -> tf.data.Dataset:
        # The order comes from (seed, epoch) alone, so a resumed run sees what an unbroken run saw.
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.x_train))
        ds = tf.data.Dataset.from_tensor_slices((self.x_train[order], self.y_train[order]))
        ds = ds.batch(self.config.batch_size)
        if self.config.augment:
            epoch_seed = tf.constant(self.config.seed * 100_003 + epoch, tf.int64)  # stateless: resumable

            def augment_batch(i, batch):
                return augment(batch[0], tf.stack([epoch_seed, i])), batch[1]

            ds = ds.enumerate().map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return self.strategy.experimental_distribute_dataset(ds.prefetch(tf.data.AUTOTUNE))

    def fit_epoch(self, epoch: int, progress: Optional[Callable[[int, dict], None]] = None) -> EpochResult:
        """Train one epoch (numbered from 1); `progress(step, metrics)` is called after each batch."""
        seen = loss_total = correct_total = 0.0
        start = time.perf_counter()
        for step, (digits, labels) in enumerate(self._epoch_dataset(epoch), start=1):
            loss_sum, correct = self._train_step(digits, labels)
            batch = min(self.config.batch_size, len(self.x_train) - (step - 1) * self.config.batch_size)
            seen += batch
            loss_total += float(loss_sum)
            correct_total += float(correct)
            if not math.isfinite(loss_total):
                raise TrainError(f"the loss diverged in epoch {epoch} (try a lower --lr)")
            if progress:
                elapsed = time.perf_counter() - start
                progress(step, {"loss": loss_total / seen, "acc": correct_total / seen, "digits/s": seen / elapsed})
        seconds = time.perf_counter() - start
        val_loss, val_accuracy = self.evaluate()
        return EpochResult(
            epoch, loss_total / seen, correct_total / seen, val_loss, val_accuracy, seconds, seen / seconds
        )

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.x_train) / self.config.batch_size)

    def evaluate(self) -> tuple[float, float]:
        """(loss, accuracy) on the test split."""
        logits = predict_logits(self._predict, self.x_test)
        loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(self.y_test, logits, from_logits=True)))
        return loss, float(np.mean(np.argmax(logits, -1) == self.y_test))


def predict_logits(model_fn, digits: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Run a model (or a compiled call of one) over float digits (N, 28, 28) in batches -> (N, 10)."""
    parts = [np.asarray(model_fn(digits[i : i + batch_size])) for i in range(0, len(digits), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)
