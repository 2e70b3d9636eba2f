"""An exported model's files: where the model is looked for, and the manifest and golden digits
export writes beside it (`model.tflite` -> `model.json`, `model.golden.npz`): what export proved
about the model, checked here so that the edge refuses a model that is not the one verified.
edge-classify, edge-doctor and the service all check a model through these functions.
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
MODEL_ENV = "LSTM_EDGE_MODEL"
DEFAULT_MODEL = "model.tflite"


def model_path(given: Optional[str] = None) -> str:
    """The model to use: `given`, else $LSTM_EDGE_MODEL, else ./model.tflite."""
    return given or os.environ.get(MODEL_ENV) or DEFAULT_MODEL


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


def read_manifest(model_path: str | os.PathLike[str]) -> Optional[dict[str, Any]]:
    """The manifest beside a model, unchecked; None when there is none.

    Raises:
      ModelError: it is unreadable, or not an lstm-edge manifest.
    """
    path = manifest_path(model_path)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: unreadable manifest ({e}); copy it again from the export") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelError(f"{path}: not an lstm-edge manifest")
    return manifest


def check_manifest(model_path: str | os.PathLike[str], model_bytes: bytes) -> Optional[dict[str, Any]]:
    """Read the manifest beside a model, if there is one, and check the model's hash against it.

    Returns:
      the manifest as a dict, or None when the model has no manifest.
    Raises:
      ModelError: the manifest is unreadable, or the model is not the one it describes.
    """
    manifest = read_manifest(model_path)
    if manifest is None:
        return None
    actual = sha256_hex(model_bytes)
    if manifest.get("sha256") != actual:
        raise ModelError(
            f"{os.path.basename(model_path)} does not match its manifest "
            f"{os.path.basename(manifest_path(model_path))} (sha256 {actual[:12]}..., manifest says "
            f"{str(manifest.get('sha256'))[:12]}...): copy both again from the same export, or remove the "
            "stale manifest"
        )
    return manifest


def check_golden(model_path: str | os.PathLike[str], manifest: dict[str, Any]) -> str:
    """The golden digits' sidecar of a checked manifest, checked against the hash it names.

    Returns:
      the sidecar's path.
    Raises:
      ModelError: the manifest names no golden digits, or the sidecar is missing or altered.
    """
    golden = manifest.get("golden")
    if not golden:
        raise ModelError("the manifest names no golden digits (the model was exported without them): re-export "
                         "it with this lstm-edge to self-test it")
    path = golden_path(model_path)
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise ModelError(f"no {name} beside the model: copy {golden.get('file', name)} from the export "
                         "beside it") from None
    if sha256_hex(data) != golden.get("sha256"):
        raise ModelError(f"{name} does not match the manifest's sha256: copy it again from the same export")
    return path
