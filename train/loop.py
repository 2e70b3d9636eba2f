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

from lstm_edge.edge.contract import IMAGE_SIZE, NUM_CLASSES, scale_pixels

from .cluster import describe_task, is_multi_worker, task_address
from .data import Dataset
from .errors import TrainError

DEVICES = ("auto", "cpu", "gpu")
STRATEGIES = ("none", "mirrored")
SCHEDULES = ("constant", "cosine")
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
    lr_schedule: str = "constant"  # "cosine": from lr down to 0 over the run's epochs
    warmup_epochs: float = 0.0  # the learning rate climbs linearly from 0 over this many epochs
    val_split: Optional[float] = None  # see train.data.Dataset.with_validation
    label_smoothing: float = 0.0
    weight_decay: float = 0.0  # decoupled (AdamW) when above 0

    def __post_init__(self):
        if self.epochs < 1:
            raise TrainError(f"epochs must be at least 1 (got {self.epochs})")
        if self.batch_size < 1:
            raise TrainError(f"the batch size must be at least 1 (got {self.batch_size})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainError(f"the learning rate must be a positive number (got {self.lr})")
        if not (self.clip_norm > 0 and math.isfinite(self.clip_norm)):
            raise TrainError(f"the gradient clip norm must be a positive number (got {self.clip_norm})")
        if self.lr_schedule not in SCHEDULES:
            raise TrainError(f"unknown learning-rate schedule {self.lr_schedule!r}; choose from {', '.join(SCHEDULES)}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise TrainError(f"warm-up epochs must be 0 or more and fewer than the epochs (got {self.warmup_epochs})")
        if not 0 <= self.label_smoothing < 1:
            raise TrainError(f"label smoothing must be in [0, 1) (got {self.label_smoothing})")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise TrainError(f"weight decay must be 0 or more (got {self.weight_decay})")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EpochResult:
    """One epoch's numbers: training loss and accuracy, the validation and test splits', speed.

    The validation split chooses the run's best epoch; the test split is recorded, never used to choose.
    Without validation digits `val_loss` and `val_accuracy` are None.
    """

    epoch: int
    loss: float
    accuracy: float
    val_loss: Optional[float]
    val_accuracy: Optional[float]
    test_loss: float
    test_accuracy: float
    seconds: float
    digits_per_second: float
    lr: float = 0.0  # the learning rate at the epoch's last step

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, entry: dict) -> EpochResult:
        """An entry of history.json (the current run format: train.runformat reads earlier ones)."""
        return cls(**{key: value for key, value in entry.items() if key != "best"})  # history.json marks the best


def best_epoch(history: list[EpochResult]) -> EpochResult:
    """The epoch with the highest validation accuracy (the earliest of equals); the last without validation."""
    if not history:
        raise TrainError("no epochs trained")
    if history[-1].val_accuracy is None:
        return history[-1]
    return max(reversed(history), key=lambda r: (r.val_accuracy, -r.epoch))


class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0, then constant or a cosine decay to 0 at the last step.

    A function of the optimizer's step count alone, so a resumed run continues where it stopped.
    """

    def __init__(self, peak: float, schedule: str, total_steps: int, warmup_steps: int = 0):
        self.peak, self.schedule = float(peak), schedule
        self.total_steps, self.warmup_steps = max(int(total_steps), 1), int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.peak)
        if self.schedule == "cosine":
            span = float(max(self.total_steps - self.warmup_steps, 1))
            progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
            rate = rate * 0.5 * (1.0 + tf.cos(math.pi * progress))
        if self.warmup_steps:
            rate = tf.minimum(rate, self.peak * (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self):
        return {"peak": self.peak, "schedule": self.schedule, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def make_optimizer(config: TrainConfig, steps_per_epoch: int, float_rate: bool = False) -> keras.optimizers.Optimizer:
    """Adam (AdamW with weight decay) under the run's learning-rate schedule; with `float_rate`, at a
    plain learning rate, as runs from before schedules were trained (train.runformat)."""
    rate = config.lr if float_rate else LearningRate(config.lr, config.lr_schedule, config.epochs * steps_per_epoch,
                                                     round(config.warmup_epochs * steps_per_epoch))
    if config.weight_decay:
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(rate)


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
        raise TrainError("TensorFlow sees no GPU (check the CUDA install, or train on the CPU)")
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
    if is_multi_worker():
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except tf.errors.UnknownError as e:  # its gRPC server could not bind this worker's address
            if "gRPC server" not in str(e):
                raise
            raise TrainError(f"{describe_task()} cannot listen on {task_address() or 'its address'} (TF_CONFIG): "
                             "another program holds that port, or the host is not this machine") from None
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
    """Trains a model on a dataset under a strategy; `fit_epoch` runs an epoch, `scores` rates a split.

    The model and optimizer must have been created under `strategy.scope()`. Batches are fed from
    numpy: a tf.data pipeline beside the step made every other epoch half as fast on 2 cores
    (benchmarks/training.py). Under a multi-replica strategy every replica (every worker) draws the
    same global batch from the seed and trains on its own interleaved share of it.
    """

    def __init__(self, model, optimizer, data: Dataset, config: TrainConfig, strategy: tf.distribute.Strategy):
        self.model, self.optimizer, self.config, self.strategy = model, optimizer, config, strategy
        self.data = data
        self.x_train, self.y_train = scale_pixels(data.x_train), data.y_train
        model.lstm.chains = training_chains(config.batch_size)  # what steps_per_epoch() planned the schedule for
        self._train_step = tf.function(self._distributed_step, reduce_retracing=True)
        self._predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def _replica_step(self, digits, labels):
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync
        global_batch = tf.shape(digits)[0]
        if replicas > 1:  # this replica's share of the global batch
            share = context.replica_id_in_sync_group
            digits, labels = digits[share::replicas], labels[share::replicas]
        with tf.GradientTape() as tape:
            logits = self.model(digits, training=True)  # (b, 10)
            per_digit = self._loss(labels, logits)
            loss = tf.nn.compute_average_loss(per_digit, global_batch_size=global_batch)
        variables = self.model.trainable_variables
        gradients = tape.gradient(loss, variables)
        if replicas > 1:
            # Clip the whole batch's gradient, as one process would; the optimizer sums the
            # replicas' gradients again, so each hands it an equal part of the clipped sum.
            gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.clip_norm)
            gradients = [g / replicas for g in gradients]
        else:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.clip_norm)
        self.optimizer.apply_gradients(zip(gradients, variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), labels), tf.float32))
        return tf.reduce_sum(per_digit), correct

    def _loss(self, labels, logits):
        if not self.config.label_smoothing:
            return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        targets = tf.one_hot(labels, NUM_CLASSES)
        return keras.losses.categorical_crossentropy(targets, logits, from_logits=True,
                                                     label_smoothing=self.config.label_smoothing)

    def _distributed_step(self, digits, labels, seed):
        if self.config.augment:
            digits = augment(digits, seed)
        loss_sum, correct = self.strategy.run(self._replica_step, args=(digits, labels))
        reduce = tf.distribute.ReduceOp.SUM
        return self.strategy.reduce(reduce, loss_sum, axis=None), self.strategy.reduce(reduce, correct, axis=None)

    def _batches(self, epoch: int):
        # The order comes from (seed, epoch) alone, so a resumed run sees what an unbroken run saw.
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.x_train))
        for start, end in batch_bounds(len(order), self.config.batch_size, self.model.lstm.chains):
            chosen = order[start:end]
            yield self.x_train[chosen], self.y_train[chosen]

    def fit_epoch(self, epoch: int, progress: Optional[Callable[[int, dict], None]] = None) -> EpochResult:
        """Train one epoch (numbered from 1); `progress(step, metrics)` is called after each batch."""
        seen = loss_total = correct_total = 0.0
        epoch_seed = self.config.seed * 100_003 + epoch  # stateless augmentation: resumable
        start = time.perf_counter()
        for step, (digits, labels) in enumerate(self._batches(epoch), start=1):
            seed = tf.constant([epoch_seed, step - 1], tf.int64)
            try:
                loss_sum, correct = self._train_step(tf.constant(digits), tf.constant(labels), seed)
            except tf.errors.OpError as e:
                raise TrainError(self._failure(epoch, e)) from None
            seen += len(labels)
            loss_total += float(loss_sum)
            correct_total += float(correct)
            if not math.isfinite(loss_total):
                raise TrainError(f"the loss diverged in epoch {epoch} (try a lower learning rate)")
            if progress:
                elapsed = time.perf_counter() - start
                progress(step, {"loss": loss_total / seen, "acc": correct_total / seen, "digits/s": seen / elapsed})
        seconds = time.perf_counter() - start
        val_loss, val_accuracy = self.scores(self.data.x_val, self.data.y_val) if len(self.data.x_val) else (None, None)
        test_loss, test_accuracy = self.scores(self.data.x_test, self.data.y_test)
        lr = float(self.optimizer.learning_rate)
        return EpochResult(epoch, loss_total / seen, correct_total / seen, val_loss, val_accuracy,
                           test_loss, test_accuracy, seconds, seen / seconds, lr)

    def _failure(self, epoch: int, error: tf.errors.OpError) -> str:
        # The message opens with "Graph execution error:" and where the op was defined; the cause follows.
        lines = [line.strip() for line in str(error.message).splitlines() if line.strip()]
        skip = ("Graph execution error", "Detected at node", "File ")
        reason = next((line for line in lines if not line.startswith(skip)), type(error).__name__)
        kept = f"the run folder keeps epoch {epoch - 1}" if epoch > 1 else "no epoch was finished"
        if is_multi_worker():
            return (f"{describe_task()}: another worker of the cluster failed or stopped in epoch {epoch} "
                    f"({reason[:160]}); {kept}: restart every worker, resuming the run")
        return f"training failed in epoch {epoch} ({reason[:200]}); {kept}"

    @property
    def steps_per_epoch(self) -> int:
        return len(batch_bounds(len(self.x_train), self.config.batch_size, self.model.lstm.chains))

    def scores(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(loss, accuracy) of uint8 digits x with labels y."""
        logits = predict_logits(self._predict, scale_pixels(x))
        loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)))
        return loss, float(np.mean(np.argmax(logits, -1) == y))


def training_chains(batch_size: int) -> int:
    """How many independent slices of a batch the LSTM runs side by side (train.model.in_chains): one
    per CPU core, up to 4, each of at least 25 digits; one on a GPU, whose kernels want the whole batch."""
    if tf.config.list_logical_devices("GPU"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4, batch_size // 25))


def batch_bounds(digits: int, batch_size: int, chains: int) -> list[tuple[int, int]]:
    """(start, end) of each batch of an epoch; a remainder too small to share among the chains
    joins the batch before it."""
    starts = list(range(0, digits, batch_size))
    if len(starts) > 1 and digits - starts[-1] < chains:
        starts.pop()
    return list(zip(starts, starts[1:] + [digits]))


def steps_per_epoch(digits: int, batch_size: int) -> int:
    return len(batch_bounds(digits, batch_size, training_chains(batch_size)))


def predict_logits(model_fn, digits: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Run a model (or a compiled call of one) over float digits (N, 28, 28) in batches -> (N, 10)."""
    parts = [np.asarray(model_fn(digits[i : i + batch_size])) for i in range(0, len(digits), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)
