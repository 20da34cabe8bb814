"""The car edge's unit of work (markers only), run against the in-memory fake AND the service's DynamoDB
unit of work (in-process moto): what "marker first, then the in-memory change" relies on holds for both."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from car_simulator_fakes import MemoryInbox

from acr import catalog
from acr.catalog.fleet import CarOutOfService, CarReleased
from acr.unit_of_work import Duplicate
from acr_testkit.aws import in_process_messaging
from car_simulator.ports import UnitOfWork
from car_simulator.topology import TOPOLOGY


@pytest.fixture(params=["memory", "dynamodb"])
def unit_of_work(request: pytest.FixtureRequest) -> Iterator[Callable[[], UnitOfWork]]:
    if request.param == "memory":
        yield MemoryInbox()
        return
    with in_process_messaging(TOPOLOGY) as messaging:
        yield messaging.unit_of_work


def test_the_change_runs_after_the_marker_commits_and_never_for_a_second_delivery(
    unit_of_work: Callable[[], UnitOfWork],
) -> None:
    event = catalog.record(CarOutOfService(car_id="car-00001", reason="stalled"), subject="car-00001")
    applied: list[str] = []
    first = unit_of_work()
    first.after_commit(lambda: applied.append("first"))
    first.mark_consumed(event)
    assert applied == []
    first.commit()
    assert applied == ["first"]

    again = unit_of_work()
    again.after_commit(lambda: applied.append("again"))
    again.mark_consumed(event.resent())
    with pytest.raises(Duplicate):
        again.commit()
    assert applied == ["first"]

    other = unit_of_work()  # another event about the same car is not a duplicate
    other.after_commit(lambda: applied.append("other"))
    other.mark_consumed(catalog.record(CarOutOfService(car_id="car-00001", reason="stalled"), subject="x"))
    other.commit()
    assert applied == ["first", "other"]


def test_the_car_edge_records_no_events(unit_of_work: Callable[[], UnitOfWork]) -> None:
    with pytest.raises(RuntimeError):
        unit_of_work().record(CarReleased(ride_id="r1", car_id="car-00001", reason="x"), subject="r1")
