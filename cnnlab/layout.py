"""The model repository layout shared by training (writer) and serving (reader).

Layout is TensorFlow Serving's: ``<models_dir>/<name>/<integer version>/`` holding a
SavedModel plus ``metadata.json``. Anything else in a model directory (dot-directories
used for atomic writes, stray files) is ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

METADATA_FILE = "metadata.json"
# what the service's admin routes set, beside the models (not a model: only directories are)
ADMIN_STATE_FILE = "admin-state.json"
SAVED_MODEL_FILE = "saved_model.pb"
# serving_default converted for ONNX Runtime (Triton's layout keeps both runtimes' files in
# a version), and the pictures it was checked against TensorFlow on
ONNX_FILE = "model.onnx"
ONNX_CHECK_FILE = "onnx_check.npy"
# Model names become URL path segments and directory names: keep them boring.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def is_valid_model_name(name: str) -> bool:
    """True for names that are safe as a directory name and a URL segment."""
    return bool(MODEL_NAME_RE.match(name)) and ".." not in name


def list_versions(model_dir: Path) -> list[int]:
    """Integer version directories of one model, ascending (hidden/temp dirs skipped)."""
    if not model_dir.is_dir():
        return []
    versions = [
        int(p.name)
        for p in model_dir.iterdir()
        if p.is_dir() and p.name.isdigit() and int(p.name) > 0
    ]
    return sorted(versions)


def list_models(models_dir: Path) -> list[str]:
    """Model names in a repository: directories with a valid name, sorted."""
    if not models_dir.is_dir():
        return []
    return sorted(
        p.name for p in models_dir.iterdir() if p.is_dir() and is_valid_model_name(p.name)
    )


def is_complete_version(version_dir: Path) -> bool:
    """A version is servable once its SavedModel protobuf exists (it is written last)."""
    return (version_dir / SAVED_MODEL_FILE).is_file()
