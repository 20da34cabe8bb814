"""In-memory fakes of the BFF's ports, behaving like the HTTP adapters (same errors)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from acr.errors import DependencyUnavailable, ValidationFailed
from acr_testkit.identity import settings_for
from bff.auth import TokenSigner
from bff.errors import ServiceUnavailable, UpstreamError
from bff.stats import COUNTER_DEFAULTS

Json = dict[str, Any]
Headers = dict[str, str]

SETTINGS = settings_for(
    "bff",
    token_secret="unit-test-secret-0123456789-abcdef",
    ops_token="unit-ops-token",
    eta_push_s=2,
    log_format="text",
    log_level="WARNING",
)
OPS = {"X-Ops-Token": "unit-ops-token"}


def token_for(rider_id: str, name: str = "Ada", ttl_s: int = 3600) -> str:
    return TokenSigner(SETTINGS.token_secret, ttl_s).issue(rider_id, name)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def money(amount: str) -> Json:
    return {"amount": amount, "currency": "EUR"}


def ride_json(
    ride_id: str,
    rider_id: str,
    version: int,
    status: str = "REQUESTED",
    requested_at: str = "2026-01-01T00:00:00Z",
) -> Json:
    place = {"label": "Somewhere 1", "lat": 48.85, "lon": 2.35}
    return {
        "rideId": ride_id,
        "riderId": rider_id,
        "status": status,
        "version": version,
        "pickup": place,
        "dropoff": place,
        "carId": None,
        "quotedFare": money("12.30"),
        "fare": None,
        "distanceMeters": None,
        "durationSeconds": None,
        "pickupEtaSeconds": None,
        "arrivalEtaSeconds": None,
        "cancellation": None,
        "payment": None,
        "pointsEarned": None,
        "requestedAt": requested_at,
        "updatedAt": requested_at,
        "timeline": [],
    }


def not_found(code: str = "ride_not_found") -> UpstreamError:
    return UpstreamError(404, code, "no such thing")


class Switch:
    """A fake that can be taken down."""

    name = "fake"
    down = False

    def check(self) -> None:
        if self.down:
            raise ServiceUnavailable(self.name)


class FakeRideManager(Switch):
    name = "ride-manager"

    def __init__(self) -> None:
        self.versions_of: dict[str, list[Json]] = {}
        self.quotes: dict[str, str] = {}
        self.keys: dict[tuple[str, str], str] = {}
        self.book_error: UpstreamError | None = None
        self.projection_delay = 0  # list calls that still show the previous version
        self.list_calls = 0
        self.version_calls: list[tuple[str, int]] = []

    def add(self, ride: Json) -> None:
        self.versions_of.setdefault(ride["rideId"], []).append(ride)

    def _own(self, rider_id: str, ride_id: str) -> list[Json]:
        versions = self.versions_of.get(ride_id)
        if not versions or versions[-1]["riderId"] != rider_id:
            raise not_found()
        return versions

    async def quote(self, rider_id: str, pickup: Json, dropoff: Json) -> Json:
        self.check()
        quote_id = f"q{len(self.quotes) + 1}"
        self.quotes[quote_id] = rider_id
        return {"quoteId": quote_id, "pickup": pickup, "dropoff": dropoff, "fare": money("12.30")}

    async def book(self, rider_id: str, quote_id: str, idempotency_key: str) -> Json:
        self.check()
        if self.book_error:
            raise self.book_error
        if self.quotes.get(quote_id) != rider_id:
            raise not_found("quote_not_found")
        ride_id = self.keys.setdefault((rider_id, idempotency_key), f"ride_{len(self.keys) + 1}")
        if ride_id not in self.versions_of:
            self.add(ride_json(ride_id, rider_id, 1, requested_at=f"2026-01-01T00:00:{len(self.keys):02d}Z"))
        return self.versions_of[ride_id][-1]

    async def ride(self, rider_id: str, ride_id: str) -> Json:
        self.check()
        return self._own(rider_id, ride_id)[-1]

    async def rides(self, rider_id: str, limit: int, cursor: str | None) -> Json:
        self.check()
        self.list_calls += 1
        lagging = self.list_calls <= self.projection_delay
        rides = []
        for versions in self.versions_of.values():
            if versions[-1]["riderId"] != rider_id:
                continue
            shown = versions[:-1] if lagging else versions
            if shown:
                rides.append(shown[-1])
        rides.sort(key=lambda r: r["requestedAt"], reverse=True)
        return {"rides": rides[:limit], "nextCursor": None}

    async def versions(self, rider_id: str, ride_id: str, after_version: int) -> list[Json]:
        self.check()
        self.version_calls.append((ride_id, after_version))
        return [r for r in self._own(rider_id, ride_id) if r["version"] > after_version]

    async def cancel(self, rider_id: str, ride_id: str) -> Json:
        self.check()
        current = self._own(rider_id, ride_id)[-1]
        if current["status"] == "CANCELLED":
            return current
        self.add({**current, "status": "CANCELLED", "version": current["version"] + 1})
        return self.versions_of[ride_id][-1]

    async def ops_cancel(self, ride_id: str) -> Json:
        self.check()
        if ride_id not in self.versions_of:
            raise not_found()
        current = self.versions_of[ride_id][-1]
        if current["status"] in ("CANCELLED", "PAID", "COMPLETED", "PAYMENT_FAILED"):
            raise UpstreamError(409, "not_cancellable", "the ride can no longer be cancelled")
        cancellation = {"reason": "OPERATOR_CANCELLED", "fee": None, "at": current["updatedAt"]}
        self.add(
            {
                **current,
                "status": "CANCELLED",
                "version": current["version"] + 1,
                "cancellation": cancellation,
            }
        )
        return self.versions_of[ride_id][-1]

    async def ops_rides(self, active: bool) -> Json:
        self.check()
        return {"rides": [v[-1] for v in self.versions_of.values()]}


class FakeAddressFinder(Switch):
    name = "address-finder"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def autocomplete(self, q: str, limit: int) -> Json:
        self.check()
        self.calls.append(("autocomplete", q, limit))
        return {"results": [{"addressId": "a1", "label": f"{q} street 1", "lat": 48.85, "lon": 2.35}][:limit]}

    async def reverse(self, lat: float, lon: float) -> Json:
        self.check()
        if abs(lat) < 1:
            raise UpstreamError(422, "outside_service_area", "outside the city")
        return {"addressId": "a1", "label": "x", "lat": lat, "lon": lon, "distanceMeters": 3.0}

    async def map(self, bbox: str, zoom: int) -> Json:
        self.check()
        self.calls.append(("map", bbox, zoom))
        return {"streets": [], "bounds": [0, 0, 1, 1]}


class FakeFleet(Switch):
    name = "car-dispatcher"

    def __init__(self) -> None:
        self.paused = False
        self.stalled: list[str] = []
        self.returned: list[str] = []

    async def cars(self) -> Json:
        self.check()
        return {
            "cars": [{"carId": "car-00001", "state": "AVAILABLE", "lat": 48.85, "lon": 2.35, "rideId": None}]
        }

    async def stall(self, car_id: str) -> Json:
        self.check()
        self.stalled.append(car_id)
        return {"carId": car_id, "stalled": True}

    async def return_to_service(self, car_id: str) -> Json:
        self.check()
        self.returned.append(car_id)
        return {"carId": car_id, "state": "AVAILABLE"}

    async def set_dispatch(self, paused: bool) -> Json:
        self.check()
        self.paused = paused
        return {"paused": paused}


class FakeLoyalty(Switch):
    name = "reward"

    def __init__(self) -> None:
        self.riders: dict[str, Json] = {}

    async def rider(self, rider_id: str) -> Json:
        self.check()
        return self.riders.get(
            rider_id, {"riderId": rider_id, "rideCount": 0, "points": 0, "tier": "BRONZE", "rating": 5.0}
        )


class FakePayments(Switch):
    name = "payment"

    def __init__(self) -> None:
        self.mode = "ok"
        self.retried: list[str] = []

    async def charges(self, ride_id: str | None) -> Json:
        self.check()
        return {
            "charges": [
                {
                    "chargeId": "c1",
                    "rideId": ride_id or "ride_1",
                    "type": "capture",
                    "amount": money("12.30"),
                    "at": "2026-01-01T00:00:00Z",
                }
            ]
        }

    async def retry(self, ride_id: str) -> Json:
        self.check()
        self.retried.append(ride_id)
        return {"rideId": ride_id, "status": "RETRYING"}

    async def set_gateway(self, mode: str) -> Json:
        self.check()
        self.mode = mode
        return {"mode": mode}


class FakeServiceStats:
    def __init__(self, services: tuple[str, ...]) -> None:
        self.services = services
        self.down: set[str] = set()
        self.counters: dict[str, Json] = {}
        self.published: dict[str, list[Json]] = {}
        self.processes: dict[str, Json] = {}  # base URL -> who answers there (none: nothing answers)
        self.read_models: dict[str, dict[str, Json]] = {
            "ride-manager": {
                "ride-history": {
                    "name": "ride-history",
                    "state": "LIVE",
                    "lagMs": {"p50": 12.0, "p99": 40.0},
                    "lastRebuild": None,
                }
            },
            "reward": {
                "rider-stats": {"name": "rider-stats", "state": "LIVE", "lagMs": {}, "lastRebuild": None}
            },
        }

    async def projections(self, service: str) -> list[Json]:
        if service in self.down:
            raise ServiceUnavailable(service)
        return [dict(p) for p in self.read_models.get(service, {}).values()]

    async def rebuild_projection(self, service: str, name: str) -> Json:
        if service in self.down:
            raise ServiceUnavailable(service)
        state = self.read_models.get(service, {}).get(name)
        if state is None:
            raise UpstreamError(404, "projection_not_found", "no such projection")
        if state["state"] == "REBUILDING":
            raise UpstreamError(409, "rebuild_in_progress", "it is being rebuilt")
        state["state"] = "REBUILDING"
        return {"service": service, "name": name, "state": "REBUILDING"}

    async def replica(self, base_url: str) -> Json | None:
        return self.processes.get(base_url)

    async def events(self, service: str, subject: str) -> list[Json]:
        if service in self.down:
            raise ServiceUnavailable(service)
        return [e for e in self.published.get(service, []) if e.get("subject") == subject]

    async def stats(self, service: str) -> Json:
        if service in self.down:
            raise ServiceUnavailable(service)
        return self.counters.get(service, COUNTER_DEFAULTS | {"published": 1})

    async def healthy(self, service: str) -> bool:
        return service not in self.down


class FakeDeadLetters:
    """Each service's DLQs, ``{service: {queue: {reason: count}}}``, the BFF's own included; a service in
    ``down`` does not answer; a redrive of a queue the service does not have is its 404, passed on
    (test_bff_contract.py runs the same cases against the real adapter)."""

    def __init__(
        self, services: tuple[str, ...], depths: dict[str, dict[str, dict[str, int]]] | None = None
    ) -> None:
        self.services = ("bff", *services)
        default = {"reward": {"acr-reward-events-dlq": {"unknown_type": 2}}}
        self.depths = default if depths is None else depths
        self.down: set[str] = set()
        self.redriven: list[tuple[str, str]] = []

    async def queues(self, service: str) -> list[Json]:
        if service in self.down:
            raise ServiceUnavailable(service)
        own = self.depths.get(service, {})
        return [{"queue": q, "depth": sum(r.values()), "reasons": r} for q, r in sorted(own.items())]

    async def redrive(self, service: str, queue: str) -> Json:
        if service in self.down:
            raise ServiceUnavailable(service)
        own = self.depths.get(service, {})
        if queue not in own:
            raise UpstreamError(404, "not_found", f"{queue} is not a dead-letter queue of {service}")
        self.redriven.append((service, queue))
        moved = sum(own[queue].values())
        own[queue] = {}
        return {"queue": queue, "redriven": moved}


class FakeChaos:
    """A fault proxy and each service's fault windows, in memory, answering as the contract says; a
    service in ``down`` does not answer, one in ``refusing`` answers 422."""

    def __init__(self, *, proxied: bool = True) -> None:
        self.proxied = proxied
        self.opened_outages: list[Json] = []
        self.windows: dict[str, list[Json]] = {}
        self.down: set[str] = set()
        self.refusing: set[str] = set()
        self._ids = 0

    def _next_id(self, kind: str) -> str:
        self._ids += 1
        return f"{kind}_{self._ids}"

    async def open_outage(self, outage: Json) -> Json:
        if not self.proxied:
            raise DependencyUnavailable("no fault proxy: ACR_CHAOS_CONTROL_URL is not set")
        opened = outage | {
            "outageId": self._next_id("outage"),
            "until": "2030-01-01T00:00:10.000Z",
            "open": True,
        }
        self.opened_outages.append(opened | {"counts": {"refused": 0, "reset": 0, "held": 0, "delayed": 0}})
        return opened

    async def outages(self) -> list[Json]:
        if not self.proxied:
            return []
        return list(self.opened_outages)

    async def open_fault(self, service: str, window: Json) -> Json:
        if service in self.down:
            raise ServiceUnavailable(service)
        if service in self.refusing:
            raise ValidationFailed(f"{service} refuses {window['fault']}")
        opened = window | {"faultId": self._next_id("f"), "until": "2030-01-01T00:01:00.000Z"}
        self.windows.setdefault(service, []).append(opened)
        return opened

    async def faults(self, service: str) -> list[Json]:
        if service in self.down:
            raise ServiceUnavailable(service)
        return list(self.windows.get(service, []))


def error_of(response: object, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and "Traceback" not in body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def book(client: TestClient, headers: Headers, key: str = "k1") -> dict[str, object]:
    quote = client.post(
        "/api/v1/quotes",
        headers=headers,
        json={"pickup": {"addressId": "a1"}, "dropoff": {"lat": 48.8, "lon": 2.3}},
    )
    assert quote.status_code == 201, quote.text
    ride = client.post(
        "/api/v1/rides",
        headers={**headers, "Idempotency-Key": key},
        json={"quoteId": quote.json()["quoteId"]},
    )
    assert ride.status_code == 202, ride.text
    return ride.json()  # type: ignore[no-any-return]
