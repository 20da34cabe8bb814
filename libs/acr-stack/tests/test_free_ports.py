"""Ports for stacks on free ports: never in the kernel's ephemeral range (where outgoing connections take
ports at any moment), never the same twice in one process."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from acr_stack import runner
from acr_stack.runner import (
    FREE_PORTS,
    PortTaken,
    StackConfig,
    _first_ephemeral_port,
    free_port,
    start_on_free_ports,
)


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


def test_threads_picking_ports_at_once_never_get_the_same_one() -> None:
    start = threading.Barrier(4)

    def pick() -> list[int]:
        start.wait()
        return [free_port() for _ in range(100)]

    with ThreadPoolExecutor(4) as pool:
        ports = [p for picked in pool.map(lambda _: pick(), range(4)) for p in picked]
    assert len(set(ports)) == len(ports) == 400


def test_a_stack_whose_port_was_taken_meanwhile_is_tried_again_on_new_ports() -> None:
    """Another process may bind a port between its pick and the start: each attempt gets new ports (here
    they are all taken, so the last attempt's ``PortTaken`` comes out, and nothing was started)."""
    configs: list[StackConfig] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        def config_on_a_taken_port() -> StackConfig:
            configs.append(StackConfig.free())
            configs[-1].emulator_port = taken.getsockname()[1]
            return configs[-1]

        with pytest.raises(PortTaken, match="port .* of emulator is taken"):
            start_on_free_ports(config_on_a_taken_port, timeout_s=5, attempts=3)
    assert len(configs) == 3
    assert len({tuple(c.ports.values()) for c in configs}) == 3  # new ports each time
