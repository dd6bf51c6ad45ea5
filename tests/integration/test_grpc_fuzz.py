"""Every gRPC method, fed messages hypothesis builds from the methods' own descriptors:
no answer is UNKNOWN or INTERNAL (a crash), and the worker keeps serving.

Strings and bytes are drawn half from values that reach deep into the service (the
model's name, its input's name, datatypes, a real PNG) and half at random; numbers
include the extremes of their type (shapes that overflow, negative sizes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import tritonclient.grpc.service_pb2 as v2_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2

from tests.helpers import FIXTURES, Server, free_port, run_server

KEY = "fuzz-key"
DIGIT = (FIXTURES / "digits" / "7_test0.png").read_bytes()
WORDS = ["tiny", "image", "probabilities", "serving_default", "predict", "UINT8", "FP32",
         "BYTES", "INT64", "1", "2", "x", "", "stable", "classify", "DT_UINT8"]
# per field name: values that get a message past the model lookup
HINTS = {"name": ["tiny", "image"], "model_name": ["tiny"],
         "datatype": ["UINT8", "FP32", "BYTES"], "signature_name": ["serving_default", ""],
         "model_version": ["1", ""], "version_label": ["stable", ""]}
SERVICES = [v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"],
            prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"],
            model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]]
METHODS = [m for s in SERVICES for m in s.methods]
CRASHES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}

_I32, _I64 = (-2**31, 2**31 - 1), (-2**63, 2**63 - 1)
_U32, _U64 = (0, 2**32 - 1), (0, 2**64 - 1)
INTS = {FieldDescriptor.TYPE_INT32: _I32, FieldDescriptor.TYPE_SINT32: _I32,
        FieldDescriptor.TYPE_SFIXED32: _I32, FieldDescriptor.TYPE_INT64: _I64,
        FieldDescriptor.TYPE_SINT64: _I64, FieldDescriptor.TYPE_SFIXED64: _I64,
        FieldDescriptor.TYPE_UINT32: _U32, FieldDescriptor.TYPE_FIXED32: _U32,
        FieldDescriptor.TYPE_UINT64: _U64, FieldDescriptor.TYPE_FIXED64: _U64}


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in INTS:
        low, high = INTS[field.type]
        return st.one_of(st.integers(max(low, -1), 30), st.sampled_from([0, 28, 784, low, high]),
                         st.integers(low, high))
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.floats(width=32 if field.type == FieldDescriptor.TYPE_FLOAT else 64)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_STRING:
        hints = HINTS.get(field.name)
        if hints:  # mostly what reaches the model, so the fuzz gets past the lookup
            return st.one_of(st.sampled_from(hints), st.sampled_from(hints),
                             st.sampled_from(hints), st.sampled_from(WORDS), st.text(max_size=12))
        return st.one_of(st.sampled_from(WORDS), st.text(max_size=12))
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.just(DIGIT), st.just(bytes(784)), st.binary(max_size=64))
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    raise AssertionError(f"unexpected field type {field.type}")


@st.composite
def message(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0) -> Message:
    """A message of ``descriptor`` with some of its fields set, recursively (bounded)."""
    msg = GetMessageClass(descriptor)()
    for field in descriptor.fields:
        is_message = field.type == FieldDescriptor.TYPE_MESSAGE
        if (is_message and depth >= 4) or not draw(st.booleans()):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, value_f = (field.message_type.fields_by_name[k] for k in ("key", "value"))
            for _ in range(draw(st.integers(0, 2))):
                key = draw(scalar(key_f))
                target = getattr(msg, field.name)
                if value_f.type == FieldDescriptor.TYPE_MESSAGE:
                    target[key].CopyFrom(draw(message(value_f.message_type, depth + 1)))
                else:
                    target[key] = draw(scalar(value_f))
        elif field.label == FieldDescriptor.LABEL_REPEATED:
            count = draw(st.integers(0, 4))
            if is_message:
                for _ in range(count):
                    getattr(msg, field.name).add().CopyFrom(
                        draw(message(field.message_type, depth + 1)))
            else:
                getattr(msg, field.name).extend(draw(st.lists(scalar(field), max_size=count)))
        elif is_message:
            getattr(msg, field.name).CopyFrom(draw(message(field.message_type, depth + 1)))
        else:
            setattr(msg, field.name, draw(scalar(field)))
    return msg


@pytest.fixture(scope="module")
def channel(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[grpc.Channel, Server]]:
    port = free_port()
    with run_server(tiny_repo, tmp_path_factory.mktemp("grpc-fuzz"), grpc_port=str(port),
                    api_key=KEY) as server, grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch, server


def call(channel: grpc.Channel, method: MethodDescriptor, request: Message) -> None:
    """One call; a crash status fails the test."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    reply = GetMessageClass(method.output_type).FromString
    metadata = (("x-api-key", KEY),)
    try:
        if method.client_streaming or method.server_streaming:
            stream = channel.stream_stream(
                path, request_serializer=type(request).SerializeToString,
                response_deserializer=reply)
            list(stream(iter([request]), timeout=30, metadata=metadata))
        else:
            channel.unary_unary(path, request_serializer=type(request).SerializeToString,
                                response_deserializer=reply)(request, timeout=30,
                                                             metadata=metadata)
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        assert code not in CRASHES, f"{path}: {code} {exc.details()}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_no_message_crashes_a_method(channel: tuple[grpc.Channel, Server],
                                     method: MethodDescriptor) -> None:
    ch, server = channel

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request=message(method.input_type))
    def fuzz(request: Message) -> None:
        call(ch, method, request)

    fuzz()
    with server.client() as c:
        assert c.get("/health/live").status_code == 200
