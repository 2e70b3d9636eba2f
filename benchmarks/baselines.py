"""The baselines a user would pick instead of lstm-edge, all with the run's own trained weights:

- the Keras LSTM-fusion route: `tf_keras.layers.LSTM` (Keras 2) converted to TFLite's fused
  `UNIDIRECTIONAL_SEQUENCE_LSTM` op, float32 and int8 (timed later by `edge-bench`, like ours);
- a plain numpy forward pass (float32);
- TensorFlow itself on the CPU (the trained Keras model in a compiled `tf.function`).

    python -m benchmarks.baselines RUN WORKDIR [--repeats N]

writes WORKDIR/fused-float32.tflite and WORKDIR/fused-int8.tflite, the test split, its labels and
the float model's probabilities (.npy) for the edge runs, and prints one JSON line with the numpy and TensorFlow
figures. Keras 3's `keras.layers.LSTM` does not become the fused op (it
converts to a WHILE loop over resource variables, which fails at invoke), hence tf_keras.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lstm_edge.edge.contract import IMAGE_SIZE, NUM_CLASSES  # noqa: E402
from lstm_edge.edge.native_stderr import native_stderr_silenced  # noqa: E402
from lstm_edge.train.reference import forward  # noqa: E402

from .trained import load_trained  # noqa: E402

FUSED_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
BATCH = 256  # digits per call for the batched figures of numpy and TensorFlow


def fused_lstm_tflite(weights: dict[str, np.ndarray], quantized: bool, calibration: np.ndarray,
                      cell_bound: Optional[float] = None) -> bytes:
    """The same network as `tf_keras.layers.LSTM` + Dense, converted with Keras' LSTM fusion.

    Batch fixed at 1 (the fused op needs a static batch); int8 in and out when `quantized`. A
    bounded cell becomes the fused op's own `cell_clip` (Keras has no such option; TFLite does).
    """
    import tf_keras

    units = weights["recurrent_kernel"].shape[0]
    model = tf_keras.Sequential([
        tf_keras.layers.InputLayer(input_shape=(IMAGE_SIZE, IMAGE_SIZE), batch_size=1),
        tf_keras.layers.LSTM(units),
        tf_keras.layers.Dense(NUM_CLASSES, activation="softmax"),
    ])
    # Keras 2 and Keras 3 share the gate order (i, f, c, o) and the weight shapes.
    model.set_weights([weights[name] for name in ("kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias")])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantized:
        digits = np.asarray(calibration, np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([digits[i : i + 1]] for i in range(len(digits)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    with warnings.catch_warnings(), native_stderr_silenced():
        warnings.simplefilter("ignore")
        flatbuffer = converter.convert()
    if FUSED_OP not in op_names(flatbuffer):
        raise RuntimeError(f"tf_keras' LSTM did not convert to {FUSED_OP}")
    return flatbuffer if cell_bound is None else with_cell_clip(flatbuffer, cell_bound)


def with_cell_clip(flatbuffer: bytes, cell_clip: float) -> bytes:
    """The flatbuffer with every fused LSTM op's `cell_clip` set (its kernels clip the state to it)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    fused = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) == fused:
                op.builtinOptions.cellClip = float(cell_clip)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def op_names(flatbuffer: bytes) -> set[str]:
    """The builtin op names a TFLite flatbuffer uses."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    return {names.get(max(c.builtinCode, c.deprecatedBuiltinCode), "CUSTOM") for c in model.operatorCodes}


def timed(call: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call, `repeats` times, after three warm-up calls."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def figures(name: str, predict: Callable[[np.ndarray], np.ndarray], digits: np.ndarray, labels: np.ndarray,
            reference: np.ndarray, repeats: int, size_bytes: int, version: str) -> dict:
    """Accuracy, agreement with the float model, batch-1 latency and batched throughput."""
    probabilities = np.concatenate([predict(digits[i : i + BATCH]) for i in range(0, len(digits), BATCH)])
    predicted = probabilities.argmax(-1)
    single = np.array(timed(lambda: predict(digits[:1]), repeats)) * 1e6
    batched = timed(lambda: predict(digits[:BATCH]), max(5, repeats // 50))
    return {
        "name": name,
        "version": version,
        "size_bytes": size_bytes,
        "accuracy": float(np.mean(predicted == labels)),
        "agreement": float(np.mean(predicted == reference.argmax(-1))),
        "p50_us": float(np.percentile(single, 50)),
        "p99_us": float(np.percentile(single, 99)),
        "digits_per_second": BATCH / statistics.median(batched),
        "batch_size": BATCH,
        "repeats": repeats,
    }


def measure(run_path: str, work: Path, repeats: int = 300) -> dict:
    trained = load_trained(run_path)
    weights, digits, labels, reference = trained.weights, trained.digits, trained.labels, trained.probabilities
    files = {"test_digits_file": "test-digits.npy", "test_labels_file": "test-labels.npy",
             "float_probabilities_file": "float-probabilities.npy"}
    for name, value in zip(files.values(), (digits, labels, reference)):
        np.save(work / name, value)

    fused = {}
    for label, quantized in (("float32", False), ("int8", True)):
        path = work / f"fused-{label}.tflite"
        path.write_bytes(fused_lstm_tflite(weights, quantized, trained.calibration, trained.cell_bound))
        fused[label] = str(path)

    weight_bytes = sum(w.astype(np.float32).nbytes for w in weights.values())
    numpy_figures = figures("numpy float32", lambda x: forward(weights, x, np.float32, trained.cell_bound), digits,
                            labels, reference, repeats, weight_bytes, np.__version__)

    serve = tf.function(lambda x: tf.nn.softmax(trained.model(x)),
                        input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32)])
    tf_figures = figures("TensorFlow CPU", lambda x: serve(tf.constant(x)).numpy(), digits, labels, reference,
                         repeats, weight_bytes, tf.__version__)
    return {"fused": fused, "numpy": numpy_figures, "tensorflow": tf_figures, "test_digits": len(labels),
            "dataset": trained.dataset, **files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("work")
    parser.add_argument("--repeats", type=int, default=300, help="batch-1 calls timed for numpy and TensorFlow")
    args = parser.parse_args()
    print(json.dumps(measure(args.run, Path(args.work), args.repeats)))


if __name__ == "__main__":
    main()
