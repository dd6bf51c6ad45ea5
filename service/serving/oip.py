"""The Open Inference Protocol's (KServe V2, Triton) view of the repository, shared by its
REST and gRPC faces: datatypes, server and model metadata, the repository index."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from service import __version__
from service.errors import bad_request
from service.serving.repository import ModelRepository
from service.serving.version import ServedVersion

DTYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
          "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
          "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
V2_NAME = {np.dtype(v).name: k for k, v in DTYPES.items()}
EXTENSIONS = ["binary_tensor_data", "model_repository", "statistics"]
_STATE = {"AVAILABLE": "READY", "LOADING": "LOADING", "UNLOADING": "UNLOADING",
          "END": "UNAVAILABLE"}


def datatype(numpy_name: str) -> str:
    """The protocol's name of a numpy dtype, e.g. uint8 -> UINT8."""
    return V2_NAME.get(numpy_name, numpy_name.upper())


def server_metadata() -> dict[str, Any]:
    return {"name": "cnn-lab-server", "version": __version__, "extensions": EXTENSIONS}


def model_metadata(repo: ModelRepository, sv: ServedVersion) -> dict[str, Any]:
    inp, out = sv.info.input, sv.info.output
    return {
        "name": sv.name,
        "versions": [str(v) for v in sorted(repo.entry(sv.name).served)],
        "platform": "tensorflow_savedmodel",
        "inputs": [{"name": inp.name, "datatype": datatype(inp.dtype), "shape": inp.shape}],
        "outputs": [{"name": out.name, "datatype": datatype(out.dtype), "shape": out.shape}],
    }


def refuse_overrides(parameters: Iterable[str]) -> None:
    """A load request may carry parameters, but an override config or files are not taken
    (``ApiError`` 400): versions come from the model repository."""
    if any(k == "config" or k.startswith("file:") for k in parameters):
        raise bad_request("loading with an override config or files is not supported; "
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
