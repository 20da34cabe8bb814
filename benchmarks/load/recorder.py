"""What a load run measures, minute by minute, and the report it writes.

Rides are counted in the minute they were booked (dispatch and book→PAID latencies included), errors in
the minute they happened; every 10 s the stack's processes are sampled from /proc (CPU seconds, RSS) and
the emulator's request counters are read. At the end a JSON file and a Markdown report are written to
``LOAD_OUT`` (without the suffix; default ``.run/load/load``).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gevent
from processes import FIXED_PORTS, Sample, sample, stack_processes

SAMPLE_EVERY_S = 10.0
COLLECTOR = "gc."  # the emulator's garbage collector pauses, beside its operations: not requests
PROGRESS = ("booked", "paid", "dispatch_p50_s", "dispatch_p99_s", "paid_p50_s", "errors")


@dataclass
class Ride:
    minute: int
    booked_at: float
    dispatch_s: float | None = None
    paid_s: float | None = None
    end: str | None = None


@dataclass
class Minute:
    booked: int = 0
    paid: int = 0
    ended: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    dispatch_s: list[float] = field(default_factory=list)
    paid_s: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    emulator: dict[str, Served] = field(default_factory=dict)  # requests served in the minute, by operation


@dataclass(frozen=True)
class Served:
    """Requests of one emulator operation and the CPU seconds they took."""

    count: int
    cpu_s: float

    def __sub__(self, other: Served) -> Served:
        return Served(self.count - other.count, self.cpu_s - other.cpu_s)


class Recorder:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.rides: dict[str, Ride] = {}
        self.minutes: dict[int, Minute] = {}
        self.ports = json.loads(os.environ["LOAD_PORTS"]) if os.environ.get("LOAD_PORTS") else FIXED_PORTS
        self.emulator_url = f"http://127.0.0.1:{self.ports['emulator']}"
        self.requests_at_start: dict[str, Served] = {}
        self.requests_at_end: dict[str, Served] = {}

    def now_minute(self, at: float | None = None) -> Minute:
        minute = int(((at or time.monotonic()) - self.t0) // 60)
        return self.minutes.setdefault(minute, Minute())

    # --- rides ---------------------------------------------------------------------------------------
    def booked(self, ride_id: str) -> None:
        now = time.monotonic()
        self.rides[ride_id] = Ride(int((now - self.t0) // 60), now)
        self.now_minute(now).booked += 1

    def assigned(self, ride_id: str, at: float) -> float | None:
        ride = self.rides.get(ride_id)
        if ride is None or ride.dispatch_s is not None:
            return None  # a replacement car: the first assignment is the dispatch
        ride.dispatch_s = at - ride.booked_at
        self.minutes[ride.minute].dispatch_s.append(ride.dispatch_s)
        return ride.dispatch_s

    def paid(self, ride_id: str, at: float) -> float | None:
        ride = self.rides.get(ride_id)
        if ride is None:
            return None
        ride.paid_s, ride.end = at - ride.booked_at, "PAID"
        self.minutes[ride.minute].paid_s.append(ride.paid_s)
        self.now_minute(at).paid += 1
        return ride.paid_s

    def ended(self, ride_id: str, status: str, cancellation: dict[str, Any] | None) -> None:
        ride = self.rides.get(ride_id)
        if ride is not None:
            ride.end = f"{status} ({cancellation['reason']})" if cancellation else status
            self.minutes[ride.minute].ended[ride.end] += 1

    def stuck(self, ride_id: str) -> None:
        ride = self.rides.get(ride_id)
        if ride is not None:
            ride.end = "STUCK"
        self.now_minute().errors["stuck"] += 1

    def no_car(self) -> None:
        self.now_minute().errors["no car at quote"] += 1

    def error(self, what: str, status: int) -> None:
        self.now_minute().errors[f"{what} {status}"] += 1

    # --- processes -----------------------------------------------------------------------------------
    def start(self, _environment: Any) -> None:
        self.t0 = time.monotonic()
        self.requests_at_start = self._emulator_requests()
        gevent.spawn(self._sample_processes)

    def _sample_processes(self) -> None:
        pids = stack_processes(self.ports)
        previous: dict[str, Sample] = {n: s for n, p in pids.items() if (s := sample(p)) is not None}
        printed, served_before = 0, self.requests_at_start
        while True:
            gevent.sleep(SAMPLE_EVERY_S)
            minute = self.now_minute()
            done = int((time.monotonic() - self.t0) // 60)
            if done > printed:  # a line per finished minute, while the run goes on
                printed, served = done, self._emulator_requests()
                self.minutes.setdefault(done - 1, Minute()).emulator = _since(served, served_before)
                served_before = served
                row = _minute_row(self.minutes.get(done - 1, Minute()))
                print(f"minute {done}: {json.dumps({k: row[k] for k in PROGRESS})}", flush=True)  # noqa: T201
            for name, pid in pids.items():
                now = sample(pid)
                if now is None or name not in previous:
                    continue
                minute.cpu_s[name] = minute.cpu_s.get(name, 0.0) + now.cpu_s - previous[name].cpu_s
                minute.rss_mb[name] = now.rss_mb
                previous[name] = now

    def _emulator_requests(self) -> dict[str, Served]:
        try:
            with urllib.request.urlopen(self.emulator_url + "/acr-emulator/requests", timeout=5) as response:  # noqa: S310
                counts = json.loads(response.read())
        except OSError:
            return {}
        return {op: Served(c["count"], c["cpuSeconds"]) for op, c in counts.items()}

    # --- report --------------------------------------------------------------------------------------
    def finish(self) -> None:
        self.requests_at_end = self._emulator_requests()
        out = Path(os.environ.get("LOAD_OUT", ".run/load/load"))
        out.parent.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        out.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=list))
        out.with_suffix(".md").write_text(markdown(summary))

    def summary(self) -> dict[str, Any]:
        last = max(self.minutes, default=-1)
        ends = Counter(r.end or "UNFINISHED" for r in self.rides.values())
        served = _since(self.requests_at_end, self.requests_at_start)
        cpu_total = sum(sum(m.cpu_s.values()) for m in self.minutes.values())
        return {
            "rate_per_min": float(os.environ.get("LOAD_RATE", "20")),
            "minutes": [
                {"minute": i + 1, **_minute_row(self.minutes.get(i, Minute()))} for i in range(last + 1)
            ],
            "ends": dict(ends),
            "booked": len(self.rides),
            "cpu_s_total": cpu_total,
            "emulator_requests": {op: s.count for op, s in served.items()},
            "emulator_cpu_s": {op: round(s.cpu_s, 1) for op, s in served.items()},
            "rides": {rid: asdict(r) for rid, r in self.rides.items()},
        }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _minute_row(m: Minute) -> dict[str, Any]:
    return {
        "booked": m.booked,
        "paid": m.paid,
        "dispatch_p50_s": _pct(m.dispatch_s, 0.5),
        "dispatch_p99_s": _pct(m.dispatch_s, 0.99),
        "paid_p50_s": _pct(m.paid_s, 0.5),
        "paid_p99_s": _pct(m.paid_s, 0.99),
        "ended": dict(m.ended),
        "errors": dict(m.errors),
        "cpu_s": {k: round(v, 1) for k, v in m.cpu_s.items()},
        "rss_mb": {k: round(v) for k, v in m.rss_mb.items()},
        "emulator": {op: [s.count, round(s.cpu_s, 3)] for op, s in m.emulator.items() if s.count},
    }


def _since(now: dict[str, Served], before: dict[str, Served]) -> dict[str, Served]:
    return {op: s - before.get(op, Served(0, 0.0)) for op, s in now.items()}


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def markdown(summary: dict[str, Any]) -> str:
    rows = summary["minutes"]
    names = sorted({n for r in rows for n in r["cpu_s"]}, key=lambda n: (n != "emulator", n))
    lines = [
        f"Target {summary['rate_per_min']:.0f} rides/min; {summary['booked']} rides booked; "
        f"how they ended: {json.dumps(summary['ends'])}.",
        "",
        "| minute | booked | PAID | dispatch p50 / p99 s | book→PAID p50 / p99 s | other ends | errors "
        "| CPU-s all | emulator RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dispatch = f"{_s(r['dispatch_p50_s'])} / {_s(r['dispatch_p99_s'])}"
        to_paid = f"{_s(r['paid_p50_s'])} / {_s(r['paid_p99_s'])}"
        cpu, rss = sum(r["cpu_s"].values()), r["rss_mb"].get("emulator", "-")
        lines.append(
            f"| {r['minute']} | {r['booked']} | {r['paid']} | {dispatch} | {to_paid} | {_counts(r['ended'])} "
            f"| {_counts(r['errors'])} | {cpu:.0f} | {rss} |"
        )
    lines += ["", "CPU seconds per minute and RSS (MB) at the minute's end, per process:", ""]
    lines += ["| minute | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for r in rows:
        cells = [f"{r['cpu_s'].get(n, 0):.1f} s, {r['rss_mb'].get(n, '—')}" for n in names]
        lines.append(f"| {r['minute']} | " + " | ".join(cells) + " |")
    lines += _emulator_table(rows)
    paid = summary["ends"].get("PAID", 0)
    requests = {op: n for op, n in summary["emulator_requests"].items() if not op.startswith(COLLECTOR)}
    if paid:
        lines += [
            "",
            f"Per PAID ride: {summary['cpu_s_total'] / paid:.1f} CPU-s across all processes, "
            f"{sum(requests.values()) / paid:.0f} emulator requests, "
            f"{sum(v for k, v in requests.items() if _is_dynamodb_write(k)) / paid:.0f} DynamoDB writes "
            "(while rides in flight at the end also counted).",
        ]
    return "\n".join(lines) + "\n"


def _emulator_table(rows: list[dict[str, Any]], top: int = 10) -> list[str]:
    """The emulator's busiest operations: requests per minute and CPU ms per request, in minutes 2–6 and
    in the last five (an operation whose cost grows with what the emulator stores shows here)."""
    early, late = rows[1:6], rows[-6:-1] if len(rows) > 11 else []
    if not early:
        return []

    def per_minute(window: list[dict[str, Any]], op: str) -> tuple[float, float]:
        count = sum(r["emulator"].get(op, [0, 0.0])[0] for r in window)
        cpu_s = sum(r["emulator"].get(op, [0, 0.0])[1] for r in window)
        return count / len(window), 1000 * cpu_s / count if count else 0.0

    cpu_by_op = Counter[str]()
    for r in early + late:
        cpu_by_op.update({op: s[1] for op, s in r["emulator"].items() if not op.startswith(COLLECTOR)})
    lines = ["", "Emulator operations by CPU (minutes 2–6, then the last five):", ""]
    lines += ["| operation | requests/min | CPU ms per request | CPU s/min |", "|---|---|---|---|"]
    for op, _ in cpu_by_op.most_common(top):
        windows = [per_minute(w, op) for w in (early, late) if w]
        requests = " → ".join(f"{n:.0f}" for n, _ in windows)
        ms = " → ".join(f"{ms:.2f}" for _, ms in windows)
        cpu_s = " → ".join(f"{n * ms / 1000:.1f}" for n, ms in windows)
        lines.append(f"| {op} | {requests} | {ms} | {cpu_s} |")
    full = [per_minute(w, f"{COLLECTOR}gen2") for w in (early, late) if w]
    return [
        *lines,
        "",
        "Full collections of the emulator's garbage collector (every request waits while one runs): "
        + " → ".join(f"{n:.0f} a minute, {n * ms / 1000:.2f} s of pauses a minute" for n, ms in full)
        + ".",
    ]


def _is_dynamodb_write(operation: str) -> bool:
    return operation.startswith("dynamodb.") and operation.split(".", 1)[1] in {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "BatchWriteItem",
    }


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "—"


RECORDER = Recorder()
