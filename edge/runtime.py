"""Interpreter plumbing: load a digit model in the best TFLite interpreter installed, feed it
float digits, read back probabilities. Quantized tensors, state variables and batching live here,
so task code never sees them.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .contract import IMAGE_SIZE, NUM_CLASSES
from .errors import ModelError
from .interpreters import AUTO_RUNTIMES, MODULES, RUNTIMES, installed_runtimes
from .manifest import check_manifest
from .native_stderr import native_stderr_silenced

# Ops that keep state in variable tensors between invokes: reset_all_variables() clears it.
_VARIABLE_TENSOR_OPS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "BIDIRECTIONAL_SEQUENCE_RNN",
    "SVDF",
}
# Ops that keep state in resource variables: reset_all_variables() does not touch those (seen in
# LiteRT 2.3 and tflite-runtime 2.14), so such a model gets a fresh interpreter per digit.
_RESOURCE_VARIABLE_OPS = {"VAR_HANDLE", "ASSIGN_VARIABLE"}
DEFAULT_BATCH = 64


@dataclass(frozen=True)
class Runtime:
    """A TFLite interpreter implementation: its name, version and Interpreter class."""

    name: str
    version: str
    interpreter_class: Any
    resizable: bool = True  # False: the model's own batch size only (TFLM)


def load_runtime(name: str = "auto") -> Runtime:
    """Import a runtime by name, or the best installed one for "auto".

    Raises:
      ModelError: the runtime is unknown or not installed.
    """
    if name == "auto":
        available = [r for r in installed_runtimes() if r in AUTO_RUNTIMES]
        if not available:
            raise ModelError("no TFLite interpreter installed: pip install ai-edge-litert (or tflite-runtime)")
        name = available[0]
    if name not in RUNTIMES:
        raise ModelError(f"unknown runtime {name!r}; choose from auto, {', '.join(RUNTIMES)}")
    package = MODULES[name]
    try:
        if name == "tensorflow":
            module = importlib.import_module("tensorflow")
            return Runtime(name, module.__version__, module.lite.Interpreter)
        if name == "tflite-micro":
            importlib.import_module("tflite_micro.python.tflite_micro.runtime")
            from . import micro

            return Runtime(name, micro.version(), micro.MicroInterpreter, resizable=False)
        module = importlib.import_module(package + ".interpreter")
        version = getattr(importlib.import_module(package), "__version__", "unknown")
        return Runtime(name, version, module.Interpreter)
    except ImportError as e:
        hint = ": pip install 'lstm-edge[micro]'" if name == "tflite-micro" else ""
        raise ModelError(f"runtime {name!r} is not installed ({e}){hint}") from None


class TFLiteModel:
    """A digit model (`[batch, 28, 28]` in, `[batch, 10]` probabilities out) in an interpreter.

    Args:
      path: the `.tflite` file. A manifest beside it (`.json`) is checked against its hash.
      runtime: "auto" or one of RUNTIMES.
      threads: interpreter threads; None lets the runtime choose.
    Raises:
      ModelError: missing, foreign, truncated or wrongly shaped model; manifest mismatch.
    """

    def __init__(self, path: str | os.PathLike[str], runtime: str = "auto", threads: Optional[int] = None):
        self.path = os.fspath(path)
        data = _read_model(self.path)
        self.manifest = check_manifest(self.path, data)
        self.runtime = load_runtime(runtime)
        self.threads = threads
        self._data = data
        self._workers: Optional[list[TFLiteModel]] = None
        self._fed: Optional[np.ndarray] = None
        self._interpreter = self._new_interpreter()
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: expected 1 input and 1 output, found {len(inputs)} and {len(outputs)}")
        self._input, self._output = inputs[0], outputs[0]
        self._input_codec, self._output_codec = Codec(self._input), Codec(self._output)
        in_shape, out_shape = tuple(int(n) for n in self._input["shape"]), tuple(int(n) for n in self._output["shape"])
        self._check_shapes(in_shape, out_shape)
        self.item_shape, self.answer_shape = in_shape[1:], out_shape[1:]
        ops = _op_names(self._interpreter)
        self._resource_state = bool(_RESOURCE_VARIABLE_OPS & ops)
        self.stateful = self._resource_state or bool(_VARIABLE_TENSOR_OPS & ops)

    def _check_shapes(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
        if len(in_shape) != 3 or in_shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ModelError(f"{self.path}: input shape {list(in_shape)} is not [batch, 28, 28]")
        if len(out_shape) != 2 or out_shape[1] != NUM_CLASSES:
            raise ModelError(f"{self.path}: output shape {list(out_shape)} is not [batch, 10]")

    def io_contract(self) -> dict[str, dict[str, Any]]:
        """The input and output tensors as the model declares them (batch 1 as exported)."""

        def describe(tensor: dict[str, Any]) -> dict[str, Any]:
            scale, zero_point = tensor["quantization"]
            return {"shape": [int(n) for n in tensor["shape_signature"]], "dtype": np.dtype(tensor["dtype"]).name,
                    "scale": float(scale), "zero_point": int(zero_point)}

        return {"input": describe(self._input), "output": describe(self._output)}

    @property
    def batch_size(self) -> int:
        return int(self._input["shape"][0])

    def predict(self, digits: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Class probabilities for digits in the model's form.

        With threads > 1 the batches are shared out among that many single-threaded interpreters
        running side by side (the interpreters release the GIL while they invoke). Measured here
        with two threads against one interpreter splitting each op between them: ~1.75x the
        digits/s on tflite-runtime, 0.97-1.14x on LiteRT (the small ops of a recurrent step gain
        little from splitting). One digit at a time still uses the multi-threaded interpreter.

        Args:
          digits: float32 (N, 28, 28) in [0, 1].
          batch_size: digits per invoke (a stateful model takes one at a time).
        Returns:
          float32 (N, 10).
        """
        digits = np.asarray(digits, dtype=np.float32)
        if digits.shape[1:] != self.item_shape:
            raise ValueError(f"digits must be (N, {', '.join(map(str, self.item_shape))}); got {digits.shape}")
        step = 1 if self.stateful or not self.runtime.resizable else max(1, batch_size)
        if 0 < len(digits) <= step:  # one invoke (a photo's digit, a number's few): its answers as they are
            return self.invoke(digits)
        out = np.empty((len(digits), *self.answer_shape), np.float32)
        starts = range(0, len(digits), step)
        workers = self._batch_workers() if len(starts) > 1 else [self]

        def work(k: int) -> None:
            for start in starts[k :: len(workers)]:
                out[start : start + step] = workers[k].invoke(digits[start : start + step])

        if len(workers) == 1:
            work(0)
            return out
        from concurrent.futures import ThreadPoolExecutor  # only batched work pays for the import

        with ThreadPoolExecutor(len(workers)) as pool:
            list(pool.map(work, range(len(workers))))  # list(): re-raises a worker's error here
        return out

    def _batch_workers(self) -> list[TFLiteModel]:
        """`threads` single-threaded twins of this model for batched work (made once, on first use);
        just this model when it is single-threaded or stateful."""
        if self.stateful or not self.threads or self.threads < 2:
            return [self]
        if self._workers is None:
            self._workers = [self._twin(threads=1) for _ in range(self.threads)]
        return self._workers

    def _twin(self, threads: int) -> TFLiteModel:
        twin = object.__new__(TFLiteModel)
        twin.__dict__.update(self.__dict__)
        twin.threads, twin._workers = threads, None
        twin._interpreter = twin._new_interpreter()
        twin._input, twin._output = twin._interpreter.get_input_details()[0], twin._interpreter.get_output_details()[0]
        return twin

    def invoke(self, batch: np.ndarray) -> np.ndarray:
        """One invoke on a batch (n, 28, 28) float32; resizes the input when n changes."""
        self.feed(batch)
        self.run()
        return self._output_codec.dequantize(self._interpreter.get_tensor(self._output["index"]))

    def stored_input(self, batch: np.ndarray) -> np.ndarray:
        """A batch (n, 28, 28) float32 as the model's input tensor holds it (quantized if it is)."""
        return self._input_codec.quantize(np.asarray(batch, np.float32))

    def feed(self, batch: np.ndarray) -> None:
        """Set the input to a batch (n, 28, 28) float32, quantized as the model wants."""
        if len(batch) != self.batch_size:
            self._resize(len(batch))
        self._fed = self._input_codec.quantize(batch)
        self._interpreter.set_tensor(self._input["index"], self._fed)

    def run(self) -> None:
        """Invoke on the input fed, from a clean state: the interpreter's own work, which
        `edge-bench` also times alone."""
        if self._resource_state:  # reset_all_variables() leaves resource variables as they are
            self._interpreter = self._new_interpreter()
            self._interpreter.set_tensor(self._input["index"], self._fed)
        elif self.stateful:
            self._interpreter.reset_all_variables()  # a fused LSTM keeps its state between invokes
        self._interpreter.invoke()

    def _new_interpreter(self):
        try:
            with native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate" etc.
                interpreter = self.runtime.interpreter_class(model_content=self._data, num_threads=self.threads)
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError, SystemError) as e:
            raise ModelError(f"{self.path}: {self.runtime.name} cannot load it: {_first_line(e)}") from None
        return interpreter

    def _resize(self, n: int) -> None:
        if self.stateful and n != 1:
            raise ValueError("a stateful model runs one digit per invoke")
        try:
            self._interpreter.resize_tensor_input(self._input["index"], [n, *self.item_shape], strict=False)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.path}: cannot run a batch of {n}: {_first_line(e)}") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]


class Codec:
    """One tensor's float <-> stored-type conversion through its (scale, zero point), constants
    made once.

    Right after an invoke every NumPy call on a 28x28 digit costs several microseconds here (its
    code and data are out of the caches), so a batch-1 digit's quantize and dequantize use as few
    calls as they can: measured, ~20 us less per digit than a plain clip-and-round expression.
    """

    def __init__(self, tensor: dict[str, Any]):
        self.dtype = np.dtype(tensor["dtype"])
        self.quantized = self.dtype.kind != "f"
        self.table: Optional[np.ndarray] = None
        if self.quantized:
            scale, zero_point = tensor["quantization"]
            info = np.iinfo(self.dtype)
            # 0-d float32 arrays: as operands they cost a third of what scalars do in NumPy 1.26.
            self.scale, self.inverse_scale = np.array(scale, np.float32), np.array(1.0 / scale, np.float32)
            self.zero_point = np.array(zero_point, np.float32)
            self.low, self.high = np.array(info.min, np.float32), np.array(info.max, np.float32)
            if self.dtype.itemsize == 1:  # every stored value's float, indexed by its byte: one lookup
                stored = np.arange(256, dtype=np.uint8).view(self.dtype).astype(np.float32)
                self.table = (stored - self.zero_point) * self.scale

    def quantize(self, values: np.ndarray) -> np.ndarray:
        if not self.quantized:
            return values.astype(self.dtype, copy=False)
        scaled = np.multiply(values, self.inverse_scale)
        np.add(scaled, self.zero_point, out=scaled)
        np.rint(scaled, out=scaled)
        np.clip(scaled, self.low, self.high, out=scaled)
        return scaled.astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        if values.dtype.kind == "f":
            return values.astype(np.float32)
        if self.table is not None and values.dtype == self.dtype:
            return self.table[values.view(np.uint8)]
        out = values.astype(np.float32)
        np.subtract(out, self.zero_point, out=out)
        np.multiply(out, self.scale, out=out)
        return out


def _read_model(path: str) -> bytes:
    if not os.path.exists(path):
        raise ModelError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise ModelError(f"{path}: is a folder, not a model file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror})") from None
    # A flatbuffer's file identifier sits at bytes 4-8; TFLite's is "TFL3".
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a TFLite model (no TFL3 identifier)")
    return data


def _op_names(interpreter) -> set[str]:
    """The names of the ops in the model's graph."""
    wrapper = getattr(interpreter, "_interpreter", None)
    if hasattr(wrapper, "NodeName") and hasattr(wrapper, "NumNodes"):  # 0.3 ms, not 15 ms: start-up counts
        return {wrapper.NodeName(i) for i in range(wrapper.NumNodes())}
    return {op["op_name"] for op in interpreter._get_ops_details()}


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
