"""TensorFlow Serving's gRPC API: ``PredictionService`` (Predict, Classify,
GetModelMetadata) and ``ModelService`` (GetModelStatus), from the ``tensorflow-serving-api``
protos.

Predict takes a uint8/float tensor of pixel values, or a ``DT_STRING`` tensor of encoded
pictures (PNG, JPEG, ...) that are preprocessed as uploads are; ``serving_default`` runs
through the version's batcher. Classify takes ``tf.Example``s whose feature named as the
model's input holds an encoded picture (``bytes_list``) or the pixel values
(``int64_list``/``float_list``), and answers every class with its label and score.
"""

from __future__ import annotations

import math
from typing import Any

import grpc
import tensorflow as tf
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from service.dataplane.classes import ranked
from service.dataplane.examples import Feature
from service.dataplane.plane import DataPlane
from service.dataplane.requests import (
    PREDICT_SIGNATURE,
    InferRequest,
    Input,
    ModelRef,
    Pictures,
    Tensor,
)
from service.errors import InvalidInput
from service.grpc.calls import Servicer, rpc, tell_prediction_id
from service.serving.version import ServedVersion, signature_io

_STATE = {"LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}

# numeric DataType -> (numpy name, the typed field holding its values)
_VALUES = {
    types_pb2.DT_UINT8: ("uint8", "int_val"), types_pb2.DT_INT8: ("int8", "int_val"),
    types_pb2.DT_UINT16: ("uint16", "int_val"), types_pb2.DT_INT16: ("int16", "int_val"),
    types_pb2.DT_INT32: ("int32", "int_val"), types_pb2.DT_INT64: ("int64", "int64_val"),
    types_pb2.DT_UINT32: ("uint32", "uint32_val"), types_pb2.DT_UINT64: ("uint64", "uint64_val"),
    types_pb2.DT_FLOAT: ("float32", "float_val"), types_pb2.DT_DOUBLE: ("float64", "double_val"),
}


def _ref(spec: Any) -> ModelRef:
    """A ``ModelSpec``: a number, a label, or the newest."""
    if not spec.name:
        raise InvalidInput("model_spec.name is empty")
    return ModelRef(spec.name, spec.version.value if spec.HasField("version") else None,
                    spec.version_label or None)


def _input(name: str, proto: Any) -> Input:
    """A ``TensorProto`` as the dataplane's input, without materialising it: encoded
    pictures (``DT_STRING``) or pixel values (raw ``tensor_content`` or typed values)."""
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if proto.dtype == types_pb2.DT_STRING:
        if len(proto.string_val) != math.prod(max(d, 0) for d in shape):
            raise InvalidInput(f"input {name!r}: {len(proto.string_val)} strings for shape "
                               f"{list(shape)}")
        return Pictures(proto.string_val, name=name)
    if proto.dtype not in _VALUES:
        raise InvalidInput(f"input {name!r}: unsupported dtype "
                           f"{types_pb2.DataType.Name(proto.dtype)}")
    dtype, field = _VALUES[proto.dtype]
    data = proto.tensor_content or getattr(proto, field)
    return Tensor(name, dtype, shape, data)


def _example(proto: Any, where: str) -> dict[str, Feature]:
    """A ``tf.Example``'s features: bytes (the first of a ``bytes_list``) or numbers."""
    out: dict[str, Feature] = {}
    for key, feature in proto.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "bytes_list" and len(feature.bytes_list.value) == 1:
            out[key] = feature.bytes_list.value[0]
        elif kind in ("int64_list", "float_list"):
            out[key] = getattr(feature, kind).value
        else:
            raise InvalidInput(f"{where}.{key}: one encoded picture (bytes_list) or the pixel "
                               "values (int64_list, float_list)")
    return out


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
        inputs = [_input(name, proto) for name, proto in request.inputs.items()]
        result = await self.plane.infer(InferRequest(
            _ref(request.model_spec), inputs, signature, tuple(request.output_filter)))
        tell_prediction_id(context, result.prediction_id)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = result.model
        response.model_spec.version.value = result.version
        response.model_spec.signature_name = signature
        for key, value in result.outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    @rpc()
    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        ref = _ref(request.model_spec)
        kind = request.input.WhichOneof("kind")  # example_list(_with_context), or none
        listed: Any = getattr(request.input, kind) if kind else None
        examples = [_example(e, f"examples[{i}]")
                    for i, e in enumerate(listed.examples if listed is not None else ())]
        shared = (_example(listed.context, "context")
                  if kind == "example_list_with_context" else {})
        scored = await self.plane.scores(ref, examples, shared)
        tell_prediction_id(context, scored.prediction_id)
        response = classification_pb2.ClassificationResponse()
        response.model_spec.name = scored.model
        response.model_spec.version.value = scored.version
        response.model_spec.signature_name = request.model_spec.signature_name
        for row in scored.probabilities:
            classes = response.result.classifications.add().classes
            for label, score in ranked(row.tolist(), scored.class_names):
                classes.add(label=label, score=score)
        return response

    @rpc()
    async def GetModelMetadata(self, request: Any,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> Any:
        if list(request.metadata_field) != ["signature_def"]:
            raise InvalidInput("metadata_field must be ['signature_def']")
        sv = self.plane.resolve(_ref(request.model_spec))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = sv.name
        response.model_spec.version.value = sv.version
        response.metadata["signature_def"].Pack(_signature_defs(sv))
        return response


class ModelService(Servicer, model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]

    @rpc()
    async def GetModelStatus(self, request: Any,  # noqa: N802
                             context: grpc.aio.ServicerContext) -> Any:
        ref = _ref(request.model_spec)
        rows = self.plane.status(ref.name, ref.version, ref.label)
        response = get_model_status_pb2.GetModelStatusResponse()
        for row in rows:
            status = response.model_version_status.add(version=row.version,
                                                        state=_STATE[row.state])
            status.status.error_code = 2 if row.error else 0  # UNKNOWN / OK
            status.status.error_message = row.error
        return response


def add_to_server(server: grpc.aio.Server, plane: DataPlane) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(plane), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(plane), server)
