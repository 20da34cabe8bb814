"""JSON logging with the ride id, event id and trace id of the work in hand on every line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from acr import tracing

ride_id_var: ContextVar[str | None] = ContextVar("ride_id", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "rideId": ride_id_var.get(),
            "eventId": event_id_var.get(),
            "traceId": tracing.current_trace_id(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send every log line of this process to stdout, as JSON (or plain text for humans)."""
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


@contextmanager
def event_context(*, event_id: str | None, ride_id: str | None) -> Iterator[None]:
    """Bind the ids of the message being handled to every log line inside the block (the trace id comes
    from the current span)."""
    tokens = (event_id_var.set(event_id), ride_id_var.set(ride_id))
    try:
        yield
    finally:
        event_id_var.reset(tokens[0])
        ride_id_var.reset(tokens[1])
