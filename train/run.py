"""A run folder: its config, history, checkpoints and curves; how a run is started, resumed and
read back by `evaluate` and `export`.

    RUN/config.json      format, model and training settings, dataset, seed, versions, the best epoch
    RUN/history.json     one entry per epoch
    RUN/checkpoints/     tf.train.Checkpoint of the model, optimizer and epoch (the latest two epochs)
    RUN/best/            the model of the best epoch by validation accuracy: what evaluate and export use
    RUN/curves.png       loss and accuracy per epoch

Runs of earlier formats are read as the current one (`runformat`); resuming one writes it anew.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from .cluster import CLUSTER_TIMEOUT, cluster_deadline, is_chief
from .data import Dataset, load_dataset
from .errors import TrainError
from .loop import (
    EpochResult,
    TrainConfig,
    Trainer,
    best_epoch,
    configure_device,
    make_optimizer,
    make_strategy,
    steps_per_epoch,
)
from .model import CELLS, DigitLSTM, ModelConfig, build_model
from .runformat import BEST, CHECKPOINTS, FLOAT_RATE, FORMAT, SCHEDULE, upgrade


@dataclass(frozen=True)
class Run:
    """A run folder as read back from disk."""

    path: Path
    model: ModelConfig
    training: TrainConfig
    dataset: Optional[str]
    data_path: Optional[str]
    epochs_done: int
    config: dict  # config.json, in the current format
    history: tuple[EpochResult, ...]

    def load_data(self) -> Dataset:
        return load_dataset(self.dataset, self.data_path)

    @property
    def best_epoch(self) -> int:
        """The epoch whose model evaluate and export use."""
        return int(self.config["best"]["epoch"])

    @property
    def float_rate(self) -> bool:
        """Whether its optimizer keeps a plain learning rate (a run from before schedules)."""
        return self.config["optimizer"]["learning_rate"] == FLOAT_RATE

    @property
    def best_folder(self) -> str:
        """Where that epoch's model is: best/, or checkpoints/ for a run that chose no best epoch."""
        return self.config["best"]["folder"]


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read a run folder's config and history, of any format this version knows.

    Raises:
      TrainError: no such folder, not a run folder, an unknown format, or an unreadable config.
    """
    path = Path(path)
    if not path.is_dir():
        raise TrainError(f"{path}: no such run folder")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise TrainError(f"{path}: not an lstm-edge run folder (no config.json)")
    try:
        history_path = path / "history.json"
        history = json.loads(history_path.read_text()) if history_path.is_file() else []
        config, history = upgrade(json.loads(config_path.read_text()), history)
        model = ModelConfig(**config["model"])
        training = TrainConfig(**config["training"])
        if model.cell not in CELLS or model.units < 1:
            raise ValueError(f"model {config['model']}")
        if config["best"]["folder"] not in (BEST, CHECKPOINTS):
            raise ValueError(f"best model in {config['best']['folder']!r}")
        return Run(path, model, training, config.get("dataset"), config.get("data_path"), int(config["epochs_done"]),
                   config, tuple(EpochResult.from_dict(entry) for entry in history))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise TrainError(f"{config_path}: corrupt run config ({e})") from None


def make_checkpoint(model: DigitLSTM, optimizer=None) -> tf.train.Checkpoint:
    parts = {"model": model, "epoch": tf.Variable(0, dtype=tf.int64, trainable=False)}
    if optimizer is not None:
        parts["optimizer"] = optimizer
    return tf.train.Checkpoint(**parts)


def restore(checkpoint: tf.train.Checkpoint, run: Run, with_optimizer: bool, folder: str = CHECKPOINTS) -> None:
    """Restore the run's latest checkpoint in `folder` into `checkpoint`, refusing one of another model."""
    latest = tf.train.latest_checkpoint(str(run.path / folder))
    if latest is None:
        raise TrainError(f"{run.path}: no checkpoint in {run.path / folder}")
    try:
        status = checkpoint.restore(latest)
        status.assert_existing_objects_matched()
        if not with_optimizer:
            status.expect_partial()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        reason = str(e).splitlines()[0][:200]
        raise TrainError(
            f"{run.path}: the checkpoint does not fit a {run.model.cell} LSTM of {run.model.units} units "
            f"as config.json says ({reason})"
        ) from None


def restore_model(run: Run, which: str = "best") -> DigitLSTM:
    """The run's model, with the weights of its best epoch ("best") or its latest ("last")."""
    model = build_model(run.model)
    folder = run.best_folder if which == "best" else CHECKPOINTS
    restore(make_checkpoint(model), run, with_optimizer=False, folder=folder)
    return model


def train_run(
    out: Path,
    model_config: ModelConfig,
    train_config: TrainConfig,
    dataset: Optional[str],
    data_path: Optional[str],
    device: str = "auto",
    strategy_name: str = "none",
    resume: bool = False,
    cluster_timeout: float = CLUSTER_TIMEOUT,
    on_start: Optional[Callable[[Trainer, Dataset, str], None]] = None,
    on_epoch: Optional[Callable[[int, int], Optional[Callable]]] = None,
    on_epoch_end: Optional[Callable[[EpochResult], None]] = None,
) -> list[EpochResult]:
    """Train a new run into `out`, or resume the one there, saving after every epoch.

    With TF_CONFIG (multi-worker), every worker runs this; only the chief writes `out`, and a worker
    whose cluster does not form within `cluster_timeout` seconds exits (train.cluster).

    Returns:
      the whole history, earlier epochs of a resumed run included.
    Raises:
      TrainError: bad data, a foreign or missing run, a diverging loss, a failed worker.
    """
    dataset = None if data_path else (dataset or "mnist")
    device_name = configure_device(device)
    keras.utils.set_random_seed(train_config.seed)
    tf.config.experimental.enable_op_determinism()  # --seed repeats a CPU run exactly
    data = load_dataset(dataset, data_path).with_validation(train_config.val_split)
    with cluster_deadline(cluster_timeout):
        strategy = make_strategy(strategy_name)  # with TF_CONFIG: returns once every worker has joined
    run = load_run(out) if resume else None
    float_rate = run is not None and run.float_rate
    with strategy.scope():
        model = build_model(model_config)
        optimizer = make_optimizer(train_config, steps_per_epoch(len(data.x_train), train_config.batch_size),
                                   float_rate)
        optimizer.build(model.trainable_variables)
    checkpoint = make_checkpoint(model, optimizer)
    history: list[EpochResult] = []
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if run is not None:
        restore(checkpoint, run, with_optimizer=True)
        history = list(run.history[: int(checkpoint.epoch.numpy())])
        created = run.config.get("created", created)
    chief = is_chief()
    # Other workers write to a folder of their own that is removed at the end: every worker must
    # take part in a save (tf.distribute's rule), only the chief's counts.
    checkpoints = out if chief else Path(tempfile.mkdtemp(prefix="lstm-edge-worker-"))
    manager = tf.train.CheckpointManager(checkpoint, str(checkpoints / CHECKPOINTS), max_to_keep=2)
    best_manager = tf.train.CheckpointManager(make_checkpoint(model), str(checkpoints / BEST), max_to_keep=1)
    trainer = Trainer(model, optimizer, data, train_config, strategy)
    if on_start:
        on_start(trainer, data, f"{device_name}, {strategy.num_replicas_in_sync} replica(s)")
    try:
        for epoch in range(len(history) + 1, train_config.epochs + 1):
            result = trainer.fit_epoch(epoch, on_epoch(epoch, trainer.steps_per_epoch) if on_epoch else None)
            history.append(result)
            checkpoint.epoch.assign(epoch)
            if best_epoch(history) is result:
                best_manager.save(checkpoint_number=epoch)
            manager.save(checkpoint_number=epoch)
            if chief:
                _write_run(out, model_config, train_config, float_rate, dataset, data_path,
                           device_name, strategy_name, strategy.num_replicas_in_sync, created, history,
                           len(data.x_val))
            if on_epoch_end:
                on_epoch_end(result)
    finally:
        if not chief:
            shutil.rmtree(checkpoints, ignore_errors=True)
    return history


def _write_run(out, model_config, train_config, float_rate, dataset, data_path, device, strategy, replicas, created,
               history, validation_digits):
    from .plot import plot_history  # matplotlib is imported only when a run is written

    out.mkdir(parents=True, exist_ok=True)
    last, best = history[-1], best_epoch(history)
    config = {
        "format": FORMAT,
        "model": model_config.to_dict(),
        "training": train_config.to_dict(),
        "optimizer": {"learning_rate": FLOAT_RATE if float_rate else SCHEDULE},
        "dataset": dataset,
        "data_path": str(Path(data_path).resolve()) if data_path else None,
        "seed": train_config.seed,
        "device": device,
        "strategy": strategy,
        "replicas": replicas,
        "epochs_done": last.epoch,
        "best": {"epoch": best.epoch, "chosen_by": "validation accuracy" if best.val_accuracy is not None
                 else "last epoch (no validation digits)", "val_accuracy": best.val_accuracy,
                 "test_accuracy": best.test_accuracy, "folder": BEST},
        "validation_digits": validation_digits,
        "metrics": {"loss": best.loss, "accuracy": best.accuracy, "val_loss": best.val_loss,
                    "val_accuracy": best.val_accuracy, "test_loss": best.test_loss,
                    "test_accuracy": best.test_accuracy},
        "versions": versions(),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "created": created,
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _write_json(out / "config.json", config)
    _write_json(out / "history.json", [{**h.to_dict(), "best": h is best} for h in history])
    plot_history(history, out / "curves.png", best.epoch)


def _write_json(path: Path, value) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)  # a crash mid-write never leaves half a config
