"""httpx adapters of the ports: one shared ``AsyncClient``, errors mapped to the BFF's domain errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

import httpx

from acr.errors import DependencyUnavailable
from acr.identity import ServiceCredentials
from acr.trace_export import traced
from bff.errors import ServiceUnavailable, UpstreamError
from bff.ports import Json

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(5.0, connect=2.0)
HEALTH_TIMEOUT = httpx.Timeout(2.0)


def make_client() -> httpx.AsyncClient:
    """The one client the BFF shares across every adapter (pooled connections, ~5 s timeouts)."""
    return traced(httpx.AsyncClient(timeout=TIMEOUT, limits=httpx.Limits(max_connections=200)))


def seg(value: str) -> str:
    """A value made safe to use as one path segment."""
    return quote(value, safe="")


def _upstream_error(service: str, response: httpx.Response) -> UpstreamError:
    code, message = "bad_request", f"{service} refused the request"
    try:
        error = response.json().get("error", {})
        code, message = str(error["code"]), str(error.get("message", message))
    except (ValueError, AttributeError, KeyError, TypeError):
        code = {
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            422: "validation_error",
            429: "rate_limited",
        }.get(response.status_code, code)
    headers = {"Retry-After": response.headers["Retry-After"]} if "Retry-After" in response.headers else None
    return UpstreamError(response.status_code, code, message, headers)


class ServiceHttp:
    """Calls one service, signed with the BFF's credentials (a service token for the callee, acting for
    ``rider`` when one is named; the ops token on ``/v1/ops/*``); none for a helper such as the fault proxy.
    4xx -> ``UpstreamError`` (passed through), transport error, 5xx, or a refused credential (401/403: the
    BFF's keys are wrong, not the rider's request) -> 503."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        service: str,
        base_url: str,
        credentials: ServiceCredentials | None = None,
    ) -> None:
        self._client = client
        self.service = service
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials

    def _auth(self, rider: str | None) -> httpx.Auth | None:
        return self._credentials.auth(self.service, rider) if self._credentials else None

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        rider: str | None = None,
    ) -> Json:
        """The JSON object answered to ``method path`` (``{}`` when the body is empty)."""
        try:
            response = await self._client.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                headers=headers,
                auth=self._auth(rider) or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            log.warning("%s unreachable: %s %s: %s", self.service, method, path, type(exc).__name__)
            raise ServiceUnavailable(self.service) from exc
        if response.status_code >= 500:
            log.warning("%s failed: %s %s -> %d", self.service, method, path, response.status_code)
            raise ServiceUnavailable(self.service)
        if response.status_code in (401, 403):
            log.error(
                "%s refused the BFF's credentials: %s %s -> %d",
                self.service,
                method,
                path,
                response.status_code,
            )
            raise ServiceUnavailable(self.service)
        if response.status_code >= 400:
            raise _upstream_error(self.service, response)
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise ServiceUnavailable(self.service) from exc
        if not isinstance(body, dict):
            raise ServiceUnavailable(self.service)
        return body

    async def healthy(self) -> bool:
        """True when ``GET /healthz`` answers 2xx within the health timeout."""
        try:
            response = await self._client.get(self.base_url + "/healthz", timeout=HEALTH_TIMEOUT)
        except httpx.HTTPError:
            return False
        return response.is_success


class EveryReplica:
    """The same call to every process of one service, for a switch each process holds in memory (the
    simulated gateway's mode, the dispatch pause, fault windows): through the service's entry point it would
    reach one replica only. One process when the replicas are not listed (``ACR_REPLICA_URLS``). A replica
    that is down is left out; the call fails only when none answers, or when one refuses it (4xx)."""

    def __init__(self, replicas: list[ServiceHttp]) -> None:
        self._replicas = replicas

    async def call(self, method: str, path: str, *, json: Any = None) -> Json:
        answers = await asyncio.gather(
            *(replica.call(method, path, json=json) for replica in self._replicas), return_exceptions=True
        )
        refused = [answer for answer in answers if isinstance(answer, UpstreamError)]
        reached = [answer for answer in answers if isinstance(answer, dict)]
        if refused or not reached:
            raise next(answer for answer in answers if isinstance(answer, BaseException))
        return reached[0]


class HttpRideManager:
    """ride-manager: quotes, rides (write model), history and versions (read models), ops views."""

    def __init__(self, http: ServiceHttp) -> None:
        self._http = http

    async def quote(self, rider_id: str, pickup: Json, dropoff: Json) -> Json:
        body = {"pickup": pickup, "dropoff": dropoff}
        return await self._http.call("POST", "/v1/quotes", json=body, rider=rider_id)

    async def book(self, rider_id: str, quote_id: str, idempotency_key: str) -> Json:
        return await self._http.call(
            "POST",
            "/v1/rides",
            json={"quoteId": quote_id},
            headers={"Idempotency-Key": idempotency_key},
            rider=rider_id,
        )

    async def ride(self, rider_id: str, ride_id: str) -> Json:
        return await self._http.call("GET", f"/v1/rides/{seg(ride_id)}", rider=rider_id)

    async def rides(self, rider_id: str, limit: int, cursor: str | None) -> Json:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return await self._http.call("GET", "/v1/rides", params=params, rider=rider_id)

    async def versions(self, rider_id: str, ride_id: str, after_version: int) -> list[Json]:
        body = await self._http.call(
            "GET",
            f"/v1/rides/{seg(ride_id)}/versions",
            params={"afterVersion": after_version},
            rider=rider_id,
        )
        return list(body.get("versions", []))

    async def cancel(self, rider_id: str, ride_id: str) -> Json:
        return await self._http.call("POST", f"/v1/rides/{seg(ride_id)}/cancel", rider=rider_id)

    async def ops_cancel(self, ride_id: str) -> Json:
        return await self._http.call("POST", f"/v1/ops/rides/{seg(ride_id)}/cancel")

    async def ops_rides(self, active: bool) -> Json:
        return await self._http.call("GET", "/v1/ops/rides", params={"active": str(active).lower()})


class HttpAddressFinder:
    """address-finder: autocomplete, reverse geocoding, map tiles."""

    def __init__(self, http: ServiceHttp) -> None:
        self._http = http

    async def autocomplete(self, q: str, limit: int) -> Json:
        return await self._http.call("GET", "/v1/autocomplete", params={"q": q, "limit": limit})

    async def reverse(self, lat: float, lon: float) -> Json:
        return await self._http.call("GET", "/v1/reverse", params={"lat": lat, "lon": lon})

    async def map(self, bbox: str, zoom: int) -> Json:
        return await self._http.call("GET", "/v1/map", params={"bbox": bbox, "zoom": zoom})


class HttpFleet:
    """car-dispatcher for the fleet and dispatch controls, car-simulator for stalls."""

    def __init__(self, dispatcher: ServiceHttp, simulator: ServiceHttp, dispatchers: EveryReplica) -> None:
        self._dispatcher = dispatcher
        self._simulator = simulator
        self._dispatchers = dispatchers

    async def cars(self) -> Json:
        return await self._dispatcher.call("GET", "/v1/fleet")

    async def stall(self, car_id: str) -> Json:
        return await self._simulator.call("POST", f"/v1/ops/cars/{seg(car_id)}/stall")

    async def return_to_service(self, car_id: str) -> Json:
        """The dispatcher puts the car back in the fleet; the simulated car is repaired (un-stalled)."""
        car = await self._dispatcher.call("POST", f"/v1/ops/cars/{seg(car_id)}/return-to-service")
        await self._simulator.call("POST", f"/v1/ops/cars/{seg(car_id)}/unstall")
        return car

    async def set_dispatch(self, paused: bool) -> Json:
        return await self._dispatchers.call("PUT", "/v1/ops/dispatch", json={"paused": paused})


class HttpLoyalty:
    """reward: a rider's loyalty."""

    def __init__(self, http: ServiceHttp) -> None:
        self._http = http

    async def rider(self, rider_id: str) -> Json:
        return await self._http.call("GET", f"/v1/riders/{seg(rider_id)}")


class HttpPayments:
    """payment: the gateway's ledger and failure mode, operator retries."""

    def __init__(self, http: ServiceHttp, replicas: EveryReplica) -> None:
        self._http = http
        self._replicas = replicas

    async def charges(self, ride_id: str | None) -> Json:
        params = {"rideId": ride_id} if ride_id else None
        return await self._http.call("GET", "/v1/ops/gateway/charges", params=params)

    async def retry(self, ride_id: str) -> Json:
        return await self._http.call("POST", f"/v1/ops/payments/{seg(ride_id)}/retry")

    async def set_gateway(self, mode: str) -> Json:
        return await self._replicas.call("PUT", "/v1/ops/gateway", json={"mode": mode})


class HttpServiceStats:
    """``/healthz`` and ``/v1/ops/stats`` of every other service, and ``/v1/ops/replica`` of any process."""

    def __init__(
        self, https: dict[str, ServiceHttp], client: httpx.AsyncClient, credentials: ServiceCredentials
    ) -> None:
        self._https = https
        self._client = client
        self._credentials = credentials
        self.services = tuple(https)

    async def replica(self, base_url: str) -> Json | None:
        """Asked with the usual timeouts, not the health ones: a busy replica is slow, not gone."""
        try:
            response = await self._client.get(
                base_url.rstrip("/") + "/v1/ops/replica", headers=self._credentials.ops_headers()
            )
            body = response.json() if response.is_success else None
        except (httpx.HTTPError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    async def stats(self, service: str) -> Json:
        return await self._https[service].call("GET", "/v1/ops/stats")

    async def healthy(self, service: str) -> bool:
        return await self._https[service].healthy()

    async def spans(self, service: str, trace_id: str) -> list[Json]:
        answer = await self._https[service].call("GET", "/v1/ops/spans", params={"traceId": trace_id})
        return list(answer.get("spans", []))

    async def projections(self, service: str) -> list[Json]:
        answer = await self._https[service].call("GET", "/v1/ops/projections")
        return list(answer.get("projections", []))

    async def rebuild_projection(self, service: str, name: str) -> Json:
        return await self._https[service].call("POST", f"/v1/ops/projections/{seg(name)}/rebuild")

    async def events(self, service: str, subject: str) -> list[Json]:
        """What ``service`` published about ``subject`` (services without an outbox have none)."""
        try:
            answer = await self._https[service].call("GET", "/v1/ops/events", params={"subject": subject})
        except UpstreamError as exc:
            if exc.status == 404:
                return []
            raise
        return list(answer.get("events", []))


class HttpChaos:
    """The fault proxy's control API (``ACR_CHAOS_CONTROL_URL``; ``None`` when the stack runs none) and
    every service's ``/v1/ops/faults``."""

    def __init__(
        self, control: ServiceHttp | None, https: dict[str, ServiceHttp], every: dict[str, EveryReplica]
    ) -> None:
        self._control = control
        self._https = https
        self._every = every

    async def open_outage(self, outage: Json) -> Json:
        if self._control is None:
            raise DependencyUnavailable("no fault proxy: ACR_CHAOS_CONTROL_URL is not set")
        return await self._control.call("POST", "/outages", json=outage)

    async def outages(self) -> list[Json]:
        if self._control is None:
            return []
        return list((await self._control.call("GET", "/outages")).get("outages", []))

    async def open_fault(self, service: str, window: Json) -> Json:
        return await self._every[service].call("POST", "/v1/ops/faults", json=window)

    async def faults(self, service: str) -> list[Json]:
        return list((await self._https[service].call("GET", "/v1/ops/faults")).get("faults", []))
