"""The gRPC server of one worker: both gRPC faces on ``CNNLAB_GRPC_PORT``, in the worker's
event loop. grpcio binds with ``SO_REUSEPORT``, so several workers share the port as their
HTTP sockets do."""

from __future__ import annotations

import logging

import grpc

from service.dataplane.plane import DataPlane
from service.grpc import tfserving, v2

log = logging.getLogger(__name__)


async def start(plane: DataPlane) -> grpc.aio.Server:
    """Serve TensorFlow Serving's and the Open Inference Protocol's gRPC services."""
    settings = plane.settings
    server = grpc.aio.server(
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", settings.max_upload_bytes),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.so_reuseport", 1),
            # the same bounds a worker's HTTP side has: connections, and how long an idle
            # one is kept
            ("grpc.max_allowed_incoming_connections", settings.max_connections),
            ("grpc.max_concurrent_streams", settings.grpc_max_streams_per_connection),
            ("grpc.max_connection_idle_ms", int(settings.grpc_idle_timeout_s * 1000)),
            ("grpc.max_connection_age_ms", int(settings.grpc_max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", 30_000),
            # keep-alive enforcement: pings only during calls, at most one per 5 minutes
            # without data; a client that pings more often is disconnected (GOAWAY)
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.http2.min_ping_interval_without_data_ms", 300_000),
            ("grpc.http2.max_ping_strikes", 2),
        ])
    tfserving.add_to_server(server, plane)
    v2.add_to_server(server, plane)
    address = f"{settings.host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"cannot listen for gRPC on {address}")
    await server.start()
    log.info("gRPC on %s: tensorflow.serving.PredictionService, ModelService, "
             "inference.GRPCInferenceService", address)
    return server
