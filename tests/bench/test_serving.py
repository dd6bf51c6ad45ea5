"""bench/serving.py: how a lone request's goal divides, and the service's own account
of its requests."""

from __future__ import annotations

import numpy as np
import pytest

from bench.common import WrkResult
from bench.serving import _onnx, lone_request_budget, served_time, v2_body
from cnnlab.layout import list_versions
from tests.helpers import BUNDLED_MODELS, Server


def p50(ms: float) -> WrkResult:
    return WrkResult(requests_per_s=1000 / ms, p50_ms=ms, p99_ms=2 * ms, requests=100,
                     errors=0)


LIMITS = ({"best_b1_ms": 0.5, "onnx_b1_ms": 0.55}, {"best_b1_ms": 0.7, "onnx_b1_ms": 0.75})


def test_the_budget_is_the_goal_less_the_http_stack_the_queue_and_the_model() -> None:
    budget = lone_request_budget({"empty_c1": p50(0.2), "v2_c1": p50(1.3)}, LIMITS,
                                 {"queue_ms": 0.05, "model_ms": 0.7})
    assert budget["goal_ms"] == pytest.approx(0.9)  # 1.5 x the mean of 0.5 and 0.7
    assert budget["http_ms"] == pytest.approx(0.2)
    assert budget["left_ms"] == pytest.approx(0.9 - 0.2 - 0.05 - 0.7)
    assert budget["taken_ms"] == pytest.approx(1.3 - 0.2 - 0.05 - 0.7)


def test_served_time_is_the_services_own_account_of_the_requests(
        bundled_server: Server) -> None:
    """Read from the V2 statistics of a real service: five lone requests, one after the
    other, are five batches; the means are per request and per batch."""
    start = served_time(bundled_server.url, "mnist")
    body = v2_body(np.zeros((1, 28, 28, 1), np.uint8))
    with bundled_server.client() as client:
        for _ in range(5):
            answer = client.post("/v2/models/mnist/infer", content=body,
                                 headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text
    now = served_time(bundled_server.url, "mnist")
    assert now["requests"] - start["requests"] == 5
    assert now["batches"] - start["batches"] == 5
    inside = served_time(bundled_server.url, "mnist", since=start)
    assert inside["model_ms"] == pytest.approx(
        1000 * (now["compute_s"] - start["compute_s"]) / 5)
    assert inside["model_ms"] > 0 and inside["queue_ms"] >= 0


def test_each_worker_has_a_session_of_its_own_side_by_side() -> None:
    """The side-by-side limit runs one ONNX Runtime session per worker, as the workers
    do, not one session from several threads."""
    vdir = BUNDLED_MODELS / "mnist" / str(list_versions(BUNDLED_MODELS / "mnist")[-1])
    first, second = _onnx(vdir, 1), _onnx(vdir, 1, 1)
    assert first is not None and second is not None
    assert first is not second and first._session is not second._session
    assert _onnx(vdir, 1) is first  # (kept for every measurement of the run)
