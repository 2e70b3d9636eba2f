"""Full MNIST, trained for real: the seed's 2-epoch defaults and the documented recipe
(train.recipes), each through `lstm-edge train` from scratch, seed 0, on the 60,000/10,000 IDX files;
then the recipe's int8 candidates (benchmarks/fidelity.py) on its 10,000 test digits, beside the
same recipe trained with `--cell-bound none`.

    python -m benchmarks.fullmnist [--mnist DIR] [--json]

The default DIR is ../shared/data/mnist beside the checkout (or $LSTM_EDGE_MNIST); without the
files the result says so and nothing is trained.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from lstm_edge.train.data import IDX_FILES
from lstm_edge.train.recipes import FULL_MNIST, SEED_DEFAULTS

from . import fidelity
from .child import LSTM_EDGE, ROOT, python

DEFAULT_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def mnist_folder(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get("LSTM_EDGE_MNIST") or DEFAULT_MNIST)


def has_mnist(folder: Path) -> bool:
    return folder.is_dir() and all(any(p.name.startswith(prefix) for p in folder.iterdir())
                                   for prefix in IDX_FILES.values())


def train(flags: tuple[str, ...], folder: Path, out: Path) -> None:
    python(*LSTM_EDGE, "train", "--data", str(folder), *flags, "--seed", "0", "--quiet", "--out", str(out))


def train_and_read(name: str, flags: tuple[str, ...], folder: Path, out: Path) -> dict:
    train(flags, folder, out)
    config = json.loads((out / "config.json").read_text())
    history = json.loads((out / "history.json").read_text())
    return {
        "name": name,
        "command": "lstm-edge train --data MNIST " + " ".join(flags),
        "epochs": config["epochs_done"],
        "best_epoch": config["best"]["epoch"],
        "val_accuracy": config["best"]["val_accuracy"],
        "test_accuracy": config["best"]["test_accuracy"],
        "test_accuracy_last_epoch": history[-1]["test_accuracy"],
        "seconds_per_epoch": statistics.median(e["seconds"] for e in history),
        "digits_per_second": statistics.median(e["digits_per_second"] for e in history),
    }


def measure(folder: Path) -> dict:
    if not has_mnist(folder):
        return {"skipped": f"no MNIST IDX files in {folder} (pass --mnist DIR or set LSTM_EDGE_MNIST)"}
    with tempfile.TemporaryDirectory(prefix="lstm-edge-fullmnist-") as work:
        work = Path(work)
        recipe, unbounded = work / "recipe", work / "recipe-unbounded"
        rows = [train_and_read("seed defaults", SEED_DEFAULTS, folder, work / "defaults"),
                train_and_read("full-MNIST recipe", FULL_MNIST, folder, recipe)]
        train((*FULL_MNIST, "--cell-bound", "none"), folder, unbounded)
        (work / "fidelity").mkdir()
        int8 = fidelity.measure(str(recipe), work / "fidelity", str(unbounded))
    return {"data": str(folder), "rows": rows, "fidelity": int8}


def render(result: dict) -> str:
    if "skipped" in result:
        return f"Full MNIST: not measured ({result['skipped']})."
    lines = ["| full MNIST, seed 0 | epochs | best epoch (validation) | test accuracy of that epoch | "
             "time per epoch | digits/s |", "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| `{row['command']}` | {row['epochs']} | {row['best_epoch']} "
                     f"({100 * row['val_accuracy']:.2f}%) | **{100 * row['test_accuracy']:.2f}%** | "
                     f"{row['seconds_per_epoch']:.1f} s | {row['digits_per_second']:,.0f} |")
    if "fidelity" in result:
        lines += ["", fidelity.render(result["fidelity"], "The full-MNIST recipe's model (seed 0)")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="folder of the four MNIST IDX files (default ../shared/data/mnist)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(mnist_folder(args.mnist))
    print(json.dumps(result) if args.json else render(result))


if __name__ == "__main__":
    main()
