"""``apply`` and ``export`` read the same slices and describe the same resources: what ``apply`` creates on
in-process moto is read back with boto3, what ``export`` writes is read from the templates, and both are
reduced to one shape (buses, queues with their DLQ and max receives, routes with their event patterns,
topics, subscriptions, streams, tables with keys, indexes and TTL).

On AWS a subscription of another context is two rules, the producer's forwarding rule and the consumer's
rule on its own bus; composed, they are the one rule ``apply`` puts on the producer's bus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from acr.catalog.base import CONTEXT_SERVICE, TELEMETRY_STREAM
from acr.catalog.car import CarTelemetry
from acr.catalog.fleet import CarAssigned
from acr.catalog.monitoring import TripStarted
from acr.catalog.ride import RideCancelled, RideRequested
from acr.topology import ServiceTopology, Stream, Subscription, discover
from acr.topology.apply import Clients, apply
from acr.topology.cloudformation import templates
from acr.topology.export import MAX_RECEIVES, export
from acr.topology.governance import violations
from acr.topology.plan import plan
from acr.topology.services import SECRETS
from acr_testkit.aws import client

ROOT = Path(__file__).resolve().parents[3]
EXPORT_ONLY_QUEUE_SUFFIXES = ("-delivery-dlq", "-pipe-dlq")
"""AWS-only queues: what the rules of an account could not deliver, and the Pipes option's DLQ."""


# --- what apply created, read back from moto ----------------------------------------------------------------
def _applied() -> dict[str, Any]:
    with mock_aws():
        apply(discover(), Clients(client), MAX_RECEIVES)
        return _read_account()


def _read_account() -> dict[str, Any]:
    events, sqs, sns = client("events"), client("sqs"), client("sns")
    queues = {}
    senders = {}
    arn_to_queue = {}
    for url in sqs.list_queues(MaxResults=1000).get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        name = url.rsplit("/", 1)[-1]
        arn_to_queue[attributes["QueueArn"]] = name
        redrive = json.loads(attributes.get("RedrivePolicy", "null"))
        queues[name] = (
            attributes.get("FifoQueue") == "true",
            redrive and redrive["deadLetterTargetArn"].rsplit(":", 1)[-1],
            redrive and int(redrive["maxReceiveCount"]),
        )
        if "Policy" in attributes:
            senders[name] = _senders(json.loads(attributes["Policy"]), _last_part)
    buses = {b["Name"] for b in events.list_event_buses()["EventBuses"]} - {"default"}
    routes = {}
    for bus in buses:
        for rule in events.list_rules(EventBusName=bus)["Rules"]:
            if rule["Name"].startswith("Events-Archive-"):  # the archive's own rule, EventBridge's
                continue
            (target,) = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            pattern = json.loads(rule["EventPattern"])
            routes[(bus, rule["Name"])] = (
                sorted(pattern["detail-type"]),
                arn_to_queue[target["Arn"]],
                pattern["replay-name"],
            )
    topics = {t["TopicArn"].rsplit(":", 1)[-1] for t in sns.list_topics()["Topics"]}
    subscriptions = {
        (s["TopicArn"].rsplit(":", 1)[-1], arn_to_queue[s["Endpoint"]])
        for s in sns.list_subscriptions()["Subscriptions"]
    }
    archives = {
        (a["ArchiveName"], a["EventSourceArn"].rsplit("/", 1)[-1], a["RetentionDays"])
        for a in events.list_archives()["Archives"]
    }
    return {
        "buses": buses,
        "archives": archives,
        "queues": queues,
        "routes": routes,
        "topics": topics,
        "subscriptions": subscriptions,
        "senders": senders,
        "streams": _streams(),
        "tables": _tables(),
    }


def _last_part(arn: Any) -> str:
    """A rule's, a topic's or a role's name in its ARN (or in the ``Fn::Sub`` of one)."""
    text = arn if isinstance(arn, str) else str(arn["Fn::Sub"])
    return text.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def _senders(policy: dict[str, Any], name: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """Who a queue's policy lets send: (AWS service, rule or topic) and principals (role names); asserts that
    its one Deny refuses everyone else. (A rule of ``apply`` is on each producer's bus, an exported one on
    the consumer's: the same name.)"""
    feeds, principals, denied_unless = [], [], {}
    for statement in policy["Statement"]:
        assert statement["Action"] == "sqs:SendMessage"
        if statement["Effect"] == "Deny":
            assert statement["Principal"] == "*"
            denied_unless = statement.get("Condition", {}).get("ArnNotEquals", {})
        elif "Service" in statement["Principal"]:
            arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            feeds += [(statement["Principal"]["Service"], name(arn)) for arn in arns]
        else:
            principals += [name(arn) for arn in statement["Principal"]["AWS"]]
    assert sorted(name(a) for a in denied_unless.get("aws:SourceArn", [])) == sorted(f for _, f in feeds)
    assert sorted(name(a) for a in denied_unless.get("aws:PrincipalArn", [])) == sorted(principals)
    return sorted(set(feeds)), sorted(principals)


def _streams() -> dict[str, int]:
    kinesis = client("kinesis")
    return {
        name: kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"]
        for name in kinesis.list_streams()["StreamNames"]
    }


def _tables() -> dict[str, Any]:
    dynamodb = client("dynamodb")
    tables = {}
    for name in dynamodb.list_tables()["TableNames"]:
        table = dynamodb.describe_table(TableName=name)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        tables[name] = _table_shape(
            table["KeySchema"],
            table["AttributeDefinitions"],
            table.get("GlobalSecondaryIndexes", []),
            ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
        )
    return tables


def _table_shape(key: list[Any], attributes: list[Any], indexes: list[Any], ttl: str | None) -> Any:
    types = {a["AttributeName"]: a["AttributeType"] for a in attributes}

    def keys(schema: list[Any]) -> tuple[tuple[str, str, str], ...]:
        return tuple((k["AttributeName"], k["KeyType"], types[k["AttributeName"]]) for k in schema)

    return (
        keys(key),
        sorted((i["IndexName"], keys(i["KeySchema"]), i["Projection"]["ProjectionType"]) for i in indexes),
        ttl,
    )


# --- what export wrote, read from the templates ------------------------------------------------------------
def _name(value: Any, resources: dict[str, Any]) -> str:
    """The physical name a Ref, GetAtt or Fn::Sub ARN points at."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return _physical(resources[value["Ref"]])
    if "Fn::GetAtt" in value:
        return _physical(resources[value["Fn::GetAtt"][0]])
    return str(value["Fn::Sub"]).rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def _physical(resource: dict[str, Any]) -> str:
    properties = resource["Properties"]
    for key in ("Name", "QueueName", "TopicName", "TableName"):
        if key in properties:
            return str(properties[key])
    raise AssertionError(f"no name in {resource}")


def _exported() -> dict[str, Any]:
    stacks = templates(plan(discover(), MAX_RECEIVES))
    found: dict[str, Any] = {
        "buses": set(),
        "archives": set(),
        "queues": {},
        "rules": [],
        "topics": set(),
        "subscriptions": set(),
        "senders": {},
        "streams": {},
        "tables": {},
    }
    for template in stacks.values():
        resources = template["Resources"]
        for resource in resources.values():
            _read_resource(resource, resources, found)
    return found


def _read_resource(resource: dict[str, Any], resources: dict[str, Any], found: dict[str, Any]) -> None:
    kind, properties = resource["Type"], resource["Properties"]
    if kind == "AWS::Events::EventBus":
        found["buses"].add(properties["Name"])
    elif kind == "AWS::Events::Archive":
        bus = _name(properties["SourceArn"], resources)
        found["archives"].add((properties["ArchiveName"], bus, properties["RetentionDays"]))
    elif kind == "AWS::SQS::Queue" and "Condition" not in resource:
        redrive = properties.get("RedrivePolicy")
        found["queues"][properties["QueueName"]] = (
            properties.get("FifoQueue", False),
            redrive and _name(redrive["deadLetterTargetArn"], resources),
            redrive and redrive["maxReceiveCount"],
        )
    elif kind == "AWS::SQS::QueuePolicy":
        _read_queue_policy(properties, resources, found["senders"])
    elif kind == "AWS::Events::Rule":
        (target,) = properties["Targets"]
        found["rules"].append(
            (
                _name(properties["EventBusName"], resources),
                properties["Name"],
                sorted(properties["EventPattern"]["detail-type"]),
                _name(target["Arn"], resources),
                "RoleArn" in target,
                properties["EventPattern"]["replay-name"],
            )
        )
    elif kind == "AWS::SNS::Topic":
        found["topics"].add(properties["TopicName"])
    elif kind == "AWS::SNS::Subscription":
        found["subscriptions"].add(
            (_name(properties["TopicArn"], resources), _name(properties["Endpoint"], resources))
        )
    elif kind == "AWS::Kinesis::Stream":
        found["streams"][properties["Name"]] = properties["ShardCount"]
    elif kind == "AWS::DynamoDB::Table":
        ttl = properties.get("TimeToLiveSpecification", {})
        found["tables"][properties["TableName"]] = _table_shape(
            properties["KeySchema"],
            properties["AttributeDefinitions"],
            properties.get("GlobalSecondaryIndexes", []),
            ttl.get("AttributeName") if ttl.get("Enabled") else None,
        )


def _read_queue_policy(
    properties: dict[str, Any], resources: dict[str, Any], senders: dict[str, Any]
) -> None:
    (queue,) = properties["Queues"]
    if _name(queue, resources).endswith(EXPORT_ONLY_QUEUE_SUFFIXES):
        return

    def name(value: Any) -> str:
        if "Fn::GetAtt" in value:  # a task role
            return str(resources[value["Fn::GetAtt"][0]]["Properties"]["RoleName"])
        return _last_part(value)

    senders[_name(queue, resources)] = _senders(properties["PolicyDocument"], name)


def _routes(rules: list[tuple[str, str, list[str], str, bool, Any]]) -> dict[tuple[str, str], Any]:
    """Compose each forwarding rule (its target a bus) with the consumer's rule on that bus; a rule of a
    consumer on its own context's bus (a rebuild's) is a route as it is."""
    to_queue = [r for r in rules if not r[4]]
    forwarded = {(r[3], r[1]) for r in rules if r[4]}
    routes = {(b, n): (t, q, replay) for b, n, t, q, _, replay in to_queue if (b, n) not in forwarded}
    per_replica = {r.rule for p in plan(discover()) if p.slice.per_replica for r in p.routes}
    for bus, name, types, target, forwards, replay in rules:
        if not forwards:
            continue
        if name in per_replica:  # each replica puts its own rule on the target bus (acr.topology.replicas)
            assert not [r for r in to_queue if r[0] == target and r[1] == name]
            continue
        (local,) = [r for r in to_queue if r[0] == target and r[1] == name]
        routes[(bus, name)] = (sorted(set(types) & set(local[2])), local[3], replay)
    return routes


def test_apply_and_export_describe_the_same_resources() -> None:
    applied, exported = _applied(), _exported()
    inbound_only = exported["buses"] - applied["buses"]
    assert inbound_only == {"acr-bff", "acr-car"}  # consumers that publish on no bus receive on one
    assert exported["buses"] - inbound_only == applied["buses"]
    assert exported["archives"] == applied["archives"]
    assert {bus for _, bus, _ in applied["archives"]} == applied["buses"]  # each publishing bus has one
    queues = {n: q for n, q in exported["queues"].items() if not n.endswith(EXPORT_ONLY_QUEUE_SUFFIXES)}
    assert queues == applied["queues"]
    assert _routes(exported["rules"]) == applied["routes"]
    assert exported["topics"] == applied["topics"]
    assert exported["subscriptions"] == applied["subscriptions"]
    assert exported["streams"] == applied["streams"]
    assert exported["tables"] == applied["tables"]


def test_only_the_rules_and_topics_feeding_a_queue_and_its_consumer_may_send_to_it() -> None:
    """The same senders in both: each queue's feeds and its consumer's role, which sends its own dead
    letters and redrives them (no operator role may send to another service's queue)."""
    applied, exported = _applied()["senders"], _exported()["senders"]
    assert applied == exported
    assert applied["acr-ride-manager-events"] == (
        [("events.amazonaws.com", "ride-manager-events")],
        ["acr-ride-manager"],
    )
    assert exported["acr-ride-manager-history.fifo"] == (
        [("sns.amazonaws.com", "acr-ride-updates.fifo")],
        ["acr-ride-manager"],
    )
    assert exported["acr-payment-events-dlq"] == ([], ["acr-payment"])


def test_every_subscription_of_another_context_is_forwarded_and_delivered_once() -> None:
    rules = _exported()["rules"]
    forwarding = [r for r in rules if r[4]]
    assert len(forwarding) == len({(r[0], r[1]) for r in forwarding})
    for bus, name, types, target, _, _ in forwarding:
        assert bus != target, name
        assert all(t.startswith(f"acme.acr.{bus.removeprefix('acr-')}.") for t in types)


# --- the stacks themselves ----------------------------------------------------------------------------------
def _stacks() -> dict[str, Any]:
    return templates(plan(discover(), MAX_RECEIVES))


def test_the_export_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    export(first / "deploy", first / "schemas")
    export(second / "deploy", second / "schemas")
    files = sorted(p.relative_to(first) for p in first.rglob("*.json"))
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.json"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def _referenced(document: Any) -> set[str]:
    """Logical ids a policy document points at."""
    text = json.dumps(document)
    found = set()
    for part in text.split('"Fn::GetAtt": ["')[1:]:
        found.add(part.split('"', 1)[0])
    for part in text.split('"Ref": "')[1:]:
        found.add(part.split('"', 1)[0])
    for part in text.split("${")[1:]:
        found.add(part.split("}", 1)[0].split(".", 1)[0])
    return found


@pytest.mark.parametrize("service", [s.service for s in discover()])
def test_a_task_role_reaches_exactly_its_own_slice(service: str) -> None:
    s = next(x for x in discover() if x.service == service)
    template = _stacks()[s.deploy_context]
    resources = template["Resources"]
    role = resources.get(f"{''.join(p.title() for p in service.split('-'))}TaskRole")
    assert role is not None
    documents = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    referenced = {r for d in documents for r in _referenced(d) if r in resources}
    names = {_physical(resources[r]) for r in referenced if "Properties" in resources[r] and r != "Key"}
    expected = {t.name for t in s.all_tables()}
    if not s.per_replica:  # per replica: queues by name pattern (next test)
        expected |= {q for queue, dlq, _ in s.all_queues() for q in (queue, dlq)}
    expected |= {s.producer_dlq} if s.has_outbox else set()
    expected |= {s.bus} if s.bus and s.has_outbox else set()
    expected |= set(s.topics) | {st.name for st in s.streams}
    assert names == expected


def test_a_consumer_redrives_its_own_dlqs_with_its_own_role() -> None:
    """``/v1/ops/dlq`` runs in the consuming service: its role reads, deletes from and sends to its own DLQs
    (and sends to its own queues), no other's."""
    resources = _stacks()["ride"]["Resources"]
    role = resources["RideManagerTaskRole"]
    statements = {
        s["Sid"]: s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
    }
    dead_letter = statements["deadLetter"]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"} <= set(dead_letter["Action"])
    dlqs = {_physical(resources[r]) for r in _referenced(dead_letter)}
    assert dlqs == {
        dlq for _, dlq, _ in next(s for s in discover() if s.service == "ride-manager").all_queues()
    }
    assert "sqs:SendMessage" in statements["consume"]["Action"]


def test_a_per_replica_service_manages_only_its_own_queues_rules_and_subscriptions() -> None:
    role = _stacks()["bff"]["Resources"]["BffTaskRole"]
    statements = {
        s["Sid"]: s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
    }
    queues, rules = statements["replicaQueues"], statements["replicaRules"]
    assert {"sqs:CreateQueue", "sqs:DeleteQueue", "sqs:TagQueue", "sqs:ReceiveMessage"} <= set(
        queues["Action"]
    )
    assert queues["Resource"]["Fn::Sub"].endswith(":acr-bff-*")
    assert rules["Resource"]["Fn::Sub"].endswith(":rule/acr-bff/bff-*")
    (topic,) = statements["replicaSubscriptions"]["Resource"]
    assert topic["Fn::Sub"].endswith(":acr-ride-updates.fifo")
    assert "sqs:CreateQueue" not in json.dumps(_stacks()["ride"])  # no other service creates queues


def test_only_a_publisher_puts_events_and_only_with_its_own_source() -> None:
    for context, template in _stacks().items():
        for logical, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role" or not logical.endswith("TaskRole"):
                continue
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    if "events:PutEvents" in statement["Action"]:
                        source = statement["Condition"]["StringEquals"]["events:source"]
                        assert source == f"acr.{CONTEXT_SERVICE[context]}"


def test_secrets_go_to_the_services_whose_code_reads_them() -> None:
    services = [s.service for s in discover() if (ROOT / s.service / "src").is_dir()]
    readers = {}
    for name in ("token_secret",):
        readers[name] = {
            service
            for service in services
            if any(f"settings.{name}" in p.read_text() for p in (ROOT / service / "src").rglob("*.py"))
        }
    kernel = (ROOT / "libs" / "acr" / "src" / "acr" / "identity.py").read_text()  # every service's skeleton
    for name in ("ops_token", "service_key", "service_public_keys"):
        assert f"settings.{name}" in kernel
        readers[name] = set(services)
    secrets = {n for names in SECRETS.values() for n in names}
    given = {n.replace("-", "_"): {s for s, names in SECRETS.items() if n in names} for n in secrets}
    assert given == readers


def test_a_producer_bus_names_its_allow_listed_consumers_and_the_consumer_bus_its_producers() -> None:
    stacks = _stacks()
    ride = stacks["ride"]["Resources"]
    subscribers = ride["BusPolicySubscribers"]["Properties"]["Statement"]
    principals = {p["Fn::Sub"].split("${")[2].split("}")[0] for p in subscribers["Principal"]["AWS"]}
    assert principals == {"BffAccountId", "FleetAccountId", "PaymentAccountId"}
    assert (
        subscribers["Condition"]["StringEqualsIfExists"]["events:creatorAccount"] == "${aws:PrincipalAccount}"
    )
    fleet = stacks["fleet"]["Resources"]
    from_ride = fleet["BusPolicyFromRide"]["Properties"]["Statement"]
    assert from_ride["Condition"] == {"StringEquals": {"events:source": "acr.ride-manager"}}
    forward = ride["ForwardCarDispatcherEvents"]["Properties"]["Targets"][0]
    assert forward["Arn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${FleetAccountId}:event-bus/acr-fleet"
    }
    assert set(forward) >= {"RoleArn", "DeadLetterConfig", "RetryPolicy"}


# --- governance: allow-lists and versions ---------------------------------------------------------------
def test_a_consumer_off_the_producers_allow_list_fails_governance() -> None:
    ride = ServiceTopology("ride-manager", "ride", publishes=(RideRequested,))
    reward = ServiceTopology("reward", "reward", subscriptions=(Subscription("events", (RideRequested,)),))
    assert violations([ride, reward]) == [
        "reward/events subscribes to acme.acr.ride.RideRequested, but reward is not on ride's allow-list: "
        'the ride team adds "reward" to ALLOW_LISTS["ride"] in libs/acr/src/acr/topology/allow_lists.py'
    ]
    assert violations([ride, reward], {"ride": ("reward",)}) == []


def test_a_pin_to_a_version_the_producer_does_not_publish_fails_governance() -> None:
    ride = ServiceTopology("ride-manager", "ride", publishes=(RideRequested, RideCancelled))
    fleet = ServiceTopology(
        "car-dispatcher",
        "fleet",
        publishes=(CarAssigned,),
        subscriptions=(Subscription("events", (RideRequested,), versions=((RideRequested, 2),)),),
    )
    assert violations([ride, fleet]) == [
        "car-dispatcher/events reads acme.acr.ride.RideRequested v2, but ride publishes v1 only: move the "
        "consumer to v1 (handle the change, then pin 1), or ask ride to publish v2 again"
    ]
    pinned_right = ServiceTopology(
        "car-dispatcher",
        "fleet",
        subscriptions=(Subscription("events", (RideRequested,), versions=((RideRequested, 1),)),),
    )
    assert violations([ride, pinned_right]) == []


def test_a_stream_reader_gets_the_read_actions_on_the_owners_stream_when_allow_listed() -> None:
    car = ServiceTopology("car-simulator", streams=(Stream(TELEMETRY_STREAM, 2),))
    monitor = ServiceTopology("route-monitor", "monitoring", publishes=(TripStarted,), reads=(CarTelemetry,))
    assert violations([car, monitor]) == []
    assert violations([car, monitor], {"car": ()}) == [
        "route-monitor subscribes to acme.acr.car.CarTelemetry, but monitoring is not on car's allow-list: "
        'the car team adds "monitoring" to ALLOW_LISTS["car"] in libs/acr/src/acr/topology/allow_lists.py'
    ]
    stacks = templates(plan([car, monitor]))
    role = stacks["monitoring"]["Resources"]["RouteMonitorTaskRole"]["Properties"]["Policies"][0]
    (read,) = [s for s in role["PolicyDocument"]["Statement"] if s["Sid"] == "readAcrCarTelemetry"]
    assert read["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:kinesis:${AWS::Region}:${CarAccountId}:stream/acr-car-telemetry"
    }
    readers = stacks["car"]["Resources"]["StreamCarTelemetryPolicy"]["Properties"]["ResourcePolicy"]
    principals = {p["Fn::Sub"] for p in readers["Statement"][0]["Principal"]["AWS"]}
    assert "arn:${AWS::Partition}:iam::${MonitoringAccountId}:root" in principals


def test_reading_a_bus_type_as_a_stream_fails_governance() -> None:
    monitor = ServiceTopology("route-monitor", "monitoring", reads=(RideRequested,))
    assert violations([monitor]) == [
        "route-monitor reads acme.acr.ride.RideRequested from a stream, but it is published on bus:acr-ride"
    ]


def test_the_pipes_outbox_is_an_option_of_each_bus_publisher() -> None:
    ride = _stacks()["ride"]
    assert ride["Parameters"]["OutboxRelay"]["Default"] == "polling"
    pipe = ride["Resources"]["RideManagerOutboxPipe"]
    assert pipe["Condition"] == "UsePipes"
    (pattern,) = pipe["Properties"]["SourceParameters"]["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == {
        "dynamodb": {"NewImage": {"destination": {"S": ["bus:acr-ride"]}, "status": {"S": ["PIPE"]}}},
        "eventName": ["INSERT"],
    }
    dead = pipe["Properties"]["SourceParameters"]["DynamoDBStreamParameters"]["DeadLetterConfig"]
    assert dead == {"Arn": {"Fn::GetAtt": ["QueueRideManagerPipeDlq", "Arn"]}}
    outbox = ride["Resources"]["TableRideManagerOutbox"]["Properties"]
    assert outbox["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert "OutboxRelay" not in _stacks()["bff"]["Parameters"]


def test_each_bus_publishers_task_is_told_which_relay_publishes_its_bus_rows() -> None:
    """The kernel writes bus rows for the Pipe only when the stack has one: one parameter sets both."""
    relays = {}
    for stack in _stacks().values():
        for resource in stack["Resources"].values():
            if resource["Type"] == "AWS::ECS::TaskDefinition":
                (container,) = resource["Properties"]["ContainerDefinitions"]
                environment = {e["Name"]: e["Value"] for e in container["Environment"]}
                relays[container["Name"]] = environment.get("ACR_OUTBOX_RELAY")
    publishers = {"ride-manager", "car-dispatcher", "route-monitor", "payment", "reward"}
    assert {s for s, relay in relays.items() if relay == {"Ref": "OutboxRelay"}} == publishers
    assert {s for s, relay in relays.items() if relay is None} == set(relays) - publishers
