"""Governance across slices: a subscription may only name an event (and a version of it) its producer
publishes, from a producer whose allow-list names the consumer's context; a service may only publish events
of its own context onto its own bus, and consume its own events only into a read model it can rebuild
from its bus's archive."""

from __future__ import annotations

from collections.abc import Mapping

from acr.catalog import BY_MODEL
from acr.catalog.base import EventData
from acr.topology.allow_lists import ALLOW_LISTS
from acr.topology.model import ServiceTopology


def violations(
    slices: list[ServiceTopology], allow_lists: Mapping[str, tuple[str, ...]] = ALLOW_LISTS
) -> list[str]:
    """Human-readable problems; empty when the topology is consistent."""
    problems: list[str] = []
    published = {BY_MODEL[m].type: s.service for s in slices for m in s.publishes}
    streams = {stream.name for s in slices for stream in s.streams}
    for s in slices:
        for model in s.publishes:
            if BY_MODEL[model].context != s.context:
                problems.append(
                    f"{s.service} publishes {BY_MODEL[model].type} outside its context {s.context}"
                )
        problems += _subscription_problems(s, published, allow_lists)
        problems += _stream_problems(s, streams, allow_lists)
    return problems


def _subscription_problems(
    s: ServiceTopology, published: dict[str, str], allow_lists: Mapping[str, tuple[str, ...]]
) -> list[str]:
    problems: list[str] = []
    for sub in s.subscriptions:
        for spec in sub.specs():
            if spec.type not in published:
                problems.append(
                    f"{s.service}/{sub.queue} subscribes to {spec.type}, which no service publishes"
                )
            elif sub.replayed:  # a rebuild reads its own archived events back, and only those
                if published[spec.type] != s.service or spec.destinations[-1].kind != "bus":
                    problems.append(f"{s.service}/{sub.queue} replays {spec.type}, not its own bus's event")
            elif published[spec.type] == s.service and spec.model not in _rebuilt(s):
                problems.append(f"{s.service}/{sub.queue} subscribes to its own event {spec.type}")
            else:
                problems += _allowed(s, f"{s.service}/{sub.queue}", spec.model, allow_lists)
        for model, version in sub.versions:
            problems += _pinned(s, sub.queue, model, version, sub.events)
    for ts in s.topic_subscriptions:
        spec = BY_MODEL[ts.event]
        if spec.type not in published:
            problems.append(f"{s.service}/{ts.queue} subscribes to {spec.type}, which no service publishes")
        else:
            problems += _allowed(s, f"{s.service}/{ts.queue}", ts.event, allow_lists)
    return problems


def _rebuilt(s: ServiceTopology) -> set[type[EventData]]:
    """The service's own events it replays from its archive: the read models it builds from them may also
    consume them live (a rebuildable read model reads its own events both ways, never anything else)."""
    return {model for sub in s.subscriptions if sub.replayed for model in sub.events}


def _pinned(
    s: ServiceTopology, queue: str, model: type[EventData], version: int, events: tuple[type[EventData], ...]
) -> list[str]:
    spec = BY_MODEL[model]
    if model not in events:
        return [f"{s.service}/{queue} pins {spec.type} v{version} but does not subscribe to it"]
    if version != spec.version:
        return [
            f"{s.service}/{queue} reads {spec.type} v{version}, but {spec.context} publishes "
            f"v{spec.version} only: move the consumer to v{spec.version} (handle the change, then pin "
            f"{spec.version}), or ask {spec.context} to publish v{version} again"
        ]
    return []


def _stream_problems(
    s: ServiceTopology, streams: set[str], allow_lists: Mapping[str, tuple[str, ...]]
) -> list[str]:
    problems: list[str] = []
    for model in s.reads:
        spec = BY_MODEL[model]
        destination = spec.destination
        if destination.kind != "stream":
            problems.append(
                f"{s.service} reads {spec.type} from a stream, but it is published on {destination}"
            )
        elif destination.name not in streams:
            problems.append(f"{s.service} reads the stream {destination.name}, which no service declares")
        else:
            problems += _allowed(s, s.service, model, allow_lists)
    return problems


def _allowed(
    s: ServiceTopology, who: str, model: type[EventData], allow_lists: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """The consumer's context must be on the producer's allow-list (unless they share an account)."""
    producer, consumer = BY_MODEL[model].context, s.deploy_context
    if producer == consumer or consumer in allow_lists.get(producer, ()):
        return []
    return [
        f"{who} subscribes to {BY_MODEL[model].type}, but {consumer} is not on {producer}'s allow-list: "
        f'the {producer} team adds "{consumer}" to ALLOW_LISTS["{producer}"] in '
        "libs/acr/src/acr/topology/allow_lists.py"
    ]
