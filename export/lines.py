"""The line reader exported beside the digit model (`model.lines.tflite`), after parity: every edge
runtime installed reads held-out numbers (made of the test split's digits, as the reader was trained)
as the float model reads them, to the bars given, or nothing is written.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from lstm_edge.edge.contract import LINE_HEIGHT, LINE_INK_HEIGHT, LINE_MARGIN
from lstm_edge.edge.machine import cpu_model
from lstm_edge.edge.manifest import MANIFEST_FORMAT, manifest_path, sha256_hex
from lstm_edge.train.errors import TrainError

from .convert import SERVING_BATCH, convert
from .errors import ExportError
from .verify import allowed_digits, edge_runtimes, run_edge

LINE_MODES = ("none", "int8")
PARITY_NUMBERS = 1000  # held-out numbers every runtime reads
CALIBRATION_NUMBERS = 300  # training numbers that calibrate int8 activations
# int8 line readers (64 and 96 units, AMD EPYC Zen 3) read as many held-out numbers right as their
# float models, within 0.6 points either way, yet only 91-93% of all numbers as the float model
# does: where the float model is wrong, int8 is often wrong otherwise. So agreement counts the
# numbers the float model reads right: how many of those a quantized reader keeps.
DEFAULT_LINE_AGREEMENT_PCT = 95.0
DEFAULT_LINE_TOLERANCE_PP = 1.0
PARITY_SEED = 12345


@dataclass(frozen=True)
class LineCheck:
    runtime: str
    version: str
    numbers: int
    correct: int  # numbers it reads right
    kept: int  # numbers the float model reads right that it reads right too ...
    float_correct: int  # ... of these
    latency_us: float
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def agreement(self) -> float:
        return self.kept / self.float_correct if self.float_correct else 1.0

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "version": self.version, "numbers": self.numbers,
                "accuracy": self.correct / self.numbers, "agreement": self.agreement,
                "latency_us": self.latency_us, "passed": self.passed, "failures": list(self.failures)}


@dataclass(frozen=True)
class LineExport:
    path: Path
    manifest: Path
    float_accuracy: float
    checks: tuple[LineCheck, ...]
    size_bytes: int


def serving_function(weights: dict[str, np.ndarray], width: int, stride: int):
    """Lines (1, 28, width) float32 in [0, 1] -> probabilities (1, steps, 11)."""
    import tensorflow as tf

    from lstm_edge.train.lines import line_logits

    constants = {name: tf.constant(value) for name, value in weights.items()}

    @tf.function(input_signature=[tf.TensorSpec([SERVING_BATCH, LINE_HEIGHT, width], tf.float32, name="lines")])
    def serve(lines):
        return {"probabilities": tf.nn.softmax(line_logits(lines, constants, stride))}

    return serve.get_concrete_function()


def export_lines(run_path: str | os.PathLike[str], mode: str, out: str | os.PathLike[str],
                 runtimes: Optional[Sequence[str]] = None, min_agreement_pct: float = DEFAULT_LINE_AGREEMENT_PCT,
                 tolerance_pp: float = DEFAULT_LINE_TOLERANCE_PP,
                 log: Callable[[str], None] = lambda message: None) -> LineExport:
    """Export a line reader's run to `out` in `mode`, after parity on every edge runtime.

    Raises:
      ExportError: a foreign run, a converter failure, or failed parity; `out` is then left as it was.
    """
    import tensorflow as tf

    from lstm_edge.train.data import load_dataset
    from lstm_edge.train.lines import line_logits, load_line_run, read_lines, truths
    from lstm_edge.train.numbers import line_examples

    from .publish import _check_writable

    out = Path(out)
    _check_writable(out)
    if mode not in LINE_MODES:
        raise ExportError(f"a line reader exports as {' or '.join(LINE_MODES)} (got {mode!r})")
    try:
        run = load_line_run(Path(run_path))
        data = load_dataset(run.record.get("dataset"), run.record.get("data_path"))
    except TrainError as e:
        raise ExportError(str(e)) from None
    width, stride = run.config.width, run.config.stride
    rng = np.random.default_rng(PARITY_SEED)
    lines, labels, lengths = line_examples(data.x_test, data.y_test, PARITY_NUMBERS, width, rng)
    calibration = line_examples(data.x_train, data.y_train, CALIBRATION_NUMBERS, width, rng)[0]
    constants = {name: tf.constant(value) for name, value in run.weights.items()}
    reference = np.concatenate([tf.nn.softmax(line_logits(tf.constant(lines[b : b + 250]), constants, stride)).numpy()
                                for b in range(0, len(lines), 250)])
    truth = truths(labels, lengths)
    float_read = read_lines(reference)
    float_correct = sum(a == b for a, b in zip(float_read, truth))
    n = len(truth)
    log(f"{run.path}: line reader, {run.config.units} units each way, {width} columns ({width // stride} steps); "
        f"TensorFlow float reads {100 * float_correct / n:.1f}% of {n:,} held-out numbers of {data.name} whole")
    model_bytes = convert(run.weights, mode, calibration, function=serving_function(run.weights, width, stride))
    may_change, may_lose = allowed_digits(100 - min_agreement_pct, float_correct), allowed_digits(tolerance_pp, n)
    with tempfile.TemporaryDirectory(prefix=".lstm-edge-export-", dir=out.parent) as work:
        work = Path(work)
        candidate, lines_file = work / "lines.tflite", work / "lines.npy"
        candidate.write_bytes(model_bytes)
        np.save(lines_file, lines)
        checks = []
        for runtime in edge_runtimes(runtimes):
            probabilities, report = run_edge(candidate, lines_file, runtime, lines=True)
            read = read_lines(probabilities)
            correct = sum(a == b for a, b in zip(read, truth))
            kept = sum(a == b == c for a, b, c in zip(read, float_read, truth))
            failures = []
            if float_correct - kept > may_change:
                failures.append(f"keeps {kept:,} of the {float_correct:,} numbers the float model reads right "
                                f"(--min-agreement {min_agreement_pct:g}% allows {may_change} to change)")
            if float_correct - correct > may_lose:
                failures.append(f"loses {float_correct - correct} of {n:,} numbers (--tolerance {tolerance_pp:g} "
                                f"points allows {may_lose})")
            check = LineCheck(report["runtime"], report["version"], n, correct, kept, float_correct,
                              float(report.get("latency_us", float("nan"))), tuple(failures))
            log(f"{mode} on {check.runtime} {check.version}: {100 * correct / n:.1f}% read whole (float "
                f"{100 * float_correct / n:.1f}%), {100 * check.agreement:.1f}% of the float model's right "
                f"readings kept, {check.latency_us:.0f} us a group: {'ok' if check.passed else '; '.join(failures)}")
            checks.append(check)
        if not all(c.passed for c in checks):
            raise ExportError(f"parity failed, {out} left untouched: " + " | ".join(
                f"{c.runtime}: {'; '.join(c.failures)}" for c in checks if not c.passed))
        io = report["io"]
        manifest = {
            "format": MANIFEST_FORMAT,
            "kind": "line reader",
            "model": out.name,
            "sha256": sha256_hex(model_bytes),
            "size_bytes": len(model_bytes),
            "quantization": mode,
            "input": {**io["input"], "layout": f"a group of touching digits, its ink box scaled {LINE_INK_HEIGHT} "
                      f"pixels high keeping the aspect ratio, placed {LINE_MARGIN} pixels from the top left of "
                      f"{LINE_HEIGHT} rows; {stride} columns a step"},
            "output": {**io["output"], "meaning": "per step, softmax probabilities of the digits 0-9 then CTC's "
                       "blank; greedy decoding (best class per step, repeats merged, blanks dropped)"},
            "parity": {"numbers": n, "float_correct": float_correct, "float_accuracy": float_correct / n,
                       "verified_on": [c.to_dict() for c in checks]},
            "training": run.record,
            "converter": {"tensorflow": tf.__version__, "python": platform.python_version(),
                          "machine": platform.machine(), "cpu": cpu_model()},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        manifest_file = work / "manifest.json"
        manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
        manifest_out = Path(manifest_path(out))
        try:  # the manifest last: it names the model's hash
            os.replace(candidate, out)
            os.replace(manifest_file, manifest_out)
        except OSError as e:
            raise ExportError(f"cannot write {out}: {e.strerror}") from None
    return LineExport(out, manifest_out, float_correct / n, tuple(checks), len(model_bytes))
