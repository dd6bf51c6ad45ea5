"""OpenTelemetry spans of a request's stages, over real HTTP and gRPC, exported by the
SDK's in-memory exporter in the server process (``traced_app``): one upload prediction
yields read body, decode, preprocess, queue wait, model call and encode in that order,
under the server span, itself a child of the caller's ``traceparent``; the batch is a
span of its own linked to the request; the request id is the trace id."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.helpers import Server, dim_pictures, free_port, png, run_server

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"
STAGES = ["read body", "decode", "preprocess", "queue wait", "model call", "encode"]


@pytest.fixture(scope="module")
def traced(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Server, str]]:
    port = free_port()
    with run_server(tiny_repo, tmp_path_factory.mktemp("traced"), grpc_port=str(port),
                    app="tests.integration.traced_app:create") as server:
        yield server, f"127.0.0.1:{port}"


def spans_of(server: Server, trace_id: str) -> list[dict[str, Any]]:
    every = httpx.get(f"{server.url}/test/spans").json()
    return sorted((s for s in every if s["trace_id"] == trace_id), key=lambda s: s["start"])


def test_an_upload_prediction_traces_its_stages(traced: tuple[Server, str]) -> None:
    server, _ = traced
    picture = png(dim_pictures(1, seed=1)[0, ..., 0])
    r = httpx.post(f"{server.url}/api/models/tiny/predict",
                   files={"file": ("d.png", picture, "image/png")},
                   headers={"traceparent": f"00-{TRACE}-{CALLER}-01"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == TRACE  # the logs name the trace
    spans = spans_of(server, TRACE)
    [root] = [s for s in spans if s["parent_id"] == CALLER]
    assert root["name"] == "POST /api/models/{name}/predict"
    assert root["attributes"]["http.response.status_code"] == 200
    stages = [s for s in spans if s["parent_id"] == root["span_id"]]
    assert [s["name"] for s in stages] == STAGES
    for before, after in itertools.pairwise(stages):
        assert before["end"] <= after["start"] + 1  # one after the other (ns)
    model_call = stages[STAGES.index("model call")]
    [batch] = [s for s in httpx.get(f"{server.url}/test/spans").json()
               if s["name"] == "batch" and root["span_id"] in s["links"]]
    assert model_call["links"] == [batch["span_id"]]
    assert batch["attributes"]["cnnlab.batch.images"] >= 1


def test_a_grpc_call_continues_the_callers_trace(traced: tuple[Server, str]) -> None:
    _, address = traced
    server, _ = traced
    trace = "0af7651916cd43dd8448eb211c80319c"
    with grpc.insecure_channel(address) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(
            np.zeros((2, 28, 28, 1), np.uint8)))
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30, metadata=(("traceparent", f"00-{trace}-{CALLER}-01"),))
    spans = spans_of(server, trace)
    [root] = [s for s in spans if s["parent_id"] == CALLER]
    assert root["name"] == "Predict"
    assert [s["name"] for s in spans if s["parent_id"] == root["span_id"]] == [
        "queue wait", "model call"]
