"""Every service's dead-letter queues, each read and redriven by the service that owns them (its own role
reaches its own queues only): the other services through their ``/v1/ops/dlq``, the BFF's own (its
replicas' push queues) in this process. The BFF itself holds no grant on another service's queues.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from acr.errors import ServiceError
from bff.adapters.http import ServiceHttp, seg
from bff.errors import ServiceUnavailable
from bff.ports import Json

log = logging.getLogger(__name__)
T = TypeVar("T")


class OwnDeadLetters(Protocol):
    """The BFF's own messaging (``acr.runtime.Messaging``): its DLQs, read and redriven with its own SQS
    client (blocking)."""

    def dead_letter_queues(self) -> list[dict[str, object]]: ...

    def redrive_dead_letter_queue(self, queue: str) -> dict[str, object]: ...


class ServiceDeadLetters:
    """``DeadLetters``: ``own`` for the service named ``own_name`` (this BFF), HTTP for every other one."""

    def __init__(self, own_name: str, own: OwnDeadLetters, https: Mapping[str, ServiceHttp]) -> None:
        self._own_name = own_name
        self._own = own
        self._https = dict(https)
        self.services = (own_name, *self._https)

    async def queues(self, service: str) -> list[Json]:
        if service == self._own_name:
            return [dict(q) for q in await self._offload(self._own.dead_letter_queues)]
        answer = await self._https[service].call("GET", "/v1/ops/dlq")
        return list(answer.get("queues", []))

    async def redrive(self, service: str, queue: str) -> Json:
        if service == self._own_name:
            return dict(await self._offload(self._own.redrive_dead_letter_queue, queue))
        return await self._https[service].call("POST", f"/v1/ops/dlq/{seg(queue)}/redrive")

    async def _offload(self, fn: Callable[..., T], *args: str) -> T:
        """Run a blocking call of the BFF's own SQS client in a thread; SQS down -> 503, like a service
        that does not answer."""
        try:
            return await asyncio.to_thread(fn, *args)
        except ServiceError:
            raise
        except Exception as exc:  # botocore transport errors, emulator down
            log.warning("the bff's own DLQs: sqs unavailable: %s", type(exc).__name__)
            raise ServiceUnavailable(self._own_name) from exc
