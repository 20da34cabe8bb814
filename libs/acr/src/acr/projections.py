"""Read models rebuilt from the producers' bus archives, with reads switched over without downtime.

A projection is a read model built only from events. Its rows live in a *copy*: generation 0 is the table
the topology declares, each rebuild fills a fresh one (generation n, ``<table>-g<n>``). One pointer row per
projection says which copy readers use and, during a rebuild, which copy is being filled. A rebuild:

1. claims the pointer (``REBUILDING``; refused while another rebuild is alive), creates the fresh copy and
   names it on the pointer, so that every replica's live consumer writes each new event to both copies;
2. waits until every replica has read that pointer (its cache lasts ``POINTER_TTL_S``), then starts a
   replay of the bus's archive from the beginning until now; the replayed events reach the rebuild queue
   only (their rule matches ``replay-name``, every live rule excludes it), whose consumer writes them to
   the fresh copy with the live handler;
3. is caught up when the replay is COMPLETED and the rebuild queue is drained (seen empty twice): every
   event before the replay was in the archive, every later one was also written to the fresh copy;
4. switches the pointer to the fresh copy (one conditional write: readers move within ``POINTER_TTL_S``)
   and, once no reader can still hold the old pointer, drops the old copy.

Reads never fail meanwhile: a reader uses the copy its pointer names, and one that finds its copy gone
reads the pointer again. A rebuild whose process died is taken over once its heartbeat is
``STALE_AFTER_S`` old.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from acr.envelope import CloudEvent
from acr.errors import ServiceError
from acr.metrics import COUNTERS

log = logging.getLogger(__name__)

POINTER_TTL_S = 1.0
"""How long a process trusts the pointer it read: a switch reaches every reader within this."""
STALE_AFTER_S = 60.0
POLL_S = 0.5

T = TypeVar("T")


def record_lag(projection: str, event: CloudEvent) -> None:
    """Count a live ``event`` as applied to ``projection`` now: its lag is the time since it happened (a
    replayed one is not counted: it may be months old)."""
    COUNTERS.projection_applied(time.time() - event.time.timestamp(), projection)


class ProjectionState(StrEnum):
    LIVE = "LIVE"
    REBUILDING = "REBUILDING"


class RebuildInProgress(ServiceError):
    status, code = 409, "rebuild_in_progress"


class UnknownProjection(ServiceError):
    status, code = 404, "projection_not_found"


class CopyMissing(Exception):
    """The copy a read or write went to is gone (dropped after a switch): read the pointer again."""


@dataclass(frozen=True)
class Pointer:
    """Which copy of a projection is read, and which one a rebuild fills (``building``, once created)."""

    name: str
    generation: int = 0
    state: ProjectionState = ProjectionState.LIVE
    building: int | None = None
    owner: str | None = None
    heartbeat_at: float = 0.0
    last_rebuild: dict[str, Any] | None = None
    revision: int = 0
    """Grows by one with each write: a write is conditional on the revision it read."""

    @property
    def written(self) -> tuple[int, ...]:
        """The copies a live event goes to: the one read and, during a rebuild, the fresh one."""
        return (self.generation,) if self.building is None else (self.generation, self.building)


def copy_name(table: str, generation: int) -> str:
    """Generation 0 is the declared table; a rebuild's copy carries its generation."""
    return table if generation == 0 else f"{table}-g{generation}"


class Pointers(Protocol):
    def read(self, name: str) -> Pointer | None: ...

    def write(self, pointer: Pointer, expected: Pointer | None) -> Pointer | None:
        """Store ``pointer`` at the next revision if the stored one is still at ``expected``'s (None: there
        is none); the stored pointer, or None when another writer came first."""
        ...


class Copies(Protocol):
    def create(self, generation: int) -> None:
        """A fresh, empty copy (an earlier one of that generation, left by a failed rebuild, is replaced)."""
        ...

    def drop(self, generation: int) -> None: ...


class Archive(Protocol):
    def replay(self, replay_name: str, until: datetime) -> None:
        """Start replaying the bus's archive, from its first event until ``until``, to the rebuild rule."""
        ...

    def replay_state(self, replay_name: str) -> str:
        """EventBridge's state of the replay: STARTING, RUNNING, COMPLETED, CANCELLED, FAILED..."""
        ...


class RebuildQueue(Protocol):
    def pending(self) -> int:
        """Messages in the rebuild queue, visible or being handled."""
        ...


class Projection:
    """One projection as a process sees it: the pointer (cached ``ttl_s``), reads and writes that follow
    it, and its rebuild."""

    def __init__(
        self,
        name: str,
        pointers: Pointers,
        *,
        ttl_s: float = POINTER_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._pointers = pointers
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: Pointer | None = None
        self._read_at = 0.0

    def pointer(self, fresh: bool = False) -> Pointer:
        with self._lock:
            if fresh or self._cached is None or self._clock() - self._read_at >= self._ttl_s:
                self._cached = self._pointers.read(self.name) or Pointer(self.name)
                self._read_at = self._clock()
            return self._cached

    def read(self, query: Callable[[int], T]) -> T:
        """``query`` on the copy readers use; once more on a fresh pointer if that copy was dropped."""
        try:
            return query(self.pointer().generation)
        except CopyMissing:
            return query(self.pointer(fresh=True).generation)

    def building(self) -> int | None:
        """The copy a rebuild fills now, if any (the rebuild queue's consumer writes only there)."""
        return self.pointer().building


@dataclass
class Rebuild:
    """One rebuild of a projection, run to its end by ``run`` (in a thread of the process that was asked)."""

    projection: Projection
    pointers: Pointers
    copies: Copies
    archive: Archive
    queue: RebuildQueue
    owner: str
    settle_s: float = 2 * POINTER_TTL_S
    poll_s: float = POLL_S
    timeout_s: float = 600.0
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.time
    claimed: Pointer | None = field(default=None, init=False)

    def claim(self) -> Pointer:
        """Take the pointer for this rebuild; ``RebuildInProgress`` if another one is alive."""
        current = self.pointers.read(self.projection.name)
        base = current or Pointer(self.projection.name)
        if base.state is ProjectionState.REBUILDING and self.now() - base.heartbeat_at < STALE_AFTER_S:
            raise RebuildInProgress(f"{base.name} is being rebuilt by {base.owner}")
        claimed = replace(
            base, state=ProjectionState.REBUILDING, building=None, owner=self.owner, heartbeat_at=self.now()
        )
        stored = self.pointers.write(claimed, current)
        if stored is None:
            raise RebuildInProgress(f"{base.name} is being rebuilt by another process")
        self.claimed = stored
        return stored

    def run(self) -> Pointer:
        """Create, fill, catch up, switch, drop the old copy. On a failure the pointer goes back to LIVE on
        the copy it had (reads never moved) and the fresh copy is dropped."""
        assert self.claimed is not None, "claim first"
        pointer = self.claimed
        started = self.now()
        fresh = max(pointer.generation, pointer.building or 0) + 1
        try:
            self.copies.create(fresh)
            pointer = self._advance(pointer, building=fresh)
            log.info("rebuilding %s into generation %d: live events now go to both", pointer.name, fresh)
            self.sleep(self.settle_s)  # every replica now writes live events to both copies
            replay_name = f"{self.projection.name}-g{fresh}-{int(started)}"
            self.archive.replay(replay_name, datetime.fromtimestamp(self.now(), UTC))
            pointer = self._catch_up(pointer, replay_name, started)
        except RebuildInProgress:
            raise  # another rebuild owns the pointer (and maybe this generation): touch nothing
        except Exception as exc:
            pointer = self.claimed
            assert pointer is not None
            log.exception(
                "the rebuild of %s failed; reads stay on generation %d", pointer.name, pointer.generation
            )
            failed = {"generation": fresh, "status": "FAILED", "error": str(exc)[:200]}
            self._finish(pointer, replace(pointer, building=None, last_rebuild=failed | self._times(started)))
            self._drop(fresh)
            raise
        old = pointer.generation
        switched = replace(
            pointer,
            generation=fresh,
            building=None,
            last_rebuild={"generation": fresh, "status": "COMPLETED", "replay": replay_name}
            | self._times(started),
        )
        stored = self._finish(pointer, switched)
        log.info("%s caught up: reads switched to generation %d", pointer.name, fresh)
        self.sleep(self.settle_s)  # no reader holds the old pointer any more
        self._drop(old)
        return stored

    def _catch_up(self, pointer: Pointer, replay_name: str, started: float) -> Pointer:
        """Until the replay is COMPLETED and the rebuild queue was seen empty twice in a row."""
        empty_in_a_row = 0
        while empty_in_a_row < 2:
            if self.now() - started > self.timeout_s:
                raise TimeoutError(f"not caught up after {self.timeout_s:.0f} s")
            state = self.archive.replay_state(replay_name)
            if state in ("CANCELLED", "FAILED"):
                raise RuntimeError(f"replay {replay_name} {state}")
            empty_in_a_row = empty_in_a_row + 1 if state == "COMPLETED" and self.queue.pending() == 0 else 0
            pointer = self._advance(pointer)
            self.sleep(self.poll_s)
        return pointer

    def _advance(self, pointer: Pointer, **changes: Any) -> Pointer:
        """The pointer with ``changes`` and a new heartbeat; a rebuild that lost its pointer stops."""
        stored = self.pointers.write(replace(pointer, heartbeat_at=self.now(), **changes), pointer)
        if stored is None:
            raise RebuildInProgress(f"{pointer.name}: another rebuild took over")
        self.claimed = stored  # the pointer as this rebuild last wrote it
        return stored

    def _finish(self, pointer: Pointer, final: Pointer) -> Pointer:
        done = replace(final, state=ProjectionState.LIVE, owner=None, heartbeat_at=self.now())
        stored = self.pointers.write(done, pointer)
        if stored is None:
            raise RebuildInProgress(f"{pointer.name}: another rebuild took over")
        self.projection.pointer(fresh=True)
        return stored

    def _times(self, started: float) -> dict[str, Any]:
        return {
            "startedAt": datetime.fromtimestamp(started, UTC).isoformat(),
            "finishedAt": datetime.fromtimestamp(self.now(), UTC).isoformat(),
            "durationMs": round((self.now() - started) * 1000),
        }

    def _drop(self, generation: int) -> None:
        try:
            self.copies.drop(generation)
        except Exception:  # a copy left behind costs storage, never a read
            log.warning("could not drop generation %d of %s", generation, self.projection.name, exc_info=True)


class Projections:
    """A service's projections by name: what ``GET /v1/ops/projections`` lists and what a rebuild starts."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Projection, Callable[[], Rebuild]]] = {}

    def add(self, projection: Projection, rebuild: Callable[[], Rebuild]) -> None:
        self._entries[projection.name] = (projection, rebuild)

    def describe(self, lag_ms: Callable[[str], dict[str, float | None]]) -> list[dict[str, Any]]:
        """Each projection's state, the p50/p99 lag of its recent events and its last rebuild."""
        listed = []
        for name, (projection, _) in sorted(self._entries.items()):
            pointer = projection.pointer(fresh=True)
            listed.append(
                {
                    "name": name,
                    "state": pointer.state.value,
                    "lagMs": lag_ms(name),
                    "lastRebuild": pointer.last_rebuild,
                }
            )
        return listed

    def rebuild(self, name: str) -> Pointer:
        """Claim the projection (``RebuildInProgress`` if it is taken) and rebuild it in a thread."""
        if name not in self._entries:
            raise UnknownProjection(f"no projection {name!r}")
        rebuild = self._entries[name][1]()
        claimed = rebuild.claim()
        threading.Thread(target=_run_logged, args=(rebuild,), name=f"rebuild-{name}", daemon=True).start()
        return claimed


def _run_logged(rebuild: Rebuild) -> None:
    try:
        rebuild.run()
    except Exception:  # already logged and recorded on the pointer as the last rebuild
        return
