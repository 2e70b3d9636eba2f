"""int8 fidelity: the candidates measured for an int8 model that keeps the float model's answers,
each verified as an export is (`export.verify.check_parity`: every edge runtime, its own process).

    python -m benchmarks.fidelity RUN WORKDIR [--unbounded RUN] [--json]

RUN is a model with the default bounded cell state; `--unbounded` names its twin trained the same
way with `--cell-bound none` (the notebook's unbounded cell). The candidates, all full int8:

- the cell: unbounded (the state's int8 scale spans [-14, 14] on full MNIST) or bounded to [-1, 1];
- the layout: one 4U-wide product sliced into the gates, or the export's (the gates' and the
  cell candidate's products apart, each with its own int8 scale);
- the calibration: the export's 300 class-balanced training digits, or 3,000;
- dynamic (int8 weights, float activations) and int16x8 on the bounded model, for reference.

Each row: agreement with the float model (and the digits that changed), the 99th percentile of
the top-class probability's drift, accuracy, the median batch-1 invoke of 200 digits on one
thread, and size. Other candidates measured once (noise-injection training, a range penalty,
hand-set ranges) are in docs/export.md; they did no better and are not re-run here.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Optional

import numpy as np

CALIBRATION_MORE = 3000
EXPORTED = "bounded cell, split products (the export)"  # the default export's own row


def candidates(run: str, unbounded: Optional[str]) -> list[tuple[str, str, str, str, int]]:
    """(name, run, mode, layout, calibration digits) for every candidate."""
    from lstm_edge.export.modes import DEFAULT_REPRESENTATIVE as N

    from .layouts import EXPORT, ONE_PRODUCT

    rows = []
    if unbounded:
        rows += [("unbounded cell, one product", unbounded, "int8", ONE_PRODUCT, N),
                 ("unbounded cell, split products", unbounded, "int8", EXPORT, N)]
    rows += [("bounded cell, one product", run, "int8", ONE_PRODUCT, N),
             (EXPORTED, run, "int8", EXPORT, N),
             (f"bounded, split, {CALIBRATION_MORE:,} calibration digits", run, "int8", EXPORT, CALIBRATION_MORE),
             ("dynamic (bounded cell)", run, "dynamic", EXPORT, N),
             ("int16x8 (bounded cell)", run, "int16x8", EXPORT, N)]
    return rows


def measure(run: str, work: Path, unbounded: Optional[str] = None) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from lstm_edge.export.convert import convert
    from lstm_edge.export.publish import calibration_digits
    from lstm_edge.export.verify import check_parity
    from lstm_edge.train.run import load_run

    from .layouts import candidates as layouts
    from .trained import load_trained

    loaded = {}
    rows = []
    for name, path, mode, layout, count in candidates(run, unbounded):
        if path not in loaded:
            trained = load_trained(path)
            digits_file = work / f"digits-{len(loaded)}.npy"
            np.save(digits_file, trained.digits)
            loaded[path] = (trained, digits_file, layouts(trained.weights, trained.cell_bound))
        trained, digits_file, functions = loaded[path]
        calibration = trained.calibration
        if count != len(calibration):
            source = load_run(path)
            calibration = calibration_digits(source, source.load_data(), count)
        model = work / f"candidate-{len(rows)}.tflite"
        model.write_bytes(convert(trained.weights, mode, calibration, functions[layout]()))
        parity = check_parity(model, mode, digits_file, trained.labels, trained.probabilities, 100.0, None, 0.0)
        for c in parity.checks:
            rows.append({"candidate": name, "mode": mode, "runtime": f"{c.runtime} {c.version}",
                         "size_bytes": model.stat().st_size, "digits": c.digits, "changed": c.changed,
                         "agreement": c.agreement, "top_difference_p99": c.top_difference_p99,
                         "accuracy": c.accuracy, "float_accuracy": parity.float_accuracy,
                         "latency_us": c.latency_us})
    return {"dataset": loaded[run][0].dataset, "rows": rows}


def render(result: dict, title: str) -> str:
    lines = [f"{title}: int8 candidates against the float model on {result['rows'][0]['digits']:,} test digits "
             "(`benchmarks/fidelity.py`; latency: median batch-1 invoke of 200 digits, one thread)", "",
             "| candidate | runtime | agreement | changed | top-class p99 | accuracy (float) | invoke | size |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['candidate']} | {r['runtime']} | {100 * r['agreement']:.2f}% | {r['changed']} | "
                     f"{r['top_difference_p99']:.3f} | {100 * r['accuracy']:.2f}% ({100 * r['float_accuracy']:.2f}%) | "
                     f"{r['latency_us']:.0f} us | {r['size_bytes'] / 1024:.0f} KB |")
    return "\n".join(lines)


def tradeoff(result: dict, machine: str) -> str:
    """The per-runtime trade-off between the quantized modes (docs/benchmarks.md's "tradeoff" section)."""
    from lstm_edge.export.modes import RUNS_ON

    rows = [r for r in result["rows"] if r["candidate"] == EXPORTED or r["mode"] != "int8"]
    if not rows:
        return "(not measured: no full-MNIST rows in this bench run)"
    lines = [f"| mode | runtime | agreement (changed of {rows[0]['digits']:,}) | top-class p99 | accuracy (float) | "
             "invoke, 1 thread | size | runs on |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mode = r["mode"]
        lines.append(f"| {mode} | {r['runtime']} | {100 * r['agreement']:.2f}% ({r['changed']}) | "
                     f"{r['top_difference_p99']:.3f} | {100 * r['accuracy']:.2f}% ({100 * r['float_accuracy']:.2f}%) | "
                     f"{r['latency_us']:.0f} us | {r['size_bytes'] / 1024:.0f} KB | {RUNS_ON[mode]} |")
    lines += ["", f"Measured by `make bench` on {machine} (median batch-1 invoke of 200 digits in the parity run)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("work", type=Path)
    parser.add_argument("--unbounded", help="the same recipe trained with --cell-bound none")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.run, args.work, args.unbounded)
    print(json.dumps(result) if args.json else render(result, args.run))


if __name__ == "__main__":
    main()
