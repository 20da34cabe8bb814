from __future__ import annotations

from bff_fakes import ride_json

from bff.consistency import WriteLog, page_shows, written_from
from bff.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=20, burst=40, clock=clock)
    assert all(limiter.acquire("a") == 0 for _ in range(40))
    assert limiter.acquire("a") >= 1
    assert limiter.acquire("b") == 0  # per key
    clock.now += 0.06  # one token back
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") >= 1


def test_write_log_remembers_the_last_write_for_a_while() -> None:
    clock = Clock()
    log = WriteLog(ttl_s=30, clock=clock)
    log.record("rdr_a", ride_json("r1", "rdr_a", 1))
    log.record("rdr_a", ride_json("r1", "rdr_a", 2))
    written = log.pending("rdr_a")
    assert written is not None and (written.ride_id, written.version) == ("r1", 2)
    clock.now += 31
    assert log.pending("rdr_a") is None
    log.record("rdr_a", {"no": "ride id"})
    assert log.pending("rdr_a") is None


def test_page_shows_a_write() -> None:
    written = written_from(ride_json("r2", "rdr_a", 2, requested_at="2026-01-01T00:00:05Z"), 0.0)
    assert written is not None
    assert not page_shows({"rides": [], "nextCursor": None}, written)
    assert not page_shows({"rides": [ride_json("r2", "rdr_a", 1)]}, written)
    assert page_shows({"rides": [ride_json("r2", "rdr_a", 3)]}, written)
    # A full page of newer rides: the written one belongs on a later page, nothing to wait for.
    newer = [ride_json(f"n{i}", "rdr_a", 1, requested_at="2026-01-01T00:00:09Z") for i in range(2)]
    assert page_shows({"rides": newer, "nextCursor": "c"}, written)
    assert not page_shows({"rides": newer, "nextCursor": None}, written)
