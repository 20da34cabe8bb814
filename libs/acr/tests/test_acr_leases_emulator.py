"""Leases and leased Kinesis shards against the emulator process (moto server): conditional writes from
concurrent clients, shards moving between readers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from acr import aws
from acr.leases import Lease, LeaseTable
from acr.settings import Settings
from acr.topology import ServiceTopology
from acr.topology.apply import create_table
from acr_testkit.emulator import moto_server

pytestmark = pytest.mark.integration

SERVICE = ServiceTopology("svc", leases=True)


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    with moto_server() as url:
        s = Settings(aws_endpoint_url=url, replica="test")
        for table in SERVICE.all_tables():
            create_table(aws.client("dynamodb", s), table)
        yield s


def test_of_replicas_racing_for_one_key_exactly_one_wins_each_time(settings: Settings) -> None:
    """Eight replicas, each with its own client, try to take the same lease at once, four times over
    (each time after the previous holder released it): one wins each round, with the next token."""
    for round_ in range(4):
        tables = [
            LeaseTable(aws.client("dynamodb", settings), SERVICE.leases_table, f"r{i}", 30.0)
            for i in range(8)
        ]
        won = [lease for lease in _race(tables, "job#race") if lease is not None]
        assert len(won) == 1
        assert won[0].token == round_ + 1
        tables[0].release(won[0])
    assert tables[0].all("job#")[0].token == 4


def _race(tables: list[LeaseTable], key: str) -> list[Lease | None]:
    """Every table's ``acquire(key)`` at the same moment, each from its own thread."""
    start = threading.Barrier(len(tables))
    results: list[Lease | None] = [None] * len(tables)

    def race(i: int, table: LeaseTable) -> None:
        start.wait()
        results[i] = table.acquire(key)

    threads = [threading.Thread(target=race, args=(i, t)) for i, t in enumerate(tables)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results
