"""Shared fixtures: one small model trained on real MNIST digits and exported through the real
CLIs, once per test session. tflite-runtime is only ever used in subprocesses (as on a device):
in one process it breaks once TensorFlow has been imported; LiteRT does not mind."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lstm_edge.edge.interpreters import DEVICE_RUNTIMES
from lstm_edge.train.data import load_dataset
from tests.bars import EXPORT_BARS, FIXTURE_SEED

ROOT = Path(__file__).resolve().parent.parent
TRAIN_EPOCHS = 8  # about 94% on the 1,000 held-out sample digits (93.2-95.4% over seeds 0-3)

# tflite-runtime's last release (2.14) has wheels for Python 3.8-3.11 on x86-64 and 64/32-bit ARM
# only: elsewhere the device runtimes are LiteRT alone, and tests of tflite-runtime skip. Where it
# can be installed, `make test` installs it, and a test that finds it missing fails.
TFLITE_RUNTIME_INSTALLABLE = sys.version_info < (3, 12) and platform.machine() in ("x86_64", "aarch64", "armv7l")
EXPECTED_RUNTIMES = [r for r in DEVICE_RUNTIMES if r != "tflite-runtime" or TFLITE_RUNTIME_INSTALLABLE]
needs_tflite_runtime = pytest.mark.skipif(not TFLITE_RUNTIME_INSTALLABLE, reason="tflite-runtime 2.14 has no wheel "
                                          f"for Python {platform.python_version()} on {platform.machine()}")

# Files whose fixtures train a model for minutes (full MNIST's recipe; the line reader), run first:
# `make test`'s workers each take whole files in this order (--no-loadscope-reorder), so these start
# at once, one on each worker, and the many short files fill in around them. xdist's own order,
# most tests first, put full MNIST's file (2 tests) last in the queue: CI's last 8 minutes were its
# training (pytest 26.5 minutes then, 24 so, on AMD EPYC Zen family 23 model 1).
FIRST_FILES = ("tests/export/test_fidelity.py", "tests/edge/test_lines.py")


def pytest_collection_modifyitems(items) -> None:
    """FIRST_FILES first, then the files with the most tests (xdist's own order for the rest)."""
    def file(item) -> str:
        return item.nodeid.split("::")[0]

    tests = Counter(file(item) for item in items)
    rank = {name: index for index, name in enumerate(FIRST_FILES)}
    items.sort(key=lambda item: (rank.get(file(item), len(FIRST_FILES)), -tests[file(item)], file(item)))


def child_env(env=None) -> dict[str, str]:
    """A child process's environment: the user's, with this checkout first on the path.

    TensorFlow's log level is left unset, as most users have it: the CLIs must then keep its
    chatter off stderr, which tests check line by line. With the level set by the user, TensorFlow
    writes what that level lets through (tests/train/test_cli.py checks the CLI's line stays last).
    An edge-serve token the user keeps in the environment is left out too: the tests give their own.
    """
    inherited = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "LSTM_EDGE_TOKEN")}
    return {**inherited, "PYTHONPATH": str(ROOT), **(env or {})}


def run_cli(*args: str, check: bool = True, env=None, input=None, cwd=None) -> subprocess.CompletedProcess:
    """Run a console script's module in a fresh Python, as a user's shell would."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=input is None or isinstance(input, str),
                          env=child_env(env), input=input, cwd=cwd, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


LSTM_EDGE = ("-m", "lstm_edge.train.cli")  # the `lstm-edge` console script
EDGE_CLASSIFY = ("-m", "lstm_edge.edge.cli")  # the `edge-classify` console script
# `edge-doctor` and `edge-bench` are functions of edge.cli: a child's `python -c` program runs them.
EDGE_DOCTOR = ("-c", "import sys; from lstm_edge.edge.cli import doctor_main; doctor_main(sys.argv[1:])")
EDGE_BENCH = ("-c", "import sys; from lstm_edge.edge.cli import bench_main; bench_main(sys.argv[1:])")
EDGE_SERVE = ("-c", "import sys; from lstm_edge.edge.cli import serve_main; serve_main(sys.argv[1:])")


@pytest.fixture(scope="session")
def edge_wheel(tmp_path_factory) -> Path:
    """This checkout as a wheel, as a user builds it to copy to a Pi."""
    from benchmarks.coldstart import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


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
    """The documented full-MNIST recipe (train.recipes.FULL_MNIST) trained through the CLI on the 60,000
    / 10,000 IDX files, exported with the default `--quantize` and the export's default bars
    (~2.5 minutes on two cores). Skips without the files (benchmarks.fullmnist finds them)."""
    from benchmarks.fullmnist import has_mnist, mnist_folder
    from lstm_edge.train.recipes import FULL_MNIST

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

