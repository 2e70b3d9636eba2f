"""The manifest export writes beside a verified model; `edge.manifest` reads and checks it."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Any

from lstm_edge.edge.contract import FIT_SIZE, IMAGE_SIZE, LABELS, PIXEL_MAX
from lstm_edge.edge.machine import cpu_model
from lstm_edge.edge.manifest import MANIFEST_FORMAT, sha256_hex

from .verify import Parity


def build_manifest(model_name: str, model_bytes: bytes, io: dict[str, Any], parity: Parity, run_config: dict,
                   converter_version: str, representative: int, sizes: dict[str, int],
                   golden: dict[str, Any]) -> dict[str, Any]:
    """Everything a device (or a person) needs to trust and feed the model.

    Args:
      io: {"input": {...}, "output": {...}} tensor contracts (shape, dtype, scale, zero point).
      sizes: bytes per format converted in this export ("none", and the chosen mode).
      golden: the golden digits' sidecar: file name, sha256, digits, runtimes.
    """
    return {
        "format": MANIFEST_FORMAT,
        "model": model_name,
        "sha256": sha256_hex(model_bytes),
        "size_bytes": len(model_bytes),
        "quantization": parity.mode,
        "input": {
            **io["input"],
            "pixel_scaling": f"uint8 pixels / {PIXEL_MAX}: float32 in [0, 1], ink light (1) on dark (0)",
            "layout": f"MNIST: ink box fitted into {FIT_SIZE}x{FIT_SIZE}, centred by mass in "
            f"{IMAGE_SIZE}x{IMAGE_SIZE}; each row is one time step",
        },
        "output": {**io["output"], "meaning": "softmax probabilities of the digits in `labels`"},
        "labels": list(LABELS),
        "parity": {
            "digits": parity.digits,
            "float_correct": parity.float_correct,
            "float_accuracy": parity.float_accuracy,
            "verified_on": [check.to_dict() for check in parity.checks],
        },
        "golden": golden,
        "sizes_bytes": sizes,
        "representative_digits": representative,
        "training": run_config,
        "converter": {"tensorflow": converter_version, "python": platform.python_version(),
                      "machine": platform.machine(), "cpu": cpu_model()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
