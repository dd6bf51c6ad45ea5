"""The Open Inference Protocol's gRPC face (``GRPCInferenceService``, the protos that
``tritonclient[grpc]`` ships): health, metadata, ModelInfer with typed contents or raw
bytes, and the repository extension."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from service.errors import ApiError, bad_request
from service.grpc.calls import Servicer, rpc
from service.runtime.settings import Settings
from service.serving import inference, oip
from service.serving.repository import ModelRepository
from service.serving.version import ServedVersion

# typed contents field of each datatype
_CONTENTS = {"BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
             "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
             "FP32": "fp32_contents", "FP64": "fp64_contents"}


def _model_input(sv: ServedVersion, request: Any, max_images: int) -> np.ndarray:
    """The one input tensor of a ModelInferRequest, as the model's uint8 input."""
    want = sv.info.input
    if len(request.inputs) != 1:
        raise bad_request(f"this model takes exactly one input ({want.name!r}), "
                          f"got {len(request.inputs)}")
    tensor = request.inputs[0]
    if tensor.name != want.name:
        raise bad_request(f"unknown input {tensor.name!r}; this model takes {want.name!r}")
    if tensor.datatype not in _CONTENTS:
        raise bad_request(f"input {tensor.name!r}: unsupported datatype {tensor.datatype!r}")
    shape = list(tensor.shape)
    if not shape or any(d < 0 for d in shape):
        raise bad_request(f"input {tensor.name!r}: shape must be non-negative integers")
    if shape[0] > max_images:
        raise ApiError(413, f"input {tensor.name!r}: batch of {shape[0]}; the limit is "
                            f"{max_images}")
    count = int(np.prod(shape))
    dtype = np.dtype(oip.DTYPES[tensor.datatype])
    if request.raw_input_contents:
        raw = request.raw_input_contents[0]
        if len(raw) != count * dtype.itemsize:
            raise bad_request(f"input {tensor.name!r}: {len(raw)} raw bytes for shape {shape} "
                              f"of {tensor.datatype} ({count * dtype.itemsize} expected)")
        values = np.frombuffer(raw, dtype, count)
    else:
        values = np.asarray(getattr(tensor.contents, _CONTENTS[tensor.datatype]), np.float64)
        if values.size != count:
            raise bad_request(f"input {tensor.name!r}: {values.size} values for shape {shape} "
                              f"({count} expected)")
    return inference.to_uint8_tensor(values.reshape(shape), want.shape,
                                     f"input {tensor.name!r}")


class InferenceService(Servicer, service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]

    @rpc()
    async def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerLiveResponse(live=True)

    @rpc()
    async def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerReadyResponse(ready=self.repo.ready)

    @rpc()
    async def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        entry = self.repo.models.get(request.name)
        ready = entry is not None and (int(request.version) in entry.served if request.version
                                       else bool(entry.served))
        return service_pb2.ModelReadyResponse(ready=ready)

    @rpc()
    async def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerMetadataResponse(**oip.server_metadata())

    @rpc()
    async def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        sv = self.repo.resolve(request.name, request.version or None)
        meta = oip.model_metadata(self.repo, sv)
        return service_pb2.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[service_pb2.ModelMetadataResponse.TensorMetadata(**t)
                    for t in meta["inputs"]],
            outputs=[service_pb2.ModelMetadataResponse.TensorMetadata(**t)
                     for t in meta["outputs"]])

    @rpc()
    async def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        async with self.repo.lease(request.model_name, request.model_version or None) as sv:
            out_name = sv.info.output.name
            unknown = [o.name for o in request.outputs if o.name != out_name]
            if unknown:
                raise bad_request(f"unknown output {unknown[0]!r}; this model gives "
                                  f"{out_name!r}")
            images = await inference.offload(request.ByteSize(), _model_input, sv, request,
                                             self.settings.max_instances)
            probs = (await inference.predict(sv, images, self.settings)).astype(np.float32)
        response = service_pb2.ModelInferResponse(
            model_name=sv.name, model_version=str(sv.version), id=request.id)
        response.outputs.add(name=out_name, datatype="FP32", shape=list(probs.shape))
        response.raw_output_contents.append(probs.tobytes())
        return response

    @rpc()
    async def RepositoryIndex(self, request: Any, context: Any) -> Any:  # noqa: N802
        rows = oip.repository_index(self.repo)
        if request.ready:
            rows = [r for r in rows if r["state"] == "READY"]
        return service_pb2.RepositoryIndexResponse(
            models=[service_pb2.RepositoryIndexResponse.ModelIndex(**r) for r in rows])

    @rpc(admin=True)
    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.repo.entry(request.model_name)
        oip.refuse_overrides(request.parameters)
        await self.repo.administer(lambda state: state.load(request.model_name))
        return service_pb2.RepositoryModelLoadResponse()

    @rpc(admin=True)
    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.repo.entry(request.model_name)
        await self.repo.administer(lambda state: state.unload(request.model_name))
        return service_pb2.RepositoryModelUnloadResponse()


def add_to_server(server: grpc.aio.Server, repo: ModelRepository, settings: Settings) -> None:
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceService(repo, settings), server)
