"""``python -m service``: serve on the configured host and port with ``CNNLAB_WORKERS``
worker processes (``service.runtime.workers``).

``python -m service migrate``: bring the capture store (``CNNLAB_CAPTURE_URL``, or the
SQLite file in ``CNNLAB_CAPTURE_DIR``) to the newest schema and say its revision; the
service does the same when it opens the store, so this is for a deployment that migrates
before it rolls out."""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from service.runtime import logs, workers
from service.runtime.settings import MAX_AUTO_WORKERS, get_settings


def migrate() -> None:
    from cnnlab.captures import CaptureStore, revision

    store = CaptureStore(get_settings().capture_store_url())  # (opening it migrates it)
    print(f"capture store at revision {revision(store.engine)}")
    store.close()


def main() -> None:
    if sys.argv[1:] == ["migrate"]:
        migrate()
        return
    if sys.argv[1:]:
        sys.exit("usage: python -m service [migrate]")
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    logging.getLogger("cnnlab").info(
        "%d server process(es) on %s:%d (CNNLAB_WORKERS; auto = one per CPU on a CPU-only "
        "host, at most %d)", settings.workers, settings.host, settings.port, MAX_AUTO_WORKERS)
    if settings.exposed_without_key():
        logging.getLogger("cnnlab").warning(
            "listening on %s beyond this machine without an API key: anyone who reaches "
            "the port can use every model (set CNNLAB_API_KEY or CNNLAB_API_KEY_FILE, or "
            "bind CNNLAB_HOST=127.0.0.1 behind a proxy that authenticates)", settings.host)
    sys.exit(workers.run(settings))


if __name__ == "__main__":
    main()
