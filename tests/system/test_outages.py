"""An outage of every service's AWS traffic, opened through the BFF's chaos controls on a stack of its
own: the fault proxy really cuts the traffic (it counts what it refused and reset), the window is listed
while it is open and closes by itself, and a ride booked just before it still ends PAID, charged once."""

from __future__ import annotations

import functools
import itertools
import math
import os
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
import httpx
import pytest
from rider_client import (
    LOG_DIR,
    TERMINAL,
    Ops,
    ResumingListener,
    Rider,
    book_ride,
    patiently,
    random_places,
)

from acr import clock
from acr.settings import SERVICE_PORTS
from acr_stack import Stack

pytestmark = pytest.mark.system
OUTAGE_S = 10


def test_a_ride_outlasts_a_refuse_outage_of_all_aws_traffic(outage_stack: Stack) -> None:
    bff = outage_stack.config.url("bff")
    ops, rider = Ops.of(outage_stack), Rider.sign_up(bff, "Outlasting")
    ride = book_ride(rider, random.Random(1212))

    opened = ops.call("POST", "/chaos/outages", {"target": "aws", "mode": "refuse", "seconds": OUTAGE_S})
    assert opened.status_code == 202, opened.text
    outage = opened.json()
    assert set(outage) == {"outageId", "target", "mode", "until"}
    for _ in range(2):  # listed while open, a few seconds apart
        listed = ops.get("/chaos")["outages"]
        assert [(o["outageId"], o["open"]) for o in listed] == [(outage["outageId"], True)]
        time.sleep(OUTAGE_S / 3)

    done = rider.wait_for(
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        timeout_s=150,
        what="PAID with points",
    )
    assert clock.parse(done["updatedAt"]) > clock.parse(outage["until"])
    assert len(ops.captures(ride["rideId"])) == 1
    assert ops.get("/chaos") == {"outages": [], "faults": []}  # closed by itself
    assert outage_stack.proxy is not None
    did = outage_stack.proxy.outage(outage["outageId"])
    assert did is not None and did["open"] is False
    assert did["counts"]["refused"] + did["counts"]["reset"] > 0, did


# --- the storm: every outage, fault window and kill on one seeded schedule, over rides in every phase -----

STORM_SEED = int(os.environ.get("ACR_STORM_SEED", "20261212"))  # another seed: another schedule
RIDERS, RIDES = 12, 40
RIDES_BEFORE_OUTAGE = 6
MIN_RIDES = 30
SERVICES = tuple(SERVICE_PORTS)
SETTLE_S = 300  # every check holds within this long after the last fault
STATS_SETTLE_S = 60.0  # the rider stats (a read model) reach the rides within this long once those settled
KILL_GAP_S = 8.0  # kills this far apart at least
WINDOW_MARGIN_S = 15.0  # no kill of a service this soon before a fault window it carries opens
BOOK_PATIENCE_S = 180.0  # an app keeps trying to book through an outage this long
CANCEL_SHARE = 0.2
CANCEL_POINTS = ("REQUESTED", "CAR_ASSIGNED", "CAR_ARRIVED")
PHASES = ("REQUESTED", "CAR_ASSIGNED", "CAR_ARRIVED", "IN_PROGRESS", "COMPLETED")
ORDER = {status: n for n, status in enumerate((*PHASES, "PAID", "PAYMENT_FAILED", "CANCELLED"))}
SYSTEM_REASONS = frozenset(
    {"NO_CAR_AVAILABLE", "DISPATCH_TIMEOUT", "CAR_NOT_ARRIVED", "TRIP_NOT_STARTED", "TRIP_INTERRUPTED"}
)
OUTAGES = frozenset({"refuse", "blackhole"})
KILL_SPAN_S = 5.0  # a kill "hits" the rides in flight for this long (the restart)


@dataclass
class Fault:
    """One entry of the schedule: ``name`` on ``target`` at ``at`` s after the start, for ``seconds``
    (a kill has none); ``opened`` is when it really happened, ``ref`` its outage or fault id."""

    at: float
    name: str
    target: str
    seconds: float = 0.0
    opened: float | None = None
    ref: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def span(self) -> tuple[float, float]:
        start = self.at if self.opened is None else self.opened
        return start, start + (self.seconds or KILL_SPAN_S)

    def describe(self) -> str:
        what = f"SIGKILL {self.target}" if self.name == "kill" else f"{self.name} on {self.target}"
        length = f" for {self.seconds:g} s" if self.seconds else ""
        real = "" if self.opened is None else f" (at {self.opened:6.1f})"
        return f"{self.at:6.1f} s{real}: {what}{length} {' '.join(self.notes)}".rstrip()


@dataclass
class RidePlan:
    """One ride: booked at ``at`` s after the start by rider ``rider``, cancelled once it reached
    ``cancel_at`` (None: never)."""

    index: int
    at: float
    rider: int
    cancel_at: str | None
    places: list[dict[str, str]] = field(default_factory=list)
    ride_id: str | None = None
    booked_at: float | None = None
    notes: list[str] = field(default_factory=list)


def storm_schedule(rng: random.Random) -> list[Fault]:
    """The windows in a fixed order with seeded gaps, each where it has traffic to hit: the refuse outage
    once rides are in every phase; the gateway and SNS windows once the services are back (one restarted
    during the outage waits up to 30 s) and rides are paid again; the blackhole next; the bus throttle
    last, its first seconds under the blackhole. Then a kill of each service at a seeded moment."""
    refuse = rng.uniform(35, 45)
    gateway = refuse + 90 + rng.uniform(30, 40)
    sns = gateway + rng.uniform(0, 10)
    blackhole = sns + 60 + rng.uniform(5, 10)
    bus = blackhole + 45 - rng.uniform(10, 20)
    windows = [
        Fault(round(refuse, 1), "refuse", "aws", 90),
        Fault(round(gateway, 1), "gateway.unknown", "payment", 60),
        Fault(round(sns, 1), "sns.failure", "ride-manager", 60),
        Fault(round(blackhole, 1), "blackhole", "aws", 45),
        Fault(round(bus, 1), "eventbridge.throttle", "all", 60),
    ]
    kills: list[Fault] = []
    for service in rng.sample(SERVICES, len(SERVICES)):
        kills.append(Fault(_kill_moment(rng, service, windows, kills, last=bus), "kill", service))
    return sorted(windows + kills, key=lambda f: f.at)


def _kill_moment(
    rng: random.Random, service: str, windows: list[Fault], kills: list[Fault], last: float
) -> float:
    """A moment to kill ``service``: apart from the other kills, and never while (or just before) a fault
    window it carries is open, since a window lives in the service's memory and would die with it."""
    for _ in range(10_000):
        at = round(rng.uniform(10, last), 1)
        if any(abs(at - k.at) < KILL_GAP_S for k in kills):
            continue
        carried = [w for w in windows if w.name not in OUTAGES and w.target in ("all", service)]
        if not any(w.at - WINDOW_MARGIN_S <= at <= w.at + w.seconds for w in carried):
            return at
    raise AssertionError(f"no moment to kill {service}")


def ride_plans(rng: random.Random, faults: list[Fault]) -> list[RidePlan]:
    """A ride booked 3 s before each fault (so one is REQUESTED when it hits), a few more over the half
    minute before each outage (so that it hits rides in every phase), the rest at seeded moments over the
    whole schedule; about one in five cancelled by its rider at a seeded point."""
    moments = [max(0.0, f.at - 3) for f in faults]
    for outage in (f for f in faults if f.name in OUTAGES):
        moments += [rng.uniform(max(0.0, outage.at - 35), outage.at - 1) for _ in range(RIDES_BEFORE_OUTAGE)]
    last = max(f.at for f in faults)
    moments += [rng.uniform(0, last) for _ in range(RIDES - len(moments))]
    return [
        RidePlan(
            n, round(at, 1), n % RIDERS, rng.choice(CANCEL_POINTS) if rng.random() < CANCEL_SHARE else None
        )
        for n, at in enumerate(sorted(moments))
    ]


def settled(ride: dict[str, Any]) -> bool:
    """Terminal, with what follows a terminal state recorded too (the points of a PAID ride, the payment of
    a cancellation fee)."""
    if ride["status"] not in TERMINAL:
        return False
    if ride["status"] == "PAID" and ride["pointsEarned"] is None:
        return False
    cancellation = ride.get("cancellation") or {}
    return not (cancellation.get("fee") and ride["payment"] is None)


def _fee(cancellation: dict[str, Any]) -> str | None:
    fee = cancellation.get("fee")
    return None if not fee else f"fee {fee['amount']}"


def _amount(money: dict[str, Any] | None) -> Decimal | None:
    return None if money is None else Decimal(money["amount"])


class Storm:
    """Drives the rides, carries out the schedule, then checks and reports."""

    def __init__(self, stack: Stack, seed: int) -> None:
        self.stack = stack
        self.base = stack.config.url("bff")
        self.ops = Ops.of(stack)
        rng = random.Random(seed)
        self.faults = storm_schedule(rng)
        self.plans = ride_plans(rng, self.faults)
        self.riders = [Rider.sign_up(self.base, f"Storm {n}") for n in range(RIDERS)]
        for plan in self.plans:
            plan.places = random_places(self.riders[plan.rider], 2, rng)
        self.listeners = [ResumingListener(rider) for rider in self.riders]
        self.injected: dict[str, Counter[str]] = {}
        self.final: dict[str, dict[str, Any]] = {}
        self.settled_after: float | None = None
        self._sampling = threading.Event()
        self.t0 = time.monotonic()
        self.t0_wall = time.time()

    # --- running ------------------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t0

    def run(self) -> float:
        """Book and drive every ride while the schedule runs; returns when the last fault ended (s)."""
        print("storm schedule (seed", STORM_SEED, "):\n" + "\n".join(f.describe() for f in self.faults))
        self.t0, self.t0_wall = time.monotonic(), time.time()
        sampler = threading.Thread(target=self._sample, name="stats-sampler", daemon=True)
        sampler.start()
        with ThreadPoolExecutor(len(self.plans)) as pool:
            drivers = [pool.submit(self._drive, plan) for plan in self.plans]
            for fault in self.faults:
                time.sleep(max(0.0, fault.at - self.now()))
                self._hit(fault)
            last_end = max(f.span[1] for f in self.faults)
            time.sleep(max(0.0, last_end - self.now()))
            for driver in drivers:
                driver.result()
        return last_end

    def _hit(self, fault: Fault) -> None:
        fault.opened = round(self.now(), 1)
        if fault.name == "kill":
            alive = self.stack.alive().get(fault.target)
            self.stack.kill(fault.target)
            fault.notes.append(f"(was {'running' if alive else 'not running'})")
        elif fault.name in OUTAGES:
            body = {"target": fault.target, "mode": fault.name, "seconds": fault.seconds}
            fault.ref = self._open("/chaos/outages", body)["outageId"]
        else:
            body = {"service": fault.target, "fault": fault.name, "rate": 1, "seconds": fault.seconds}
            answer = self._open("/chaos/faults", body)
            fault.ref = answer["faultId"]
            for service in answer.get("unavailable", []):  # restarting: give it the rest of the window
                rest = max(1, round(fault.seconds - (self.now() - fault.opened)))
                self._open("/chaos/faults", body | {"service": service, "seconds": rest})
                fault.notes.append(f"(reopened on {service} for {rest} s)")
        print(fault.describe())

    def _open(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = patiently(lambda: self.ops.call("POST", path, body), timeout_s=60)
        assert response is not None and response.status_code == 202, (body, response and response.text)
        return response.json()  # type: ignore[no-any-return]

    def _sample(self) -> None:
        """The most of each injected fault each service reported (its counters start again when it is
        killed, so the most seen, not the last)."""
        while not self._sampling.wait(2.0):
            try:
                services = httpx.get(f"{self.base}/ops/stats", headers=self.ops.headers, timeout=10).json()[
                    "services"
                ]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            for name, counters in services.items():
                seen = self.injected.setdefault(name, Counter())
                for fault, n in (counters.get("faultsInjected") or {}).items():
                    seen[fault] = max(seen[fault], n)

    def stop(self) -> None:
        self._sampling.set()
        for listener in self.listeners:
            listener.close()

    # --- one ride, as its rider's app -----------------------------------------------------------------
    def _drive(self, plan: RidePlan) -> None:
        time.sleep(max(0.0, plan.at - self.now()))
        try:
            self._book(plan)
            if plan.ride_id is not None and plan.cancel_at is not None:
                self._cancel(plan)
        except Exception as exc:  # noqa: BLE001 - the driver reports, the checks fail
            plan.notes.append(f"driver failed: {exc!r}")

    def _book(self, plan: RidePlan) -> None:
        rider = self.riders[plan.rider]
        give_up = time.monotonic() + BOOK_PATIENCE_S
        while time.monotonic() < give_up:
            body = {"pickup": plan.places[0], "dropoff": plan.places[1]}
            quote = patiently(
                functools.partial(rider.post, "/api/v1/quotes", body), give_up - time.monotonic()
            )
            if quote is None or quote.status_code != 201:
                plan.notes.append(f"quote: {quote and quote.text[:120]}")
                time.sleep(5)
                continue
            key, quote_id = uuid.uuid4().hex, quote.json()["quoteId"]
            booked = patiently(
                functools.partial(
                    rider.post, "/api/v1/rides", {"quoteId": quote_id}, {"Idempotency-Key": key}
                ),
                give_up - time.monotonic(),
            )
            if booked is not None and booked.status_code == 202:
                plan.ride_id, plan.booked_at = booked.json()["rideId"], round(self.now(), 1)
                self.listeners[plan.rider].watch(plan.ride_id)
                return
            plan.notes.append(f"book: {booked and booked.text[:120]}")
        plan.notes.append("never booked")

    def _cancel(self, plan: RidePlan) -> None:
        """Cancel once the ride reached ``cancel_at`` (or anything later but final)."""
        assert plan.ride_id is not None and plan.cancel_at is not None
        rider, target = self.riders[plan.rider], ORDER[plan.cancel_at]
        give_up = time.monotonic() + BOOK_PATIENCE_S
        while time.monotonic() < give_up:
            ride = patiently(lambda: rider.get(f"/api/v1/rides/{plan.ride_id}"), 30)
            status = None if ride is None or ride.status_code != 200 else ride.json()["status"]
            if status in TERMINAL:
                plan.notes.append(f"not cancelled: already {status}")
                return
            if status is not None and ORDER[status] >= target:
                answer = patiently(lambda: rider.post(f"/api/v1/rides/{plan.ride_id}/cancel"), 120)
                code = answer and answer.json().get("error", {}).get("code", answer.status_code)
                plan.notes.append(f"cancel when {status} at {self.now():.1f} s: {code}")
                return
            time.sleep(0.5)
        plan.notes.append(f"never reached {plan.cancel_at} to cancel")

    # --- after the storm ------------------------------------------------------------------------------
    def booked(self) -> list[RidePlan]:
        return [plan for plan in self.plans if plan.ride_id is not None]

    def settle(self, deadline: float) -> None:
        """Poll every ride until each is settled or ``deadline`` (``time.monotonic``) passes."""
        while True:
            for plan in self.booked():
                assert plan.ride_id is not None
                known = self.final.get(plan.ride_id)
                if known is None or not settled(known):
                    ride = self._ride(plan)
                    if ride is not None:
                        self.final[plan.ride_id] = ride
            if all(settled(r) for r in self.final.values()) and len(self.final) == len(self.booked()):
                return
            if time.monotonic() > deadline:
                return
            time.sleep(2)

    def _ride(self, plan: RidePlan) -> dict[str, Any] | None:
        try:
            response = self.riders[plan.rider].get(f"/api/v1/rides/{plan.ride_id}")
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None


def busy(storm: Storm) -> list[str]:
    """What is still under way: outbox rows not yet published (per service) and messages in any
    queue that is not a DLQ (waiting, in flight or delayed); empty once the system is quiet."""
    under_way = []
    for name, counters in storm.ops.patient_get("/stats")["services"].items():
        pending = "no answer" if "error" in counters else counters.get("oldestPendingMs")
        if pending is not None:
            under_way.append(f"{name}: oldest pending outbox row {pending} ms")
    sqs = boto3.client(
        "sqs",
        endpoint_url=storm.stack.config.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for url in sqs.list_queues(QueueNamePrefix="acr-")["QueueUrls"]:
        if url.rsplit("/", 1)[-1].removesuffix(".fifo").endswith("dlq"):
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        depths = {k.removeprefix("ApproximateNumberOf"): int(v) for k, v in attributes.items() if int(v)}
        if depths:
            under_way.append(f"queue {url.rsplit('/', 1)[-1]}: {depths}")
    return under_way


def quiesce(storm: Storm, deadline: float) -> list[str]:
    """Wait (until ``deadline``) for two quiet looks in a row a few seconds apart, so that the checks see
    what the system ends with, not a moment before a late event lands; what was still busy otherwise."""
    quiet_looks = 0
    while True:
        under_way = busy(storm)
        quiet_looks = 0 if under_way else quiet_looks + 1
        if quiet_looks == 2:
            return []
        if time.monotonic() > deadline:
            return [f"not quiet {SETTLE_S} s after the last fault: {'; '.join(under_way)}"]
        time.sleep(3)


def unsettled(storm: Storm) -> list[str]:
    problems = []
    for plan in storm.booked():
        assert plan.ride_id is not None
        ride = storm.final.get(plan.ride_id)
        if ride is None or not settled(ride):
            what = "never read" if ride is None else f"{ride['status']} v{ride['version']}"
            payment, points = (ride or {}).get("payment"), (ride or {}).get("pointsEarned")
            problems.append(
                f"ride {plan.ride_id} (rider {storm.riders[plan.rider].rider_id}) did not settle within "
                f"{SETTLE_S} s of the last fault: {what}, payment {payment}, points {points}"
            )
    return problems


def charged_right(storm: Storm) -> list[str]:
    """Each PAID ride captured once (its fare); nothing captured for a ride the system abandoned; a rider's
    cancellation captured at most its fee; no payment failed (this gateway never declines)."""
    problems = []
    for ride_id, ride in storm.final.items():
        captures = storm.ops.patient_get("/payments", rideId=ride_id)["charges"]
        amounts = [Decimal(c["amount"]["amount"]) for c in captures if c["type"] == "capture"]
        cancellation = ride.get("cancellation") or {}
        reason, fee = cancellation.get("reason"), _amount(cancellation.get("fee"))
        expected: list[Decimal] | None = None
        if ride["status"] == "PAID":
            expected = [Decimal(ride["fare"]["amount"])]
        elif reason in SYSTEM_REASONS:
            expected = []
        elif ride["status"] == "CANCELLED":
            expected = [fee] if fee is not None and ride["payment"] is not None else []
        if ride["status"] == "PAID" and not _paid_right(ride):
            problems.append(
                f"ride {ride_id} is PAID with fare {ride['fare']}, quoted {ride['quotedFare']}, "
                f"payment {ride['payment']}"
            )
        if ride["status"] == "PAYMENT_FAILED":
            problems.append(
                f"ride {ride_id} is PAYMENT_FAILED though the gateway never declines: {ride['payment']}"
            )
        if expected is not None and amounts != expected:
            problems.append(
                f"ride {ride_id} ({ride['status']}, {reason}) has captures {[str(a) for a in amounts]}, "
                f"expected {[str(a) for a in expected]}"
            )
    return problems


def _paid_right(ride: dict[str, Any]) -> bool:
    """The fare was captured in full and is not above the quote."""
    fare, payment = Decimal(ride["fare"]["amount"]), ride["payment"] or {}
    captured = _amount(payment.get("amount"))
    return payment.get("status") == "SUCCEEDED" and captured == fare <= Decimal(ride["quotedFare"]["amount"])


def points_right(storm: Storm) -> list[str]:
    """Each rider's points are the floor of its PAID fares, its ride count the number of them, and its
    rating lost a quarter per late cancellation it paid a fee for and nothing for the system's failures.
    reward's rider stats are a read model built from its events: each answer may trail for a while."""
    problems = []
    deadline = time.monotonic() + STATS_SETTLE_S
    for n, rider in enumerate(storm.riders):
        rides = [storm.final[p.ride_id] for p in storm.booked() if p.rider == n and p.ride_id in storm.final]
        paid = [r for r in rides if r["status"] == "PAID"]
        fees = [r for r in rides if (r.get("cancellation") or {}).get("fee")]
        expected = (
            len(paid),
            sum(math.floor(Decimal(r["fare"]["amount"])) for r in paid),
            max(0.0, 5.0 - 0.25 * len(fees)),
        )
        while True:
            answer = patiently(functools.partial(rider.get, "/api/v1/riders/me"), 60)
            assert answer is not None and answer.status_code == 200, answer and answer.text
            me = answer.json()
            if (me["rideCount"], me["points"], me["rating"]) == expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if (me["rideCount"], me["points"], me["rating"]) != expected:
            problems.append(
                f"rider {rider.rider_id} has rideCount {me['rideCount']}, points {me['points']} and rating "
                f"{me['rating']}, expected {expected} from PAID rides {[r['rideId'] for r in paid]} and "
                f"fees of {[r['rideId'] for r in fees]}"
            )
    return problems


def dead_letters(storm: Storm) -> list[str]:
    """Every DLQ is empty, and every service answered for its own (a silent one's DLQs are not listed)."""
    listed = storm.ops.patient_get("/dlq")
    return [
        f"DLQ {q['queue']} holds {q['depth']} message(s), reasons {q.get('reasons')}"
        for q in listed["queues"]
        if q["depth"]
    ] + [f"{service} did not list its DLQs" for service in listed.get("unavailable", [])]


def leaked_cars(storm: Storm, deadline: float) -> list[str]:
    """No car held (RESERVED, ON_TRIP) for a ride that is not active, asked again until ``deadline``."""
    while True:
        active = {r["rideId"] for r in storm.ops.patient_get("/rides", active="true")["rides"]}
        problems = [
            f"car {car['carId']} is {car['state']} for ride {car.get('rideId')}, which is not active "
            f"(it is {storm.final.get(car.get('rideId') or '', {}).get('status', 'not one of the test')})"
            for car in storm.ops.patient_get("/fleet")["cars"]
            if car["state"] in ("RESERVED", "ON_TRIP") and car.get("rideId") not in active
        ]
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(2)


def pushed_right(storm: Storm, deadline: float) -> list[str]:
    """Each rider's app saw the final version of each of its rides, each version once and in order, over
    all its connections (it resumed after its last seen version on each reconnect)."""
    while True:
        problems = []
        for plan in storm.booked():
            assert plan.ride_id is not None
            listener, final = storm.listeners[plan.rider], storm.final.get(plan.ride_id)
            seen = listener.seen(plan.ride_id)
            flat = [v for connection in seen for v in connection]
            where = f"ride {plan.ride_id} (rider {listener.rider.rider_id}): versions per connection {seen}"
            if any(b <= a for a, b in itertools.pairwise(flat)):
                problems.append(f"{where}: a version repeated or out of order")
            elif final is not None and final["version"] not in flat:
                problems.append(f"{where}: never saw the final version v{final['version']}")
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(1)


def faults_happened(storm: Storm) -> list[str]:
    """The proxy's counts, the injected faults the services reported, and every service restarted."""
    assert storm.stack.proxy is not None and storm.stack.supervisor is not None
    problems = []
    for fault in storm.faults:
        if fault.name in OUTAGES:
            counts = (storm.stack.proxy.outage(fault.ref or "") or {}).get("counts", {})
            done = (
                counts.get("held", 0)
                if fault.name == "blackhole"
                else counts.get("refused", 0) + counts.get("reset", 0)
            )
            fault.notes.append(f"counts {counts}")
            if not done:
                problems.append(f"the {fault.name} outage {fault.ref} did nothing: {counts}")
        elif fault.name != "kill":
            carriers = SERVICES if fault.target == "all" else (fault.target,)
            hits = sum(storm.injected.get(s, Counter())[fault.name] for s in carriers)
            fault.notes.append(f"injected {hits}")
            if not hits:
                problems.append(
                    f"the {fault.name} window on {fault.target} injected nothing: {storm.injected}"
                )
    restarts = storm.stack.supervisor.restarts
    problems += [f"{s} was never restarted: {restarts}" for s in SERVICES if not restarts.get(s)]
    return problems


def phases_hit(storm: Storm) -> list[set[str]]:
    """For each fault of the schedule, the phases that rides were in while it hit (from their timelines)."""
    hit = []
    for fault in storm.faults:
        start, end = fault.span
        phases = {
            status
            for ride in storm.final.values()
            for status, (since, until) in _phase_spans(storm, ride)
            if since < end and until > start and status in PHASES
        }
        hit.append(phases)
    return hit


def _phase_spans(storm: Storm, ride: dict[str, Any]) -> list[tuple[str, tuple[float, float]]]:
    at = [datetime.fromisoformat(t["at"]).timestamp() - storm.t0_wall for t in ride["timeline"]]
    ends = [*at[1:], storm.now()]
    return [(t["status"], (a, b)) for t, a, b in zip(ride["timeline"], at, ends, strict=True)]


def ride_report(storm: Storm) -> list[str]:
    """One line per ride: its plan, its timeline (s after the start), how it ended, what its app saw."""
    lines = []
    for plan in storm.plans:
        head = f"#{plan.index:02d} at {plan.at:6.1f} s rider {plan.rider:2d}"
        cancel = f" cancel at {plan.cancel_at}" if plan.cancel_at else ""
        ride = storm.final.get(plan.ride_id or "")
        if ride is None:
            lines.append(f"{head}{cancel} {plan.ride_id or 'not booked'} {' | '.join(plan.notes)}")
            continue
        steps = " > ".join(f"{status} {since:.1f}" for status, (since, _) in _phase_spans(storm, ride))
        cancellation = ride.get("cancellation") or {}
        reason = " ".join(filter(None, [cancellation.get("reason"), _fee(cancellation)]))
        seen = storm.listeners[plan.rider].seen(ride["rideId"])
        lines.append(
            f"{head}{cancel} {ride['rideId']} booked {plan.booked_at}: {steps} => {ride['status']} {reason} "
            f"v{ride['version']} car {ride['carId']} fare {(ride['fare'] or {}).get('amount')} "
            f"points {ride['pointsEarned']} ws {seen} {' | '.join(plan.notes)}"
        )
    return lines


@pytest.mark.timeout(1200)
def test_rides_through_outages_fault_windows_and_a_kill_of_every_service_all_end_charged_once(
    storm_stack: Stack,
) -> None:
    """40 rides over a seeded schedule of a 90 s refuse outage, a 45 s blackhole, 60 s each of EventBridge
    throttling, SNS failure and unknown gateway outcomes, and a SIGKILL of each service: within 5 minutes
    of the last fault every ride has ended, charged right, with its points; no DLQ holds anything; no car
    is held for nothing; every rider's app saw each ride's versions once, in order, to the last."""
    storm = Storm(storm_stack, STORM_SEED)
    try:
        last_end = storm.run()
        deadline = storm.t0 + last_end + SETTLE_S
        storm.settle(deadline)
        not_quiet = quiesce(storm, deadline)
        storm.settle(deadline)  # read again: what the last events changed
        storm.settled_after = round(storm.now() - last_end, 1)
        problems = not_quiet + storm_problems(storm, deadline)
    finally:
        storm.stop()
        report(storm)
    assert not problems, "\n".join(problems)


def storm_problems(storm: Storm, deadline: float) -> list[str]:
    """Every check of the storm, each problem naming its ride, rider, queue or car."""
    problems = unsettled(storm)
    problems += charged_right(storm) + points_right(storm) + dead_letters(storm)
    problems += leaked_cars(storm, deadline) + pushed_right(storm, deadline) + faults_happened(storm)
    problems += [f"ride #{p.index} ({p.ride_id}): {n}" for p in storm.plans for n in p.notes if "failed" in n]
    if len(storm.booked()) < MIN_RIDES:
        problems.append(f"only {len(storm.booked())} rides booked, fewer than {MIN_RIDES}")
    missed = set(PHASES).difference(*phases_hit(storm))
    if missed:
        problems.append(f"no fault hit a ride in {sorted(missed)}")
    return problems


def report(storm: Storm) -> None:
    """The schedule as it happened, with the phases each fault hit, how the rides ended, and a line per
    ride; printed (pytest shows it with a failure) and kept in LOG_DIR/outage-storm-report.txt."""
    ends = Counter(
        f"{r['status']} {(r.get('cancellation') or {}).get('reason') or ''}".strip()
        for r in storm.final.values()
    )
    coverage = phases_hit(storm)
    lines = [
        f"storm (seed {STORM_SEED}): {len(storm.booked())} rides booked; the last check "
        f"{storm.settled_after} s after the last fault",
        "schedule (s after the start):",
        *(
            f"  {f.describe()}  phases hit: {sorted(hit)}"
            for f, hit in zip(storm.faults, coverage, strict=True)
        ),
        f"ends: {dict(ends)}",
        f"injected (most seen per service): {storm.injected}",
        f"restarts: {storm.stack.supervisor.restarts if storm.stack.supervisor else None}",
        "rides (status and s after the start; ws: versions per connection):",
        *(f"  {line}" for line in ride_report(storm)),
    ]
    print("\n".join(lines))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / "outage-storm-report.txt").write_text("\n".join(lines) + "\n")
