"""The manifest beside a model (`model.tflite` -> `model.json`): what export proved about it.

Export writes it; the edge reads it to refuse a model that is not the one that was verified.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from .errors import ModelError

MANIFEST_FORMAT = "lstm-edge-manifest/1"


def manifest_path(model_path: str | os.PathLike[str]) -> Path:
    """The manifest's path: the model's, with the suffix `.json`."""
    return Path(model_path).with_suffix(".json")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_manifest(model_path: str | os.PathLike[str], model_bytes: bytes) -> Optional[dict[str, Any]]:
    """Read the manifest beside a model, if there is one, and check the model's hash against it.

    Returns:
      the manifest as a dict, or None when the model has no manifest.
    Raises:
      ModelError: the manifest is unreadable, or the model is not the one it describes.
    """
    path = manifest_path(model_path)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelError(f"{path}: not an lstm-edge manifest")
    actual = sha256_hex(model_bytes)
    if manifest.get("sha256") != actual:
        raise ModelError(
            f"{Path(model_path).name} does not match its manifest {path.name} "
            f"(sha256 {actual[:12]}..., manifest says {str(manifest.get('sha256'))[:12]}...): "
            "re-export the model, or remove the stale manifest"
        )
    return manifest
