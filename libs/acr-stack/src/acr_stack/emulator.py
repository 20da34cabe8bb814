"""The embedded AWS emulator: moto's server, with repairs for the costs that grow with what it stores.

``python -m acr_stack.emulator -H 127.0.0.1 -p 4566`` serves the API of ``python -m moto.server``.
Left as they are, these moto 5 internals make a long-running stack slower and larger with every
request, or cost on every request (measured in ``benchmarks/results/emulator.md``):

- every model object moto creates (each DynamoDB item, each copy of one, each Kinesis record) is
  appended to a class-level list for the ``/moto-api/data.json`` dump, so nothing is ever freed;
- ``TransactWriteItems`` deep-copies every table it touches as its rollback backup, so a transaction
  costs time and memory in proportion to the tables' size;
- a ``Query`` sorts every item of the table by its key, then keeps those of the partition or index;
- Kinesis ``PutRecord`` lists every key of the shard to find the last sequence number, ``GetRecords``
  walks the shard from its first record, records are never dropped (no retention), and every put adds
  CloudWatch data points that are never dropped either;
- SNS keeps every message published to a topic;
- an SQS long poll re-checks its queue at once, in a loop, while the queue holds messages it may not
  deliver (a FIFO group in flight), so one waiting consumer keeps a core busy for the whole wait;
- EventBridge builds a new JSONPath parser for each input path of each target of each event;
- every request lists moto's package folder on disk to find its service, and writes a log line;
- Python's collector walks every object moto stores on each full collection, with every request
  waiting: under a steady load one runs every two to four seconds, and each pause grows with the
  tables (at 40 rides/min, 80 ms in the first minutes and up to 0.5 s by the eighth);
- moto's server (werkzeug's development server) closes the connection after every response, so each
  request also pays for a new TCP connection and a new thread, on both sides;
- SQS stores a queue's policy but never evaluates it: anyone may send to any queue. Here a client's
  ``SendMessage`` or ``SendMessageBatch`` that the queue's policy denies to the caller (each service signs
  with a key of its own, ``acr_stack.principals``) is refused with ``AccessDenied``, as AWS refuses it;
  deliveries by EventBridge and SNS happen inside moto and are not client calls;
- a conditional write (``PutItem``, ``UpdateItem``, ``DeleteItem``) checks its condition, then writes,
  with nothing between the two: two replicas taking the same expired lease at once could both succeed.
  Item writes and transactions run one at a time here, as DynamoDB makes each item's write atomic, and
  reads wait for them: a read never sees an item half written (moto writes a new item in steps);
- a reshard moves (split) or copies (merge) the parents' records into the children, later records still
  go to the closed parents (the first shard whose hash range holds the key), and reading a closed shard
  never ends. Here, as in Kinesis, the parents keep their records and the children start empty, records
  go to open shards only, and a closed shard read to its end gives no next iterator, so readers move on;
- accounts (``--accounts``, the multi-account stack of ``acr_stack.accounts``): moto picks a request's
  account from the ``x-moto-account-id`` header, else from an access key its IAM issued, else its default
  account. Here a key named in ``--accounts`` is in its account (as a role's credentials are on AWS); a
  Kinesis or SNS call that names a stream, topic or subscription of another account by ARN is served in
  that account (on AWS the resource's policy lets the caller in); and SNS delivers to an SQS queue of
  another account (moto looks the queue up in the topic's account).

The repairs keep the behaviour: transactions stay all-or-nothing (each touched item is backed up and
put back if the transaction is cancelled), sequence numbers keep increasing, and a stream keeps its
records for ``--stream-retention-s`` (AWS keeps at least 24 h; the embedded stack keeps less so that
memory stays flat). The ``/moto-api/data.json`` model dump is empty, and Kinesis reports no CloudWatch
metrics. The survivors of each full collection are frozen, so a pause only walks what is new since the
last (and every two minutes, once, everything). moto's app is served by uvicorn, with keep-alive
connections and a pool of threads.
``GET /acr-emulator/requests`` counts the requests served and their CPU time, by operation, and the
collector's pauses by generation.
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import inspect
import json
import os
import threading
import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import jsonpath_ng.ext
import moto
import moto.dynamodb.models as dynamodb_models
from moto import backends
from moto.core.common_models import BaseModel
from moto.core.responses import BaseResponse
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.kinesis.models import KinesisBackend, Shard, Stream
from moto.kinesis.utils import decompose_shard_iterator
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sns.models import Subscription, Topic
from moto.sqs.exceptions import SQSException
from moto.sqs.models import Queue
from moto.sqs.responses import SQSResponse

from acr_stack.principals import allows_send, principal_arn

DEFAULT_STREAM_RETENTION_S = 300.0
SNS_KEPT_PER_TOPIC = 100
REQUESTS_PATH = "/acr-emulator/requests"
THAW_EVERY_S = 120.0
WORKERS = 64  # every long-polling consumer holds one while it waits


def repair(
    stream_retention_s: float = DEFAULT_STREAM_RETENTION_S, accounts: dict[str, str] | None = None
) -> None:
    """Patch moto in this process (before it serves anything); ``accounts`` maps access key ids to the
    account their calls are made in."""
    if not moto.__version__.startswith("5."):
        raise RuntimeError(f"acr_stack.emulator repairs moto 5; this is moto {moto.__version__}")
    _stop_tracking_instances()
    _back_up_items_not_tables()
    _one_write_at_a_time()
    _query_one_partition()
    _index_stream_records(stream_retention_s)
    _reshard_as_kinesis_does()
    _bound_sent_notifications()
    _long_polls_sleep()
    _enforce_queue_policies()
    _accounts_by_key_and_arn(accounts or {})
    _find_services_once()
    _count_requests()
    _time_collections()
    _freeze_survivors_of_full_collections()
    parse = vars(jsonpath_ng.ext)["parse"]
    _patch(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=256)(parse))  # one parser per path


def _patch(owner: object, name: str, replacement: object) -> None:
    """Replace a moto internal at run time (a replacement keeps the original's behaviour, not its declared
    type, which is why this goes through ``setattr``)."""
    setattr(owner, name, replacement)


def _stop_tracking_instances() -> None:
    def new(cls: type[Any], *_args: Any, **_kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)  # as moto's, without the append

    _patch(BaseModel, "__new__", new)


def _back_up_items_not_tables() -> None:
    """moto backs up each touched table with ``copy.deepcopy(table)`` and, when the transaction is
    cancelled, puts the copies back. While a transaction runs, that deep copy returns the live table
    (so the put-back is a no-op) and this wrapper backs up, and on failure restores, only the items the
    transaction names."""
    in_transaction = threading.local()

    class TablesNotCopied:
        """Stands in for the ``copy`` module inside ``moto.dynamodb.models`` only."""

        copy = staticmethod(copy.copy)

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if isinstance(value, Table) and getattr(in_transaction, "active", False):
                return value
            return copy.deepcopy(value, memo)

    _patch(dynamodb_models, "copy", TablesNotCopied)
    original: Callable[[Any, list[dict[str, Any]]], None] = DynamoDBBackend.transact_write_items

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        with _WRITES:
            backups = [b for b in (_ItemBackup.of(backend, entry) for entry in transact_items or []) if b]
            in_transaction.active = True
            try:
                original(backend, transact_items)
            except BaseException:
                for backup in reversed(backups):
                    backup.restore()
                raise
            finally:
                in_transaction.active = False

    _patch(DynamoDBBackend, "transact_write_items", transact_write_items)


_WRITES = threading.RLock()
"""Held by each DynamoDB item write and each transaction (whose items are written by the same methods), and
by each read, which so never sees a write half done."""


def _one_write_at_a_time() -> None:
    """Each item write checks its condition and writes under ``_WRITES``: conditions are atomic. Reads take
    it too: moto writes a new item in steps (its keys first, then the update's attributes), and a ``Scan``
    between the two would return an item DynamoDB never held. The serving threads share one core anyway (the
    GIL), so this costs order, not throughput."""
    for name in ("put_item", "update_item", "delete_item", "get_item", "query", "scan"):
        original = getattr(DynamoDBBackend, name)

        def write(backend: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _WRITES:
                return _original(backend, *args, **kwargs)

        _patch(DynamoDBBackend, name, write)


@dataclass(frozen=True)
class _ItemBackup:
    """One item a transaction writes, as it was before (``item`` None: it did not exist)."""

    table: Table
    hash_key: DynamoType
    range_key: DynamoType | None
    had_bucket: bool  # for a table with a sort key: whether items[hash_key] existed
    item: Any

    @classmethod
    def of(cls, backend: Any, entry: dict[str, Any]) -> _ItemBackup | None:
        if not entry:
            return None  # malformed: moto rejects it
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        key = op.get("Item") if op_type == "Put" else op.get("Key")
        if table is None or op_type == "ConditionCheck" or not key or table.hash_key_attr not in key:
            return None  # writes nothing, or is malformed and rejected before anything is written
        if table.range_key_attr and table.range_key_attr not in key:
            return None
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        stored = table.items.get(hash_key)  # a defaultdict: .get() does not add the key
        item = stored if range_key is None else (stored or {}).get(range_key)
        return cls(table, hash_key, range_key, stored is not None, copy.deepcopy(item))

    def restore(self) -> None:
        items = self.table.items
        if self.range_key is None:
            if self.item is None:
                items.pop(self.hash_key, None)
            else:
                items[self.hash_key] = self.item
            return
        bucket = items[self.hash_key]
        if self.item is not None:
            bucket[self.range_key] = self.item
            return
        bucket.pop(self.range_key, None)
        if not bucket and not self.had_bucket:
            items.pop(self.hash_key, None)


def _query_one_partition() -> None:
    """While ``Table.query`` runs, ``Table.all_items`` returns only the items of the queried partition
    key (sorted, as moto's does) for a query on the table's key, and every item unsorted for a query on an
    index (moto filters them, then sorts what it keeps by the index's keys)."""
    scope = threading.local()
    signature = inspect.signature(Table.query)
    original_query, original_all_items = Table.query, Table.all_items

    def query(table: Table, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(table, *args, **kwargs).arguments
        on_index = arguments.get("index_name") is not None
        if on_index or arguments.get("hash_key") is not None:
            scope.query = (table, None if on_index else arguments["hash_key"])
        try:
            return original_query(table, *args, **kwargs)
        finally:
            scope.query = None

    def all_items(table: Table) -> list[Any]:
        running = getattr(scope, "query", None)
        if running is None or running[0] is not table:
            return original_all_items(table)
        if running[1] is None:
            return [
                i
                for stored in table.items.values()
                for i in (stored.values() if table.range_key_attr else [stored])
            ]
        stored = table.items.get(running[1])
        items = [] if stored is None else list(stored.values()) if table.range_key_attr else [stored]
        return sorted(
            items, key=lambda item: (item.hash_key, item.range_key) if item.range_key else item.hash_key
        )

    _patch(Table, "query", query)
    _patch(Table, "all_items", all_items)


def _index_stream_records(retention_s: float) -> None:
    """Shard records in an ``OrderedDict`` (first and last in O(1)), read by key from the iterator's
    position, and dropped once older than ``retention_s``."""
    original_init = Shard.__init__
    original_put = Shard.put_record

    def init(shard: Any, *args: Any, **kwargs: Any) -> None:
        original_init(shard, *args, **kwargs)
        shard.records = OrderedDict(shard.records)

    def put_record(shard: Any, partition_key: str, data: str, explicit_hash_key: str) -> str:
        sequence_number: str = original_put(shard, partition_key, data, explicit_hash_key)
        cutoff = time.time() - retention_s
        records = shard.records
        while len(records) > 1 and records[next(iter(records))].created_at < cutoff:
            records.popitem(last=False)
        return sequence_number

    def get_records(shard: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        records = shard.records
        last = int(last_sequence_id)
        if not records:
            return [], last, 0
        newest = next(reversed(records))
        found: list[Any] = []
        number = max(last + 1, next(iter(records)))
        while number <= newest and (limit is None or len(found) < limit):
            record = records.get(number)
            if record is not None:
                found.append(record)
                last = number
            number += 1
        behind_s = records[newest].created_at - found[-1].created_at if found else 0.0
        return found, last, int(behind_s * 1000)

    _patch(Shard, "__init__", init)
    _patch(Shard, "put_record", put_record)
    _patch(Shard, "get_records", get_records)
    _patch(Shard, "get_max_sequence_number", lambda shard: next(reversed(shard.records), 0))
    _patch(Shard, "get_min_sequence_number", lambda shard: next(iter(shard.records), 0))
    _patch(KinesisBackend, "_send_stream_metrics", lambda *_args, **_kwargs: None)


def _reshard_as_kinesis_does() -> None:
    """Records go to the open shard whose hash range holds the key; a closed shard read to its end
    answers without a next iterator."""
    original_get_records = KinesisBackend.get_records

    def shard_for_key(stream: Stream, partition_key: str, explicit_hash_key: str) -> Shard | None:
        open_shards = {k: s for k, s in stream.shards.items() if s.is_open}
        every_shard, stream.shards = stream.shards, open_shards
        try:
            return original_shard_for_key(stream, partition_key, explicit_hash_key)
        finally:
            stream.shards = every_shard

    def get_records(
        backend: KinesisBackend, stream_arn: str | None, shard_iterator: str, limit: int | None
    ) -> tuple[str | None, list[Any], int]:
        next_iterator, records, behind_ms = original_get_records(backend, stream_arn, shard_iterator, limit)
        stream_name, shard_id, last = decompose_shard_iterator(shard_iterator)
        shard = backend.describe_stream(stream_arn=stream_arn, stream_name=stream_name).get_shard(shard_id)
        if not shard.is_open and not records and int(last) >= shard.get_max_sequence_number():
            return None, [], 0
        return next_iterator, records, behind_ms

    original_split, original_merge = Stream.split_shard, Stream.merge_shards

    def split_shard(stream: Stream, shard_to_split: str, new_starting_hash_key: str) -> None:
        parent = stream.shards.get(shard_to_split)
        if parent is None:
            return original_split(stream, shard_to_split, new_starting_hash_key)
        kept, parent.records = parent.records, OrderedDict()  # nothing for the split to move
        try:
            original_split(stream, shard_to_split, new_starting_hash_key)
        finally:
            parent.records = kept

    def merge_shards(stream: Stream, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
        original_merge(stream, shard_to_merge, adjacent_shard_to_merge)
        for child in stream.shards.values():
            if (child.parent, child.adjacent_parent) == (shard_to_merge, adjacent_shard_to_merge):
                child.records = OrderedDict()  # the copied records stay the parents' only

    original_shard_for_key = Stream.get_shard_for_key
    _patch(Stream, "split_shard", split_shard)
    _patch(Stream, "merge_shards", merge_shards)
    _patch(Stream, "get_shard_for_key", shard_for_key)
    _patch(KinesisBackend, "get_records", get_records)


def _bound_sent_notifications() -> None:
    original_init = Topic.__init__

    def init(topic: Any, *args: Any, **kwargs: Any) -> None:
        original_init(topic, *args, **kwargs)
        topic.sent_notifications = deque(topic.sent_notifications, maxlen=SNS_KEPT_PER_TOPIC)

    _patch(Topic, "__init__", init)


def _long_polls_sleep() -> None:
    """A long poll that found nothing to deliver sleeps until a message is added or ``timeout`` passes
    (moto's waits for "the queue is not empty", true at once while a FIFO group is in flight)."""

    def wait_for_messages(queue: Any, timeout: int) -> None:
        with queue._messages_lock:
            queue._messages_lock.wait(timeout)

    _patch(Queue, "wait_for_messages", wait_for_messages)


class AccessDenied(SQSException):
    """What SQS answers a principal its queue's policy denies."""

    code = "AccessDenied"


def _enforce_queue_policies() -> None:
    """A client's send to a queue whose policy denies it to the caller raises ``AccessDenied`` before
    anything is stored (the response methods serve clients only; moto's EventBridge and SNS call the
    backend)."""

    def guarded(original: Callable[[SQSResponse], Any]) -> Callable[[SQSResponse], Any]:
        def send(response: SQSResponse) -> Any:
            queue = response.sqs_backend.get_queue(response._get_queue_name())
            if queue.policy:
                caller = principal_arn(queue.queue_arn, response.get_access_key())
                if not allows_send(json.loads(queue.policy), caller):
                    raise AccessDenied(f"{caller} is not allowed to send to {queue.name}")
            return original(response)

        return send

    _patch(SQSResponse, "send_message", guarded(SQSResponse.send_message))
    _patch(SQSResponse, "send_message_batch", guarded(SQSResponse.send_message_batch))


ARN_PARAMETERS = {"kinesis": ("StreamARN",), "sns": ("TopicArn", "SubscriptionArn")}
"""The parameters naming a resource that may live in another account, by service."""


def _accounts_by_key_and_arn(accounts: dict[str, str]) -> None:
    """A request is made in the account of the resource it names by ARN (``ARN_PARAMETERS``), else in the
    account of its access key (``accounts``), else as moto decides; an SNS subscription of an SQS queue
    delivers to the queue's account."""
    original = BaseResponse.get_current_account

    def current_account(response: BaseResponse) -> str:
        if "x-moto-account-id" not in response.headers:
            for parameter in ARN_PARAMETERS.get(str(response.service_name), ()):
                arn = response._get_param(parameter)
                if isinstance(arn, str) and arn.startswith("arn:") and arn.count(":") >= 5:
                    return arn.split(":")[4]
            if response.get_access_key() in accounts:
                return accounts[response.get_access_key()]
        return original(response)

    _patch(BaseResponse, "get_current_account", current_account)
    subscribed = Subscription.__init__

    def init(subscription: Subscription, account_id: str, topic: Topic, endpoint: str, protocol: str) -> None:
        subscribed(subscription, account_id, topic, endpoint, protocol)
        if protocol == "sqs" and endpoint.count(":") >= 5:
            subscription.account_id = endpoint.split(":")[4]  # where the queue is; the owner stays

    _patch(Subscription, "__init__", init)


def _find_services_once() -> None:
    services = tuple(backends.list_of_moto_modules())
    _patch(backends, "list_of_moto_modules", lambda: services)


_COUNTING = threading.Lock()
_COUNTS: Counter[str] = Counter()
_CPU_S: defaultdict[str, float] = defaultdict(float)
_MAX_S: defaultdict[str, float] = defaultdict(float)


def _count_requests() -> None:
    """Count requests and the CPU time they took (the serving thread's), by service and operation;
    ``GET /acr-emulator/requests`` answers ``{operation: {"count": n, "cpuSeconds": s}}``."""
    original = DomainDispatcherApplication.__call__

    def call(app: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == REQUESTS_PATH:
            body = _counted()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        operation, started = _operation(environ), time.thread_time()
        try:
            return original(app, environ, start_response)
        finally:
            with _COUNTING:
                _COUNTS[operation] += 1
                _CPU_S[operation] += time.thread_time() - started

    _patch(DomainDispatcherApplication, "__call__", call)


def _counted() -> bytes:
    with _COUNTING:
        return json.dumps(
            {
                name: {"count": n, "cpuSeconds": round(_CPU_S[name], 3)}
                | ({"maxSeconds": round(_MAX_S[name], 4)} if name in _MAX_S else {})
                for name, n in _COUNTS.items()
            }
        ).encode()


def _time_collections() -> None:
    """Count the garbage collector's runs by generation and time them: ``GET /acr-emulator/requests``
    also answers ``{"gc.gen2": {"count": n, "cpuSeconds": s, "maxSeconds": longest}, ...}`` (the wall time
    of the pauses; each pause is also part of the CPU time of the request that set it off)."""
    started = 0.0

    def timed(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
            return
        pause = time.perf_counter() - started
        with _COUNTING:
            name = f"gc.gen{info['generation']}"
            _COUNTS[name] += 1
            _CPU_S[name] += pause
            _MAX_S[name] = max(_MAX_S[name], pause)

    gc.callbacks.append(timed)


def _freeze_survivors_of_full_collections(thaw_every_s: float = THAW_EVERY_S) -> None:
    """After each full collection, move its survivors to the collector's permanent generation
    (``gc.freeze``), so the next full collection only walks objects made since. moto's stores hold
    every item, message and record as many small objects, and a full collection walks them all while
    every request waits: under a steady load, one every two or three seconds, each longer as the tables
    grow. A frozen object is still freed when its last reference goes; but a reference cycle frozen
    while in use (a request in flight, an exception and its traceback) would never be, so every
    ``thaw_every_s`` the frozen objects go back (``gc.unfreeze``) and the next full collection walks
    everything once."""
    thawed_at = time.monotonic()

    def freeze(phase: str, info: dict[str, int]) -> None:
        nonlocal thawed_at
        if phase != "stop" or info["generation"] != 2:
            return
        if time.monotonic() - thawed_at < thaw_every_s:
            gc.freeze()
            return
        thawed_at = time.monotonic()
        gc.unfreeze()

    gc.callbacks.append(freeze)


def _operation(environ: dict[str, Any]) -> str:
    """``dynamodb.TransactWriteItems``, ``sqs.ReceiveMessage``...: the signed service and the target."""
    scope = str(environ.get("HTTP_AUTHORIZATION", "")).split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    service = scope[3] if len(scope) > 3 else "unsigned"
    target = str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]
    return f"{service}.{target or environ.get('REQUEST_METHOD', '?')}"


def serve(host: str, port: int, workers: int = WORKERS) -> None:
    """Serve moto's WSGI app with uvicorn (keep-alive connections, a pool of ``workers`` threads)."""
    import uvicorn
    from a2wsgi import WSGIMiddleware
    from a2wsgi.wsgi_typing import WSGIApp
    from moto.moto_server.werkzeug_app import create_backend_app

    os.environ.setdefault("MOTO_PORT", str(port))  # as moto's own server does
    app = WSGIMiddleware(cast("WSGIApp", DomainDispatcherApplication(create_backend_app)), workers=workers)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m acr_stack.emulator")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--stream-retention-s", type=float, default=DEFAULT_STREAM_RETENTION_S)
    parser.add_argument("--workers", type=int, default=WORKERS, help="threads serving requests")
    parser.add_argument(
        "--accounts", type=json.loads, default={}, help='JSON {"<access key id>": "<account id>"}'
    )
    args = parser.parse_args(argv)
    repair(args.stream_retention_s, args.accounts)
    serve(args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
