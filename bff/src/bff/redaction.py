"""Servers log request paths with their query string: a ``token=`` value never reaches the logs."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(token=)[^&\s\"]*")
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access", "uvicorn")


class RedactTokens(logging.Filter):
    """Replaces every ``token=`` value of a log line with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _TOKEN.sub(r"\1***", message), ()
        return True


def redact_server_logs() -> None:
    """Install ``RedactTokens`` on the loggers uvicorn writes request lines to (once)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
