"""`lstm-edge`: train, evaluate and export. Thin commands over the library.

Subcommands load lazily, so `lstm-edge --help` answers without importing TensorFlow, and in an
edge-only install (no TensorFlow) a command that needs it says so in one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from datetime import datetime
from pathlib import Path
from typing import Optional

import click

from .errors import TrainError
from .quiet import import_tensorflow_quietly

POSITIVE = click.FloatRange(min=0, min_open=True)
# What `pip install 'lstm-edge[train]'` adds to the edge-only install: the import names.
TRAIN_MODULES = ("tensorflow", "keras", "matplotlib")


class MissingExtra(click.ClickException):
    """A command run in an install without its extra: one line, exit status 2 (a usage error)."""

    exit_code = 2

    def __init__(self, command: str, module: str):
        super().__init__(f"lstm-edge {command} needs {module}: pip install 'lstm-edge[train]'")


def start_tensorflow(command: str, verbose: bool) -> None:
    """Import TensorFlow for a command that needs it, or stop with one line where it is not installed."""
    for module in TRAIN_MODULES:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(command, "TensorFlow" if module == "tensorflow" else module)
    import_tensorflow_quietly(verbose)


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used (click's documented pattern)."""

    def __init__(self, *args, lazy_subcommands: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_subcommands))

    def get_command(self, ctx, name):
        if name in self.lazy_subcommands:
            module, attribute = self.lazy_subcommands[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(
    cls=LazyGroup,
    lazy_subcommands={
        "train": "lstm_edge.train.cli:train_command",
        "evaluate": "lstm_edge.train.cli:evaluate_command",
        "export": "lstm_edge.export.cli:export_command",
        "train-lines": "lstm_edge.train.cli:train_lines_command",
        "export-lines": "lstm_edge.export.cli:export_lines_command",
    },
)
@click.version_option(package_name="lstm-edge")
def main():
    """Train an LSTM digit classifier, export it to quantized TFLite with proven accuracy, run it
    on the edge."""


def data_options(f):
    f = click.option(
        "--data",
        "data_path",
        type=click.Path(),
        help="A local Keras mnist.npz, or a folder with the four MNIST IDX files (gzipped or not).",
    )(f)
    return click.option(
        "--dataset",
        type=click.Choice(["mnist", "mnist-sample", "fashion-mnist"]),
        help="mnist (download, default), mnist-sample (offline: 5,000 real digits), fashion-mnist.",
    )(f)


def fail(error: Exception) -> None:
    raise click.ClickException(str(error))


verbose_option = click.option("--verbose", is_flag=True,
                              help="Let TensorFlow's own log through (hidden by default, as is TF_CPP_MIN_LOG_LEVEL).")


@click.command("train")
@data_options
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Epochs in all (with --resume: the new total).")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--lr", type=POSITIVE, default=0.01, show_default=True, help="Adam's learning rate.")
@click.option("--units", type=click.IntRange(min=1), default=128, show_default=True, help="LSTM units.")
@click.option("--cell", type=click.Choice(["basic", "keras"]), default="basic", show_default=True,
              help="basic: the explicit gate equations; keras: keras.layers.LSTMCell. Same weights.")
@click.option("--cell-bound", default=None, metavar="BOUND|none",
              help="Clip the basic cell's state to [-BOUND, BOUND] at every step; none: the notebook's unbounded "
                   "cell [default: 1 for --cell basic (int8 exports then keep the float model's answers), none "
                   "for keras].")
@click.option("--clip-norm", type=POSITIVE, default=5.0, show_default=True, help="Clip gradients to this global norm.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same CPU run.")
@click.option("--augment", is_flag=True, help="Small random shifts, rotations and scale: better on photos.")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="cosine: from --lr down to 0 at the last epoch.")
@click.option("--warmup-epochs", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Climb linearly from 0 to --lr over this many epochs first.")
@click.option("--val-split", type=click.FloatRange(min=0), default=None,
              help="Validation digits held out of the training split to choose the best epoch: a fraction, "
                   "a count, or 0 for none [default: 5,000 of MNIST's 60,000 (the seed's split), else 0.1].")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Decoupled weight decay (AdamW).")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto", show_default=True)
@click.option("--strategy", type=click.Choice(["none", "mirrored"]), default="none", show_default=True,
              help="mirrored: every local GPU, or every worker named in TF_CONFIG.")
@click.option("--cluster-timeout", type=POSITIVE, default=300.0, show_default=True,
              help="With TF_CONFIG: seconds to wait for every worker to join before giving up.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder [default: runs/DATASET-TIME].")
@click.option("--resume", "resume_path", type=click.Path(file_okay=False), help="Continue the run in this folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@verbose_option
@click.pass_context
def train_command(ctx, dataset, data_path, epochs, batch_size, lr, units, cell, cell_bound, clip_norm, seed, augment,
                  lr_schedule, warmup_epochs, val_split, label_smoothing, weight_decay, device, strategy,
                  cluster_timeout, out, resume_path, quiet, verbose):
    """Train the LSTM digit classifier into a run folder."""
    start_tensorflow("train", verbose)
    try:
        from .loop import TrainConfig
        from .model import ModelConfig

        try:
            model_config = ModelConfig(units=units, cell=cell, cell_bound=_cell_bound(cell_bound, cell))
        except ValueError as e:
            raise TrainError(f"--cell-bound: {e}") from None
        train_config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, clip_norm=clip_norm, seed=seed,
                                   augment=augment, lr_schedule=lr_schedule, warmup_epochs=warmup_epochs,
                                   val_split=val_split, label_smoothing=label_smoothing, weight_decay=weight_decay)
        if resume_path:
            model_config, train_config, dataset, data_path = _resumed_settings(ctx, Path(resume_path), epochs)
            out_path = Path(resume_path)
        else:
            out_path = Path(out) if out else Path("runs") / f"{dataset or 'data'}-{datetime.now():%Y%m%d-%H%M%S}"
            if (out_path / "config.json").exists():
                raise TrainError(f"{out_path} already holds a run: continue it with --resume {out_path}, "
                                 "or choose another --out")
        _train(out_path, model_config, train_config, dataset, data_path, device, strategy, bool(resume_path), quiet,
               cluster_timeout)
    except TrainError as e:
        fail(e)


def _cell_bound(value: Optional[str], cell: str) -> Optional[float]:
    """--cell-bound's value: a positive number, or none; unset: the cell's default."""
    from .model import DEFAULT_CELL_BOUND

    if value is None:
        return DEFAULT_CELL_BOUND if cell == "basic" else None
    if value.strip().lower() in ("none", "off"):
        return None
    try:
        return float(value)
    except ValueError:
        raise TrainError(f"--cell-bound must be a positive number or none (got {value!r})") from None


def _resumed_settings(ctx, path: Path, epochs: int):
    """The settings of the run being resumed; only --epochs (the new total) may change."""
    from .run import load_run

    run = load_run(path)
    saved = {"units": run.model.units, "cell": run.model.cell, "cell_bound": run.model.cell_bound,
             "batch_size": run.training.batch_size,
             "lr": run.training.lr, "clip_norm": run.training.clip_norm, "seed": run.training.seed,
             "augment": run.training.augment, "lr_schedule": run.training.lr_schedule,
             "warmup_epochs": run.training.warmup_epochs, "val_split": run.training.val_split,
             "label_smoothing": run.training.label_smoothing, "weight_decay": run.training.weight_decay,
             "dataset": run.dataset, "data_path": run.data_path}
    given = dict(ctx.params)
    if given.get("data_path"):
        given["data_path"] = str(Path(given["data_path"]).resolve())  # the run keeps it resolved
    if given.get("cell_bound") is not None:
        given["cell_bound"] = _cell_bound(given["cell_bound"], run.model.cell)
    for name, value in saved.items():
        source = ctx.get_parameter_source(name)
        if source == click.core.ParameterSource.COMMANDLINE and given[name] != value:
            flag = "--" + name.replace("_path", "").replace("_", "-")
            raise TrainError(f"{path} was trained with {flag} {value}; a resumed run keeps its settings")
    if epochs <= run.epochs_done:
        raise TrainError(f"{path} has already trained {run.epochs_done} epochs: pass --epochs above that")
    from dataclasses import replace

    return run.model, replace(run.training, epochs=epochs), run.dataset, run.data_path


def _train(out_path, model_config, train_config, dataset, data_path, device, strategy, resume, quiet, cluster_timeout):
    from .cluster import describe_task, is_chief
    from .loop import best_epoch
    from .progress import ProgressBar
    from .run import train_run

    def on_start(trainer, data, devices):
        bound = f", cell state in [-{model_config.cell_bound:g}, {model_config.cell_bound:g}]" \
            if model_config.cell_bound is not None else ""
        click.echo(f"{data.describe()} | {model_config.cell} LSTM, {model_config.units} units{bound} | {devices}")

    def on_epoch(epoch, steps):
        if quiet:
            return None
        click.echo(f"Epoch {epoch}/{train_config.epochs}")
        bar = ProgressBar(steps)
        return lambda step, m: bar.update(step, {"loss": f"{m['loss']:.4f}", "accuracy": f"{100 * m['acc']:.2f}%",
                                                 "digits/s": f"{m['digits/s']:,.0f}"})

    def on_epoch_end(r):
        val = (f"validation loss {r.val_loss:.4f}, accuracy {100 * r.val_accuracy:.2f}%"
               if r.val_accuracy is not None else "no validation digits")
        click.echo(f"epoch {r.epoch}: loss {r.loss:.4f}, accuracy {100 * r.accuracy:.2f}% | {val} | "
                   f"lr {r.lr:.2g} | {r.digits_per_second:,.0f} digits/s, {r.seconds:.1f} s")

    history = train_run(out_path, model_config, train_config, dataset, data_path, device, strategy, resume,
                        cluster_timeout, on_start=on_start, on_epoch=on_epoch, on_epoch_end=on_epoch_end)
    if not is_chief():
        click.echo(f"{describe_task()} done; the chief writes {out_path}")
        return
    best = best_epoch(history)
    chosen = (f"best epoch {best.epoch} of {len(history)} by validation accuracy ({100 * best.val_accuracy:.2f}%)"
              if best.val_accuracy is not None else f"the last epoch, {best.epoch} (no validation digits)")
    click.echo(f"saved {out_path}: {chosen}; its test accuracy {100 * best.test_accuracy:.2f}%")


@click.command("train-lines")
@data_options
@click.option("--epochs", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--lines", "count", type=click.IntRange(min=100), default=60_000, show_default=True,
              help="Numbers made of training digits, read every epoch.")
@click.option("--units", type=click.IntRange(min=1), default=128, show_default=True, help="LSTM units each way.")
@click.option("--width", type=click.IntRange(min=112), default=128, show_default=True,
              help="Input columns (even): the widest group read without squeezing it.")
@click.option("--stride", type=click.Choice(["1", "2", "4"]), default="2", show_default=True,
              help="Input columns each step reads.")
@click.option("--augment", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="The share of numbers whose digits are turned, slanted and widened at random.")
@click.option("--lr", type=POSITIVE, default=0.005, show_default=True, help="Adam's learning rate (x0.8 an epoch).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Run folder [default: runs/lines-DATASET-TIME].")
@verbose_option
def train_lines_command(dataset, data_path, epochs, count, units, width, stride, augment, lr, seed, out, verbose):
    """Train the line reader, which reads touching digits whole (CTC), on numbers made of training digits."""
    start_tensorflow("train-lines", verbose)
    from .lines import LineConfig, train_lines

    try:
        try:
            config = LineConfig(units=units, width=width, stride=int(stride), lines=count, augment=augment,
                                epochs=epochs, lr=lr, seed=seed)
        except ValueError as e:
            raise TrainError(f"--width: {e}") from None
        out_path = Path(out) if out else Path("runs") / f"lines-{dataset or 'data'}-{datetime.now():%Y%m%d-%H%M%S}"
        click.echo(f"line reader: {units} units each way, {width} columns ({width // int(stride)} steps), "
                   f"{count:,} numbers of training digits a epoch, {epochs} epochs")
        history = train_lines(config, dataset, data_path, out_path, on_epoch=lambda e: click.echo(
            f"epoch {e.epoch}: CTC loss {e.loss:.3f} | held-out numbers read whole {100 * e.held_out_accuracy:.1f}% "
            f"| {e.seconds:.0f} s"))
    except TrainError as e:
        fail(e)
    click.echo(f"saved {out_path}: held-out numbers read whole {100 * history[-1].held_out_accuracy:.1f}%; "
               f"export it beside the digit model: lstm-edge export-lines {out_path} --quantize")


@click.command("evaluate")
@click.argument("run", type=click.Path())
@data_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object: accuracy, per_class, confusion.")
@verbose_option
def evaluate_command(run, dataset, data_path, as_json, verbose):
    """Accuracy, per-class accuracy and confusion matrix of RUN on a test split (the run's own by
    default)."""
    start_tensorflow("evaluate", verbose)
    try:
        import numpy as np

        from lstm_edge.edge.contract import scale_pixels

        from .data import load_dataset
        from .evaluate import score
        from .loop import predict_logits
        from .run import load_run, restore_model

        loaded = load_run(run)
        data = load_dataset(dataset, data_path) if (dataset or data_path) else loaded.load_data()
        model = restore_model(loaded)
        logits = predict_logits(model, scale_pixels(data.x_test))
        evaluation = score(data.y_test, np.argmax(logits, axis=-1))
    except TrainError as e:
        fail(e)
    if as_json:
        click.echo(json.dumps({"run": str(run), "dataset": data.name, **evaluation.to_dict()}))
    else:
        click.echo(f"{run} on {data.describe()}\n{evaluation.report()}")


if __name__ == "__main__":
    main(prog_name="lstm-edge")
