"""Logging: plain text by default, one JSON object per line when configured."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

_EXTRA = ("request_id", "route", "model", "version", "status", "ms")


class JsonFormatter(logging.Formatter):
    def __init__(self, with_pid: bool = False) -> None:
        super().__init__()
        self.with_pid = with_pid

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.with_pid:
            out["pid"] = record.process
        out.update({k: getattr(record, k) for k in _EXTRA if hasattr(record, k)})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if hasattr(record, "request_id"):
            line += (f" rid={record.request_id} model={getattr(record, 'model', '')}"
                     f" version={getattr(record, 'version', '')} ms={getattr(record, 'ms', '')}")
        return line


def configure(level: str, fmt: str, *, with_pid: bool = False) -> None:
    """Root logging; ``with_pid`` tags every line with the process (several workers)."""
    handler = logging.StreamHandler()
    pid = "[%(process)d]" if with_pid else ""
    handler.setFormatter(JsonFormatter(with_pid) if fmt == "json" else TextFormatter(
        f"%(asctime)s %(levelname)s %(name)s{pid}: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):  # our middleware writes the access log
        logging.getLogger(noisy).disabled = True
