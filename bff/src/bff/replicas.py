"""``GET /ops/replicas``: every process of every service, with its port, pid and whether it answers.

The embedded stack lists each service's replicas in ``ACR_REPLICA_URLS``, and each replica says who it is
(``GET /v1/ops/replica``: name and pid). Elsewhere (one container per service, behind its URL) the BFF
lists what it can know: itself, and whichever process answers each service's URL.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit

from acr.settings import Settings
from bff.ports import Json, ServiceStats

BFF = "bff"


def _port(url: str) -> int | None:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)


async def _member(services: ServiceStats, name: str, url: str, listed: bool) -> dict[str, Any]:
    """One process: a listed replica keeps its name; an unlisted one is named by its own answer."""
    answer: Json | None = await services.replica(url)
    named = name if listed or answer is None else str(answer.get("replica", name))
    pid = answer.get("pid") if answer is not None else None
    return {"replica": named, "port": _port(url), "pid": pid, "healthy": answer is not None}


async def replica_table(settings: Settings, services: ServiceStats) -> dict[str, list[dict[str, Any]]]:
    """``{"<service>": [{"replica", "port", "pid", "healthy"}]}`` for the BFF and every other service."""
    listed = bool(settings.replica_urls)
    members = {service: list(urls.items()) for service, urls in settings.replica_urls.items()} or {
        service: [(service, settings.service_url(service))] for service in services.services
    }

    async def processes(service: str) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(_member(services, n, url, listed) for n, url in members[service])))

    table = dict(zip(members, await asyncio.gather(*map(processes, members)), strict=True))
    if BFF not in table:  # the only BFF known is this process
        itself = {"replica": settings.replica, "port": _port(settings.service_url(BFF)), "pid": os.getpid()}
        table = {BFF: [itself | {"healthy": True}], **table}
    return table
