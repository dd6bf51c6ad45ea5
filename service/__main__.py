"""``python -m service``: run the server with uvicorn on the configured host and port
(``CNNLAB_WORKERS`` > 1: that many worker processes, see ``service.workers``)."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import uvicorn

from service import logs, workers
from service.config import MAX_AUTO_WORKERS, get_settings


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    logging.getLogger("cnnlab").info(
        "%d server process(es) on %s:%d (CNNLAB_WORKERS; auto = one per CPU on a CPU-only "
        "host, at most %d)", settings.workers, settings.host, settings.port, MAX_AUTO_WORKERS)
    if settings.workers > 1:
        workers.run(settings)  # the supervisor: each worker builds its own app
        return
    from service.main import create_app  # (TensorFlow: only where models are served)

    uvicorn.run(create_app(settings), **workers.server_options(settings))


if __name__ == "__main__":
    main()
