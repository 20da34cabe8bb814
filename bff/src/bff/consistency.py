"""Read-your-writes for the ride history: a write answers with a consistency token (the ride and its
version) that the client sends back on its reads, so whichever BFF replica serves the read waits a little
for the read model to show that version. Each process also remembers, per rider, the last ride written
through it, for clients that send no token."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bff.ports import Json


@dataclass(frozen=True)
class Written:
    """A ride version a rider wrote through this BFF."""

    ride_id: str
    version: int
    requested_at: str
    at: float


def _version(ride: Json) -> int:
    version = ride.get("version")
    return version if isinstance(version, int) else 0


def written_from(ride: Json, now: float) -> Written | None:
    """What to remember of a ride the rider just wrote (None when the answer has no ride id)."""
    ride_id = ride.get("rideId")
    if not isinstance(ride_id, str):
        return None
    return Written(ride_id, _version(ride), str(ride.get("requestedAt") or ""), now)


CONSISTENCY_HEADER = "ACR-Consistency-Token"
MAX_TOKEN = 512


def token_of(ride: Json) -> str | None:
    """The consistency token of a ride the rider just wrote (None when the answer has no ride id)."""
    written = written_from(ride, 0.0)
    if written is None:
        return None
    fields = {"u": str(ride.get("riderId") or ""), "r": written.ride_id, "v": written.version}
    fields["t"] = written.requested_at
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode()


def written_from_token(token: str, rider_id: str, now: float) -> Written | None:
    """What ``rider_id`` wrote according to its consistency token (None for another rider's token, e.g. a
    client that switched riders); ``ValueError`` when it is not one of ours. The token is not secret: a
    forged one can only make its sender's own read wait (``poll_until``'s 2 s)."""
    try:
        if len(token) > MAX_TOKEN:
            raise ValueError("too long")
        fields = json.loads(base64.urlsafe_b64decode(token.encode()))
        owner, ride_id, version, requested_at = fields["u"], fields["r"], fields["v"], fields["t"]
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise ValueError(f"{CONSISTENCY_HEADER} is not a token this API issued") from exc
    if not all(isinstance(v, str) for v in (owner, ride_id, requested_at)) or not isinstance(version, int):
        raise ValueError(f"{CONSISTENCY_HEADER} is not a token this API issued")
    return Written(ride_id, version, requested_at, now) if owner == rider_id else None


def page_shows(page: Json, written: Written) -> bool:
    """True when a first page of history is fresh for ``written``: the ride is there at that version or
    newer, or it is older than the whole (full) page and so belongs on a later page."""
    rides = [r for r in page.get("rides", []) if isinstance(r, dict)]
    for ride in rides:
        if ride.get("rideId") == written.ride_id:
            return _version(ride) >= written.version
    if page.get("nextCursor") and rides and written.requested_at:
        return str(rides[-1].get("requestedAt") or "") > written.requested_at
    return False


class WriteLog:
    """The last write of each rider, forgotten after ``ttl_s`` (the projection is surely there by then)."""

    def __init__(
        self, ttl_s: float = 30.0, max_riders: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_riders
        self._clock = clock
        self._last: OrderedDict[str, Written] = OrderedDict()

    def record(self, rider_id: str, ride: Json) -> None:
        """Remember the ride (as answered by the write) that ``rider_id`` just wrote."""
        written = written_from(ride, self._clock())
        if written is None:
            return
        self._last.pop(rider_id, None)
        self._last[rider_id] = written
        while len(self._last) > self._max:
            self._last.popitem(last=False)

    def pending(self, rider_id: str) -> Written | None:
        """The rider's last write if it is recent."""
        written = self._last.get(rider_id)
        if written is None or self._clock() - written.at > self._ttl_s:
            return None
        return written

    def settle(self, rider_id: str, written: Written) -> None:
        """The read model showed ``written``: stop waiting for it."""
        if self._last.get(rider_id) == written:
            del self._last[rider_id]


def ride_shows(ride: Json, written: Written | None) -> bool:
    """True when a Ride answer is at least as new as what the rider wrote to it."""
    return written is None or ride.get("rideId") != written.ride_id or _version(ride) >= written.version


async def poll_until(
    fetch: Callable[[], Awaitable[Json]],
    done: Callable[[Json], bool],
    *,
    timeout_s: float = 2.0,
    interval_s: float = 0.1,
) -> tuple[Json, bool]:
    """``fetch()`` again every ``interval_s`` until ``done(answer)`` or ``timeout_s`` passes.
    Returns the last answer and whether it was done."""
    answer = await fetch()
    deadline = time.monotonic() + timeout_s
    while not done(answer):
        if time.monotonic() + interval_s > deadline:
            return answer, False
        await asyncio.sleep(interval_s)
        answer = await fetch()
    return answer, True
