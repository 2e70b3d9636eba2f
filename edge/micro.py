"""TensorFlow Lite Micro as an edge runtime: what a microcontroller would answer, on a laptop.

PyPI `tflite-micro` is TFLM's own interpreter with its reference kernels, what a Cortex-M runs
without optimized kernels. Its Python API differs from TFLite's; `MicroInterpreter` gives
`runtime.TFLiteModel` the part of TFLite's API it uses, so every task (classify, bench,
parity) runs on TFLM unchanged. TFLM runs the batch size the model was exported with (1), and
every digit starts from a reset interpreter. No TensorFlow is imported: TFLM ships its own schema.
"""

from __future__ import annotations

import importlib.metadata
import re
import tempfile
from typing import Any, Optional

import numpy as np

from .native_stderr import native_stderr_silenced, native_stderr_to

DEFAULT_ARENA_BYTES = 1 << 20  # a host has room; the export measures what a device needs
OUTPUT_INDEX = 1000  # outputs get indices of their own: TFLM numbers inputs and outputs from 0 each
# TFLM's MicroMutableOpResolver method per builtin op where it is not the op's name in CamelCase.
_RESOLVER_NAMES = {"UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "LOG_SOFTMAX": "AddLogSoftmax",
                   "BATCH_MATMUL": "AddBatchMatMul", "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
                   "L2_NORMALIZATION": "AddL2Normalization", "RESIZE_BILINEAR": "AddResizeBilinear"}


def version() -> str:
    try:
        return importlib.metadata.version("tflite-micro")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def op_names(model: bytes) -> list[str]:
    """The builtin ops a model's graph uses, sorted (TFLite's names: "FULLY_CONNECTED", ...)."""
    schema = _schema()
    parsed = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(model), 0))
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    used = {op.opcodeIndex for subgraph in parsed.subgraphs for op in (subgraph.operators or [])}
    found = set()
    for index in used:
        code = parsed.operatorCodes[index]
        found.add(names.get(max(code.builtinCode, code.deprecatedBuiltinCode), f"CUSTOM:{code.customCode}"))
    return sorted(found)


def resolver_method(op: str) -> str:
    """The `tflite::MicroMutableOpResolver` method that registers a builtin op."""
    return _RESOLVER_NAMES.get(op) or "Add" + "".join(part.capitalize() for part in op.split("_"))


def minimal_arena_bytes(model: bytes, digit: np.ndarray, granularity: int = 256) -> int:
    """The smallest tensor arena (to `granularity` bytes) in which TFLM allocates and runs the model
    on `digit` (the model's input, stored type): the figure a firmware sizes its arena from.

    Raises:
      RuntimeError: TFLM cannot run the model at all (an op it lacks, say).
    """
    def runs(size: int) -> bool:
        try:
            with native_stderr_silenced():  # TFLM prints every failed allocation
                interpreter = MicroInterpreter(model, arena_size=size)
                interpreter.set_tensor(0, digit)
                interpreter.invoke()
            return True
        except RuntimeError:
            return False

    high = max(DEFAULT_ARENA_BYTES, 10 * len(model))
    if not runs(high):
        MicroInterpreter(model, arena_size=high)  # raises with TFLM's own reason
        raise RuntimeError(f"TFLM cannot run the model even with a {high:,}-byte arena")
    low = 0  # fails (or untried)
    while high - low > granularity:
        middle = (low + high) // 2 // granularity * granularity or granularity
        if middle <= low:
            break
        low, high = (low, middle) if runs(middle) else (middle, high)
    return high


class MicroInterpreter:
    """TFLite's Interpreter API, the part `runtime.TFLiteModel` uses, over TFLM.

    Raises (at construction):
      RuntimeError: TFLM cannot run the model (an op it lacks, an arena too small); the message
        carries TFLM's reason.
    """

    def __init__(self, model_content: bytes, num_threads: Optional[int] = None,
                 arena_size: Optional[int] = None):
        from tflite_micro.python.tflite_micro import runtime

        del num_threads  # TFLM runs on one thread
        self.ops = op_names(model_content)
        size = arena_size or max(DEFAULT_ARENA_BYTES, 10 * len(model_content))
        with tempfile.TemporaryFile() as said:  # TFLM gives its reasons on file descriptor 2 only
            try:
                with native_stderr_to(said):
                    self._micro = runtime.Interpreter.from_bytes(model_content, arena_size=size)
            except (RuntimeError, ValueError) as e:
                said.seek(0)
                raise RuntimeError(_reason(said.read().decode(errors="replace"), e, size)) from None
        self.arena_size = size

    def allocate_tensors(self) -> None:
        """TFLM allocates at construction."""

    def get_input_details(self) -> list[dict[str, Any]]:
        return [_details(self._micro.get_input_details(0), 0)]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [_details(self._micro.get_output_details(0), OUTPUT_INDEX)]

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self._micro.reset()  # each digit from a clean interpreter, as a firmware's loop would start
        self._micro.set_input(value, index)

    def invoke(self) -> None:
        self._micro.invoke()

    def get_tensor(self, index: int) -> np.ndarray:
        return self._micro.get_output(index - OUTPUT_INDEX)

    def resize_tensor_input(self, *args, **kwargs) -> None:
        raise ValueError("TFLM runs the batch size the model was exported with")

    def reset_all_variables(self) -> None:
        self._micro.reset()

    def _get_ops_details(self) -> list[dict[str, str]]:
        return [{"op_name": op} for op in self.ops]


def _reason(said: str, error: BaseException, arena_size: int) -> str:
    """One line for why TFLM could not load a model, from what it wrote."""
    lacking = sorted(set(re.findall(r"Failed to get registration from op code (\S+)", said)))
    if lacking:
        return f"TFLM has no kernel for {', '.join(lacking)}"
    if re.search(r"Failed to allocate|missing: \d+|Too many buffers", said):  # the planner, short of room too
        return f"the model does not fit a {arena_size:,}-byte tensor arena"
    lines = [line.strip() for line in said.splitlines()
             if line.strip() and "Failed starting model allocation" not in line]
    return f"TFLM cannot run it: {lines[0] if lines else error}"


def _details(tensor: dict[str, Any], index: int) -> dict[str, Any]:
    parameters = tensor.get("quantization_parameters") or {}
    scales, zero_points = parameters.get("scales", []), parameters.get("zero_points", [])
    scale = float(scales[0]) if len(scales) else 0.0
    zero_point = int(zero_points[0]) if len(zero_points) else 0
    shape = np.asarray(tensor["shape"], np.int32)
    return {"index": index, "shape": shape, "shape_signature": shape, "dtype": tensor["dtype"],
            "quantization": (scale, zero_point)}
