"""Graph layouts of the same arithmetic, int8, side by side: the evidence for the export's layout.

    python -m benchmarks.layouts RUN WORKDIR [--json]

The export's layout (`export.convert.serving_function`): every step's input projection in one
product before the loop, gate blocks i, f, o, c so one sigmoid serves three gates (two static
slices), no recurrent product at step 1. The candidates change only how the ops are laid out:

- split-v: the export's layout with one SPLIT_V for the slices (the export before this benchmark:
  XNNPACK does not take SPLIT_V, so the graph is cut into 29 partitions);
- four-splits: Keras' own i, f, c, o blocks, one SPLIT into 4 and three sigmoids;
- concat: one product per step of [x_t, h] with the stacked kernels (no input projection, no add;
  but int8 then needs a bias per step, since each step's input scale differs: ~75 KB more);
- step-input: the input projection per step instead of once for all steps;
- per-gate: four products per step, one per gate, and no splits at all.

Each candidate is converted with the export's own int8 settings and timed, batch 1 on one thread
in LiteRT, in interleaved rounds (a child process without TensorFlow), with its agreement with
the float model on the test split.
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


def candidates(weights: dict[str, np.ndarray]) -> dict:
    """name -> a concrete serving function (batch 1, probabilities out)."""
    import tensorflow as tf

    from edge.preprocess import IMAGE_SIZE
    from export.convert import serving_function, serving_order

    units = weights["recurrent_kernel"].shape[0]
    kernel, recurrent, bias = weights["kernel"], weights["recurrent_kernel"], weights["bias"]  # i, f, c, o
    dense_kernel, dense_bias = weights["dense_kernel"], weights["dense_bias"]

    def cell(z, c):
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(i) * tf.tanh(g) if c is None else tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    def split_v(x):
        order = serving_order(units)
        k, r, b = kernel[:, order], recurrent[:, order], bias[order]
        z_x = tf.reshape(tf.matmul(tf.reshape(x, [-1, IMAGE_SIZE]), k) + b, [-1, IMAGE_SIZE, 4 * units])
        h = c = None
        for z in tf.unstack(z_x, axis=1):
            z = z if h is None else z + tf.matmul(h, r)
            z_sigmoid, z_cell = tf.split(z, [3 * units, units], axis=-1)
            i, f, o = tf.split(tf.sigmoid(z_sigmoid), 3, axis=-1)
            c = i * tf.tanh(z_cell) if c is None else f * c + i * tf.tanh(z_cell)
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
            c = i * g if c is None else f * c + i * g
            h = o * tf.tanh(c)
        return h

    def serving(forward):
        spec = tf.TensorSpec([1, IMAGE_SIZE, IMAGE_SIZE], tf.float32)
        return tf.function(lambda x: {"probabilities": tf.nn.softmax(tf.matmul(forward(x), dense_kernel) + dense_bias)},
                           input_signature=[spec]).get_concrete_function()

    return {"export (i,f,o,c)": serving_function(weights), "split-v": serving(split_v),
            "four-splits": serving(four_splits),
            "concat": serving(concat), "step-input": serving(step_input), "per-gate": serving(per_gate)}


def build(run_path: str, work: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from export.convert import convert

    from .trained import load_trained

    trained = load_trained(run_path)
    names = {}
    for k, (name, function) in enumerate(candidates(trained.weights).items()):
        (work / f"layout-{k}.tflite").write_bytes(convert(trained.weights, "int8", trained.calibration, function))
        names[f"layout-{k}.tflite"] = name
    (work / "layouts.json").write_text(json.dumps(names))
    np.save(work / "layout-digits.npy", trained.digits)
    np.save(work / "layout-float.npy", trained.probabilities.argmax(-1))


def measure(work: Path) -> dict:
    from edge.runtime import TFLiteModel

    names = json.loads((work / "layouts.json").read_text())
    digits, answers = np.load(work / "layout-digits.npy"), np.load(work / "layout-float.npy")
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
        agreement = float(np.mean(model.predict(digits).argmax(-1) == answers))
        ops = model._interpreter._interpreter.NumNodes()
        results.append({"layout": name, "ops": ops, "size_bytes": (work / file).stat().st_size,
                        "invoke_us": statistics.median(samples[file]), "agreement": agreement})
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
        print(f"{r['layout']:<18}{r['ops']:>5} ops{r['size_bytes'] / 1024:>7.0f} KB{r['invoke_us']:>8.0f} us"
              f"  agreement {100 * r['agreement']:.1f}%")


if __name__ == "__main__":
    main()
