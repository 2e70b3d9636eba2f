"""Graph layouts of the same arithmetic, int8, side by side: the evidence for the export's layout.

    python -m benchmarks.layouts RUN WORKDIR [--json]

The export's layout (`export.convert.serving_forward`): the sigmoid gates (i, f, o) and the cell
candidate from separate products, each step's input projections in one product per part before
the loop, one sigmoid for three gates, no recurrent product at step 1. The candidates change only
how the ops are laid out (each keeps the run's cell bound):

- one-product: one 4U-wide product sliced into the gates (i, f, o | c), so the cell candidate
  shares the gates' int8 scale; the fewest ops, and the latency baseline;
- split-v: one-product with one SPLIT_V for the slices (XNNPACK does not take SPLIT_V, so the
  graph is cut into 29 partitions);
- four-splits: Keras' own i, f, c, o blocks, one SPLIT into 4 and three sigmoids;
- concat: one product per step of [x_t, h] with the stacked kernels (no input projection, no add;
  but int8 then needs a bias per step, since each step's input scale differs);
- step-input: the input projection per step instead of once for all steps;
- per-gate: four products per step, one per gate, and no splits at all.

Each candidate is converted with the export's own int8 settings and timed, batch 1 on one thread
in LiteRT, in interleaved rounds (a child process without TensorFlow), with its agreement with
the float model on the test split and the 99th percentile of the top-class probability's drift.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from .child import python_json

ROUNDS, CALLS = 15, 200
EXPORT, ONE_PRODUCT = "export (i,f,o | c)", "one-product"


def candidates(weights: dict[str, np.ndarray], cell_bound) -> dict:
    """name -> a function making the concrete serving function (batch 1, probabilities out)."""
    import tensorflow as tf

    from lstm_edge.edge.contract import IMAGE_SIZE
    from lstm_edge.export.convert import serving_function, serving_order
    from lstm_edge.train.model import bounded

    units = weights["recurrent_kernel"].shape[0]
    kernel, recurrent, bias = weights["kernel"], weights["recurrent_kernel"], weights["bias"]  # i, f, c, o
    order = serving_order(units)

    def cell(z, c):
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(i) * tf.tanh(g) if c is None else tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        c = bounded(c, cell_bound)
        return tf.sigmoid(o) * tf.tanh(c), c

    def sliced(x, split_v: bool):
        k, r, b = kernel[:, order], recurrent[:, order], bias[order]
        z_x = tf.reshape(tf.matmul(tf.reshape(x, [-1, IMAGE_SIZE]), k) + b, [-1, IMAGE_SIZE, 4 * units])
        h = c = None
        for z in tf.unstack(z_x, axis=1):
            z = z if h is None else z + tf.matmul(h, r)
            if split_v:
                z_sigmoid, z_cell = tf.split(z, [3 * units, units], axis=-1)
            else:
                z_sigmoid, z_cell = z[:, : 3 * units], z[:, 3 * units :]
            if c is None and not split_v:
                i, o = tf.sigmoid(z_sigmoid[:, :units]), tf.sigmoid(z_sigmoid[:, 2 * units :])
                c = i * tf.tanh(z_cell)
            else:
                i, f, o = tf.split(tf.sigmoid(z_sigmoid), 3, axis=-1)
                c = i * tf.tanh(z_cell) if c is None else f * c + i * tf.tanh(z_cell)
            c = bounded(c, cell_bound)
            h = o * tf.tanh(c)
        return h

    def four_splits(x):
        z_x = tf.reshape(tf.matmul(tf.reshape(x, [-1, IMAGE_SIZE]), kernel) + bias, [-1, IMAGE_SIZE, 4 * units])
        h = c = None
        for z in tf.unstack(z_x, axis=1):
            h, c = cell(z if h is None else z + tf.matmul(h, recurrent), c)
        return h

    def concat(x):
        stacked = np.concatenate([kernel, recurrent])
        h = c = None
        for x_t in tf.unstack(x, axis=1):
            z = tf.matmul(x_t, kernel) + bias if h is None else tf.matmul(tf.concat([x_t, h], -1), stacked) + bias
            h, c = cell(z, c)
        return h

    def step_input(x):
        h = c = None
        for x_t in tf.unstack(x, axis=1):
            z = tf.matmul(x_t, kernel) + bias
            h, c = cell(z if h is None else z + tf.matmul(h, recurrent), c)
        return h

    def per_gate(x):
        blocks = [slice(g * units, (g + 1) * units) for g in range(4)]
        h = c = None
        for x_t in tf.unstack(x, axis=1):
            z = [tf.matmul(x_t, kernel[:, s]) + bias[s] + (0 if h is None else tf.matmul(h, recurrent[:, s]))
                 for s in blocks]
            i, f, g, o = tf.sigmoid(z[0]), tf.sigmoid(z[1]), tf.tanh(z[2]), tf.sigmoid(z[3])
            c = bounded(i * g if c is None else f * c + i * g, cell_bound)
            h = o * tf.tanh(c)
        return h

    def serving(forward):  # traced when called
        return lambda: serving_function(weights, cell_bound, forward=lambda x, _weights, _bound: forward(x))

    return {EXPORT: lambda: serving_function(weights, cell_bound), ONE_PRODUCT: serving(lambda x: sliced(x, False)),
            "split-v": serving(lambda x: sliced(x, True)), "four-splits": serving(four_splits),
            "concat": serving(concat), "step-input": serving(step_input), "per-gate": serving(per_gate)}


def build(run_path: str, work: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from lstm_edge.export.convert import convert

    from .trained import load_trained

    trained = load_trained(run_path)
    names = {}
    for k, (name, function) in enumerate(candidates(trained.weights, trained.cell_bound).items()):
        (work / f"layout-{k}.tflite").write_bytes(convert(trained.weights, "int8", trained.calibration, function()))
        names[f"layout-{k}.tflite"] = name
    (work / "layouts.json").write_text(json.dumps(names))
    np.save(work / "layout-digits.npy", trained.digits)
    np.save(work / "layout-float.npy", trained.probabilities)


def measure(work: Path) -> dict:
    from lstm_edge.edge.runtime import TFLiteModel

    names = json.loads((work / "layouts.json").read_text())
    digits, reference = np.load(work / "layout-digits.npy"), np.load(work / "layout-float.npy")
    answers, rows = reference.argmax(-1), np.arange(len(reference))
    models = {file: TFLiteModel(str(work / file), runtime="litert", threads=1) for file in names}
    for model in models.values():
        model.feed(digits[:1])
    samples = {file: [] for file in names}
    for _ in range(ROUNDS):  # interleaved: every candidate sees the same machine noise
        for file, model in models.items():
            for _ in range(CALLS // 10):
                model.run()
            start = time.perf_counter()
            for _ in range(CALLS):
                model.run()
            samples[file].append(1e6 * (time.perf_counter() - start) / CALLS)
    results = []
    for file, name in names.items():
        model = models[file]
        probabilities = model.predict(digits)
        agreement = float(np.mean(probabilities.argmax(-1) == answers))
        p99 = float(np.percentile(np.abs(probabilities[rows, answers] - reference[rows, answers]), 99))
        ops = model._interpreter._interpreter.NumNodes()
        results.append({"layout": name, "ops": ops, "size_bytes": (work / file).stat().st_size,
                        "invoke_us": statistics.median(samples[file]), "agreement": agreement,
                        "top_difference_p99": p99})
    return {"runtime": f"litert {models[next(iter(models))].runtime.version}", "rounds": ROUNDS, "calls": CALLS,
            "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("work", type=Path)
    parser.add_argument("--measure", action="store_true", help="time candidates already built (no TensorFlow)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.measure:
        result = measure(args.work)
    else:
        build(args.run, args.work)
        result = python_json("-m", "benchmarks.layouts", args.run, str(args.work), "--measure", "--json")
    if args.json:
        print(json.dumps(result))
        return
    for r in result["results"]:
        print(f"{r['layout']:<22}{r['ops']:>5} ops{r['size_bytes'] / 1024:>7.0f} KB{r['invoke_us']:>8.0f} us"
              f"  agreement {100 * r['agreement']:.1f}%  top-class p99 {r['top_difference_p99']:.3f}")


if __name__ == "__main__":
    main()
