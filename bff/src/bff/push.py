"""Websocket push, without the websocket: a registry of connections that sends each rider every
version of each of its rides in order, exactly once per connection, and throttled ETA updates.

A connection remembers, per ride, the last version it sent. A live update is ordered by its CloudEvent
``sequence`` (the ride's version) against that one with the kernel's rule (``acr.ordering``): not newer is
dropped, the next one is sent, and one that came early (it skips versions) does not wait for the missing
ones to arrive: they are fetched from the ride history and sent first. A client
``resume`` fetches the stored versions above its ``afterVersion`` (ride-manager answers only for the
rider's own rides), then sends those above the last sent under the same per-ride lock, so replay and live
never duplicate or reorder. Nothing before the connection is replayed unasked.

What a client names is kept only once ride-manager said the ride is its rider's (the per-ride lock and
last version, the ride's owner), and every such table is bounded; identical resumes in flight at once
share one fetch. How many connections one rider and one client address may open is capped
(``ConnectionCaps``).

A client that reconnects sends its ``resume`` right after the handshake; live updates that reach a
brand-new connection wait out a short grace period first, so the resume is served before them and the
client gets every missed version in order instead of jumping ahead.

With several BFF replicas each one consumes its own copy of the ride stream and the ETA events, so every hub
sees every update and sends it to the connections it holds. An ETA does not name its rider: a hub that has
not seen the ride's versions (it started later) looks the rider up among the active rides.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from acr.errors import ServiceError
from acr.ordering import Order, order
from bff.ports import Json

log = logging.getLogger(__name__)

OUTBOX_SIZE = 1000
MAX_RIDE_ID = 128
RESUME_GRACE_S = 1.0
MAX_RIDES_PER_CONNECTION = 64  # rides a connection keeps a lock and a last version for (least recent go)
CLOSE_TOO_SLOW = 1013


@dataclass(frozen=True)
class ConnectionCaps:
    """How many push connections one rider, and one client address, may hold open on this replica."""

    per_rider: int = 5
    per_address: int = 500


class TooManyConnections(Exception):
    """The rider or the client address already holds its cap of open connections."""


class VersionSource(Protocol):
    """The stored history of ride versions (ride-manager)."""

    async def versions(self, rider_id: str, ride_id: str, after_version: int) -> list[Json]: ...


class ActiveRides(Protocol):
    """Who rides what right now (ride-manager's ``/v1/ops/rides``): the rider of a ride an ETA is about."""

    async def ops_rides(self, active: bool) -> Json: ...


class GapNotFilled(Exception):
    """Versions between the last one sent and a newer one are not in the history yet; retry later."""


@dataclass(frozen=True)
class Resume:
    """Client -> server: send me every version of ``ride_id`` above ``after_version``."""

    ride_id: str
    after_version: int


def parse_client_message(raw: str) -> Resume:
    """The command in a client text frame; raises ``ValueError`` when it is not one we understand."""
    message = json.loads(raw)
    if not isinstance(message, dict) or message.get("type") != "resume":
        raise ValueError('expected {"type": "resume", "rideId", "afterVersion"}')
    ride_id, after = message.get("rideId"), message.get("afterVersion")
    if not isinstance(ride_id, str) or not 0 < len(ride_id) <= MAX_RIDE_ID:
        raise ValueError("rideId must be a non-empty string")
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise ValueError("afterVersion must be an integer >= 0")
    return Resume(ride_id, after)


def version_of(ride: Json) -> int:
    """The ``version`` of a Ride JSON (0 when it has none)."""
    version = ride.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def ride_updated_message(ride: Json, trace_id: str | None = None) -> Json:
    """The ``ride.updated`` frame for one Ride version, with the ride's trace id when the hub knows it (the
    app can show it; the ops dashboard draws that trace)."""
    message = {
        "type": "ride.updated",
        "rideId": ride.get("rideId"),
        "version": version_of(ride),
        "status": ride.get("status"),
        "ride": ride,
    }
    return message | ({"traceId": trace_id} if trace_id else {})


class Connection:
    """One websocket of one rider: an outbox the socket writer drains, and what was sent per ride."""

    def __init__(
        self,
        rider_id: str,
        outbox_size: int = OUTBOX_SIZE,
        settles_at: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        address: str = "",
        max_rides: int = MAX_RIDES_PER_CONNECTION,
    ) -> None:
        self.rider_id = rider_id
        self.address = address
        self._settles_at = settles_at
        self._clock = clock
        self._max_rides = max_rides
        self.outbox: asyncio.Queue[Json] = asyncio.Queue(outbox_size)
        self.closing: int | None = None  # the close code, once the socket is to be closed
        self._last: dict[str, int] = {}
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()

    def lock(self, ride_id: str) -> asyncio.Lock:
        """The lock that serializes sending versions of ``ride_id`` on this connection (call only for a
        ride of this rider). Beyond ``max_rides`` rides, the least recently used idle one is forgotten."""
        lock = self._locks.get(ride_id)
        if lock is not None:
            self._locks.move_to_end(ride_id)
            return lock
        lock = self._locks[ride_id] = asyncio.Lock()
        idle = [ride for ride, held in self._locks.items() if not held.locked() and ride != ride_id]
        for ride in idle[: max(0, len(self._locks) - self._max_rides)]:
            del self._locks[ride]
            self._last.pop(ride, None)
        return lock

    def rides_kept(self) -> int:
        return len(self._locks)

    def end(self, code: int, message: Json) -> None:
        """Close the socket with ``code`` once ``message`` and the frames queued before it are written."""
        if self.closing is None:
            self.closing = code
        self.send(message)

    def last_sent(self, ride_id: str) -> int | None:
        return self._last.get(ride_id)

    async def settled(self) -> None:
        """Return once the connection is past its resume grace period."""
        remaining = self._settles_at - self._clock()
        if remaining > 0:
            await asyncio.sleep(remaining)

    def send(self, message: Json) -> None:
        """Queue a frame; a client too slow to drain its outbox is marked for closing."""
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.closing = CLOSE_TOO_SLOW

    def send_ride(
        self, ride_id: str, ride: Json, trace_id: str | None = None, sequence: int | None = None
    ) -> None:
        """Queue a version and remember its ``sequence`` (default: the ride's version) as the last sent
        (call with ``lock(ride_id)`` held)."""
        self.send(ride_updated_message(ride, trace_id))
        self._last[ride_id] = version_of(ride) if sequence is None else sequence


class PushHub:
    """Every open connection, by rider; which rider owns which ride; when each ride's ETA was pushed."""

    def __init__(
        self,
        history: VersionSource,
        eta_interval_s: float = 2.0,
        max_rides: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        resume_grace_s: float | None = None,
        active_rides: ActiveRides | None = None,
        owners_refresh_s: float = 5.0,
        caps: ConnectionCaps | None = None,
    ) -> None:
        self._history = history
        self._caps = caps or ConnectionCaps()
        self._by_address: dict[str, int] = {}
        self._fetching: dict[tuple[str, str, int], asyncio.Future[list[Json]]] = {}
        self._active_rides = active_rides
        self._owners_refresh_s = owners_refresh_s
        self._owners_at: float | None = None
        self._resume_grace_s = RESUME_GRACE_S if resume_grace_s is None else resume_grace_s
        self._eta_interval_s = eta_interval_s
        self._max_rides = max_rides
        self._clock = clock
        self._connections: dict[str, set[Connection]] = {}
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._eta_at: OrderedDict[str, float] = OrderedDict()
        self._traces: OrderedDict[str, str] = OrderedDict()  # ride -> its trace id, from its updates

    def connect(self, rider_id: str, address: str = "") -> Connection:
        """Register a new connection of ``rider_id`` from ``address``; raises ``TooManyConnections`` (and
        keeps nothing) when either already holds its cap."""
        mine = self._connections.get(rider_id, ())
        if len(mine) >= self._caps.per_rider or self._by_address.get(address, 0) >= self._caps.per_address:
            raise TooManyConnections(f"{rider_id} from {address or 'an unknown address'}")
        connection = Connection(
            rider_id, settles_at=self._clock() + self._resume_grace_s, clock=self._clock, address=address
        )
        self._connections.setdefault(rider_id, set()).add(connection)
        self._by_address[address] = self._by_address.get(address, 0) + 1
        return connection

    def disconnect(self, connection: Connection) -> None:
        """Forget a closed connection."""
        mine = self._connections.get(connection.rider_id)
        if mine is None or connection not in mine:
            return
        mine.discard(connection)
        if not mine:
            del self._connections[connection.rider_id]
        left = self._by_address.pop(connection.address, 1) - 1
        if left:
            self._by_address[connection.address] = left

    def connection_count(self) -> int:
        return sum(len(c) for c in self._connections.values())

    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table.pop(key, None)
        table[key] = value
        while len(table) > self._max_rides:
            table.popitem(last=False)

    async def ride_updated(
        self, rider_id: str, ride: Json, trace_id: str | None = None, sequence: int | None = None
    ) -> None:
        """Deliver one ride version to every connection of its rider; raises ``GapNotFilled`` when a
        connection could not get the versions it misses (the message should come again). ``trace_id`` is
        the trace the version came in (the ride's), sent with it and with the ride's later frames.
        ``sequence`` is the event's (None: it carried none, the ride's version stands in)."""
        sequence = version_of(ride) if sequence is None else sequence
        ride_id = str(ride.get("rideId"))
        self._remember(self._owners, ride_id, rider_id)
        if trace_id:
            self._remember(self._traces, ride_id, trace_id)
        incomplete = 0
        for connection in list(self._connections.get(rider_id, ())):
            try:
                await self._deliver(connection, ride_id, ride, sequence)
            except (GapNotFilled, ServiceError) as exc:
                log.warning("ride %s v%d: gap not filled on a connection: %s", ride_id, version_of(ride), exc)
                incomplete += 1
        if incomplete:
            raise GapNotFilled(f"{incomplete} connection(s) miss versions of {ride_id}")

    async def _deliver(self, connection: Connection, ride_id: str, ride: Json, sequence: int) -> None:
        """Stale (not newer than the last sent) is dropped; early is sent after the versions it skips
        (fetched here: a hub hears every version, but the missing ones need not be waited for); nothing sent
        yet on this connection sends it as it is (no replay unasked)."""
        if connection.last_sent(ride_id) is None:
            await connection.settled()
        async with connection.lock(ride_id):
            last = connection.last_sent(ride_id)
            match order(last, sequence):
                case Order.STALE:
                    return
                case Order.EARLY:
                    assert last is not None
                    await self._fill(connection, ride_id, last, sequence)
            connection.send_ride(ride_id, ride, self._traces.get(ride_id), sequence)

    async def _fill(self, connection: Connection, ride_id: str, last: int, upto: int) -> None:
        """Send the stored versions ``last+1 .. upto-1``; raise at the first one missing (after sending
        the ones before it)."""
        stored = await self._history.versions(connection.rider_id, ride_id, last)
        by_version = {version_of(r): r for r in stored}
        for version in range(last + 1, upto):
            if version not in by_version:
                raise GapNotFilled(f"version {version} of {ride_id} is not stored yet")
            connection.send_ride(ride_id, by_version[version], self._traces.get(ride_id))

    async def resume(self, connection: Connection, command: Resume) -> None:
        """Send the stored versions above ``command.after_version`` not sent yet, in order.
        Errors become an ``error`` frame (``ride_not_found`` for an unknown or foreign ride), and then
        nothing is kept about the ride named."""
        try:
            stored = await self._versions(connection.rider_id, command.ride_id, command.after_version)
        except ServiceError as exc:
            code = "ride_not_found" if exc.status == 404 else exc.code
            connection.send({"type": "error", "code": code, "rideId": command.ride_id})
            return
        self._remember(self._owners, command.ride_id, connection.rider_id)  # the ride is the rider's
        async with connection.lock(command.ride_id):
            for ride in sorted(stored, key=version_of):
                version, last = version_of(ride), connection.last_sent(command.ride_id)
                if version > command.after_version and order(last, version, gapless=False) == Order.APPLY:
                    connection.send_ride(command.ride_id, ride, self._traces.get(command.ride_id))

    async def _versions(self, rider_id: str, ride_id: str, after_version: int) -> list[Json]:
        """The stored versions, one fetch for identical requests in flight at once (a resume flood from
        several connections of one rider costs one call)."""
        key = (rider_id, ride_id, after_version)
        fetch = self._fetching.get(key)
        if fetch is None:
            fetch = asyncio.ensure_future(self._history.versions(rider_id, ride_id, after_version))
            self._fetching[key] = fetch
            fetch.add_done_callback(lambda _: self._fetching.pop(key, None))
        return await asyncio.shield(fetch)

    def fetches_in_flight(self) -> int:
        return len(self._fetching)

    def push_eta(self, rider_id: str, payload: Json) -> None:
        """Send a ``ride.eta`` frame to every connection of ``rider_id`` (no throttling here)."""
        for connection in list(self._connections.get(rider_id, ())):
            connection.send(payload)

    async def owner_of(self, ride_id: str) -> str | None:
        """The rider of ``ride_id``: known from its updates or a resume, else looked up among the active
        rides (at most once every ``owners_refresh_s``, and only while a rider is connected here), so a
        replica that started after the ride's last version still pushes its ETAs."""
        rider_id = self._owners.get(ride_id)
        if rider_id is not None or self._active_rides is None or not self._connections:
            return rider_id
        now = self._clock()
        if self._owners_at is not None and now - self._owners_at < self._owners_refresh_s:
            return None
        self._owners_at = now
        try:
            active = await self._active_rides.ops_rides(True)
        except ServiceError as exc:
            log.warning("the riders of the active rides are unknown for now: %s", exc)
            return None
        for ride in active.get("rides", []):
            if (
                isinstance(ride, dict)
                and isinstance(ride.get("rideId"), str)
                and isinstance(ride.get("riderId"), str)
            ):
                self._remember(self._owners, ride["rideId"], ride["riderId"])
        return self._owners.get(ride_id)

    async def eta_updated(
        self,
        ride_id: str,
        phase: str,
        eta_seconds: float,
        lat: float,
        lon: float,
        trace_id: str | None = None,
    ) -> bool:
        """Push a ride's new ETA to its rider, at most once every ``eta_interval_s`` per ride.
        False when dropped (throttled, or the ride's rider is not found)."""
        rider_id = await self.owner_of(ride_id)
        now = self._clock()
        last = self._eta_at.get(ride_id)
        if rider_id is None or (last is not None and now - last < self._eta_interval_s):
            return False
        self._remember(self._eta_at, ride_id, now)
        self.push_eta(
            rider_id,
            {
                "type": "ride.eta",
                "rideId": ride_id,
                "phase": phase,
                "etaSeconds": eta_seconds,
                "lat": lat,
                "lon": lon,
            }
            | ({"traceId": trace_id} if trace_id else {}),
        )
        return True
