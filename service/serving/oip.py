"""The Open Inference Protocol's (KServe V2, Triton) view of the repository, shared by its
REST and gRPC faces: datatypes, server and model metadata, the repository index."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from tritonclient.utils import np_to_triton_dtype, serialize_byte_tensor, triton_to_np_dtype

from service import __version__
from service.errors import InvalidInput
from service.serving.repository import ModelRepository
from service.serving.version import ServedVersion

EXTENSIONS = ["binary_tensor_data", "classification", "model_repository", "statistics"]
_STATE = {"AVAILABLE": "READY", "LOADING": "LOADING", "UNLOADING": "UNLOADING",
          "END": "UNAVAILABLE"}


def datatype(numpy_name: str) -> str:
    """The protocol's name of a numpy dtype, e.g. uint8 -> UINT8."""
    return np_to_triton_dtype(np.dtype(numpy_name)) or numpy_name.upper()


def class_count(parameters: object, what: str) -> int | None:
    """The ``classification`` parameter of a requested output (Triton's classification
    extension; tritonclient's ``class_count``), or None."""
    count = parameters.get("classification") if isinstance(parameters, dict) else None
    if count is None:
        return None
    if type(count) is not int:
        raise InvalidInput(f"{what}: 'classification' must be an integer, got {count!r}")
    return count


def raw_bytes(value: np.ndarray) -> bytes:
    """An output's bytes on the wire: its buffer, or for BYTES tensors each element
    length-prefixed (the protocol's serialisation, as tritonclient writes it)."""
    if value.dtype == np.object_:
        return bytes(serialize_byte_tensor(value).item())
    return value.tobytes()


def numpy_name(datatype: object, what: str) -> str:
    """The numpy dtype name of a protocol datatype that can hold pixel values."""
    dtype = triton_to_np_dtype(datatype) if isinstance(datatype, str) else None
    if dtype is None or dtype in (np.object_, np.bool_):
        raise InvalidInput(f"{what}: unsupported datatype {datatype!r}")
    return np.dtype(dtype).name


def tensor_shape(shape: object, what: str) -> tuple[int, ...]:
    """A declared shape: a list of non-negative integers."""
    if (not isinstance(shape, list | tuple) or not shape
            or not all(type(d) is int and d >= 0 for d in shape)):
        raise InvalidInput(f"{what}: shape must be a list of non-negative integers")
    return tuple(shape)


# the protocol's platform names (Triton's) of what runs a version's predictions
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "tensorflow": "tensorflow_savedmodel",
             "tensorflow-signature": "tensorflow_savedmodel"}


def server_metadata() -> dict[str, Any]:
    return {"name": "cnn-lab-server", "version": __version__, "extensions": EXTENSIONS}


def model_metadata(repo: ModelRepository, sv: ServedVersion) -> dict[str, Any]:
    inp = sv.info.input
    outputs = sorted(sv.info.outputs.values(), key=lambda t: t is not sv.info.output)
    return {
        "name": sv.name,
        "versions": [str(v) for v in sorted(repo.entry(sv.name).served)],
        "platform": PLATFORMS[sv.runtime],
        "inputs": [{"name": inp.name, "datatype": datatype(inp.dtype), "shape": inp.shape}],
        "outputs": [{"name": out.name, "datatype": datatype(out.dtype), "shape": out.shape}
                    for out in outputs],
    }


def refuse_overrides(parameters: Iterable[str]) -> None:
    """A load request may carry parameters, but an override config or files are not taken
    (``InvalidInput``): versions come from the model repository."""
    if any(k == "config" or k.startswith("file:") for k in parameters):
        raise InvalidInput("loading with an override config or files is not supported; "
                           "publish a version into the model repository instead")


def repository_index(repo: ModelRepository) -> list[dict[str, str]]:
    """Every model and version in the repository with its state (Triton's index); a model
    with none serving (unloaded, or no version) has a row of its own."""
    rows = []
    for name in sorted(repo.models):
        statuses = repo.status(name)
        if not statuses or not repo.enabled(name):
            rows.append({"name": name, "state": "UNAVAILABLE",
                         "reason": "unloaded" if not repo.enabled(name) else "no version"})
        for st in statuses:
            rows.append({"name": name, "version": str(st.version),
                         "state": _STATE[st.state], "reason": st.error})
    return rows
