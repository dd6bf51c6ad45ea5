"""A worker stuck in a long model call still ends within the shutdown grace period, and
the port is free afterwards."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from pathlib import Path

import grpc
import httpx
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.helpers import fixture_images, free_port, run_server


def export_slow_model(version_dir: Path) -> None:
    """A SavedModel whose serving_default loops for as long as its input is bright: the
    warm-up's black pictures pass at once, a real digit takes minutes."""
    import tensorflow as tf

    class Slow(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.uint8, name="image")])
        def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
            steps = tf.reduce_sum(tf.cast(image, tf.int64)) * 10_000
            _, acc = tf.while_loop(lambda i, acc: i < steps,
                                   lambda i, acc: (i + 1, acc * 0.5 + 1.0),
                                   (tf.constant(0, tf.int64), tf.constant(0.0)))
            probs = tf.fill([tf.shape(image)[0], 10], 0.1) + 0.0 * acc
            return {"probabilities": probs}

    module = Slow()
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (as servers bind: SO_REUSEADDR, so
    connections the old one left in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def test_sigterm_ends_a_worker_stuck_in_a_long_call(tmp_path: Path) -> None:
    export_slow_model(tmp_path / "models" / "slow" / "1")
    digit = fixture_images("digits")[0][1]
    with run_server(tmp_path / "models", tmp_path, shutdown_grace_s="3") as server:
        port = int(server.url.rsplit(":", 1)[1])

        def stuck_request() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the worker ends under it
                httpx.post(f"{server.url}/api/models/slow/predict", content=digit,
                           headers={"content-type": "image/png"}, timeout=60)

        threading.Thread(target=stuck_request, daemon=True).start()
        time.sleep(2)  # the model call is running
        assert server.proc.poll() is None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(20)
        took = time.monotonic() - started
        assert took < 3 + 2, f"exited {took:.1f} s after SIGTERM (grace 3 s)"
        assert port_is_free(port)
        assert "Thread" in server.logs()  # the watchdog printed the stuck thread's stack


def test_a_draining_worker_serves_but_says_not_ready(tiny_repo: Path, tmp_path: Path) -> None:
    """With a shutdown delay, SIGTERM first drains: requests are still answered (HTTP
    ones closing their connection), while readiness answers 503 on HTTP and false on
    gRPC; then the worker ends."""
    _, digit = fixture_images("digits")[0]
    port = free_port()
    with run_server(tiny_repo, tmp_path, shutdown_delay_s="5", grpc_port=str(port)) as server, \
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        oip = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert oip.ServerReady(service_pb2.ServerReadyRequest(), timeout=10).ready
        with httpx.Client(base_url=server.url, timeout=10) as c:
            before = c.get("/health/ready")
            server.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while (ready := c.get("/health/ready")).status_code == 200:  # until it drains
                assert time.monotonic() < deadline, "never started draining"
                time.sleep(0.05)
            v2_ready = c.get("/v2/health/ready")
            grpc_ready = oip.ServerReady(service_pb2.ServerReadyRequest(), timeout=10).ready
            answer = c.post("/api/models/tiny/predict", content=digit,
                            headers={"content-type": "image/png"})
            request = service_pb2.ModelInferRequest(model_name="tiny")
            request.inputs.add(name="image", datatype="UINT8", shape=[1, 28, 28, 1])
            request.raw_input_contents.append(bytes(784))
            inferred = oip.ModelInfer(request, timeout=10)
        server.proc.wait(30)
    assert before.status_code == 200 and "connection" not in before.headers
    assert (ready.status_code, ready.json()["status"]) == (503, "draining")
    assert v2_ready.status_code == 503 and grpc_ready is False
    assert answer.status_code == 200 and answer.headers["connection"] == "close"
    assert inferred.model_name == "tiny"
    assert server.proc.returncode == -signal.SIGTERM  # ended by it, as uvicorn re-raises
