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


class Recorder:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.rides: dict[str, Ride] = {}
        self.minutes: dict[int, Minute] = {}
        self.ports = json.loads(os.environ["LOAD_PORTS"]) if os.environ.get("LOAD_PORTS") else FIXED_PORTS
        self.emulator_url = f"http://127.0.0.1:{self.ports['emulator']}"
        self.requests_at_start: dict[str, int] = {}
        self.requests_at_end: dict[str, int] = {}

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
        printed = 0
        while True:
            gevent.sleep(SAMPLE_EVERY_S)
            minute = self.now_minute()
            done = int((time.monotonic() - self.t0) // 60)
            if done > printed:  # a line per finished minute, while the run goes on
                printed = done
                row = _minute_row(self.minutes.get(done - 1, Minute()))
                print(f"minute {done}: {json.dumps({k: row[k] for k in PROGRESS})}", flush=True)  # noqa: T201
            for name, pid in pids.items():
                now = sample(pid)
                if now is None or name not in previous:
                    continue
                minute.cpu_s[name] = minute.cpu_s.get(name, 0.0) + now.cpu_s - previous[name].cpu_s
                minute.rss_mb[name] = now.rss_mb
                previous[name] = now

    def _emulator_requests(self) -> dict[str, int]:
        try:
            with urllib.request.urlopen(self.emulator_url + "/acr-emulator/requests", timeout=5) as response:  # noqa: S310
                return dict(json.loads(response.read()))
        except OSError:
            return {}

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
        requests = {k: v - self.requests_at_start.get(k, 0) for k, v in self.requests_at_end.items()}
        cpu_total = sum(sum(m.cpu_s.values()) for m in self.minutes.values())
        return {
            "rate_per_min": float(os.environ.get("LOAD_RATE", "20")),
            "minutes": [
                {"minute": i + 1, **_minute_row(self.minutes.get(i, Minute()))} for i in range(last + 1)
            ],
            "ends": dict(ends),
            "booked": len(self.rides),
            "cpu_s_total": cpu_total,
            "emulator_requests": requests,
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
    }


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
    paid = summary["ends"].get("PAID", 0)
    requests = summary["emulator_requests"]
    if paid:
        lines += [
            "",
            f"Per PAID ride: {summary['cpu_s_total'] / paid:.1f} CPU-s across all processes, "
            f"{sum(requests.values()) / paid:.0f} emulator requests, "
            f"{sum(v for k, v in requests.items() if _is_dynamodb_write(k)) / paid:.0f} DynamoDB writes "
            "(while rides in flight at the end also counted).",
        ]
    return "\n".join(lines) + "\n"


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
