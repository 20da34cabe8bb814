"""``make demo``: book a few rides on the running stack through the public API and print each ride's
timeline as the pushes arrive (ride.updated for every version, ride.eta while the car moves)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from typing import Any

import httpx
from websockets.sync.client import connect

TERMINAL = {"PAID", "CANCELLED", "PAYMENT_FAILED"}
NAMES = ("Ada", "Grace", "Linus", "Margaret", "Edsger")
PRINT_LOCK = threading.Lock()


def say(line: str) -> None:
    with PRINT_LOCK:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)  # noqa: T201


def random_address(client: httpx.Client, headers: dict[str, str], rng: random.Random) -> dict[str, Any]:
    bounds = client.get("/api/v1/map", params={"bbox": "-180,-90,180,90", "zoom": 1}, headers=headers).json()[
        "bounds"
    ]
    lat = rng.uniform(bounds[1] + 0.2 * (bounds[3] - bounds[1]), bounds[3] - 0.2 * (bounds[3] - bounds[1]))
    lon = rng.uniform(bounds[0] + 0.2 * (bounds[2] - bounds[0]), bounds[2] - 0.2 * (bounds[2] - bounds[0]))
    return client.get("/api/v1/addresses/reverse", params={"lat": lat, "lon": lon}, headers=headers).json()


def ride_for(base: str, name: str, rng: random.Random) -> None:
    with httpx.Client(base_url=base, timeout=15) as client:
        rider = client.post("/api/v1/riders", json={"name": name}).json()
        headers = {"Authorization": f"Bearer {rider['token']}"}
        pickup, dropoff = random_address(client, headers, rng), random_address(client, headers, rng)
        quote = client.post(
            "/api/v1/quotes",
            headers=headers,
            json={
                "pickup": {"addressId": pickup["addressId"]},
                "dropoff": {"addressId": dropoff["addressId"]},
            },
        )
        if quote.status_code != 201:
            say(f"{name}: no quote: {quote.json()['error']['message']}")
            return
        q = quote.json()
        car_in, there_in = round(q["pickupEtaSeconds"] / 60), round(q["tripDurationSeconds"] / 60)
        say(
            f"{name}: {q['pickup']['label']} -> {q['dropoff']['label']}: your car arrives in {car_in} min, "
            f"you arrive in {there_in} min, {q['fare']['amount']} {q['fare']['currency']} - booking"
        )
        ws_url = base.replace("http", "ws", 1) + f"/ws?token={rider['token']}"
        with connect(ws_url) as ws:
            ride = client.post(
                "/api/v1/rides",
                headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
                json={"quoteId": q["quoteId"]},
            ).json()
            follow(ws, name, ride["rideId"])


def follow(ws: Any, name: str, ride_id: str, timeout_s: float = 900) -> None:
    deadline, last_eta = time.monotonic() + timeout_s, 0.0
    while time.monotonic() < deadline:
        try:
            message = json.loads(ws.recv(timeout=5))
        except TimeoutError:
            continue
        if message.get("rideId") != ride_id:
            continue
        if message["type"] == "ride.updated":
            ride = message["ride"]
            extra = f" car {ride['carId']}" if ride.get("carId") else ""
            if ride.get("fare"):
                extra += f", fare {ride['fare']['amount']} EUR"
            if ride.get("pointsEarned") is not None:
                extra += f", +{ride['pointsEarned']} points"
            say(f"{name} [{ride_id[:13]}] v{message['version']} {message['status']}{extra}")
            if message["status"] in TERMINAL and (
                message["status"] != "PAID" or ride.get("pointsEarned") is not None
            ):
                return
        elif message["type"] == "ride.eta" and time.monotonic() - last_eta > 5:
            last_eta = time.monotonic()
            say(
                f"{name} [{ride_id[:13]}]    {message['phase'].lower().replace('_', ' ')}: "
                f"{round(message['etaSeconds'] / 60, 1)} min"
            )
    say(f"{name} [{ride_id[:13]}] still running after {timeout_s:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bff", default="http://127.0.0.1:8000")
    parser.add_argument("--rides", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    try:
        httpx.get(f"{args.bff}/healthz", timeout=5).raise_for_status()
    except httpx.HTTPError:
        print(f"the stack is not running at {args.bff}: start it with `make run`", file=sys.stderr)  # noqa: T201
        return 1
    rng = random.Random(args.seed)
    threads = [
        threading.Thread(target=ride_for, args=(args.bff, NAMES[i % len(NAMES)], random.Random(rng.random())))
        for i in range(args.rides)
    ]
    for thread in threads:
        thread.start()
        time.sleep(1)
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
