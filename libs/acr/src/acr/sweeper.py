"""Deleting expired items where DynamoDB TTL never runs (the emulator).

Every table a slice declares with a ``ttl_attribute`` (epoch seconds) expires its items on AWS by DynamoDB
TTL: consumed-message markers, sent outbox rows, quotes, idempotency keys. The emulator never deletes them,
so each service runs one sweeper there, on one replica (a singleton by lease). No index orders these items
by expiry, so the sweeper reads each table by a paged ``Scan`` with a filter, a bounded number of pages per
run, and goes on from where it stopped at the next run: a run never reads a whole large table. Each delete is
conditional on the item being expired still, so an item written again meanwhile (a marker after its window,
a reused key) is left alone; replicas sweeping the same item are harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr.dynamo import is_conditional_failure, to_item
from acr.metrics import COUNTERS, Counters
from acr.topology.model import ServiceTopology

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 60.0
PAGE_ITEMS = 100  # items a Scan page reads
PAGES_PER_RUN = 10  # pages read per table and run


@dataclass(frozen=True)
class Expiring:
    """A table whose items expire: its key attributes and the attribute holding the expiry."""

    table: str
    key: tuple[str, ...]
    ttl_attribute: str


def expiring_tables(topology: ServiceTopology) -> list[Expiring]:
    """The tables of ``topology`` declared with a TTL attribute."""
    return [
        Expiring(t.name, (t.partition_key,) + ((t.sort_key,) if t.sort_key else ()), t.ttl_attribute)
        for t in topology.all_tables()
        if t.ttl_attribute
    ]


class Sweeper:
    """Deletes the expired items of ``tables``, at most ``pages_per_run`` Scan pages of each per run."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        tables: list[Expiring],
        *,
        every_s: float = SWEEP_EVERY_S,
        page_items: int = PAGE_ITEMS,
        pages_per_run: int = PAGES_PER_RUN,
        counters: Counters = COUNTERS,
    ) -> None:
        self._dynamodb = dynamodb
        self._tables = tables
        self._every_s = every_s
        self._page_items = page_items
        self._pages_per_run = pages_per_run
        self._counters = counters
        self._resume: dict[str, dict[str, Any]] = {}  # table -> where the next run's Scan starts

    def run(self, stop: threading.Event) -> None:
        """Sweep every ``every_s`` until ``stop`` is set; a failed run is tried again at the next one."""
        while not stop.is_set():
            try:
                self.sweep_once()
            except Exception:
                log.exception("sweep failed")
            stop.wait(self._every_s)

    def sweep_once(self) -> int:
        """One run over every table; returns how many items it deleted."""
        swept = sum(self._sweep(table) for table in self._tables)
        if swept:
            self._counters.add("swept", swept)
            log.info("swept %d expired items", swept)
        return swept

    def _sweep(self, expiring: Expiring) -> int:
        now = time.time()
        names = {f"#k{i}": name for i, name in enumerate(expiring.key)} | {"#ttl": expiring.ttl_attribute}
        kwargs: dict[str, Any] = {
            "TableName": expiring.table,
            "FilterExpression": "#ttl < :now",
            "ProjectionExpression": ", ".join(f"#k{i}" for i in range(len(expiring.key))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item({":now": now}),
            "Limit": self._page_items,
        }
        deleted = 0
        for _ in range(self._pages_per_run):
            start = self._resume.pop(expiring.table, None)
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            page = self._dynamodb.scan(**kwargs)
            deleted += sum(self._delete(expiring, key, now) for key in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return deleted  # the whole table was read: the next run starts over
            self._resume[expiring.table] = page["LastEvaluatedKey"]
        return deleted

    def _delete(self, expiring: Expiring, key: dict[str, Any], now: float) -> bool:
        try:
            self._dynamodb.delete_item(
                TableName=expiring.table,
                Key=key,
                ConditionExpression="#ttl < :now",
                ExpressionAttributeNames={"#ttl": expiring.ttl_attribute},
                ExpressionAttributeValues=to_item({":now": now}),
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False  # written again since the scan: no longer expired
            raise
        return True
