"""The Open Inference Protocol's gRPC face (``GRPCInferenceService``, the protos that
``tritonclient[grpc]`` ships): health, metadata, ModelInfer with typed contents or raw
bytes, and the repository extension."""

from __future__ import annotations

from typing import Any

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from service.dataplane.plane import DataPlane
from service.dataplane.requests import InferRequest, Input, ModelRef, Tensor
from service.errors import InvalidInput
from service.grpc.calls import Servicer, rpc, tell_prediction_id
from service.runtime import drain
from service.serving import oip

# typed contents field of each datatype
_CONTENTS = {"UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
             "UINT64": "uint64_contents", "INT8": "int_contents", "INT16": "int_contents",
             "INT32": "int_contents", "INT64": "int64_contents", "FP32": "fp32_contents",
             "FP64": "fp64_contents"}


def _inputs(request: Any) -> list[Input]:
    """A ModelInferRequest's inputs as declared: raw bytes or typed contents."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    inputs: list[Input] = []
    for i, tensor in enumerate(request.inputs):
        what = f"input {tensor.name!r}"
        shape = oip.tensor_shape(list(tensor.shape), what)
        dtype = oip.numpy_name(tensor.datatype, what)
        if raw:
            data = raw[i]
        elif tensor.datatype in _CONTENTS:
            data = getattr(tensor.contents, _CONTENTS[tensor.datatype])
        else:  # FP16, BF16: the protocol has no typed contents for them
            raise InvalidInput(f"{what}: {tensor.datatype} values come only in "
                               "raw_input_contents")
        inputs.append(Tensor(tensor.name, dtype, shape, data))
    return inputs


class InferenceService(Servicer, service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]

    @rpc()
    async def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerLiveResponse(live=True)

    @rpc()
    async def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerReadyResponse(ready=self.plane.repo.ready and not drain.active())

    @rpc()
    async def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ModelReadyResponse(
            ready=self.plane.ready(request.name, request.version or None))

    @rpc()
    async def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerMetadataResponse(**oip.server_metadata())

    @rpc()
    async def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        sv = self.plane.resolve(ModelRef(request.name, request.version or None))
        meta = oip.model_metadata(self.plane.repo, sv)
        return service_pb2.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[service_pb2.ModelMetadataResponse.TensorMetadata(**t)
                    for t in meta["inputs"]],
            outputs=[service_pb2.ModelMetadataResponse.TensorMetadata(**t)
                     for t in meta["outputs"]])

    @rpc()
    async def ModelStatistics(self, request: Any, context: Any) -> Any:  # noqa: N802
        rows = self.plane.statistics(request.name or None, request.version or None)
        response = service_pb2.ModelStatisticsResponse()
        for st in rows:
            stats = response.model_stats.add(name=st.name, version=str(st.version),
                                             inference_count=st.inferences,
                                             execution_count=st.executions,
                                             last_inference=st.last_inference_ms)
            infer = stats.inference_stats
            infer.success.count, infer.success.ns = st.queue_count, st.queue_ns + st.compute_ns
            infer.queue.count, infer.queue.ns = st.queue_count, st.queue_ns
            infer.compute_infer.count, infer.compute_infer.ns = st.compute_count, st.compute_ns
        return response

    @rpc()
    async def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        counts = {o.name: o.parameters["classification"].int64_param
                  for o in request.outputs if "classification" in o.parameters}
        result = await self.plane.infer(InferRequest(
            ModelRef(request.model_name, request.model_version or None), _inputs(request),
            outputs=tuple(o.name for o in request.outputs), class_counts=counts))
        tell_prediction_id(context, result.prediction_id)
        response = service_pb2.ModelInferResponse(  # the client's id, else the prediction's
            model_name=result.model, model_version=str(result.version),
            id=request.id or result.prediction_id)
        for key, value in result.outputs.items():
            response.outputs.add(name=key, datatype=oip.datatype(value.dtype.name),
                                 shape=list(value.shape))
            response.raw_output_contents.append(oip.raw_bytes(value))
        return response

    @rpc()
    async def RepositoryIndex(self, request: Any, context: Any) -> Any:  # noqa: N802
        rows = oip.repository_index(self.plane.repo)
        if request.ready:
            rows = [r for r in rows if r["state"] == "READY"]
        return service_pb2.RepositoryIndexResponse(
            models=[service_pb2.RepositoryIndexResponse.ModelIndex(**r) for r in rows])

    @rpc(admin=True)
    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.plane.repo.entry(request.model_name)
        oip.refuse_overrides(request.parameters)
        await self.plane.repo.administer(lambda state: state.load(request.model_name))
        return service_pb2.RepositoryModelLoadResponse()

    @rpc(admin=True)
    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.plane.repo.entry(request.model_name)
        await self.plane.repo.administer(lambda state: state.unload(request.model_name))
        return service_pb2.RepositoryModelUnloadResponse()


def add_to_server(server: grpc.aio.Server, plane: DataPlane) -> None:
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(plane), server)
