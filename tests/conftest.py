"""Shared fixtures: one small model trained on real MNIST digits and exported through the real
CLIs, once per test session. tflite-runtime is only ever used in subprocesses (as on a device):
in one process it breaks once TensorFlow has been imported; LiteRT does not mind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bars import EXPORT_BARS, FIXTURE_SEED
from train.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
TRAIN_EPOCHS = 8  # about 94% on the 1,000 held-out sample digits (93.2-95.4% over seeds 0-3)


def run_cli(*args: str, check: bool = True, env=None, input=None, cwd=None) -> subprocess.CompletedProcess:
    """Run a console script's module in a fresh Python, as a user's shell would."""
    # TensorFlow's log level is left unset, as a user has it: the CLIs must keep its chatter off stderr.
    inherited = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment = {**inherited, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=input is None or isinstance(input, str),
                          env=environment, input=input, cwd=cwd, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


LSTM_EDGE = ("-m", "train.cli")  # the `lstm-edge` console script
EDGE_CLASSIFY = ("-m", "edge.cli")  # the `edge-classify` console script


@pytest.fixture(scope="session")
def sample():
    return load_dataset("mnist-sample")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "sample"
    run_cli(*LSTM_EDGE, "train", "--dataset", "mnist-sample", "--epochs", str(TRAIN_EPOCHS), "--out", str(out),
            "--seed", str(FIXTURE_SEED), "--quiet")
    return out


@pytest.fixture(scope="session")
def exports(trained_run, tmp_path_factory):
    """mode -> (model path, export's stdout), exported lazily, once per mode."""
    folder = tmp_path_factory.mktemp("models")
    cache = {}

    def export(mode: str):
        if mode not in cache:
            out = folder / f"{mode}.tflite"
            done = run_cli(*LSTM_EDGE, "export", str(trained_run), "--quantize", mode, "--out", str(out),
                           *EXPORT_BARS)  # the suite's bars, which hold on any CPU
            cache[mode] = (out, done.stdout)
        return cache[mode]

    return export


@pytest.fixture(scope="session")
def int8_model(exports) -> Path:
    return exports("int8")[0]


@pytest.fixture(scope="session")
def float_model(exports) -> Path:
    return exports("none")[0]


@pytest.fixture(scope="session")
def full_mnist_int8(tmp_path_factory) -> Path:
    """The README's full-MNIST recipe (train.recipes.FULL_MNIST) trained through the CLI on the 60,000
    / 10,000 IDX files, exported with the default `--quantize` and the export's default bars
    (~2.5 minutes on two cores). Skips without the files (benchmarks.fullmnist finds them)."""
    from benchmarks.fullmnist import has_mnist, mnist_folder
    from train.recipes import FULL_MNIST

    folder = mnist_folder()
    if not has_mnist(folder):
        pytest.skip(f"no MNIST IDX files in {folder} (set LSTM_EDGE_MNIST to the folder)")
    run = tmp_path_factory.mktemp("full-mnist") / "run"
    run_cli(*LSTM_EDGE, "train", "--data", str(folder), *FULL_MNIST, "--seed", str(FIXTURE_SEED), "--quiet",
            "--out", str(run))
    out = run.parent / "int8.tflite"
    run_cli(*LSTM_EDGE, "export", str(run), "--quantize", "--out", str(out))
    return out


def read_manifest(model: Path) -> dict:
    return json.loads(model.with_suffix(".json").read_text())

