"""A service's background loops: started together, told to stop together, joined within a timeout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from acr.loops import Loops


class Probe:
    """A loop that says when it started and ended, and waits on its stop event as a loop must."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ended = threading.Event()
        self.stop: threading.Event | None = None

    def __call__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.started.set()
        while not stop.wait(60):
            pass
        self.ended.set()


@pytest.fixture
def loops() -> Iterator[Loops]:
    loops = Loops()
    yield loops
    loops.stop(timeout_s=1)  # never leave a thread behind


def _thread(name: str) -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name == name), None)


def test_loops_start_together_and_stop_promptly_when_told(loops: Loops) -> None:
    first, second = Probe(), Probe()
    loops.add("first", first)
    loops.add("second", second)
    assert loops.names == ["first", "second"]
    assert not first.started.is_set()  # nothing runs before start
    loops.start()
    assert first.started.wait(2) and second.started.wait(2)
    started = time.monotonic()
    loops.stop(timeout_s=5)
    assert time.monotonic() - started < 1  # they wait on the stop event, not on a sleep
    assert first.ended.is_set() and second.ended.is_set()  # joined: stop returns after they ended
    assert _thread("first") is None and _thread("second") is None


def test_stop_waits_no_longer_than_its_timeout_for_a_loop_that_does_not_listen(
    loops: Loops, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def deaf(stop: threading.Event) -> None:
        release.wait(30)  # e.g. blocked in a long poll

    loops.add("deaf", deaf)
    loops.start()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="acr.loops"):
        loops.stop(timeout_s=0.3)
    took = time.monotonic() - started
    assert 0.25 <= took < 2
    deaf_thread = _thread("deaf")
    assert deaf_thread is not None and deaf_thread.daemon  # it cannot keep the process alive
    assert "left to finish on their own: deaf" in caplog.text
    release.set()
    deaf_thread.join(2)


def test_a_loop_added_after_start_starts_at_once(loops: Loops) -> None:
    early, late = Probe(), Probe()
    loops.add("early", early)
    loops.start()
    loops.add("late", late)
    assert late.started.wait(2)
    loops.stop(timeout_s=2)
    assert late.ended.is_set() and early.ended.is_set()


def test_a_loop_added_after_start_starts_at_once_even_when_it_is_the_first(loops: Loops) -> None:
    loops.start()  # e.g. a service whose only loop is registered once a request asked for it
    late = Probe()
    loops.add("late", late)
    assert late.started.wait(1)


def test_a_loop_that_raises_is_logged_and_the_others_keep_running(
    loops: Loops, caplog: pytest.LogCaptureFixture
) -> None:
    survivor = Probe()
    crashed = threading.Event()

    def broken(stop: threading.Event) -> None:
        crashed.set()
        raise RuntimeError("boom")

    loops.add("broken", broken)
    loops.add("survivor", survivor)
    with caplog.at_level(logging.ERROR, logger="acr.loops"):
        loops.start()
        assert crashed.wait(2) and survivor.started.wait(2)
        deadline = time.monotonic() + 2
        while "loop broken ended with an error" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "loop broken ended with an error" in caplog.text
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)
    assert not survivor.ended.is_set()  # still running
    loops.stop(timeout_s=2)
    assert survivor.ended.is_set()


def test_on_stop_actions_run_once_the_loops_were_told_to_stop(loops: Loops) -> None:
    probe = Probe()
    seen: list[bool] = []
    woken = threading.Event()

    def wake() -> None:  # e.g. the relay's wake: its loop waits on an event of its own
        assert probe.stop is not None
        seen.append(probe.stop.is_set())
        woken.set()

    def sleeper(stop: threading.Event) -> None:
        woken.wait(30)

    loops.add("probe", probe)
    loops.add("sleeper", sleeper)
    loops.on_stop(wake)
    loops.start()
    assert probe.started.wait(2)
    assert seen == []
    started = time.monotonic()
    loops.stop(timeout_s=5)
    assert seen == [True] and time.monotonic() - started < 1
    assert _thread("sleeper") is None


def test_a_loop_is_given_the_one_stop_event_of_its_service(loops: Loops) -> None:
    probes = [Probe(), Probe()]
    for n, probe in enumerate(probes):
        loops.add(f"p{n}", probe)
    loops.start()
    assert all(p.started.wait(2) for p in probes)
    assert probes[0].stop is probes[1].stop and probes[0].stop is not None
    assert not probes[0].stop.is_set()
    loops.stop(timeout_s=2)
    assert probes[0].stop.is_set()
