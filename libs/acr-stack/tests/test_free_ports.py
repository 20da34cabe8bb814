"""Ports for stacks on free ports: never in the kernel's ephemeral range (where outgoing connections take
ports at any moment), never the same twice in one process."""

from __future__ import annotations

import socket

import pytest

from acr_stack import runner
from acr_stack.runner import FREE_PORTS, _first_ephemeral_port, free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(FREE_PORTS[0] <= p < min(FREE_PORTS[1], _first_ephemeral_port()) for p in ports)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", ports[-1]))


def test_a_port_someone_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        candidates = iter([busy, FREE_PORTS[0] + 7])  # the busy port comes up first
        monkeypatch.setattr(runner.random, "randrange", lambda _low, _high: next(candidates))
        monkeypatch.setattr(runner, "_handed_out", set())
        assert free_port() == FREE_PORTS[0] + 7
