"""The operations API ``/ops`` (docs/api.md), guarded by ``X-Ops-Token``, and the BFF's ``/healthz``."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool

from acr.contract import errors
from acr.errors import NotFound, ServiceError
from acr.metrics import COUNTERS
from acr.trace_export import RECENT
from bff.api import ride_id_or_404
from bff.errors import (
    NOT_CANCELLABLE,
    OpsUnauthorized,
    RateLimited,
    RideNotFound,
    ServiceUnavailable,
    UpstreamError,
)
from bff.replicas import replica_table
from bff.security import Deps, State, require_ops
from bff.state import Dependencies
from bff.stats import UNAVAILABLE, aggregate

BFF = "bff"

router = APIRouter(
    prefix="/ops",
    tags=["ops"],
    dependencies=[Depends(require_ops)],
    responses=errors(OpsUnauthorized, RateLimited, ServiceUnavailable),  # 429: wrong guesses spent
)
# The refusals of payment, car-simulator and car-dispatcher, passed on.
PAYMENT_NOT_FOUND, NOT_RETRYABLE = (404, "payment_not_found"), (409, "not_retryable")
CAR_NOT_FOUND, NOT_OUT_OF_SERVICE = (404, "car_not_found"), (409, "not_out_of_service")
PROJECTION_NOT_FOUND, REBUILD_IN_PROGRESS = (404, "projection_not_found"), (409, "rebuild_in_progress")
health = APIRouter(tags=["health"])
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


class TraceNotFound(NotFound):
    code = "trace_not_found"


class GatewayMode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["ok", "decline", "timeout", "slow"]


class DispatchSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paused: StrictBool


def own_stats(request: Request) -> dict[str, Any]:
    """This process's messaging counters and the depth of its DLQs."""
    counters = COUNTERS.snapshot()
    messaging = getattr(request.app.state, "messaging", None)
    if messaging is not None:
        counters |= messaging.stats()
    return counters


async def _stats_of(deps: Dependencies, service: str) -> dict[str, Any]:
    try:
        return await deps.services.stats(service)
    except ServiceError:
        return dict(UNAVAILABLE)


@health.get("/healthz")
async def healthz(deps: Deps) -> JSONResponse:
    """200 when every service the BFF calls answers its health check, else 503; the body says which."""
    names = deps.services.services
    states = await asyncio.gather(*(deps.services.healthy(name) for name in names))
    dependencies = {name: "ok" if up else "down" for name, up in zip(names, states, strict=True)}
    healthy = all(states)
    body = {"status": "ok" if healthy else "degraded", "service": BFF, "dependencies": dependencies}
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/fleet")
async def fleet(deps: Deps) -> dict[str, Any]:
    """Every car: state, position, ride."""
    return await deps.fleet.cars()


@router.get("/rides")
async def rides(deps: Deps, _: Annotated[Literal["true"], Query(alias="active")] = "true") -> dict[str, Any]:
    """Rides in flight (``active=true``, the only list there is)."""
    return await deps.ride_manager.ops_rides(True)


async def _projections_of(deps: Dependencies) -> tuple[list[dict[str, Any]], list[str]]:
    """Every service's read models (each entry names its ``service``), and the services that did not
    answer."""
    names = deps.services.services
    found = await asyncio.gather(*(deps.services.projections(name) for name in names), return_exceptions=True)
    for answer in found:
        if isinstance(answer, BaseException) and not isinstance(answer, ServiceUnavailable):
            raise answer
    listed = [
        {"service": name} | projection
        for name, answer in zip(names, found, strict=True)
        if isinstance(answer, list)
        for projection in answer
    ]
    unavailable = [name for name, answer in zip(names, found, strict=True) if not isinstance(answer, list)]
    return sorted(listed, key=lambda p: str(p.get("name"))), unavailable


@router.get("/projections")
async def projections(deps: Deps) -> dict[str, Any]:
    """The read models built from events, of every service: LIVE or REBUILDING, their lag p50/p99, their
    last rebuild; a service that does not answer is named in ``unavailable``."""
    listed, unavailable = await _projections_of(deps)
    return {"projections": listed, "unavailable": unavailable}


@router.post(
    "/projections/{name}/rebuild",
    status_code=202,
    responses=errors(PROJECTION_NOT_FOUND, REBUILD_IN_PROGRESS, ServiceUnavailable),
)
async def rebuild_projection(name: str, deps: Deps) -> dict[str, Any]:
    """Rebuild a read model from its producers' bus archive into a fresh copy, by the service that owns it;
    reads switch to it once it caught up, and never fail meanwhile (poll ``GET /ops/projections``)."""
    listed, unavailable = await _projections_of(deps)
    owner = next((p["service"] for p in listed if p.get("name") == name), None)
    if owner is None and unavailable:
        raise ServiceUnavailable(unavailable[0])  # the owner may be the one that did not answer
    if owner is None:
        raise UpstreamError(*PROJECTION_NOT_FOUND, f"no read model {name!r}")
    return await deps.services.rebuild_projection(owner, name)


@router.post("/rides/{ride_id}/cancel", status_code=202, responses=errors(RideNotFound, NOT_CANCELLABLE))
async def cancel_ride(ride_id: str, deps: Deps) -> dict[str, Any]:
    """An operator ends a ride that has not started or whose car stalled (no fee): ``OPERATOR_CANCELLED``."""
    return await deps.ride_manager.ops_cancel(ride_id_or_404(ride_id))


@router.get("/rides/{ride_id}/events", responses=errors(RideNotFound))
async def ride_events(ride_id: str, deps: Deps) -> dict[str, Any]:
    """Every event of a ride across services, in order (each service's outbox rows about the ride)."""
    subject = ride_id_or_404(ride_id)
    names = deps.services.services
    found = await asyncio.gather(
        *(deps.services.events(name, subject) for name in names), return_exceptions=True
    )
    events = [e for answer in found if isinstance(answer, list) for e in answer]
    if not events:
        raise RideNotFound("no events for that ride")
    return {
        "rideId": subject,
        "events": sorted(events, key=lambda e: (e.get("time", ""), e.get("sequence") or 0)),
    }


@router.get("/traces/{trace_id}", responses=errors(TraceNotFound))
async def trace_spans(trace_id: str, deps: Deps) -> dict[str, Any]:
    """One trace's spans across services (each process's recent spans, the BFF's own included), oldest
    first; none when every process has let them go (each keeps its last spans only); a service that does
    not answer is named in ``unavailable``."""
    if not TRACE_ID.match(trace_id):
        raise TraceNotFound("a trace id is 32 lowercase hex digits")
    others = [name for name in deps.services.services if name != BFF]
    found = await asyncio.gather(
        *(deps.services.spans(name, trace_id) for name in others), return_exceptions=True
    )
    spans = RECENT.of_trace(trace_id) + [s for answer in found if isinstance(answer, list) for s in answer]
    return {
        "traceId": trace_id,
        "spans": sorted(spans, key=lambda s: s.get("startUs", 0)),
        "unavailable": [
            name for name, answer in zip(others, found, strict=True) if not isinstance(answer, list)
        ],
    }


@router.get("/stats")
async def stats(deps: Deps, request: Request) -> dict[str, Any]:
    """Every service's counters and the totals; a service that does not answer shows an error entry."""
    names = deps.services.services
    answers = await asyncio.gather(*(_stats_of(deps, name) for name in names))
    own = await asyncio.to_thread(own_stats, request)
    return aggregate({BFF: own, **dict(zip(names, answers, strict=True))})


@router.get("/replicas")
async def replicas(state: State) -> dict[str, list[dict[str, Any]]]:
    """Every process of every service: ``{"<service>": [{"replica", "port", "pid", "healthy"}]}``."""
    return await replica_table(state.settings, state.deps.services)


def owner_of(queue: str, services: tuple[str, ...]) -> str | None:
    """The service a DLQ belongs to: its name is ``acr-<service>-...`` (the longest service name that fits,
    should one name start another)."""
    return max((s for s in services if queue.startswith(f"acr-{s}-")), key=len, default=None)


@router.get("/dlq")
async def dead_letter_queues(deps: Deps) -> dict[str, Any]:
    """Each DLQ of every service with its depth and the reasons of its messages, as each service reads its
    own; a service that does not answer is named in ``unavailable``."""
    names = deps.dead_letters.services
    found = await asyncio.gather(*(deps.dead_letters.queues(name) for name in names), return_exceptions=True)
    for answer in found:
        if isinstance(answer, BaseException) and not isinstance(answer, ServiceUnavailable):
            raise answer
    queues = [queue for answer in found if isinstance(answer, list) for queue in answer]
    return {
        "queues": sorted(queues, key=lambda q: str(q.get("queue"))),
        "unavailable": [
            name for name, answer in zip(names, found, strict=True) if not isinstance(answer, list)
        ],
    }


@router.post("/dlq/{queue}/redrive", responses=errors(404))
async def redrive(queue: str, deps: Deps) -> dict[str, Any]:
    """The service that owns the DLQ moves its messages back to the queue they came from, or for a producer
    DLQ publishes its events again (same ids)."""
    owner = owner_of(queue, deps.dead_letters.services)
    if owner is None:
        raise NotFound(f"no service has a queue named {queue!r}")
    return await deps.dead_letters.redrive(owner, queue)


@router.get("/payments")
async def payments(
    deps: Deps, ride_id: Annotated[str | None, Query(alias="rideId", max_length=128)] = None
) -> dict[str, Any]:
    """The payment gateway's ledger, optionally for one ride."""
    return await deps.payments.charges(ride_id)


@router.post("/payments/{ride_id}/retry", status_code=202, responses=errors(PAYMENT_NOT_FOUND, NOT_RETRYABLE))
async def retry_payment(ride_id: str, deps: Deps) -> dict[str, Any]:
    """Charge a failed ride again (still at most once)."""
    return await deps.payments.retry(ride_id_or_404(ride_id))


@router.put("/gateway")
async def gateway(body: GatewayMode, deps: Deps) -> dict[str, Any]:
    """Switch the simulated gateway's failure mode."""
    return await deps.payments.set_gateway(body.mode)


@router.post("/cars/{car_id}/stall", status_code=202, responses=errors(CAR_NOT_FOUND))
async def stall_car(car_id: str, deps: Deps) -> dict[str, Any]:
    """Make a simulated car stop progressing (car-simulator)."""
    return await deps.fleet.stall(car_id)


@router.post(
    "/cars/{car_id}/return-to-service", status_code=202, responses=errors(CAR_NOT_FOUND, NOT_OUT_OF_SERVICE)
)
async def return_to_service(car_id: str, deps: Deps) -> dict[str, Any]:
    """Make an out-of-service car available again (car-dispatcher)."""
    return await deps.fleet.return_to_service(car_id)


@router.put("/dispatch")
async def dispatch(body: DispatchSwitch, deps: Deps) -> dict[str, Any]:
    """Pause or resume the dispatcher."""
    return await deps.fleet.set_dispatch(body.paused)
