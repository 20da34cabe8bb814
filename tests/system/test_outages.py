"""An outage of every service's AWS traffic, opened through the BFF's chaos controls on a stack of its
own: the fault proxy really cuts the traffic (it counts what it refused and reset), the window is listed
while it is open and closes by itself, and a ride booked just before it still ends PAID, charged once."""

from __future__ import annotations

import random
import time

import pytest
from rider_client import Ops, Rider, book_ride

from acr import clock
from acr_stack import Stack

pytestmark = pytest.mark.system
OUTAGE_S = 10


def test_a_ride_outlasts_a_refuse_outage_of_all_aws_traffic(outage_stack: Stack) -> None:
    bff = outage_stack.config.url("bff")
    ops, rider = Ops(bff), Rider.sign_up(bff, "Outlasting")
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
