"""The app's event loop, seen from the consumer threads: push work runs there, where the hub lives."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

HANDOFF_TIMEOUT_S = 10.0


class AppLoop:
    """Runs coroutines on the app's event loop from other threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float = HANDOFF_TIMEOUT_S) -> None:
        self._loop = loop
        self._timeout_s = timeout_s

    def run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` on the app's loop and wait for it (``timeout_s`` at most); raises what it
        raises."""
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=self._timeout_s)
