"""Parity: run a converted model through the edge runtime, in its own process per runtime, and
compare it with the TensorFlow float model on the test split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

import edge
from edge.runtime import installed_runtimes

from .errors import ExportError

FLOAT_TOLERANCE = 1e-5  # a float32 export must give TensorFlow's probabilities to this
MIN_AGREEMENT = 0.99  # a quantized export must give the float model's digit this often
DEFAULT_TOLERANCE_PP = 0.5  # accuracy points a quantized export may lose
TIMED_DIGITS = 200  # batch-1 invokes timed per runtime
EDGE_RUNTIMES = ("litert", "tflite-runtime")  # what a device runs; TensorFlow is the reference


@dataclass(frozen=True)
class RuntimeCheck:
    """One runtime's run of the model over the test split, against the float reference."""

    runtime: str
    version: str
    accuracy: float
    agreement: float  # fraction of digits where its top-1 equals the float model's
    max_difference: float  # largest |probability - float probability|
    latency_us: float  # median batch-1 invoke, one thread
    failures: tuple[str, ...]  # why it fails parity; empty when it passes

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Parity:
    """A model's parity on every edge runtime installed."""

    mode: str
    float_accuracy: float  # the TensorFlow float model's accuracy on the same digits
    digits: int
    checks: tuple[RuntimeCheck, ...]
    io: dict  # the model's input and output tensors: shape, dtype, scale, zero point

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def summary(self) -> str:
        lines = []
        for c in self.checks:
            verdict = "ok" if c.passed else "FAILED: " + "; ".join(c.failures)
            lines.append(
                f"{self.mode} on {c.runtime} {c.version}: accuracy {100 * c.accuracy:.2f}% "
                f"(float {100 * self.float_accuracy:.2f}%), agreement {100 * c.agreement:.2f}%, "
                f"max probability difference {c.max_difference:.2e}: {verdict}"
            )
        return "\n".join(lines)


def edge_runtimes(requested: Optional[Sequence[str]] = None) -> list[str]:
    """The edge runtimes to verify on: those asked for, or every one installed."""
    installed = [r for r in installed_runtimes() if r in EDGE_RUNTIMES]
    if requested:
        missing = [r for r in requested if r not in installed]
        if missing:
            have = ", ".join(installed) or "none"
            raise ExportError(f"runtime {', '.join(missing)} is not installed (installed: {have})")
        return list(requested)
    if not installed:
        raise ExportError("no edge runtime installed to verify on: pip install ai-edge-litert (or tflite-runtime)")
    return installed


def run_edge(model: Path, digits_file: Path, runtime: str, timing: int = TIMED_DIGITS) -> tuple[np.ndarray, dict]:
    """Probabilities from `python -m edge.predict` in a fresh process, and its JSON report."""
    output = digits_file.with_name(f"{digits_file.stem}-{runtime}.probabilities.npy")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    package_root = str(Path(edge.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "edge.predict", str(model), str(digits_file), str(output),
               "--runtime", runtime, "--timing", str(timing)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{runtime} did not finish the parity run in 30 minutes") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise ExportError(f"{runtime} could not run the exported model: {reason}")
    try:
        return np.load(output), json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        output.unlink(missing_ok=True)


def check_parity(
    model: Path,
    mode: str,
    digits_file: Path,
    labels: np.ndarray,
    reference: np.ndarray,
    tolerance_pp: float = DEFAULT_TOLERANCE_PP,
    runtimes: Optional[Sequence[str]] = None,
) -> Parity:
    """Run `model` on every edge runtime and hold it to the parity rules.

    Args:
      model: the .tflite file to check.
      mode: its quantization mode ("none" is held to FLOAT_TOLERANCE in probability).
      digits_file: .npy of the float digits (N, 28, 28) the reference was computed on.
      labels: their true digits (N,).
      reference: the TensorFlow float model's probabilities (N, 10).
      tolerance_pp: accuracy points a quantized model may lose.
    """
    float_accuracy = float(np.mean(reference.argmax(-1) == labels))
    checks = []
    for runtime in edge_runtimes(runtimes):
        probabilities, report = run_edge(model, digits_file, runtime)
        predicted = probabilities.argmax(-1)
        accuracy = float(np.mean(predicted == labels))
        agreement = float(np.mean(predicted == reference.argmax(-1)))
        difference = float(np.max(np.abs(probabilities - reference)))
        failures = []
        if mode == "none" and difference > FLOAT_TOLERANCE:
            failures.append(f"probabilities differ by {difference:.2e} > {FLOAT_TOLERANCE:.0e}")
        if mode != "none":
            loss_pp = round(100 * (float_accuracy - accuracy), 6)  # no float dust over the line
            if loss_pp > tolerance_pp:
                failures.append(f"loses {loss_pp:.2f} accuracy points > {tolerance_pp}")
            if agreement < MIN_AGREEMENT:
                failures.append(f"agrees on {100 * agreement:.2f}% < {100 * MIN_AGREEMENT:.0f}% of digits")
        checks.append(RuntimeCheck(report["runtime"], report["version"], accuracy, agreement, difference,
                                   float(report.get("latency_us", float("nan"))), tuple(failures)))
    return Parity(mode, float_accuracy, len(labels), tuple(checks), report["io"])
