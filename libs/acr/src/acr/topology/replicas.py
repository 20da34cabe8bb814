"""Per-replica deliveries: a slice marked ``per_replica`` (the BFF's push) must have every message reach every
replica, so each replica owns its own copy of each declared delivery, created when it starts and removed when
it stops: a queue and its DLQ named ``<declared>-<replica>``, and the rule (``<rule>-<replica>``) or the topic
subscription that feeds it.

A replica killed outright cannot remove them. Each replica stamps its queues with a heartbeat tag every
``heartbeat_s``; a sweeper (in every replica, at start and every ``sweep_s``) removes the queues, rules and
subscriptions of any replica whose newest stamp is older than ``stale_s``. The queue tags are the registry:
they live and die with the resources they describe, so no table can disagree with what exists. Every step is
idempotent, so two replicas sweeping the same orphan at once is harmless.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr.catalog.base import bus_name
from acr.topology.apply import create_queue
from acr.topology.plan import Delivery, ServicePlan
from acr.topology.queue_policy import EVENTBRIDGE, SNS, Feed, queue_policy, service_role

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

log = logging.getLogger(__name__)

REPLICA_TAG = "acr:replica"
SEEN_TAG = "acr:seen"
MAX_SUFFIX = 40  # keeps ``acr-<service>-<queue>-dlq-<suffix>.fifo`` within SQS's 80 and rules within 64
_GONE = (
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFoundException",
    "NotFound",
)


def replica_suffix(replica: str) -> str:
    """``replica`` as a queue and rule name part: lower-case letters, digits and single dashes; a long
    name is cut and ends with a hash of the whole, so two long names stay apart."""
    clean = re.sub(r"[^a-z0-9]+", "-", replica.lower()).strip("-") or "replica"
    if len(clean) <= MAX_SUFFIX:
        return clean
    digest = hashlib.sha256(replica.encode()).hexdigest()[:8]
    return f"{clean[: MAX_SUFFIX - 9].rstrip('-')}-{digest}"


def _suffixed(name: str, suffix: str) -> str:
    base, fifo = (name.removesuffix(".fifo"), ".fifo") if name.endswith(".fifo") else (name, "")
    return f"{base}-{suffix}{fifo}"


def is_replica_copy(name: str, declared: str) -> bool:
    """Is ``name`` some replica's copy of the declared queue ``declared`` (``<declared>-<replica>``)?"""
    base, fifo = (declared.removesuffix(".fifo"), ".fifo") if declared.endswith(".fifo") else (declared, "")
    if not (name.startswith(f"{base}-") and name.endswith(fifo)):
        return False
    suffix = name.removeprefix(f"{base}-").removesuffix(fifo)
    return re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", suffix) is not None  # as ``replica_suffix`` makes them


@dataclass(frozen=True)
class ReplicaDelivery:
    """One replica's copy of a declared delivery."""

    declared: Delivery
    queue: str
    dlq: str
    rules: tuple[tuple[str, str], ...]
    """(bus, rule name) of each rule that feeds the queue."""

    @property
    def fifo(self) -> bool:
        return self.declared.queue.fifo


def replica_deliveries(p: ServicePlan, suffix: str, *, single_account: bool) -> list[ReplicaDelivery]:
    """The copies of ``p``'s deliveries for the replica named ``suffix``. In one account (the emulator,
    where the service has no bus of its own) a rule sits on the producer's bus, as ``apply`` puts them;
    in the exported stacks on the service's own bus, where the producer's account forwards the types."""
    own_bus = bus_name(p.context)
    return [
        ReplicaDelivery(
            declared=d,
            queue=_suffixed(d.queue.name, suffix),
            dlq=_suffixed(d.dlq.name, suffix),
            rules=tuple((r.bus if single_account else own_bus, f"{r.rule}-{suffix}") for r in d.routes),
        )
        for d in p.deliveries
    ]


def _bus_exists(events: EventBridgeClient, bus: str) -> bool:
    try:
        events.describe_event_bus(Name=bus)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    return True


def _ignore_gone(call: Callable[[], Any]) -> None:
    try:
        call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _GONE:
            raise


class ReplicaQueues:
    """This replica's deliveries (``open``/``close``), its heartbeat and the sweeper of dead replicas'."""

    def __init__(
        self,
        p: ServicePlan,
        replica: str,
        *,
        sqs: SQSClient,
        sns: SNSClient,
        events: EventBridgeClient,
        find_topics: Callable[[], dict[str, str]],
        heartbeat_s: float = 60.0,
        stale_s: float = 600.0,
        sweep_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plan = p
        self.suffix = replica_suffix(replica)
        self._sqs, self._sns, self._events = sqs, sns, events
        self._single_account = not _bus_exists(events, bus_name(p.context))
        self._find_topics = find_topics
        self._heartbeat_s, self._stale_s, self._sweep_s = heartbeat_s, stale_s, sweep_s
        self._clock = clock
        self.deliveries = self._of(self.suffix)
        self._urls: dict[str, str] = {}
        self._topic_arns: dict[str, str] = {}

    def _of(self, suffix: str) -> list[ReplicaDelivery]:
        return replica_deliveries(self.plan, suffix, single_account=self._single_account)

    def names(self, declared_queue: str) -> tuple[str, str]:
        """(queue, dlq) of this replica standing for the declared queue ``declared_queue``."""
        own = next(d for d in self.deliveries if d.declared.queue.name == declared_queue)
        return own.queue, own.dlq

    # --- this replica ------------------------------------------------------------------------------------
    def open(self) -> list[str]:
        """Create this replica's queues, DLQs, rules and subscriptions (idempotent); a line per resource."""
        done: list[str] = []
        for d in self.deliveries:
            declared = d.declared
            dlq_url = self._queue(d.dlq, d.fifo, {"MessageRetentionPeriod": str(declared.dlq.retention_s)})
            redrive = {
                "deadLetterTargetArn": self._arn(dlq_url),
                "maxReceiveCount": str(declared.queue.max_receives),
            }
            attributes: dict[QueueAttributeNameType, str] = {"RedrivePolicy": json.dumps(redrive)}
            if declared.queue.visibility_timeout_s is not None:
                attributes["VisibilityTimeout"] = str(declared.queue.visibility_timeout_s)
            if declared.queue.retention_s is not None:
                attributes["MessageRetentionPeriod"] = str(declared.queue.retention_s)
            url = self._queue(d.queue, d.fifo, attributes)
            arn = self._arn(url)
            feeds: list[Feed] = []
            for bus, rule in d.rules:
                pattern = d.declared.pattern
                rule_arn = self._events.put_rule(
                    Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern)
                )["RuleArn"]
                self._events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
                feeds.append(Feed(EVENTBRIDGE, rule_arn))
                done.append(f"rule {bus}/{rule} -> {d.queue}")
            if d.declared.topic:
                topic_arn = self._topic_arn(d.declared.topic)
                self._subscribe(topic_arn, arn)
                feeds.append(Feed(SNS, topic_arn))
                done.append(f"subscription {d.declared.topic} -> {d.queue}")
            self._allow(url, queue_policy(arn, feeds, [service_role(arn, self.plan.service)]))
            dlq_feeds = [f for f in feeds if f.service == SNS]  # what SNS could not deliver to the queue
            dlq_arn = redrive["deadLetterTargetArn"]
            self._allow(dlq_url, queue_policy(dlq_arn, dlq_feeds, [service_role(dlq_arn, self.plan.service)]))
        log.info("replica %s: opened %s", self.suffix, "; ".join(done))
        return done

    def close(self) -> None:
        """Remove this replica's rules, subscriptions and queues (messages still in them are dropped: they
        were only for the riders connected here)."""
        self._remove(self.suffix, self._own_urls())

    def heartbeat(self) -> None:
        """Stamp this replica's queues as seen now; if another replica swept them (this one was cut off from
        AWS for longer than ``stale_s``), create them again: same names, so the consumers' URLs still hold."""
        try:
            for url in self._own_urls():
                self._sqs.tag_queue(QueueUrl=url, Tags={SEEN_TAG: str(int(self._clock()))})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _GONE:
                raise
            log.warning("replica %s: its queues were swept; creating them again", self.suffix)
            self.open()

    def run(self, stop: threading.Event) -> None:
        """Heartbeat every ``heartbeat_s``, sweep at start and every ``sweep_s``, until ``stop``."""
        next_sweep = 0.0
        while not stop.is_set():
            try:
                self.heartbeat()
                if self._clock() >= next_sweep:
                    self.sweep()
                    next_sweep = self._clock() + self._sweep_s
            except Exception:
                log.exception("replica %s: heartbeat or sweep failed", self.suffix)
            stop.wait(self._heartbeat_s)

    # --- other replicas ----------------------------------------------------------------------------------
    def sweep(self) -> list[str]:
        """Remove the deliveries of every replica not seen for ``stale_s``; returns their suffixes."""
        seen: dict[str, float] = {}
        urls: dict[str, list[str]] = {}
        for url in self._service_queues():
            tags = self._sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            owner = tags.get(REPLICA_TAG)
            if owner is None or owner == self.suffix:
                continue
            urls.setdefault(owner, []).append(url)
            seen[owner] = max(seen.get(owner, 0.0), float(tags.get(SEEN_TAG, "0")))
        stale = sorted(owner for owner, at in seen.items() if self._clock() - at > self._stale_s)
        for owner in stale:
            log.warning(
                "replica %s: removing the deliveries of %s (not seen for %.0fs)",
                self.suffix,
                owner,
                self._clock() - seen[owner],
            )
            self._remove(owner, urls[owner])
        return stale

    # --- AWS calls ---------------------------------------------------------------------------------------
    def _queue(self, name: str, fifo: bool, attributes: dict[QueueAttributeNameType, str]) -> str:
        url = create_queue(self._sqs, name, fifo=fifo, attributes=attributes)
        self._sqs.tag_queue(QueueUrl=url, Tags={REPLICA_TAG: self.suffix, SEEN_TAG: str(int(self._clock()))})
        self._urls[name] = url
        return url

    def _arn(self, url: str) -> str:
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(attributes["QueueArn"])

    def _allow(self, url: str, policy: dict[str, Any]) -> None:
        """Only the replica's rules or subscription, and the service itself, send to its queue."""
        self._sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})

    def _topic_arn(self, topic: str) -> str:
        if topic not in self._topic_arns:
            self._topic_arns = self._find_topics()
        return self._topic_arns[topic]

    def _subscriptions(self, topic_arn: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TopicArn": topic_arn}
        while True:
            page = self._sns.list_subscriptions_by_topic(**kwargs)
            found += [dict(s) for s in page.get("Subscriptions", [])]
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def _subscribe(self, topic_arn: str, queue_arn: str) -> None:
        if any(s.get("Endpoint") == queue_arn for s in self._subscriptions(topic_arn)):
            return
        self._sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )

    def _own_urls(self) -> list[str]:
        return [self._urls[name] for d in self.deliveries for name in (d.queue, d.dlq) if name in self._urls]

    def _service_queues(self) -> list[str]:
        urls: list[str] = []
        kwargs: dict[str, Any] = {"QueueNamePrefix": f"acr-{self.plan.service}-", "MaxResults": 1000}
        while True:
            page = self._sqs.list_queues(**kwargs)
            urls += page.get("QueueUrls", [])
            if not page.get("NextToken"):
                return urls
            kwargs["NextToken"] = page["NextToken"]

    def _remove(self, suffix: str, urls: list[str]) -> None:
        """Rules and subscriptions first, queues last: a sweep cut short leaves the queues, which the next
        sweep finds again."""
        arns: dict[str, str] = {}
        for url in urls:
            try:
                arns[url.rsplit("/", 1)[-1]] = self._arn(url)
            except ClientError:
                continue
        for d in self._of(suffix):
            for bus, rule in d.rules:
                _ignore_gone(partial(self._events.remove_targets, Rule=rule, EventBusName=bus, Ids=["queue"]))
                _ignore_gone(partial(self._events.delete_rule, Name=rule, EventBusName=bus))
            queue_arn = arns.get(d.queue)
            if d.declared.topic and queue_arn:
                for s in self._subscriptions(self._topic_arn(d.declared.topic)):
                    if s.get("Endpoint") == queue_arn:
                        _ignore_gone(partial(self._sns.unsubscribe, SubscriptionArn=s["SubscriptionArn"]))
        for url in urls:
            _ignore_gone(partial(self._sqs.delete_queue, QueueUrl=url))
