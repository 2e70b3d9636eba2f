"""The manifest beside a model (`model.tflite` -> `model.json`): what export proved about it.

Export writes it; the edge reads it to refuse a model that is not the one that was verified.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from .errors import ModelError

# CPython's own SHA-256 gives hashlib's digest without loading OpenSSL, which costs ~5 ms of
# edge-classify's start here (more on a Pi); hashing a 136 KB model with it takes under 1 ms.
try:
    from _sha2 import sha256 as _sha256  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # Python 3.9-3.11
    except ImportError:  # built without its own hashes
        from hashlib import sha256 as _sha256

MANIFEST_FORMAT = "lstm-edge-manifest/1"


def manifest_path(model_path: str | os.PathLike[str]) -> str:
    """The manifest's path: the model's, with the suffix `.json`.

    os.path, not pathlib, on the edge's start-up path: importing pathlib costs ~6 ms of a ~0.2 s start.
    """
    return os.path.splitext(os.fspath(model_path))[0] + ".json"


def golden_path(model_path: str | os.PathLike[str]) -> str:
    """The golden digits' sidecar beside a model: `model.tflite` -> `model.golden.npz`."""
    return os.path.splitext(os.fspath(model_path))[0] + ".golden.npz"


def sha256_hex(data: bytes) -> str:
    return _sha256(data).hexdigest()


def check_manifest(model_path: str | os.PathLike[str], model_bytes: bytes) -> Optional[dict[str, Any]]:
    """Read the manifest beside a model, if there is one, and check the model's hash against it.

    Returns:
      the manifest as a dict, or None when the model has no manifest.
    Raises:
      ModelError: the manifest is unreadable, or the model is not the one it describes.
    """
    path = manifest_path(model_path)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelError(f"{path}: not an lstm-edge manifest")
    actual = sha256_hex(model_bytes)
    if manifest.get("sha256") != actual:
        raise ModelError(
            f"{os.path.basename(model_path)} does not match its manifest {os.path.basename(path)} "
            f"(sha256 {actual[:12]}..., manifest says {str(manifest.get('sha256'))[:12]}...): "
            "re-export the model, or remove the stale manifest"
        )
    return manifest
