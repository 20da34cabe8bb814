"""DynamoDB requests per consumed event: ACR's one-transaction consumer against a two-phase idempotency
record (the AWS Lambda Powertools design); writes a markdown report.

    python benchmarks/dedup/bench_dedup.py [--events 1000] [--duplicates 0.2] [--batch 200] [--repeats 7]
        [--out benchmarks/results/dedup.md]

Both consumers run against one moto server process started here (``acr_testkit.emulator.moto_server``),
with the same boto3 client; a botocore hook (``before-call.dynamodb.*``) counts API calls and a second one
(``before-send.dynamodb.*``) counts HTTP attempts (they differ only if botocore retried).

(a) ACR: ``acr.consumer.idempotent`` over a real ``acr.unit_of_work.DynamoUnitOfWork``: per event ONE
    ``TransactWriteItems`` holding the state update, an outbox row and the idempotency marker
    (``mark_consumed``); a duplicate fails that transaction (``Duplicate``) and changes nothing.
(b) two-phase (Powertools ``DynamoDBPersistenceLayer``, written out here): ``put_item`` INPROGRESS with the
    condition "absent, or expired, or in progress past its in-progress expiry"
    (``ReturnValuesOnConditionCheckFailure=ALL_OLD``; a ``get_item`` only when the emulator returns no old
    item), the work (one ``update_item`` of the state), then ``update_item`` COMPLETED with the stored
    response; ``delete_item`` if the work fails.
Throughput: sequential consumer, rounds of ``batch`` fresh events alternating (a) with the marker, (a) the
same transaction without ``mark_consumed``, and (b); events/s is the median over rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from acr import catalog
from acr.catalog.base import Destination
from acr.catalog.fleet import CarReleased
from acr.catalog.ride import RideCancelled
from acr.consumer import idempotent
from acr.dynamo import DynamoUnitOfWork, from_item
from acr.envelope import CloudEvent
from acr.topology import Index, Table
from acr.topology.apply import create_table
from acr.unit_of_work import Duplicate, Outgoing
from acr_testkit.emulator import moto_server

ROOT = Path(__file__).resolve().parents[2]
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
STATE_ACR, STATE_2P = "acr-bench-state-acr", "acr-bench-state-2p"
OUTBOX, INBOX, IDEMPOTENCY = "acr-bench-outbox", "acr-bench-inbox", "acr-bench-idempotency"
DESTINATION = Destination("bus", "acr-fleet")
POWERTOOLS_EXPIRES_AFTER_S = 3600  # Powertools' default expires_after_seconds
LAMBDA_REMAINING_MS = 30_000  # in_progress_expiration = now + the invocation's remaining time


class Counts:
    """API calls (``before-call``) and HTTP attempts (``before-send``) by operation name."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.sends: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb.*", self._call)
        client.meta.events.register("before-send.dynamodb.*", self._send)

    def _call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def _send(self, request: Any, **_: Any) -> None:
        self.sends[request.headers.get("X-Amz-Target", b"?").decode().rpartition(".")[2]] += 1

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(self.calls), Counter(self.sends)


def incoming(rng: random.Random, n: int) -> CloudEvent:
    """A RideCancelled as the consumer receives it (catalog envelope, id minted once)."""
    ride = f"ride-{n:06d}"
    data = RideCancelled(
        ride_id=ride,
        rider_id=f"rider-{rng.randrange(100):03d}",
        car_id=f"car-{rng.randrange(1, 501):05d}",
        reason="RIDER_CANCELLED",
        cancelled_at="2026-01-01T00:00:00Z",
    )
    return catalog.record(data, subject=ride)


# --- (a) ACR: one transaction ---------------------------------------------------------------------------


def acr_consumer(dynamodb: Any, *, marker: bool) -> Callable[[CloudEvent], bool]:
    """The consumer as a service writes it; returns True when the event was applied, False on Duplicate."""

    def apply(uow: DynamoUnitOfWork, data: RideCancelled, event: CloudEvent) -> None:
        uow.tx.update(
            STATE_ACR,
            {"carId": data.car_id},
            "ADD applied :one SET lastEventId = :id, lastRideId = :ride",
            label="state",
            values={":one": 1, ":id": event.id, ":ride": data.ride_id},
        )
        released = CarReleased(ride_id=data.ride_id, car_id=data.car_id or "", reason="RIDE_CANCELLED")
        uow.record(Outgoing(catalog.record(released, subject=data.car_id), DESTINATION))

    def uow() -> DynamoUnitOfWork:
        return DynamoUnitOfWork(dynamodb, OUTBOX, INBOX)

    if marker:
        handle = idempotent(uow, {RideCancelled: apply})
    else:

        def handle(event: CloudEvent, data: Any) -> None:  # the same transaction, no mark_consumed
            work = uow()
            apply(work, data, event)
            work.commit()

    def consume(event: CloudEvent) -> bool:
        try:
            handle(event, catalog.decode(event))
        except Duplicate:
            return False
        return True

    return consume


# --- (b) two-phase idempotency record (Powertools DynamoDBPersistenceLayer) ------------------------------


class AlreadyInProgress(Exception):
    """Powertools' IdempotencyAlreadyInProgressError: the first delivery has not finished yet."""


def two_phase_consumer(dynamodb: Any) -> Callable[[CloudEvent], bool]:
    names = {
        "#id": "id",
        "#expiry": "expiration",
        "#in_progress_expiry": "in_progress_expiration",
        "#status": "status",
    }
    condition = (
        "attribute_not_exists(#id) OR #expiry < :now OR "
        "(#status = :inprogress AND attribute_exists(#in_progress_expiry) "
        "AND #in_progress_expiry < :now_in_millis)"
    )

    def key(event: CloudEvent) -> str:  # "<function name>#<md5 of the selected part of the event>"
        return "bench-consumer#" + hashlib.md5(json.dumps(event.id).encode()).hexdigest()  # noqa: S324

    def consume(event: CloudEvent) -> bool:
        data = catalog.decode(event)
        assert isinstance(data, RideCancelled)
        idem = {"id": {"S": key(event)}}
        now = time.time()
        try:  # phase 1: save_inprogress
            dynamodb.put_item(
                TableName=IDEMPOTENCY,
                Item={
                    **idem,
                    "expiration": {"N": str(int(now) + POWERTOOLS_EXPIRES_AFTER_S)},
                    "status": {"S": "INPROGRESS"},
                    "in_progress_expiration": {"N": str(int(now * 1000) + LAMBDA_REMAINING_MS)},
                },
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now))},
                    ":now_in_millis": {"N": str(int(now * 1000))},
                    ":inprogress": {"S": "INPROGRESS"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item") or dynamodb.get_item(
                TableName=IDEMPOTENCY, Key=idem, ConsistentRead=True
            ).get("Item")
            if old and old["status"]["S"] == "INPROGRESS":
                raise AlreadyInProgress(event.id) from exc
            return False  # COMPLETED: return the stored response, do nothing
        try:  # the work
            dynamodb.update_item(
                TableName=STATE_2P,
                Key={"carId": {"S": data.car_id or ""}},
                UpdateExpression="ADD applied :one SET lastEventId = :id, lastRideId = :ride",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":id": {"S": event.id},
                    ":ride": {"S": data.ride_id},
                },
            )
        except Exception:
            dynamodb.delete_item(TableName=IDEMPOTENCY, Key=idem)  # delete_record
            raise
        dynamodb.update_item(  # phase 2: save_success
            TableName=IDEMPOTENCY,
            Key=idem,
            UpdateExpression="SET #response_data = :response_data, #expiry = :expiry, #status = :status",
            ExpressionAttributeNames={"#response_data": "data", "#expiry": "expiration", "#status": "status"},
            ExpressionAttributeValues={
                ":response_data": {"S": json.dumps({"applied": event.id})},
                ":expiry": {"N": str(int(now) + POWERTOOLS_EXPIRES_AFTER_S)},
                ":status": {"S": "COMPLETED"},
            },
        )
        return True

    return consume


# --- measurements ------------------------------------------------------------------------------------------


def deliveries(events: int, duplicate_share: float, seed: int) -> list[tuple[CloudEvent, bool]]:
    """``events`` deliveries, ``duplicate_share`` of them redeliveries of an earlier event (same id)."""
    rng = random.Random(seed)
    dups = round(events * duplicate_share)
    mask = [False] * (events - dups) + [True] * dups
    rng.shuffle(mask)
    if mask and mask[0]:
        j = mask.index(False)
        mask[0], mask[j] = False, True
    stream: list[tuple[CloudEvent, bool]] = []
    first: list[CloudEvent] = []
    for is_dup in mask:
        if is_dup:
            stream.append((rng.choice(first).resent(), True))
        else:
            first.append(incoming(rng, len(first)))
            stream.append((first[-1], False))
    return stream


@dataclass
class Tally:
    deliveries: int = 0
    applied: int = 0
    writes: int = 0
    calls: int = 0
    sends: int = 0
    ops: Counter[str] | None = None

    def add(
        self, before: tuple[Counter[str], Counter[str]], after: tuple[Counter[str], Counter[str]]
    ) -> None:
        calls, sends = after[0] - before[0], after[1] - before[1]
        self.deliveries += 1
        self.calls += sum(calls.values())
        self.sends += sum(sends.values())
        self.writes += sum(v for k, v in calls.items() if k in WRITES)
        self.ops = (self.ops or Counter()) + calls


def count(
    consume: Callable[[CloudEvent], bool], counts: Counts, stream: list[tuple[CloudEvent, bool]]
) -> dict:
    tallies = {"first delivery": Tally(), "duplicate delivery": Tally()}
    for event, is_dup in stream:
        before = counts.snapshot()
        applied = consume(event)
        tally = tallies["duplicate delivery" if is_dup else "first delivery"]
        tally.add(before, counts.snapshot())
        tally.applied += int(applied)
    return tallies


def applied_total(dynamodb: Any, table: str) -> int:
    pages = dynamodb.get_paginator("scan").paginate(TableName=table)
    return sum(int(from_item(item).get("applied", 0)) for page in pages for item in page["Items"])


def rate(consume: Callable[[CloudEvent], bool], events: list[CloudEvent], name: str) -> float:
    started = time.perf_counter()
    for event in events:
        if not consume(event):
            raise RuntimeError(f"{name}: a fresh event was taken for a duplicate")
    return len(events) / (time.perf_counter() - started)


def throughput(
    dynamodb: Any, consumers: dict[str, Callable[[CloudEvent], bool]], batch: int, repeats: int, seed: int
) -> dict[str, float]:
    """Median events/s over rounds; every round starts from empty tables (see ``reset``)."""
    rng = random.Random(seed)
    serial = 2_000_000
    rounds: dict[str, list[float]] = {name: [] for name in consumers}
    for r in range(repeats):
        for name, consume in consumers.items():
            reset(dynamodb)
            warmup = [incoming(rng, serial + i) for i in range(5)]
            events = [incoming(rng, serial + 5 + i) for i in range(batch)]
            serial += batch + 5
            rate(consume, warmup, name)
            rounds[name].append(rate(consume, events, name))
        print(f"  round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rounds.items()))
    return {name: statistics.median(v) for name, v in rounds.items()}


def reset(dynamodb: Any) -> None:
    """Empty tables: moto's TransactWriteItems deep-copies every table it touches (its rollback backup),
    so its cost grows with the table; starting each round empty keeps the designs comparable."""
    for name in (STATE_ACR, STATE_2P, OUTBOX, INBOX, IDEMPOTENCY):
        dynamodb.delete_table(TableName=name)
    setup(dynamodb)


def setup(dynamodb: Any) -> None:
    for table in (
        Table(STATE_ACR, "carId"),
        Table(STATE_2P, "carId"),
        Table(
            OUTBOX,
            "eventId",
            indexes=(Index("pending-index", "pending", "createdAt", "N"),),
            ttl_attribute="expiresAt",
        ),
        Table(INBOX, "dedupKey", ttl_attribute="expiresAt"),
        Table(IDEMPOTENCY, "id", ttl_attribute="expiration"),
    ):
        create_table(dynamodb, table)


def _value_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return (len(v.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "BOOL" or kind == "NULL":
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in v)
    return len(str(v))


def item_kib(dynamodb: Any, table: str) -> float:
    """Largest stored item of ``table`` in KiB (names + values, DynamoDB's item-size rule, approximately)."""
    items = dynamodb.scan(TableName=table, Limit=50)["Items"]
    return max(sum(len(k.encode()) + _value_size(v) for k, v in item.items()) for item in items) / 1024


def wcu(kib: float, transactional: bool) -> int:
    """Write capacity units of one write: 1 per started KiB, doubled inside a transaction."""
    return math.ceil(kib) * (2 if transactional else 1)


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def per(t: Tally, attr: str, denominator: int | None = None) -> float:
    d = denominator if denominator is not None else t.deliveries
    return getattr(t, attr) / d if d else 0.0


def report(
    args: argparse.Namespace,
    results: dict[str, Any],
    rates: dict[str, float],
    facts: list[str],
    kib: dict[str, float],
    populated: dict[str, float],
) -> str:
    lines = [
        "# Consumer dedup: requests per consumed event",
        "",
        *[f"- {f}" for f in facts],
        "",
        f"## DynamoDB requests ({args.events} deliveries, {args.duplicates:.0%} of them duplicates)",
        "",
        "Per delivery, counted on the client (`before-call.dynamodb.*`); writes = PutItem, UpdateItem, "
        'DeleteItem, TransactWriteItems. "per consumed event" = all requests of the run / events applied '
        "once.",
        "",
        "| design | writes / first delivery | requests / first delivery | writes / duplicate "
        "| requests / duplicate | writes / consumed event | requests / consumed event "
        "| HTTP attempts / consumed event | writes: ratio to two-phase |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    two_wpc = None
    for name in ("two-phase record (Powertools)", "ACR (one transaction)"):
        t = results[name]
        f, d = t["first delivery"], t["duplicate delivery"]
        consumed = f.applied + d.applied
        writes, calls, sends = f.writes + d.writes, f.calls + d.calls, f.sends + d.sends
        wpc = writes / consumed
        two_wpc = two_wpc or wpc
        lines.append(
            f"| {name} | {per(f, 'writes'):.2f} | {per(f, 'calls'):.2f} | {per(d, 'writes'):.2f} | "
            f"{per(d, 'calls'):.2f} | {wpc:.2f} | {calls / consumed:.2f} | {sends / consumed:.2f} | "
            f"{wpc / two_wpc:.2f}x |"
        )
    acr_wcu = wcu(kib[STATE_ACR], True) + wcu(kib[OUTBOX], True) + wcu(kib[INBOX], True)
    acr_no_outbox = wcu(kib[STATE_ACR], True) + wcu(kib[INBOX], True)
    two_wcu = 2 * wcu(kib[IDEMPOTENCY], False) + wcu(kib[STATE_2P], False)
    lines += [
        "",
        "Requests are not capacity: DynamoDB bills 1 write capacity unit (WCU) per started KiB of item and "
        "2 per KiB for a write inside a transaction. From the largest stored item of each table "
        f"(state {kib[STATE_ACR]:.2f} KiB, outbox row {kib[OUTBOX]:.2f} KiB, marker {kib[INBOX]:.2f} KiB, "
        f"idempotency record {kib[IDEMPOTENCY]:.2f} KiB), a first delivery costs about "
        f"**{acr_wcu} WCU for ACR** ({acr_no_outbox} without the outbox row, which the two-phase design "
        f"does not write) and **{two_wcu} WCU for the two-phase record**. (Computed, not measured: the "
        "emulator reports no consumed capacity.)",
    ]
    lines += ["", "Operations seen:", ""]
    for name, t in results.items():
        for kind, tally in t.items():
            lines.append(f"- {name}, {kind}: {dict(sorted((tally.ops or Counter()).items()))}")
    base = rates["two-phase record (Powertools)"]
    no_marker = rates["ACR, same transaction without mark_consumed"]
    lines += [
        "",
        f"## Consumer throughput (sequential, one client; {args.batch} fresh events per round, "
        f"median of {args.repeats} rounds)",
        "",
        "| consumer | events/s | ratio to two-phase | ratio to ACR without the marker |",
        "|---|---:|---:|---:|",
    ]
    for name, value in rates.items():
        lines.append(f"| {name} | {value:,.0f} | {value / base:.2f}x | {value / no_marker:.2f}x |")
    acr_full = populated["ACR (one transaction, with mark_consumed)"]
    two_full = populated["two-phase record (Powertools)"]
    lines += [
        "",
        "Every round starts from empty tables. This measures the emulator, not DynamoDB: moto's "
        "`TransactWriteItems` deep-copies each table it touches before applying (its rollback backup), so a "
        "transaction's cost grows with the size of the outbox and inbox tables, while a plain "
        "`PutItem`/`UpdateItem` does not. On the tables the counting run had filled "
        "(one outbox row and one marker per event) the same consumers ran at "
        f"{acr_full:,.0f} events/s (ACR) and "
        f"{two_full:,.0f} events/s (two-phase), ratio {acr_full / two_full:.2f}x.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="deliveries in the counting run")
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of deliveries that are duplicates"
    )
    parser.add_argument("--batch", type=int, default=100, help="events per throughput round")
    parser.add_argument("--repeats", type=int, default=7, help="throughput rounds per consumer")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dedup.md"))
    args = parser.parse_args()
    load_start = load()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with moto_server() as url:
        dynamodb = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=url,
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=4),
        )
        setup(dynamodb)
        counts = Counts(dynamodb)
        stream = deliveries(args.events, args.duplicates, args.seed)
        unique = sum(1 for _, dup in stream if not dup)
        results = {
            "two-phase record (Powertools)": count(two_phase_consumer(dynamodb), counts, stream),
            "ACR (one transaction)": count(acr_consumer(dynamodb, marker=True), counts, stream),
        }
        applied = {STATE_2P: applied_total(dynamodb, STATE_2P), STATE_ACR: applied_total(dynamodb, STATE_ACR)}
        print(f"state applied once per event: {applied} (unique events {unique})")
        kib = {t: item_kib(dynamodb, t) for t in (STATE_ACR, OUTBOX, INBOX, STATE_2P, IDEMPOTENCY)}
        populated_events = [
            incoming(random.Random(args.seed + 2), 3_000_000 + i) for i in range(2 * args.batch)
        ]
        populated = {
            "ACR (one transaction, with mark_consumed)": rate(
                acr_consumer(dynamodb, marker=True), populated_events[: args.batch], "ACR"
            ),
            "two-phase record (Powertools)": rate(
                two_phase_consumer(dynamodb), populated_events[args.batch :], "two-phase"
            ),
        }
        print(f"on the counting run's tables: {populated}")
        rates = throughput(
            dynamodb,
            {
                "ACR (one transaction, with mark_consumed)": acr_consumer(dynamodb, marker=True),
                "ACR, same transaction without mark_consumed": acr_consumer(dynamodb, marker=False),
                "two-phase record (Powertools)": two_phase_consumer(dynamodb),
            },
            args.batch,
            args.repeats,
            args.seed + 1,
        )
    import moto

    facts = [
        f"date: {date}",
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"load average (1, 5, 15 min) at start: {load_start}; at end: {load()}",
        f"emulator: moto {moto.__version__} server process on loopback (`acr_testkit.emulator.moto_server`), "
        f"boto3 {boto3.__version__}; retries standard, 3 attempts (as `acr.aws`)",
        f"counting run: {len(stream)} deliveries = {unique} events + {len(stream) - unique} redeliveries "
        f"of an earlier event (same id, eventcount + 1), seeded order; both designs see the same stream",
        f"check: the state counter summed over items = {applied[STATE_ACR]} (ACR) and {applied[STATE_2P]} "
        f"(two-phase) for {unique} events: every event applied exactly once",
        "ACR transaction: state update + outbox row + marker (3 items); two-phase: put INPROGRESS, "
        "update state, update COMPLETED (the outbox row is not part of that design)",
    ]
    text = report(args, results, rates, facts, kib, populated)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
