"""JSON log lines carrying the request id of the request being served.

Exceptions never reach a log line whole: an exception given as a ``%s`` argument or
logged with ``log.exception`` is named by :mod:`artstore.common.redact` (class and a
short reason; no SQL statement or parameter values).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from artstore.common.redact import describe, safe_traceback

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def _safe_arg(value: Any) -> Any:
    return describe(value) if isinstance(value, BaseException) else value


def safe_message(record: logging.LogRecord) -> str:
    """``record.getMessage()`` with every exception argument described safely."""
    args = record.args
    if isinstance(args, tuple) and any(isinstance(a, BaseException) for a in args):
        return str(record.msg) % tuple(_safe_arg(a) for a in args)
    if isinstance(args, dict) and any(isinstance(a, BaseException) for a in args.values()):
        return str(record.msg) % {k: _safe_arg(v) for k, v in args.items()}
    return record.getMessage()


class _SafeExceptions(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        return safe_traceback(exc) if isinstance(exc, BaseException) else ""


class JsonFormatter(_SafeExceptions):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "request_id": request_id_var.get(),
            "message": safe_message(record),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleFormatter(_SafeExceptions):
    def format(self, record: logging.LogRecord) -> str:
        base = (
            f"{record.levelname:<7} [{request_id_var.get()}] {record.name}: {safe_message(record)}"
        )
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log duplicates ours (the request middleware logs each request).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
