"""The chaos controls ``/ops/chaos`` (docs/api.md): outages carried out by the embedded stack's fault
proxy, and fault windows opened on the services. Absent (404, before the token is even looked at) unless
``ACR_CHAOS`` is on, and always in AWS mode (``ACR_AWS_ENDPOINT_URL`` empty)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from acr.contract import errors, listed
from acr.errors import NotFound, ServiceError
from acr.faults import KNOWN
from acr.settings import SERVICE_PORTS, Settings
from bff.errors import OpsUnauthorized, RateLimited, ServiceUnavailable
from bff.ports import Chaos, Json
from bff.security import Deps, State, require_ops

AWS, ALL = "aws", "all"
SERVICES = tuple(SERVICE_PORTS)
OUTAGE_ANSWER = ("outageId", "target", "mode", "until")

# Numbers as given (an integer stays one for the services), never strings or booleans.
Seconds = (
    Annotated[int, Field(ge=1, le=600, strict=True)] | Annotated[float, Field(ge=1, le=600, strict=True)]
)
Rate = Annotated[int, Field(ge=0, le=1, strict=True)] | Annotated[float, Field(ge=0, le=1, strict=True)]


def chaos_enabled(settings: Settings) -> bool:
    """Chaos is on and the services use an emulator (never AWS)."""
    return settings.chaos and bool(settings.aws_endpoint_url)


def require_chaos(state: State) -> None:
    """404 (as for a route that does not exist) unless chaos is enabled."""
    if not chaos_enabled(state.settings):
        raise NotFound("Not Found")


router = APIRouter(
    prefix="/ops/chaos",
    tags=["chaos"],
    dependencies=[Depends(require_chaos), Depends(require_ops)],
    responses=errors(404, OpsUnauthorized, RateLimited, ServiceUnavailable),  # 404: chaos is off
)


class OutageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(json_schema_extra=listed([AWS, *SERVICES]))
    mode: Literal["refuse", "blackhole", "latency"]
    seconds: Seconds
    latency_ms: int | None = Field(default=None, alias="latencyMs", ge=1, le=60_000, strict=True)

    @field_validator("target")
    @classmethod
    def _known_target(cls, target: str) -> str:
        if target != AWS and target not in SERVICES:
            raise ValueError(f"must be {AWS!r} or one of {list(SERVICES)}")
        return target

    @model_validator(mode="after")
    def _latency_only_in_latency_mode(self) -> OutageRequest:
        if (self.mode == "latency") != (self.latency_ms is not None):
            raise ValueError("latencyMs is required in latency mode, and only there")
        return self


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = Field(json_schema_extra=listed([ALL, *SERVICES]))
    fault: str = Field(json_schema_extra=listed(sorted(KNOWN)))
    rate: Rate
    seconds: Seconds

    @field_validator("service")
    @classmethod
    def _known_service(cls, service: str) -> str:
        if service != ALL and service not in SERVICES:
            raise ValueError(f"must be {ALL!r} or one of {list(SERVICES)}")
        return service

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, fault: str) -> str:
        if fault not in KNOWN:
            raise ValueError(f"must be one of {sorted(KNOWN)}")
        return fault


@router.post("/outages", status_code=202)
async def open_outage(body: OutageRequest, deps: Deps) -> dict[str, Any]:
    """Open an outage window on the fault proxy: refuse, blackhole or delay AWS traffic for N seconds."""
    outage = await deps.chaos.open_outage(body.model_dump(by_alias=True, exclude_none=True))
    return {key: outage.get(key) for key in OUTAGE_ANSWER}


@router.post("/faults", status_code=202)
async def open_fault(body: FaultRequest, state: State) -> dict[str, Any]:
    """Open a fault window on one service or on every one (``all``); the answer's ``unavailable`` names
    the services that did not answer, when some did."""
    services = SERVICES if body.service == ALL else (body.service,)
    window = {"fault": body.fault, "rate": body.rate, "seconds": body.seconds}
    answers = await asyncio.gather(
        *(state.deps.chaos.open_fault(service, window) for service in services), return_exceptions=True
    )
    opened = {s: answer for s, answer in zip(services, answers, strict=True) if isinstance(answer, dict)}
    failures = [answer for answer in answers if isinstance(answer, BaseException)]
    if not opened:
        raise failures[0]
    answer = state.fault_ids.answer(opened)
    unavailable = [service for service in services if service not in opened]
    return answer | {"unavailable": unavailable} if unavailable else answer


@router.get("")
async def open_windows(state: State) -> dict[str, Any]:
    """The open outages (with what each did so far) and the open fault windows of every service."""
    chaos = state.deps.chaos
    outages, *faults = await asyncio.gather(chaos.outages(), *(_faults_of(chaos, s) for s in SERVICES))
    listed = [
        state.fault_ids.listed(service, window)
        for service, windows in zip(SERVICES, faults, strict=True)
        for window in windows
    ]
    return {"outages": outages, "faults": listed}


async def _faults_of(chaos: Chaos, service: str) -> list[Json]:
    """A service's open windows; none from a service that does not answer."""
    try:
        return await chaos.faults(service)
    except ServiceError:
        return []
