"""An export from start to finish: convert, prove parity, and only then put the model in place.

Nothing reaches `--out` before it passes: the model is written to a temporary file beside it,
verified, then renamed over it, so a failed export leaves any earlier model untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from lstm_edge.edge.contract import scale_pixels
from lstm_edge.edge.manifest import golden_path, manifest_path, sha256_hex
from lstm_edge.train.data import Dataset, balanced_subset
from lstm_edge.train.errors import TrainError
from lstm_edge.train.loop import predict_logits
from lstm_edge.train.model import get_weights
from lstm_edge.train.reference import softmax
from lstm_edge.train.run import Run, load_run, restore_model

from .convert import convert
from .errors import ExportError
from .golden import choose_golden, golden_bytes
from .manifest import build_manifest
from .micro import ARENA_MARGIN, HEADER, SOURCE, MicroTarget, c_name_from, check_c_name, header, source
from .modes import DEFAULT_REPRESENTATIVE, RUNS_ON, TARGETS
from .verify import DEFAULT_MIN_AGREEMENT_PCT, DEFAULT_TOLERANCE_PP, MICRO_RUNTIME, Parity, check_parity


@dataclass(frozen=True)
class FormatRow:
    """One line of the closing table: a format on one runtime."""

    mode: str
    size_bytes: int
    accuracy: float
    agreement: float
    latency_us: float
    runtime: str
    top_difference_p99: float = float("nan")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest: Path
    parity: Parity
    rows: tuple[FormatRow, ...]
    micro: Optional[MicroTarget] = None  # with --target micro: what the firmware's files say

    def table(self) -> str:
        lines = [f"{'format':<10}{'size':>10}{'accuracy':>10}{'agreement':>11}{'p99':>8}{'latency':>12}  runtime",
                 "-" * 74]
        for r in self.rows:
            lines.append(f"{'float32' if r.mode == 'none' else r.mode:<10}{r.size_bytes / 1024:>8.1f}KB"
                         f"{100 * r.accuracy:>9.2f}%{100 * r.agreement:>10.2f}%{r.top_difference_p99:>8.3f}"
                         f"{r.latency_us:>9.1f} us  {r.runtime}")
        lines.append("p99: the 99th percentile of how far the float model's top-class probability moved; "
                     "latency: batch-1 invoke, one thread")
        modes = dict.fromkeys(r.mode for r in self.rows)
        lines += [f"{'float32' if m == 'none' else m} runs on: {RUNS_ON[m]}" for m in modes if m in RUNS_ON]
        return "\n".join(lines)


def export_run(
    run_path: str | os.PathLike[str],
    mode: str,
    out: str | os.PathLike[str],
    representative: int = DEFAULT_REPRESENTATIVE,
    tolerance_pp: float = DEFAULT_TOLERANCE_PP,
    runtimes: Optional[Sequence[str]] = None,
    log: Callable[[str], None] = lambda message: None,
    min_agreement_pct: float = DEFAULT_MIN_AGREEMENT_PCT,
    target: str = "edge",
    c_name: Optional[str] = None,
    arena_limit: Optional[int] = None,
) -> ExportResult:
    """Export a run's checkpoint to `out` in `mode`, after parity on every edge runtime.

    With target "micro" the parity runs on TFLM as well, and `model_data.h` / `model_data.cc`
    (export.micro) are written beside `out`, their names prefixed by `c_name` (default: from
    `out`'s name); a model whose tensor arena exceeds `arena_limit` bytes is refused.

    Raises:
      ExportError: bad arguments, a foreign run, a converter failure, or failed parity (the
        message carries the figures); `out` is then left as it was.
    """
    out = Path(out)
    _check_writable(out)
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    micro = target == "micro"
    if micro:
        c_name = check_c_name(c_name) if c_name else c_name_from(out.stem)
        if arena_limit is not None and arena_limit < 1:
            raise ExportError(f"the arena limit must be a positive number of bytes (got {arena_limit})")
    if not 0 <= tolerance_pp <= 100:
        raise ExportError(f"the tolerance must be between 0 and 100 accuracy points (got {tolerance_pp})")
    if not 0 <= min_agreement_pct <= 100:
        raise ExportError(f"the minimum agreement must be between 0 and 100 percent (got {min_agreement_pct})")
    try:
        run = load_run(run_path)
        data = run.load_data()
        if not 1 <= representative <= len(data.x_train):
            raise ExportError(f"{representative} representative digits: choose 1 to {len(data.x_train):,}, "
                              f"the training digits of {data.name}")
        calibration = calibration_digits(run, data, representative)
        model = restore_model(run)
    except TrainError as e:
        raise ExportError(str(e)) from None
    weights = get_weights(model)
    digits, labels = scale_pixels(data.x_test), data.y_test
    reference = softmax(predict_logits(model, digits).astype(np.float64))
    log(f"{run.path}: {run.model.cell} LSTM, {run.model.units} units; TensorFlow float accuracy "
        f"{100 * np.mean(reference.argmax(-1) == labels):.2f}% on {len(labels):,} test digits of {data.name}")

    with tempfile.TemporaryDirectory(prefix=".lstm-edge-export-", dir=out.parent) as work:
        work = Path(work)
        digits_file = work / "digits.npy"
        np.save(digits_file, digits)
        rows, chosen = [], None
        for fmt in dict.fromkeys(("none", mode)):  # float32 for the table, then the mode asked for
            model_bytes = convert(weights, fmt, calibration, cell_bound=run.model.cell_bound)
            candidate = work / f"{fmt}.tflite"
            candidate.write_bytes(model_bytes)
            parity = check_parity(candidate, fmt, digits_file, labels, reference, tolerance_pp, runtimes,
                                  min_agreement_pct, micro=micro and fmt == mode)
            log(parity.summary())
            rows += [FormatRow(fmt, len(model_bytes), c.accuracy, c.agreement, c.latency_us, c.runtime,
                               c.top_difference_p99) for c in parity.checks]
            if fmt == mode:
                chosen = (candidate, model_bytes, parity)
        candidate, model_bytes, parity = chosen
        if not parity.passed:
            hint = ""
            if mode == "int8" and run.model.cell_bound is None:
                hint = (" (this run's cell state is unbounded, which int8 keeps worse: retrain with the default "
                        "cell bound, or export in the dynamic mode for LiteRT)")
            raise ExportError(f"parity failed, {out} left untouched: " + " | ".join(
                f"{c.runtime}: {'; '.join(c.failures)}" for c in parity.checks if not c.passed) + hint)
        micro_target, micro_files = (_micro_sources(parity, c_name, out, model_bytes, work, arena_limit)
                                     if micro else (None, {}))
        chosen_digits = choose_golden(labels, reference)
        golden = golden_bytes(chosen_digits, data.x_test, labels, reference, parity.outputs)
        golden_out = Path(golden_path(out))
        golden_file = work / "golden.npz"
        golden_file.write_bytes(golden)
        golden_entry = {"file": golden_out.name, "sha256": sha256_hex(golden), "digits": len(chosen_digits),
                        "runtimes": {c.runtime: c.version for c in parity.checks}}
        manifest = build_manifest(out.name, model_bytes, parity.io, parity, run.config, _tensorflow_version(),
                                  representative, {r.mode: r.size_bytes for r in rows}, golden_entry)
        if micro_target:
            manifest["micro"] = {**micro_target.to_dict(), "sha256": {name: sha256_hex(path.read_bytes())
                                                                       for name, path in micro_files.items()}}
        manifest_file = work / "manifest.json"
        manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
        manifest_out = Path(manifest_path(out))
        try:  # the manifest last: it names the model's and the sidecar's hashes
            os.replace(golden_file, golden_out)
            for name, path in micro_files.items():
                os.replace(path, out.parent / name)
            os.replace(candidate, out)
            os.replace(manifest_file, manifest_out)
        except OSError as e:
            raise ExportError(f"cannot write {out}: {e.strerror}") from None
    return ExportResult(out, manifest_out, parity, tuple(rows), micro_target)


def calibration_digits(run: Run, data: Dataset, count: int = DEFAULT_REPRESENTATIVE) -> np.ndarray:
    """The `count` class-balanced training digits an export of `run` calibrates on, scaled to [0, 1]:
    the same digits for the same run, wherever they are chosen."""
    chosen, _ = balanced_subset(data.x_train, data.y_train, count, seed=run.training.seed)
    return scale_pixels(chosen)


def _micro_sources(parity: Parity, c_name: str, out: Path, model_bytes: bytes, work: Path,
                   arena_limit: Optional[int]) -> tuple[MicroTarget, dict[str, Path]]:
    """The firmware's C++ files for a model TFLM has run, in `work`; refused above `arena_limit`."""
    check = next(c for c in parity.checks if c.runtime == MICRO_RUNTIME)
    target = MicroTarget(c_name, tuple(check.details["ops"]), int(check.details["arena_bytes"]), check.version)
    if arena_limit is not None and target.arena_bytes > arena_limit:
        raise ExportError(f"the model needs a {target.arena_bytes:,}-byte tensor arena "
                          f"({target.arena_measured_bytes:,} measured in TFLM, plus {ARENA_MARGIN:.0%}), over "
                          f"the limit of {arena_limit:,}; {out} left untouched")
    files = {HEADER: work / HEADER, SOURCE: work / SOURCE}
    files[HEADER].write_text(header(target, parity.io, out.name, sha256_hex(model_bytes), len(model_bytes)))
    files[SOURCE].write_text(source(target, model_bytes))
    return target, files


def _check_writable(out: Path) -> None:
    if out.suffix != ".tflite":
        raise ExportError(f"{out}: the model file must end in .tflite")
    if out.is_dir():
        raise ExportError(f"{out} is a folder; give a file name such as {out / 'model.tflite'}")
    parent = out.parent
    if not parent.is_dir():
        raise ExportError(f"{out}: the folder {parent} does not exist")
    try:  # a real write: os.access says yes to root everywhere, and knows nothing of read-only mounts
        handle, probe = tempfile.mkstemp(prefix=".lstm-edge-probe-", dir=parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as e:
        raise ExportError(f"{out}: cannot write in {parent} ({e.strerror})") from None
    if out.exists() and not os.access(out, os.W_OK):
        raise ExportError(f"{out}: not writable")


def _tensorflow_version() -> str:
    import tensorflow as tf

    return tf.__version__
