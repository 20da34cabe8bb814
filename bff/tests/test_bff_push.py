from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from bff_fakes import FakeRideManager, ride_json, token_for
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from acr import catalog
from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.ride import RideUpdated
from acr.consumer import idempotent
from acr.unit_of_work import EffectsOnly
from acr_testkit.messaging import FakeMessaging
from bff.auth import new_rider_id
from bff.handlers import handlers
from bff.handoff import AppLoop
from bff.push import GapNotFilled, PushHub, Resume, parse_client_message
from bff.state import Dependencies

RIDE_UPDATES = "ride-updates.fifo"  # the BFF's queues (bff.topology), as the fake messaging names them
RIDE_ETA = "ride-eta"


def store(deps: Dependencies, rider_id: str, ride_id: str, upto: int) -> list[dict[str, Any]]:
    manager: FakeRideManager = deps.ride_manager  # type: ignore[assignment]
    for version in range(1, upto + 1):
        manager.add(
            ride_json(ride_id, rider_id, version, status="REQUESTED" if version == 1 else "CAR_ASSIGNED")
        )
    return manager.versions_of[ride_id]


def feed(messaging: FakeMessaging, ride: dict[str, Any]) -> None:
    """A RideUpdated message consumed from the BFF's ride-updates queue (what its SQS consumer does),
    stamped like ride-manager does: its sequence is the ride's version."""
    data = RideUpdated(ride_id=ride["rideId"], rider_id=ride["riderId"], version=ride["version"], ride=ride)
    messaging.deliver(RIDE_UPDATES, data, subject=data.ride_id, sequence=data.version)


def versions_received(ws: Any, n: int) -> list[int]:
    out = []
    for _ in range(n):
        message = ws.receive_json()
        assert message["type"] == "ride.updated", message
        assert message["ride"]["version"] == message["version"]
        out.append(message["version"])
    return out


def assert_nothing_more(messaging: FakeMessaging, deps: Dependencies, ws: Any, rider_id: str) -> None:
    """A sentinel ride proves nothing else was queued before it."""
    sentinel = ride_json("ride_sentinel", rider_id, 1)
    deps.ride_manager.add(sentinel)  # type: ignore[attr-defined]
    feed(messaging, sentinel)
    assert ws.receive_json()["rideId"] == "ride_sentinel"


def test_bad_token_closes_4401(client: TestClient) -> None:
    for url in ("/ws", "/ws?token=nope", f"/ws?token={token_for(new_rider_id(), ttl_s=-5)}"):
        with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401


def test_out_of_order_and_duplicates_are_delivered_once_in_order(
    client: TestClient, deps: Dependencies, push_messaging: FakeMessaging
) -> None:
    rider_id = new_rider_id()
    v = store(deps, rider_id, "ride_1", 3)
    with client.websocket_connect(f"/ws?token={token_for(rider_id)}") as ws:
        for version in (1, 3, 2, 3):
            feed(push_messaging, v[version - 1])
        assert versions_received(ws, 3) == [1, 2, 3]
        assert deps.ride_manager.version_calls == [("ride_1", 1)]  # type: ignore[attr-defined]
        assert_nothing_more(push_messaging, deps, ws, rider_id)


def test_nothing_is_replayed_unasked(
    client: TestClient, deps: Dependencies, push_messaging: FakeMessaging
) -> None:
    rider_id = new_rider_id()
    v = store(deps, rider_id, "ride_1", 5)
    with client.websocket_connect(f"/ws?token={token_for(rider_id)}") as ws:
        feed(push_messaging, v[3])
        message = ws.receive_json()
        assert (message["rideId"], message["version"], message["status"]) == ("ride_1", 4, "CAR_ASSIGNED")
        assert deps.ride_manager.version_calls == []  # type: ignore[attr-defined]


def test_resume_replays_then_continues_live_without_duplicates(
    client: TestClient, deps: Dependencies, push_messaging: FakeMessaging
) -> None:
    rider_id = new_rider_id()
    v = store(deps, rider_id, "ride_1", 3)
    with client.websocket_connect(f"/ws?token={token_for(rider_id)}") as ws:
        ws.send_json({"type": "resume", "rideId": "ride_1", "afterVersion": 1})
        assert versions_received(ws, 2) == [2, 3]
        feed(push_messaging, v[2])  # a live duplicate of v3
        store_more = deps.ride_manager.versions_of["ride_1"]  # type: ignore[attr-defined]
        store_more.append(ride_json("ride_1", rider_id, 4, "CAR_ARRIVED"))
        feed(push_messaging, store_more[3])
        assert versions_received(ws, 1) == [4]
        ws.send_json({"type": "resume", "rideId": "ride_1", "afterVersion": 0})  # all already sent
        assert_nothing_more(push_messaging, deps, ws, rider_id)


def test_resume_of_a_foreign_or_unknown_ride(client: TestClient, deps: Dependencies) -> None:
    owner, intruder = new_rider_id(), new_rider_id()
    store(deps, owner, "ride_1", 2)
    with client.websocket_connect(f"/ws?token={token_for(intruder)}") as ws:
        for ride_id in ("ride_1", "ride_unknown"):
            ws.send_json({"type": "resume", "rideId": ride_id, "afterVersion": 0})
            assert ws.receive_json() == {"type": "error", "code": "ride_not_found", "rideId": ride_id}


def test_malformed_client_messages(client: TestClient) -> None:
    with client.websocket_connect(f"/ws?token={token_for(new_rider_id())}") as ws:
        for raw in (
            "not json",
            "[]",
            '{"type": "hello"}',
            '{"type": "resume", "rideId": "r", "afterVersion": -1}',
            '{"type": "resume", "rideId": 3, "afterVersion": 1}',
        ):
            ws.send_text(raw)
            message = ws.receive_json()
            assert (message["type"], message["code"]) == ("error", "bad_request")
        ws.send_bytes(b"\x00")
        assert ws.receive_json()["code"] == "bad_request"


def test_other_riders_get_nothing(
    client: TestClient, deps: Dependencies, push_messaging: FakeMessaging
) -> None:
    rider_id, other = new_rider_id(), new_rider_id()
    v = store(deps, other, "ride_x", 1)
    with client.websocket_connect(f"/ws?token={token_for(rider_id)}") as ws:
        feed(push_messaging, v[0])
        assert_nothing_more(push_messaging, deps, ws, rider_id)


def test_eta_is_pushed_to_the_rides_rider_and_throttled(
    client: TestClient, deps: Dependencies, push_messaging: FakeMessaging
) -> None:
    rider_id = new_rider_id()
    v = store(deps, rider_id, "ride_1", 1)
    eta = RideEtaUpdated(
        ride_id="ride_1", car_id="car-00001", phase="TO_PICKUP", eta_seconds=120.0, lat=1.0, lon=2.0
    )
    with client.websocket_connect(f"/ws?token={token_for(rider_id)}") as ws:
        feed(push_messaging, v[0])
        assert ws.receive_json()["version"] == 1
        push_messaging.deliver(RIDE_ETA, eta)
        push_messaging.deliver(RIDE_ETA, eta)  # within 2 s of the previous one: dropped
        assert ws.receive_json() == {
            "type": "ride.eta",
            "rideId": "ride_1",
            "phase": "TO_PICKUP",
            "etaSeconds": 120.0,
            "lat": 1.0,
            "lon": 2.0,
        }
        assert_nothing_more(push_messaging, deps, ws, rider_id)


def test_gap_not_stored_yet_raises_for_redelivery(
    client: TestClient, deps: Dependencies, push_messaging: FakeMessaging
) -> None:
    rider_id = new_rider_id()
    v = list(store(deps, rider_id, "ride_1", 3))
    del deps.ride_manager.versions_of["ride_1"][1]  # type: ignore[attr-defined]  # v2 not stored yet
    with client.websocket_connect(f"/ws?token={token_for(rider_id)}") as ws:
        feed(push_messaging, v[0])
        with pytest.raises(Exception, match="connection"):
            feed(push_messaging, v[2])
        deps.ride_manager.versions_of["ride_1"].insert(1, ride_json("ride_1", rider_id, 2))  # type: ignore[attr-defined]
        feed(push_messaging, v[2])  # redelivered
        assert versions_received(ws, 3) == [1, 2, 3]


# --- the hub without a websocket -------------------------------------------------------------------
class History:
    def __init__(self, rides: list[dict[str, Any]]) -> None:
        self.rides = rides

    async def versions(self, rider_id: str, ride_id: str, after_version: int) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        return [r for r in self.rides if r["version"] > after_version]


def drain(queue: asyncio.Queue[dict[str, Any]]) -> list[int]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait()["version"])
    return out


def test_concurrent_resume_and_live_never_duplicate_or_reorder() -> None:
    rides = [ride_json("r1", "rdr_a", n) for n in range(1, 21)]

    async def scenario() -> list[int]:
        hub = PushHub(History(rides))
        connection = hub.connect("rdr_a")
        live = [hub.ride_updated("rdr_a", r) for r in rides[5:]]
        await asyncio.gather(hub.resume(connection, Resume("r1", 2)), *live)
        return drain(connection.outbox)

    for _ in range(20):
        sent = asyncio.run(scenario())
        assert sent == sorted(set(sent)), sent
        assert sent[-1] == 20


def test_the_event_sequence_orders_the_push_stale_dropped_next_sent_early_filled_from_the_history() -> None:
    rides = [ride_json("r1", "rdr_a", n) for n in range(1, 5)]

    async def scenario() -> tuple[list[int], int | None]:
        hub = PushHub(History(rides), resume_grace_s=0)
        connection = hub.connect("rdr_a")
        await hub.ride_updated("rdr_a", rides[0], sequence=1)
        await hub.ride_updated("rdr_a", rides[0], sequence=1)  # not newer: dropped
        await hub.ride_updated("rdr_a", rides[3], sequence=4)  # early: 2 and 3 fetched and sent first
        await hub.ride_updated("rdr_a", rides[1], sequence=2)  # overtaken meanwhile: dropped
        return drain(connection.outbox), connection.last_sent("r1")

    assert asyncio.run(scenario()) == ([1, 2, 3, 4], 4)


def test_a_gap_the_history_cannot_fill_yet_sends_what_it_has_and_the_message_comes_again() -> None:
    rides = [ride_json("r1", "rdr_a", n) for n in (1, 2, 4)]  # version 3 is not stored yet

    async def scenario() -> tuple[list[int], int | None]:
        hub = PushHub(History(rides), resume_grace_s=0)
        connection = hub.connect("rdr_a")
        await hub.ride_updated("rdr_a", rides[0], sequence=1)
        with pytest.raises(GapNotFilled):
            await hub.ride_updated("rdr_a", rides[2], sequence=4)
        return drain(connection.outbox), connection.last_sent("r1")

    assert asyncio.run(scenario()) == ([1, 2], 2)


def test_a_resume_right_after_connecting_is_served_before_live_updates() -> None:
    rides = [ride_json("r1", "rdr_a", n) for n in range(1, 6)]

    async def scenario() -> list[int]:
        hub = PushHub(History(rides), resume_grace_s=0.3)
        connection = hub.connect("rdr_a")
        live = asyncio.create_task(hub.ride_updated("rdr_a", rides[4]))  # v5 arrives first
        await asyncio.sleep(0.05)
        await hub.resume(connection, Resume("r1", 2))  # the client asks for what it missed
        await live
        return drain(connection.outbox)

    assert asyncio.run(scenario()) == [3, 4, 5]


def test_parse_client_message() -> None:
    assert parse_client_message('{"type":"resume","rideId":"r","afterVersion":0}') == Resume("r", 0)
    for raw in (
        '{"type":"resume","rideId":"","afterVersion":0}',
        '{"type":"resume","rideId":"r","afterVersion":true}',
    ):
        with pytest.raises(ValueError):
            parse_client_message(raw)


def test_the_push_consumer_runs_on_the_app_loop_from_a_consumer_thread() -> None:
    rides = [ride_json("r1", "rdr_a", 1)]

    async def scenario() -> list[int]:
        hub = PushHub(History(rides))
        connection = hub.connect("rdr_a")
        consume = idempotent(EffectsOnly, handlers(hub=hub, app_loop=AppLoop(asyncio.get_running_loop())))
        data = RideUpdated(ride_id="r1", rider_id="rdr_a", version=1, ride=rides[0])
        thread = threading.Thread(target=consume, args=(catalog.record(data, subject="r1"), data))
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.01)
        return drain(connection.outbox)

    assert asyncio.run(scenario()) == [1]


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_a_push_that_does_not_finish_in_time_fails_the_message() -> None:
    loop = asyncio.new_event_loop()  # never run: the push never happens
    try:
        consume = idempotent(
            EffectsOnly, handlers(hub=PushHub(History([])), app_loop=AppLoop(loop, timeout_s=0.05))
        )
        data = RideUpdated(ride_id="r1", rider_id="rdr_a", version=1, ride=ride_json("r1", "rdr_a", 1))
        with pytest.raises(TimeoutError):
            consume(catalog.record(data, subject="r1"), data)
    finally:
        loop.close()


def test_the_rider_of_an_unknown_ride_is_looked_up_at_most_once_per_refresh_period() -> None:
    class Active(History):
        calls = 0

        async def ops_rides(self, active: bool) -> dict[str, Any]:
            Active.calls += 1
            return {"rides": [ride_json("ride_1", "rdr_1", 1)]}

    now = [0.0]
    source = Active([])
    hub = PushHub(source, active_rides=source, owners_refresh_s=5.0, clock=lambda: now[0], resume_grace_s=0)

    async def scenario() -> list[bool]:
        pushed = [await hub.eta_updated("ride_1", "TO_PICKUP", 9.0, 0.0, 0.0)]  # nobody connected: no lookup
        connection = hub.connect("rdr_1")
        pushed.append(await hub.eta_updated("ride_2", "TO_PICKUP", 9.0, 0.0, 0.0))  # not active: looked up
        now[0] = 1.0
        pushed.append(await hub.eta_updated("ride_1", "TO_PICKUP", 9.0, 0.0, 0.0))  # known since that lookup
        pushed.append(await hub.eta_updated("ride_3", "TO_PICKUP", 9.0, 0.0, 0.0))  # too soon to look again
        now[0] = 6.0
        pushed.append(await hub.eta_updated("ride_3", "TO_PICKUP", 9.0, 0.0, 0.0))
        assert connection.outbox.qsize() == 1
        return pushed

    assert asyncio.run(scenario()) == [False, False, True, False, False]
    assert Active.calls == 2
