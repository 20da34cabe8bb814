"""ACR's load profile for locust: riders who sign up, quote, book, watch their websocket and sometimes cancel.

Each simulated rider signs up, finds a few addresses through the public geocoder and opens its websocket;
then, once per pacing interval, it quotes a trip between two of them, books it and follows the pushes until
the ride ends (PAID, or CANCELLED when it cancels after the car was assigned). The riders together book
``LOAD_RATE`` rides a minute. Run it with ``make load`` (``benchmarks/load/run_load.py`` wraps locust);
what it measures per minute is written by :mod:`report`.

Settings (environment): ``LOAD_RATE`` rides per minute (20), ``LOAD_CANCEL`` share of rides the rider
cancels once the car is assigned (0.05), ``LOAD_RIDE_TIMEOUT_S`` (600).
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any

import gevent
import websocket
from gevent.queue import Empty, Queue
from locust import HttpUser, events, task
from locust.env import Environment
from recorder import RECORDER

RATE = float(os.environ.get("LOAD_RATE", "20"))
CANCEL = float(os.environ.get("LOAD_CANCEL", "0.05"))
RIDE_TIMEOUT_S = float(os.environ.get("LOAD_RIDE_TIMEOUT_S", "600"))
PLACES_PER_RIDER = 6


class Rider(HttpUser):
    """One rider: one ride at a time, one ride started every ``pacing`` seconds."""

    def on_start(self) -> None:
        self.rng = random.Random()
        self.pacing_s = 60.0 * self.environment.runner.target_user_count / RATE  # type: ignore[union-attr]
        self.next_start = time.monotonic() + self.rng.uniform(0, self.pacing_s)  # riders do not start at once
        body = self._json("POST", "/api/v1/riders", "sign up", {"name": "Load"}, expect=201)
        self.headers = {"Authorization": f"Bearer {body['token']}"}
        bounds = self._json("GET", "/api/v1/map?bbox=-180,-90,180,90&zoom=1", "map", expect=200)["bounds"]
        self.places = [self._place(bounds) for _ in range(PLACES_PER_RIDER)]
        self.pushes: dict[str, Queue[dict[str, Any]]] = {}
        self.socket = websocket.create_connection(
            self.host.replace("http", "ws", 1) + f"/ws?token={body['token']}",
            timeout=10,  # type: ignore[union-attr]
        )
        self.socket.settimeout(None)  # the timeout was for the handshake: a quiet socket is not a dead one
        self.listener = gevent.spawn(self._listen)

    def on_stop(self) -> None:
        self.listener.kill()
        self.socket.close()

    def wait_time(self) -> float:
        """Until this rider's next ride is due (locust interrupts the wait, not a task, when it stops)."""
        return max(0.0, self.next_start - time.monotonic())

    @task
    def book_a_ride(self) -> None:
        if time.monotonic() < self.next_start:
            return  # the first call, right after on_start: the rider's first ride is not due yet
        self.next_start += self.pacing_s
        pickup, dropoff = self.rng.sample(self.places, 2)
        with self.client.post(
            "/api/v1/quotes",
            json={"pickup": pickup, "dropoff": dropoff},
            headers=self.headers,
            name="quote",
            catch_response=True,
        ) as quoted:
            if quoted.status_code == 409:
                quoted.success()
                RECORDER.no_car()
                return
            if quoted.status_code != 201:
                quoted.failure(f"{quoted.status_code} {quoted.text[:200]}")
                RECORDER.error("quote", quoted.status_code)
                return
        quote_id = quoted.json()["quoteId"]
        booked = self.client.post(
            "/api/v1/rides",
            json={"quoteId": quote_id},
            name="book",
            headers=self.headers | {"Idempotency-Key": uuid.uuid4().hex},
        )
        if booked.status_code != 202:
            RECORDER.error("book", booked.status_code)
            return
        ride_id = booked.json()["rideId"]
        self.pushes.setdefault(ride_id, Queue())
        RECORDER.booked(ride_id)
        self._follow(ride_id)

    def _follow(self, ride_id: str) -> None:
        """Wait for the pushes of one ride until it ends; cancel it sometimes once a car is assigned."""
        pushes = self.pushes[ride_id]
        deadline = time.monotonic() + RIDE_TIMEOUT_S
        cancel = self.rng.random() < CANCEL
        try:
            while True:
                try:
                    push = pushes.get(timeout=max(0.1, deadline - time.monotonic()))
                except Empty:
                    RECORDER.stuck(ride_id)
                    return
                status = push["status"]
                if status == "CAR_ASSIGNED":
                    fire("dispatch", RECORDER.assigned(ride_id, push["receivedAt"]))
                    if cancel:
                        self.client.post(
                            f"/api/v1/rides/{ride_id}/cancel", headers=self.headers, name="cancel"
                        )
                elif status == "PAID":
                    fire("book to PAID", RECORDER.paid(ride_id, push["receivedAt"]))
                    return
                elif status in ("CANCELLED", "PAYMENT_FAILED"):
                    RECORDER.ended(ride_id, status, push["ride"].get("cancellation"))
                    return
        finally:
            self.pushes.pop(ride_id, None)

    def _listen(self) -> None:
        while True:
            try:
                message = json.loads(self.socket.recv())
            except (websocket.WebSocketException, OSError):
                return
            if message.get("type") == "ride.updated":
                message["receivedAt"] = time.monotonic()
                self.pushes.setdefault(message["rideId"], Queue()).put(message)

    def _place(self, bounds: list[float]) -> dict[str, str]:
        min_lon, min_lat, max_lon, max_lat = bounds
        lat = self.rng.uniform(min_lat + 0.1 * (max_lat - min_lat), max_lat - 0.1 * (max_lat - min_lat))
        lon = self.rng.uniform(min_lon + 0.1 * (max_lon - min_lon), max_lon - 0.1 * (max_lon - min_lon))
        found = self._json("GET", f"/api/v1/addresses/reverse?lat={lat}&lon={lon}", "reverse", expect=200)
        return {"addressId": found["addressId"]}

    def _json(self, method: str, path: str, name: str, body: Any = None, expect: int = 200) -> Any:
        for attempt in range(5):
            response = self.client.request(
                method, path, json=body, headers=getattr(self, "headers", {}), name=name
            )
            if response.status_code == expect:
                return response.json()
            gevent.sleep(1 + attempt)
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:200]}")


def fire(name: str, seconds: float | None) -> None:
    """Show a ride latency in locust's own statistics too (as a request type "ride")."""
    if seconds is not None:
        events.request.fire(
            request_type="ride", name=name, response_time=seconds * 1000, response_length=0, exception=None
        )


@events.test_start.add_listener
def _start(environment: Environment, **_kwargs: Any) -> None:
    RECORDER.start(environment)


@events.quitting.add_listener
def _quit(**_kwargs: Any) -> None:
    RECORDER.finish()
