"""The gRPC server's bounds, over real connections: calls beyond the concurrent-call cap
are answered RESOURCE_EXHAUSTED, connections beyond the per-worker cap are refused, and
an idle connection is closed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pb_grpc

from tests.helpers import free_port, run_server


def infer_request(batch: int) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="tiny")
    tensor = request.inputs.add(name="image", datatype="UINT8", shape=[batch, 28, 28, 1])
    del tensor  # (its contents travel as raw bytes)
    request.raw_input_contents.append(np.zeros((batch, 28, 28, 1), np.uint8).tobytes())
    return request


async def burst(address: str, calls: int) -> Counter[str]:
    """``calls`` inferences at once on one connection; how each ended."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def one() -> str:
            try:
                await stub.ModelInfer(infer_request(64), timeout=60)
                return "OK"
            except grpc.aio.AioRpcError as exc:
                return exc.code().name

        return Counter(await asyncio.gather(*(one() for _ in range(calls))))


def test_calls_beyond_the_concurrent_cap_are_resource_exhausted(tiny_repo: Path,
                                                                 tmp_path: Path) -> None:
    port = free_port()
    with run_server(tiny_repo, tmp_path, grpc_port=str(port), grpc_max_concurrent_rpcs="2"):
        outcomes = asyncio.run(burst(f"127.0.0.1:{port}", 48))
    assert set(outcomes) == {"OK", "RESOURCE_EXHAUSTED"}, outcomes
    assert outcomes["OK"] >= 2


def test_connections_beyond_the_cap_are_refused(tiny_repo: Path, tmp_path: Path) -> None:
    port = free_port()
    with run_server(tiny_repo, tmp_path, grpc_port=str(port), max_connections="2"):
        # (a local subchannel pool: a connection of each channel's own)
        channels = [grpc.insecure_channel(f"127.0.0.1:{port}",
                                          options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(4)]
        try:
            results = []
            for ch in channels:  # each call keeps its connection open
                stub = pb_grpc.GRPCInferenceServiceStub(ch)
                try:
                    stub.ServerLive(pb.ServerLiveRequest(), timeout=5)
                    results.append("OK")
                except grpc.RpcError as exc:
                    results.append(exc.code().name)  # type: ignore[attr-defined]
        finally:
            for ch in channels:
                ch.close()
    assert results[:2] == ["OK", "OK"]
    assert "OK" not in results[2:], results


def test_an_idle_connection_is_closed(tiny_repo: Path, tmp_path: Path) -> None:
    port = free_port()
    with run_server(tiny_repo, tmp_path, grpc_port=str(port), grpc_idle_timeout_s="1"), \
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        states: list[grpc.ChannelConnectivity] = []
        channel.subscribe(states.append)
        pb_grpc.GRPCInferenceServiceStub(channel).ServerLive(pb.ServerLiveRequest(), timeout=5)
        deadline = time.monotonic() + 10
        while (not states or states[-1] != grpc.ChannelConnectivity.IDLE) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        channel.unsubscribe(states.append)
    assert grpc.ChannelConnectivity.READY in states
    assert states[-1] == grpc.ChannelConnectivity.IDLE  # the server closed it, idle
