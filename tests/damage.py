"""Deliberately damaged models, for proving that the suite's bars bite (tests/test_bars.py).

The damage is done to the flatbuffer itself, as a faulty converter or a corrupted copy would do
it: the model still loads and runs, and only its answers show that something is wrong.
"""

from __future__ import annotations

import numpy as np


def _largest_constant(subgraph, buffers) -> int:
    """The index of the tensor with the largest constant buffer (the recurrent weights)."""
    sizes = [(len(buffers[t.buffer].data) if buffers[t.buffer].data is not None else 0, i)
             for i, t in enumerate(subgraph.tensors)]
    return max(sizes)[1]


def damage(model: bytes, how: str) -> bytes:
    """A copy of `model` with one fault.

    Args:
      how: "shuffled-weights": the rows of the largest weight matrix rolled by one (every gate
        reads another unit's weights); "wrong-scale": every int8 activation tensor's scale divided
        by 16, so activations saturate (int8 models only).
    """
    from tensorflow.lite.tools import flatbuffer_utils

    parsed = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    subgraph = parsed.subgraphs[0]
    if how == "shuffled-weights":
        tensor = subgraph.tensors[_largest_constant(subgraph, parsed.buffers)]
        buffer = parsed.buffers[tensor.buffer]
        dtype = {0: np.float32, 9: np.int8}[tensor.type]  # TFLite's TensorType: FLOAT32, INT8
        weights = np.frombuffer(bytes(buffer.data), dtype).reshape(tensor.shape)
        buffer.data = np.frombuffer(np.roll(weights, 1, axis=0).tobytes(), np.uint8)
    elif how == "wrong-scale":
        inputs, outputs = set(subgraph.inputs), set(subgraph.outputs)
        damaged = 0
        for i, tensor in enumerate(subgraph.tensors):
            constant = parsed.buffers[tensor.buffer].data is not None
            q = tensor.quantization
            scaled = q is not None and q.scale is not None
            if tensor.type == 9 and scaled and not constant and i not in inputs | outputs:
                q.scale = [s / 16 for s in q.scale]
                damaged += 1
        if not damaged:
            raise ValueError("no int8 activation tensor to damage: not an int8 model")
    else:
        raise ValueError(f"unknown damage {how!r}")
    return bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))
