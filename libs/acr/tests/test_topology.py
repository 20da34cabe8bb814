from acr.catalog.fleet import CarAssigned
from acr.catalog.payment import PaymentSucceeded
from acr.catalog.ride import RideRequested
from acr.topology import ServiceTopology, Subscription, discover
from acr.topology.governance import violations


def test_the_installed_services_form_a_consistent_topology() -> None:
    slices = discover()
    assert {s.service for s in slices} >= {
        "bff",
        "ride-manager",
        "car-dispatcher",
        "address-finder",
        "payment",
        "reward",
        "route-monitor",
        "car-simulator",
    }
    assert violations(slices) == []


def test_subscribing_to_an_event_nobody_publishes_fails_governance() -> None:
    ride = ServiceTopology("ride-manager", "ride", publishes=(RideRequested,))
    fleet = ServiceTopology(
        "car-dispatcher",
        "fleet",
        publishes=(CarAssigned,),
        subscriptions=(Subscription("events", (RideRequested, PaymentSucceeded)),),
    )
    assert violations([ride, fleet]) == [
        "car-dispatcher/events subscribes to acme.acr.payment.PaymentSucceeded, which no service publishes"
    ]


def test_publishing_outside_ones_context_fails_governance() -> None:
    rogue = ServiceTopology("car-dispatcher", "fleet", publishes=(RideRequested,))
    assert violations([rogue]) == [
        "car-dispatcher publishes acme.acr.ride.RideRequested outside its context fleet"
    ]
