"""Background loops of a service: each in its own thread from ``start`` until ``stop``, which joins them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]
"""A loop runs until the event it is given is set (and waits on that event, so it stops at once)."""


class Loops:
    """Every background loop of one process: consumers, stream readers, the relay, timers, simulations."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._started = False
        self._loops: list[tuple[str, Loop]] = []
        self._threads: list[threading.Thread] = []
        self._on_stop: list[Callable[[], None]] = []

    def add(self, name: str, loop: Loop) -> None:
        """Run ``loop`` from ``start`` on (at once if already started)."""
        self._loops.append((name, loop))
        if self._started:
            self._start(name, loop)

    def on_stop(self, action: Callable[[], None]) -> None:
        """Run ``action`` when stopping, right after the loops were told to stop (e.g. to wake one)."""
        self._on_stop.append(action)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._loops]

    def start(self) -> None:
        self._started = True
        for name, loop in self._loops:
            self._start(name, loop)
        log.info("started %d loop(s): %s", len(self._loops), ", ".join(self.names))

    def stop(self, timeout_s: float = 5.0) -> None:
        """Tell every loop to stop and wait for them, ``timeout_s`` in all. A loop blocked in a call it
        cannot leave (an SQS long poll) is left to end it: its thread is a daemon."""
        self._stop.set()
        for action in self._on_stop:
            action()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        lingering = [t.name for t in self._threads if t.is_alive()]
        if lingering:
            log.info("left to finish on their own: %s", ", ".join(lingering))

    def _start(self, name: str, loop: Loop) -> None:
        thread = threading.Thread(target=self._guarded, args=(name, loop), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _guarded(self, name: str, loop: Loop) -> None:
        try:
            loop(self._stop)
        except Exception:
            log.exception("loop %s ended with an error", name)
