"""TensorFlow Serving's gRPC API: ``PredictionService`` (Predict, GetModelMetadata) and
``ModelService`` (GetModelStatus), from the ``tensorflow-serving-api`` protos.

Predict takes a uint8/float tensor of pixel values, or a ``DT_STRING`` tensor of encoded
pictures (PNG, JPEG, ...) that are preprocessed as uploads are; ``serving_default`` runs
through the version's batcher.
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from service.errors import ApiError, bad_request
from service.grpc.calls import Servicer, rpc
from service.runtime.settings import Settings
from service.serving import inference
from service.serving.repository import ModelRepository
from service.serving.version import PREDICT_SIGNATURE, ServedVersion, signature_io

_STATE = {"LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}


def _spec(spec: Any) -> tuple[str, int | None, str | None]:
    """(name, version, label) of a ``ModelSpec``: a number, a label, or the newest."""
    if not spec.name:
        raise bad_request("model_spec.name is empty")
    return (spec.name, spec.version.value if spec.HasField("version") else None,
            spec.version_label or None)


def _model_input(sv: ServedVersion, request: Any, settings: Settings) -> np.ndarray:
    """The one image tensor of a PredictRequest, as the model's uint8 input."""
    want = sv.info.input.name
    if set(request.inputs) != {want}:
        raise bad_request(f"inputs must be exactly {{{want!r}}}, got {sorted(request.inputs)}")
    proto = request.inputs[want]
    try:
        value = tf.make_ndarray(proto)
    except Exception:
        raise bad_request(f"input {want!r} is not a valid TensorProto") from None
    if value.dtype == object:  # DT_STRING: encoded pictures
        blobs = [bytes(b) for b in value.ravel()]
        if len(blobs) > settings.max_instances:
            raise ApiError(413, f"{len(blobs)} pictures; the limit is {settings.max_instances}")
        return inference.pictures_input(sv.info, blobs, settings)
    if value.ndim and len(value) > settings.max_instances:
        raise ApiError(413, f"batch of {len(value)}; the limit is {settings.max_instances}")
    return inference.to_uint8_tensor(value, sv.info.input.shape, f"input {want!r}")


def _tensor_info(name: str, dtype: str, shape: list[int]) -> meta_graph_pb2.TensorInfo:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
    return meta_graph_pb2.TensorInfo(name=name, dtype=tf.as_dtype(dtype).as_datatype_enum,
                                     tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims))


def _signature_defs(sv: ServedVersion) -> get_model_metadata_pb2.SignatureDefMap:
    defs = get_model_metadata_pb2.SignatureDefMap()
    for name, fn in sv.signatures.items():
        inputs, outputs = signature_io(fn)
        sig = defs.signature_def[name]
        sig.method_name = "tensorflow/serving/predict"
        for key, t in inputs.items():
            sig.inputs[key].CopyFrom(_tensor_info(f"{name}_{key}:0", t.dtype, t.shape))
        for key, t in outputs.items():
            sig.outputs[key].CopyFrom(_tensor_info(f"{name}_{key}:0", t.dtype, t.shape))
    return defs


class PredictionService(Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]

    @rpc()
    async def Predict(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        signature = request.model_spec.signature_name or PREDICT_SIGNATURE
        async with self.repo.lease(*_spec(request.model_spec)) as sv:
            if signature not in sv.signatures:
                raise bad_request(f"signature {signature!r} not found; this model has "
                                  f"{sorted(sv.signatures)}")
            size = sum(t.ByteSize() for t in request.inputs.values())
            images = await inference.offload(size, _model_input, sv, request, self.settings)
            outputs = await self._run(sv, signature, images)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = sv.name
        response.model_spec.version.value = sv.version
        response.model_spec.signature_name = signature
        for key, value in outputs.items():
            if not request.output_filter or key in request.output_filter:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    async def _run(self, sv: ServedVersion, signature: str,
                   images: np.ndarray) -> dict[str, np.ndarray]:
        """The signature's outputs (serving_default's through the batcher)."""
        if signature == PREDICT_SIGNATURE:
            return {sv.info.output.name: await inference.predict(sv, images, self.settings)}
        inputs, _ = signature_io(sv.signatures[signature])
        if set(inputs) != {sv.info.input.name}:
            raise bad_request(f"signature {signature!r} needs inputs {sorted(inputs)}; "
                              "only image-only signatures can be called here")
        return await inference.call_signature(sv, signature, **{sv.info.input.name: images})

    @rpc()
    async def GetModelMetadata(self, request: Any,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> Any:
        if list(request.metadata_field) != ["signature_def"]:
            raise bad_request("metadata_field must be ['signature_def']")
        sv = self.repo.resolve(*_spec(request.model_spec))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = sv.name
        response.model_spec.version.value = sv.version
        response.metadata["signature_def"].Pack(_signature_defs(sv))
        return response


class ModelService(Servicer, model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]

    @rpc()
    async def GetModelStatus(self, request: Any,  # noqa: N802
                             context: grpc.aio.ServicerContext) -> Any:
        spec = request.model_spec
        rows = self.repo.status(spec.name)
        if spec.version_label:
            wanted: int | None = self.repo.resolve(spec.name, label=spec.version_label).version
        else:
            wanted = spec.version.value if spec.HasField("version") else None
        if wanted is not None:
            rows = [r for r in rows if r.version == wanted]
            if not rows:
                raise ApiError(404, f"model {spec.name!r} has no version {wanted}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for row in rows:
            status = response.model_version_status.add(version=row.version,
                                                        state=_STATE[row.state])
            status.status.error_code = 2 if row.error else 0  # UNKNOWN / OK
            status.status.error_message = row.error
        return response


def add_to_server(server: grpc.aio.Server, repo: ModelRepository, settings: Settings) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(repo, settings), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(repo, settings),
                                                              server)
