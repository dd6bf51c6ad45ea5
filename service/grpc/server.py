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
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", settings.max_upload_bytes),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.so_reuseport", 1),
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
