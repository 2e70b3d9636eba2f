"""Benchmark steps run in child processes: the edge runtimes measured without TensorFlow in the
process (as on a device), and each step's own imports kept out of the others' timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .errors import BenchError

ROOT = Path(__file__).resolve().parent.parent
LSTM_EDGE = ("-m", "lstm_edge.train.cli")  # `lstm-edge ARGS`
# `edge-bench ARGS` as a child's `python -c` program: edge-bench's command line is a function.
EDGE_BENCH = "import sys; from lstm_edge.edge.cli import bench_main; bench_main(sys.argv[1:])"


def python(*args: str) -> subprocess.CompletedProcess:
    """`python ARGS` in a child process with this checkout first on the path; raises on failure."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(args[:4])} ...` failed: {failure(done)}")
    return done


def failure(done: subprocess.CompletedProcess) -> str:
    """Why a child failed: its last line on stderr that is not a warning, else its exit code."""
    lines = [line for line in (done.stderr or "").splitlines() if line.strip() and not line.startswith("WARNING")]
    return lines[-1] if lines else f"exit code {done.returncode}"


def python_json(*args: str):
    """The last line of a child's standard output, as JSON."""
    return json.loads(python(*args).stdout.strip().splitlines()[-1])
