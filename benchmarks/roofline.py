"""What this machine's TFLite runtime can do at best for this model: the roofline beside the results.

The recurrence is 27 dependent products h @ recurrent_kernel, (1, 128) @ (128, 512), so one digit
cannot finish before 27 of them have run one after the other; and every digit needs 2.17 M
multiply-adds, so no batch can go faster than the runtime's best matrix-product rate allows. Both
limits are measured here in LiteRT (XNNPACK), int8 and float32, on probe models of the model's own
shapes: 27 FULLY_CONNECTED ops chained in one graph (each feeding the first 128 of its 512 outputs
to the next: the recurrence's products and nothing else), and one big batched product.

    python -m benchmarks.roofline WORKDIR [--json]

Building the probe models needs TensorFlow; timing them runs in a child process without it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from .child import python_json

STEPS, FEATURES, UNITS, CLASSES = 28, 28, 128, 10
GATES = 4 * UNITS
# Multiply-adds per digit: 28 input projections, 27 recurrent products (step 1's state is zero), the head.
MACS_PER_DIGIT = STEPS * FEATURES * GATES + (STEPS - 1) * UNITS * GATES + UNITS * CLASSES
GEMM_BATCH = 1024
PROBES = {  # name: rows of the (rows, 128) @ (128, 512) product
    "recurrence-int8": 1, "recurrence-float32": 1, "gemm-int8": GEMM_BATCH, "gemm-float32": GEMM_BATCH,
}


def build(work: Path) -> None:
    """Write one FULLY_CONNECTED model per probe (random weights: timing, not accuracy)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from lstm_edge.edge.native_stderr import native_stderr_silenced

    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.standard_normal((UNITS, GATES), dtype=np.float32) * 0.1)
    bias = tf.constant(np.zeros(GATES, np.float32))
    def recurrence(h):
        for _ in range(STEPS - 1):
            h = (tf.matmul(h, kernel) + bias)[:, :UNITS]
        return h

    for name, rows in PROBES.items():
        body = recurrence if rows == 1 else (lambda x: tf.matmul(x, kernel) + bias)
        fc = tf.function(body, input_signature=[tf.TensorSpec([rows, UNITS], tf.float32)])
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fc.get_concrete_function()], tf.Module())
        if name.endswith("int8"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
            converter.representative_dataset = lambda rows=rows: (
                [rng.standard_normal((rows, UNITS), dtype=np.float32)] for _ in range(4))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        with warnings.catch_warnings(), native_stderr_silenced():
            warnings.simplefilter("ignore")
            (work / f"{name}.tflite").write_bytes(converter.convert())


def measure(work: Path, rounds: int = 9) -> dict:
    """Time per invoke of each probe in its fastest round: the chains on one thread, GEMMs on every core."""
    from ai_edge_litert import __version__ as litert_version
    from ai_edge_litert.interpreter import Interpreter

    from lstm_edge.edge.native_stderr import native_stderr_silenced

    cores = os.cpu_count() or 1
    seconds = {}
    for name, rows in PROBES.items():
        threads = 1 if rows == 1 else cores
        with native_stderr_silenced():
            interpreter = Interpreter(str(work / f"{name}.tflite"), num_threads=threads)
            interpreter.allocate_tensors()
        tensor = interpreter.get_input_details()[0]
        interpreter.set_tensor(tensor["index"], np.ones(tensor["shape"], tensor["dtype"]))
        calls = 200 if rows == 1 else 20
        for _ in range(calls // 10):
            interpreter.invoke()
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(calls):
                interpreter.invoke()
            samples.append((time.perf_counter() - start) / calls)
        seconds[name] = min(samples)  # a limit is what the runtime can do at best: the fastest round
    chain = min(seconds["recurrence-int8"], seconds["recurrence-float32"])
    gemm_rate = max(GEMM_BATCH * UNITS * GATES / seconds[n] for n in ("gemm-int8", "gemm-float32"))
    return {
        "runtime": f"litert {litert_version}",
        "rounds": rounds,
        # One (1, 128) @ (128, 512) product, from the 27-product chain.
        "gemv_us": {n.replace("recurrence", "gemv"): 1e6 * seconds[n] / (STEPS - 1)
                    for n in ("recurrence-int8", "recurrence-float32")},
        "gemm_gmacs": {n: GEMM_BATCH * UNITS * GATES / seconds[n] / 1e9 for n in ("gemm-int8", "gemm-float32")},
        "gemm_threads": cores,
        "macs_per_digit": MACS_PER_DIGIT,
        # The recurrent products alone, back to back: no batch-1 digit can be faster than this.
        "latency_floor_us": 1e6 * chain,
        # Every multiply-add at the best product rate and nothing else: no batch can beat this.
        "throughput_ceiling": gemm_rate / MACS_PER_DIGIT,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--measure", action="store_true", help="time probes already built (no TensorFlow)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.measure and not args.work.is_dir():
        parser.error(f"{args.work}: no such folder (run without --measure first: it builds the probes there)")
    if args.measure:
        result = measure(args.work)
    else:
        try:
            args.work.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            parser.error(f"{args.work}: cannot make the folder: {e.strerror}")
        build(args.work)
        result = python_json("-m", "benchmarks.roofline", str(args.work), "--measure", "--json")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"one (1, 128) @ (128, 512) product: {result['gemv_us']['gemv-int8']:.2f} us int8, "
              f"{result['gemv_us']['gemv-float32']:.2f} us float32 (1 thread)\n"
              f"batch-1 floor: 27 of them = {result['latency_floor_us']:.0f} us per digit\n"
              f"best product rate: {max(result['gemm_gmacs'].values()):.1f} G multiply-adds/s on "
              f"{result['gemm_threads']} threads = at most {result['throughput_ceiling']:,.0f} digits/s")


if __name__ == "__main__":
    main()
