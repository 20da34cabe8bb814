"""A service's messaging: its AWS clients, its outbox relay, its queue consumers and stream readers, each
registered as a background loop of the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from acr import aws
from acr.aws import MakeClient
from acr.channels import Channel, EventBridgeChannel, FaultyChannel, SnsFifoChannel
from acr.consumer import Handlers, SqsConsumer, U, idempotent
from acr.dead_letters import DeadLetterQueues
from acr.dynamo import DynamoUnitOfWork
from acr.faults import process_faults, windows_allowed
from acr.kinesis import KinesisReader, Watcher
from acr.leases import LeaseTable, singleton
from acr.loops import Loops
from acr.outbox_metric import OutboxAgeMetric
from acr.publishing import Backoff
from acr.relay import Relay, events_about, redrive
from acr.settings import Settings
from acr.stream import Processor
from acr.sweeper import Sweeper, expiring_tables
from acr.topology.model import ServiceTopology
from acr.topology.plan import plan
from acr.topology.replicas import ReplicaQueues

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


class Consumers(Protocol):
    """Where a service's wiring subscribes its handler tables (``Messaging``, or a test's fake)."""

    def consume(
        self, queue: str, handlers: Handlers[U], unit_of_work: Callable[[], U], *, fifo: bool = False
    ) -> None: ...


class Streams(Protocol):
    """Where a service's wiring registers a stream processor (``Messaging``, or a test's fake)."""

    def read_stream(
        self,
        reader: str,
        stream: str,
        checkpoint_table: str,
        processor: Processor,
        *,
        watcher: Watcher | None = None,
    ) -> object: ...


def topic_arns(sns: SNSClient) -> dict[str, str]:
    """Topic name -> ARN for every topic the account has."""
    arns: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    while True:
        page = sns.list_topics(**kwargs)
        for topic in page.get("Topics", []):
            arns[topic["TopicArn"].rsplit(":", 1)[-1]] = topic["TopicArn"]
        if not page.get("NextToken"):
            return arns
        kwargs["NextToken"] = page["NextToken"]


class Messaging:
    """Everything a service needs to publish (outbox + relay) and consume (SQS loops) its events."""

    def __init__(
        self,
        topology: ServiceTopology,
        settings: Settings,
        loops: Loops,
        make_client: MakeClient | None = None,
    ) -> None:
        make = make_client or (lambda name: aws.client(name, settings))
        self.topology = topology
        self.settings = settings
        self.dynamodb: DynamoDBClient = make("dynamodb")
        self.sqs: SQSClient = make("sqs")
        self.events: EventBridgeClient = make("events")
        self.sns: SNSClient = make("sns")
        self._make = make
        self._loops = loops
        self.faults = process_faults(settings.faults, settings.faults_seed)
        self._queue_urls: dict[str, str] = {}
        self.leases: LeaseTable | None = None
        if topology.leases:  # shards' leases (and checkpoints) and singleton jobs' leases
            self.leases = LeaseTable(self.dynamodb, topology.leases_table, settings.replica, settings.lease_s)
        self.replica_queues: ReplicaQueues | None = None
        if topology.per_replica:  # this replica's own copy of each delivery, removed by ``close``
            self.replica_queues = ReplicaQueues(
                plan([topology], settings.max_receives)[0],
                settings.replica,
                sqs=self.sqs,
                sns=self.sns,
                events=self.events,
                find_topics=lambda: {**topic_arns(self.sns), **settings.topic_arns},
            )
            self.replica_queues.open()
            loops.add("replica-queues", self.replica_queues.run)
        self.relay: Relay | None = None
        if topology.has_outbox:
            self.relay = Relay(
                dynamodb=self.dynamodb,
                sqs=self.sqs,
                outbox_table=topology.outbox_table,
                dead_letter_queue_url=self.queue_url(topology.producer_dlq),
                channels=self._channels(),
                lease_s=settings.relay_lease_s,
                poll_s=settings.relay_poll_s,
                sent_retention_s=settings.outbox_sent_retention_s,
                backoff=Backoff(max_s=settings.relay_max_backoff_s),
            )
            loops.add("relay", self.relay.run)
            loops.on_stop(self.relay.wake)
            if not settings.aws_endpoint_url:  # on AWS: the age of the oldest pending row, for its alarm
                metric = OutboxAgeMetric(make("cloudwatch"), topology.service, self.relay.oldest_pending_ms)
                loops.add("outbox-age-metric", metric.run)

        self.dead_letters = DeadLetterQueues(
            self.sqs, topology, self.redrive_dead_letters if topology.has_outbox else None
        )

        expiring = expiring_tables(topology)
        if settings.aws_endpoint_url and expiring:  # on AWS, DynamoDB TTL deletes expired items
            sweep = Sweeper(self.dynamodb, expiring, every_s=settings.sweep_s).run
            loops.add("sweeper", sweep if self.leases is None else singleton(self.leases, "sweeper", sweep))

    def _channels(self) -> dict[str, Channel]:
        """The bus and topic channels; wrapped in ``FaultyChannel`` whenever a fault can happen to them
        (named in ``ACR_FAULTS``, or opened as a window at run time)."""
        channels: dict[str, Channel] = {
            "bus": EventBridgeChannel(self.events),
            "topic": SnsFifoChannel(self.sns, topic_arns(self.sns)),
        }
        if self.faults.enabled or windows_allowed(self.settings.aws_endpoint_url):
            channels = {kind: FaultyChannel(channel, self.faults, kind) for kind, channel in channels.items()}
        return channels

    def dead_letter_depths(self) -> dict[str, int]:
        """Messages waiting in each of this service's DLQs (its consumers' and its producer's)."""
        t = self.topology
        names = [self._names(queue)[1] for queue, _, _ in t.all_queues()]
        names += [t.producer_dlq] if t.has_outbox else []
        depths = {}
        for name in names:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url(name), AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            depths[name] = int(attributes["ApproximateNumberOfMessages"])
        return depths

    def redrive_dead_letters(self) -> int:
        """Re-publish what the relay dead-lettered (same ids) and wake the relay."""
        t = self.topology
        if not t.has_outbox:
            return 0
        moved = redrive(
            sqs=self.sqs,
            dynamodb=self.dynamodb,
            dead_letter_queue_url=self.queue_url(t.producer_dlq),
            outbox_table=t.outbox_table,
        )
        if self.relay:
            self.relay.wake()
        return moved

    def dead_letter_queues(self) -> list[dict[str, object]]:
        """Each of this service's DLQs with its depth and its messages' reasons (``/v1/ops/dlq``)."""
        return self.dead_letters.listed()

    def redrive_dead_letter_queue(self, queue: str) -> dict[str, object]:
        """Move one of this service's DLQs back (``POST /v1/ops/dlq/{queue}/redrive``)."""
        return self.dead_letters.redrive(queue)

    def stats(self) -> dict[str, object]:
        """This service's counters with its DLQ depths and the age of its oldest pending outbox row
        (``/v1/ops/stats``)."""
        return {
            "dlq": self.dead_letter_depths(),
            "faultsInjected": dict(self.faults.injected),
            "oldestPendingMs": self.oldest_pending_ms(),
            "replica": self.settings.replica,
            "leases": self.lease_rows(),
        }

    @property
    def has_outbox(self) -> bool:
        return self.relay is not None

    def oldest_pending_ms(self) -> float | None:
        """How long ago the oldest pending outbox row was recorded (None when none is, or no outbox)."""
        return self.relay.oldest_pending_ms() if self.relay else None

    def lease_rows(self) -> list[dict[str, object]]:
        """Every lease of the service's lease table (``acr-<service>-leases``): key, owner, fencing token,
        expiry (epoch seconds) — shards (``shard#<reader>#<shardId>``), jobs (``job#<name>``) and replicas'
        heartbeats (``replica#<name>``)."""
        if self.leases is None:
            return []
        return [
            {"key": lease.key, "owner": lease.owner, "token": lease.token, "expiresAt": lease.expires_at}
            for lease in self.leases.listed()
        ]

    def _names(self, queue: str) -> tuple[str, str]:
        """(queue, dlq) actually consumed for the declared ``queue``: this replica's own when per replica."""
        if self.replica_queues is not None:
            return self.replica_queues.names(queue)
        return queue, next(dlq for name, dlq, _ in self.topology.all_queues() if name == queue)

    def close(self) -> None:
        """Remove what this replica created for itself (call after the loops stopped)."""
        if self.replica_queues is not None:
            self.replica_queues.close()

    def queue_url(self, name: str) -> str:
        """A queue's URL, looked up once."""
        if name not in self._queue_urls:
            self._queue_urls[name] = str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])
        return self._queue_urls[name]

    def kinesis(self) -> KinesisClient:
        """A Kinesis client of its own (for a publisher or a reader thread)."""
        client: KinesisClient = self._make("kinesis")
        return client

    def unit_of_work(self, *, marked: bool = True) -> DynamoUnitOfWork:
        """A fresh unit of work on this service's outbox and (unless ``marked`` is False: a consumer whose
        writes are idempotent by version) its inbox of consumed-message markers."""
        t = self.topology
        return DynamoUnitOfWork(
            dynamodb=self.dynamodb,
            outbox_table=t.outbox_table if t.has_outbox else None,
            inbox_table=t.inbox_table if t.has_inbox and marked else None,
            dedup_window_s=self.settings.dedup_window_s,
            on_commit=self.relay.wake if self.relay else None,
            outbox_relay=self.settings.outbox_relay,
            sent_retention_s=self.settings.outbox_sent_retention_s,
            archive_copies=True,
        )

    def consume(
        self, queue: str, handlers: Handlers[U], unit_of_work: Callable[[], U], *, fifo: bool = False
    ) -> None:
        """Consume ``acr-<service>-<queue>``: each message through the kernel's idempotent consumer."""
        name, dlq = self._names(self.topology.queue(queue, fifo))
        consumer = SqsConsumer(
            name=name,
            sqs=self._make("sqs"),
            queue_url=self.queue_url(name),
            dead_letter_queue_url=self.queue_url(dlq),
            handler=idempotent(unit_of_work, handlers, faults=self.faults),
            wait_s=self.settings.sqs_wait_s,
            faults=self.faults,
        )
        self._loops.add(consumer.name, consumer.run)

    def read_stream(
        self,
        reader: str,
        stream: str,
        checkpoint_table: str,
        processor: Processor,
        poll_s: float = 0.5,
        *,
        watcher: Watcher | None = None,
    ) -> KinesisReader:
        """Read the shards of ``stream`` this replica leases as ``reader`` (a thread per shard); the
        checkpoints live on the lease rows of ``checkpoint_table`` (the service's lease table). A
        ``watcher`` is given the records of the shards other replicas hold."""
        kinesis_reader = KinesisReader(
            reader=reader,
            kinesis=self.kinesis(),
            dynamodb=self.dynamodb,
            stream=stream,
            checkpoint_table=checkpoint_table,
            processor=processor,
            replica=self.settings.replica,
            lease_s=self.settings.lease_s,
            stream_arn=self.settings.stream_arns.get(stream),
            watcher=watcher,
            poll_s=poll_s,
        )
        self._loops.add(f"{reader}-reader", kinesis_reader.run)
        return kinesis_reader

    def events_about(self, subject: str) -> list[dict[str, object]]:
        """What this service published about one aggregate (ops timeline)."""
        if not self.topology.has_outbox:
            return []
        return events_about(self.dynamodb, self.topology.outbox_table, subject)
