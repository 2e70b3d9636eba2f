"""Parity: run a converted model through the edge runtime, in its own process per runtime, and
compare it with the TensorFlow float model on the test split."""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from lstm_edge.edge.interpreters import DEVICE_RUNTIMES, installed_runtimes

from .errors import ExportError
from .isolated import module_command

FLOAT_TOLERANCE = 1e-5  # a float32 export must give TensorFlow's probabilities to this
# The default int8 export kept the float model's digit on 99.7-99.9% of the quickstart's 1,000 held-out
# digits (seeds 0-3, both runtimes) and 99.95-99.97% of full MNIST's 10,000, losing at most 2 of
# 1,000 (AMD EPYC Zen 4): the bars leave that margin and no more, so a regression fails loudly.
DEFAULT_MIN_AGREEMENT_PCT = 99.5  # a quantized export must give the float model's digit this often
DEFAULT_TOLERANCE_PP = 0.4  # accuracy points a quantized export may lose
TIMED_DIGITS = 200  # batch-1 invokes timed per runtime
CHANGED_SHOWN = 12  # changed digits the export's output names; the manifest lists them all
EDGE_RUNTIMES = DEVICE_RUNTIMES  # verified on what a device runs; TensorFlow is the reference
MICRO_RUNTIME = "tflite-micro"  # what a microcontroller runs: verified with --target micro


@dataclass(frozen=True)
class RuntimeCheck:
    """One runtime's run of the model over the test split, against the float reference."""

    runtime: str
    version: str
    digits: int
    correct: int  # digits it gets right
    changed_digits: tuple[int, ...]  # test-split indices where its answer differs from the float model's
    max_difference: float  # largest |probability - float probability|
    latency_us: float  # median batch-1 invoke, one thread
    failures: tuple[str, ...]  # why it fails parity; empty when it passes
    details: dict = field(default_factory=dict)  # what the runtime adds (TFLM: its ops and arena)
    top_difference_p99: float = float("nan")  # 99th percentile of |p - float p| for the float model's digit

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def accuracy(self) -> float:
        return self.correct / self.digits

    @property
    def changed(self) -> int:  # digits where its answer differs from the float model's
        return len(self.changed_digits)

    @property
    def agreement(self) -> float:
        return 1 - self.changed / self.digits

    def to_dict(self) -> dict:
        return {**asdict(self), "changed": self.changed, "accuracy": self.accuracy, "agreement": self.agreement,
                "passed": self.passed}


@dataclass(frozen=True)
class Parity:
    """A model's parity on every edge runtime installed."""

    mode: str
    float_correct: int  # digits the TensorFlow float model gets right
    digits: int
    checks: tuple[RuntimeCheck, ...]
    io: dict  # the model's input and output tensors: shape, dtype, scale, zero point
    outputs: dict = field(default_factory=dict, repr=False)  # runtime -> (N, 10) its probabilities

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def float_accuracy(self) -> float:
        return self.float_correct / self.digits

    def summary(self) -> str:
        lines = []
        for c in self.checks:
            verdict = "ok" if c.passed else "FAILED: " + "; ".join(c.failures)
            lines.append(
                f"{self.mode} on {c.runtime} {c.version}: accuracy {100 * c.accuracy:.2f}% "
                f"(float {100 * self.float_accuracy:.2f}%), agreement {100 * c.agreement:.2f}%, "
                f"max probability difference {c.max_difference:.2e}, top-class p99 {c.top_difference_p99:.3f}: "
                f"{verdict}"
            )
            if c.changed_digits:
                shown = ", ".join(map(str, c.changed_digits[:CHANGED_SHOWN]))
                rest = len(c.changed_digits) - CHANGED_SHOWN
                more = f" and {rest} more" if rest > 0 else ""
                lines.append(f"  answers changed on test digits {shown}{more} (all in the manifest)")
        return "\n".join(lines)


def edge_runtimes(requested: Optional[Sequence[str]] = None, micro: bool = False) -> list[str]:
    """The edge runtimes to verify on: those asked for, or every one installed; with `micro`, TFLM too."""
    if micro:
        if MICRO_RUNTIME not in installed_runtimes():
            raise ExportError("the micro target verifies on TFLM: pip install 'lstm-edge[micro]' (tflite-micro)")
        return [*edge_runtimes(requested), MICRO_RUNTIME]
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


def run_edge(model: Path, digits_file: Path, runtime: str, timing: int = TIMED_DIGITS,
             lines: bool = False) -> tuple[np.ndarray, dict]:
    """Probabilities from `lstm_edge.edge.predict` in a fresh, isolated process, and its JSON report
    (lines: the model is a line reader)."""
    output = digits_file.with_name(f"{digits_file.stem}-{runtime}.probabilities.npy")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    command = module_command("lstm_edge.edge.predict", str(model), str(digits_file), str(output),
                             "--runtime", runtime, "--timing", str(timing), *(["--lines"] if lines else []))
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{runtime} did not finish the parity run in 30 minutes") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        reason = reason.removeprefix("error: ").split(" cannot load it: ", 1)[-1]  # not the temporary file's name
        raise ExportError(f"{runtime} could not run the exported model, nothing written: {reason}")
    try:
        return np.load(output), json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        output.unlink(missing_ok=True)


def allowed_digits(percent: float, digits: int) -> int:
    """How many of `digits` a bar of `percent` lets go: whole digits, so no float dust decides."""
    return math.floor(percent * digits / 100 + 1e-9)


def check_parity(
    model: Path,
    mode: str,
    digits_file: Path,
    labels: np.ndarray,
    reference: np.ndarray,
    tolerance_pp: float = DEFAULT_TOLERANCE_PP,
    runtimes: Optional[Sequence[str]] = None,
    min_agreement_pct: float = DEFAULT_MIN_AGREEMENT_PCT,
    micro: bool = False,
) -> Parity:
    """Run `model` on every edge runtime and hold it to the parity rules.

    Args:
      model: the .tflite file to check.
      mode: its quantization mode ("none" is held to FLOAT_TOLERANCE in probability).
      digits_file: .npy of the float digits (N, 28, 28) the reference was computed on.
      labels: their true digits (N,).
      reference: the TensorFlow float model's probabilities (N, 10).
      tolerance_pp: accuracy points a quantized model may lose (0.4 of 1,000 digits: 4 digits).
      min_agreement_pct: the share of digits on which a quantized model must give the float
        model's answer (99.5 of 1,000 digits: at most 5 may change).
      micro: verify on TFLM (tflite-micro) as well, to the same bars.
    """
    n = len(labels)
    float_digits = reference.argmax(-1)
    float_correct = int(np.sum(float_digits == labels))
    may_lose, may_change = allowed_digits(tolerance_pp, n), allowed_digits(100 - min_agreement_pct, n)
    checks, outputs = [], {}
    for runtime in edge_runtimes(runtimes, micro):
        probabilities, report = run_edge(model, digits_file, runtime)
        outputs[report["runtime"]] = probabilities
        predicted = probabilities.argmax(-1)
        correct = int(np.sum(predicted == labels))
        changed_digits = tuple(int(i) for i in np.flatnonzero(predicted != float_digits))
        changed = len(changed_digits)
        difference = float(np.max(np.abs(probabilities - reference)))
        rows = np.arange(n)
        top_difference = np.abs(probabilities[rows, float_digits] - reference[rows, float_digits])
        failures = []
        if mode == "none" and difference > FLOAT_TOLERANCE:
            failures.append(f"probabilities differ by {difference:.2e} > {FLOAT_TOLERANCE:.0e}")
        if mode != "none":
            if float_correct - correct > may_lose:
                failures.append(f"loses {float_correct - correct} of {n:,} digits (--tolerance {tolerance_pp:g} "
                                f"points allows {may_lose})")
            if changed > may_change:
                failures.append(f"agrees on {n - changed:,} of {n:,} digits: {changed} answers changed "
                                f"(--min-agreement {min_agreement_pct:g}% allows {may_change})")
        checks.append(RuntimeCheck(report["runtime"], report["version"], n, correct, changed_digits, difference,
                                   float(report.get("latency_us", float("nan"))), tuple(failures),
                                   report.get("micro", {}), float(np.percentile(top_difference, 99))))
    return Parity(mode, float_correct, n, tuple(checks), report["io"], outputs)
