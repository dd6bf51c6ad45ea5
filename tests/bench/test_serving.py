"""bench/serving.py's arithmetic: how a lone request's goal divides."""

from __future__ import annotations

import pytest

from bench.common import WrkResult
from bench.serving import lone_request_budget


def p50(ms: float) -> WrkResult:
    return WrkResult(requests_per_s=1000 / ms, p50_ms=ms, p99_ms=2 * ms, requests=100,
                     errors=0)


LIMITS = ({"best_b1_ms": 0.5, "onnx_b1_ms": 0.55, "onnx_one_thread_b1_ms": 0.6},
          {"best_b1_ms": 0.7, "onnx_b1_ms": 0.75, "onnx_one_thread_b1_ms": 0.8})


@pytest.mark.parametrize(("one_thread", "model_ms"), [(True, 0.7), (False, 0.65)])
def test_the_budget_is_the_goal_less_the_http_stack_and_the_model(one_thread: bool,
                                                                   model_ms: float) -> None:
    budget = lone_request_budget({"empty_c1": p50(0.2), "v2_c1": p50(1.3)}, LIMITS,
                                 one_thread=one_thread)
    assert budget["goal_ms"] == pytest.approx(0.9)  # 1.5 x the mean of 0.5 and 0.7
    assert budget["http_ms"] == pytest.approx(0.2)
    assert budget["model_ms"] == pytest.approx(model_ms)
    assert budget["left_ms"] == pytest.approx(0.9 - 0.2 - model_ms)
    assert budget["taken_ms"] == pytest.approx(1.3 - 0.2 - model_ms)


def test_without_onnx_runtime_the_model_time_is_the_fastest_runtimes() -> None:
    limits = ({"best_b1_ms": 1.0}, {"best_b1_ms": 1.2})
    budget = lone_request_budget({"empty_c1": p50(0.2), "v2_c1": p50(2.0)}, limits,
                                 one_thread=True)
    assert budget["model_ms"] == pytest.approx(1.1)


def test_the_model_is_timed_as_the_service_calls_it_when_measured() -> None:
    limits = tuple({**limit, "onnx_one_thread_b1_after_idle_ms": 2 * limit["best_b1_ms"],
                    "onnx_one_thread_b1_handed_off_after_idle_ms": 3 * limit["best_b1_ms"]}
                   for limit in LIMITS)
    budget = lone_request_budget({"empty_c1": p50(0.2), "v2_c1": p50(2.5)},
                                 (limits[0], limits[1]), one_thread=True)
    assert budget["model_key"] == "onnx_one_thread_b1_handed_off_after_idle_ms"
    assert budget["model_ms"] == pytest.approx(1.8)  # 3 x the mean of 0.5 and 0.7
    assert budget["taken_ms"] == pytest.approx(2.5 - 0.2 - 1.8)
