from acr.catalog import BY_MODEL
from acr.catalog.base import STATE_TTL_S
from acr.catalog.fleet import CarAssigned
from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.payment import PaymentSucceeded
from acr.catalog.reward import RiderStandingChanged
from acr.catalog.ride import RideRequested
from acr.topology import ServiceTopology, Subscription, discover
from acr.topology.governance import violations
from acr.topology.plan import plan, retention_for


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


def test_a_service_consumes_its_own_event_only_into_a_read_model_it_rebuilds_from_its_archive() -> None:
    live = Subscription("stats", (RiderStandingChanged,))
    shortcut = ServiceTopology("reward", "reward", publishes=(RiderStandingChanged,), subscriptions=(live,))
    assert violations([shortcut]) == [
        "reward/stats subscribes to its own event acme.acr.reward.RiderStandingChanged"
    ]
    rebuild = Subscription("stats-rebuild", (RiderStandingChanged,), replayed=True)
    read_model = ServiceTopology(
        "reward", "reward", publishes=(RiderStandingChanged,), subscriptions=(live, rebuild)
    )
    assert violations([read_model]) == []


def test_a_queue_keeps_messages_as_long_as_the_longest_ttl_of_the_types_it_carries() -> None:
    queues = {d.queue.name: d for p in plan(discover()) for d in p.deliveries}
    assert queues["acr-bff-ride-eta"].queue.retention_s == 60  # ETAs live 30 s; SQS keeps a minute at least
    assert queues["acr-ride-manager-events"].queue.retention_s == STATE_TTL_S
    assert queues["acr-ride-manager-history.fifo"].queue.retention_s == STATE_TTL_S
    assert all(d.dlq.retention_s == 1_209_600 for d in queues.values())  # an operator's 14 days
    assert retention_for([BY_MODEL[RideEtaUpdated]]) == 60
