"""The embedded emulator's repairs keep moto's behaviour: cancelled transactions leave nothing behind,
streams read back in order from any position, and records older than the retention are dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from acr_testkit.emulator import moto_server

pytestmark = pytest.mark.integration
RETENTION_S = 2.0


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server(stream_retention_s=RETENTION_S) as url:
        yield url


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def dynamodb(endpoint: str) -> Any:
    client = _client("dynamodb", endpoint)
    client.create_table(
        TableName="plain",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.create_table(
        TableName="sorted",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def _partition(dynamodb: Any, pk: str, **extra: Any) -> dict[str, Any]:
    """A query of the "sorted" table on its partition key."""
    return dict(
        dynamodb.query(
            TableName="sorted",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": pk}},
            **extra,
        )
    )


def _everything(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    return sorted(dynamodb.scan(TableName=table)["Items"], key=str)


FAILING_LAST = {
    # a condition that does not hold: moto cancels after running every operation
    "TransactionCanceledException": {
        "ConditionCheck": {
            "TableName": "plain",
            "Key": {"id": {"S": "missing"}},
            "ConditionExpression": "attribute_exists(id)",
        }
    },
    # a second operation on an item already written: moto stops there and rolls back
    "ValidationException": {"Delete": {"TableName": "plain", "Key": {"id": {"S": "new"}}}},
}


@pytest.mark.parametrize("error", sorted(FAILING_LAST))
def test_a_cancelled_transaction_leaves_every_table_as_it_was(dynamodb: Any, error: str) -> None:
    dynamodb.put_item(TableName="plain", Item={"id": {"S": "a"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName="sorted", Item={"pk": {"S": "ride"}, "sk": {"N": "1"}})
    before = {t: _everything(dynamodb, t) for t in ("plain", "sorted")}
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "plain", "Item": {"id": {"S": "new"}}}},
                {
                    "Update": {
                        "TableName": "plain",
                        "Key": {"id": {"S": "a"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": "sorted", "Item": {"pk": {"S": "ride"}, "sk": {"N": "2"}}}},
                {"Put": {"TableName": "sorted", "Item": {"pk": {"S": "other"}, "sk": {"N": "1"}}}},
                {"Delete": {"TableName": "sorted", "Key": {"pk": {"S": "ride"}, "sk": {"N": "1"}}}},
                FAILING_LAST[error],
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == error
    assert {t: _everything(dynamodb, t) for t in ("plain", "sorted")} == before
    assert _partition(dynamodb, "other")["Items"] == []


def _marker_and_state(dynamodb: Any, sort_key: int) -> None:
    """A consumer's transaction: its marker (put once) and a state row."""
    marker = {
        "TableName": "plain",
        "Item": {"id": {"S": "marker"}},
        "ConditionExpression": "attribute_not_exists(id)",
    }
    state = {"TableName": "sorted", "Item": {"pk": {"S": "ride-2"}, "sk": {"N": str(sort_key)}}}
    dynamodb.transact_write_items(TransactItems=[{"Put": marker}, {"Put": state}])


def test_a_committed_transaction_writes_every_item_and_a_duplicate_nothing(dynamodb: Any) -> None:
    _marker_and_state(dynamodb, 7)
    assert dynamodb.get_item(TableName="plain", Key={"id": {"S": "marker"}})["Item"] == {
        "id": {"S": "marker"}
    }
    assert "Item" in dynamodb.get_item(TableName="sorted", Key={"pk": {"S": "ride-2"}, "sk": {"N": "7"}})
    with pytest.raises(ClientError):  # the same marker again: a duplicate, and nothing else written
        _marker_and_state(dynamodb, 8)
    assert "Item" not in dynamodb.get_item(TableName="sorted", Key={"pk": {"S": "ride-2"}, "sk": {"N": "8"}})


def _read(kinesis: Any, iterator: str, page: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    while True:
        response = kinesis.get_records(ShardIterator=iterator, Limit=page)
        records += response["Records"]
        if not response["Records"]:
            return records
        iterator = response["NextShardIterator"]


def test_a_stream_reads_back_in_order_from_any_position_and_drops_old_records(endpoint: str) -> None:
    kinesis = _client("kinesis", endpoint)
    kinesis.create_stream(StreamName="telemetry", ShardCount=1)
    shard = kinesis.list_shards(StreamName="telemetry")["Shards"][0]["ShardId"]

    def iterator(kind: str, after: str | None = None) -> str:
        extra = {"StartingSequenceNumber": after} if after else {}
        return str(
            kinesis.get_shard_iterator(
                StreamName="telemetry", ShardId=shard, ShardIteratorType=kind, **extra
            )["ShardIterator"]
        )

    for n in range(30):
        kinesis.put_record(StreamName="telemetry", Data=str(n).encode(), PartitionKey="car-1")
    records = _read(kinesis, iterator("TRIM_HORIZON"), page=7)
    assert [r["Data"] for r in records] == [str(n).encode() for n in range(30)]
    numbers = [int(r["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == 30
    after_ten = _read(kinesis, iterator("AFTER_SEQUENCE_NUMBER", records[9]["SequenceNumber"]), page=100)
    assert [r["Data"] for r in after_ten] == [str(n).encode() for n in range(10, 30)]

    time.sleep(RETENTION_S + 0.5)
    kinesis.put_record(StreamName="telemetry", Data=b"fresh", PartitionKey="car-1")
    kept = _read(kinesis, iterator("TRIM_HORIZON"), page=100)
    assert [r["Data"] for r in kept] == [b"fresh"]
    assert int(kept[0]["SequenceNumber"]) > numbers[-1]


def test_of_conditional_writes_racing_on_one_item_exactly_one_succeeds(endpoint: str, dynamodb: Any) -> None:
    """Sixteen clients increment the same counter at once, each only if it still reads the value it saw."""
    dynamodb.put_item(TableName="plain", Item={"id": {"S": "race"}, "n": {"N": "0"}})
    clients = [_client("dynamodb", endpoint) for _ in range(16)]
    start, won = threading.Barrier(len(clients)), []

    def increment(client: Any) -> None:
        start.wait()
        try:
            client.update_item(
                TableName="plain",
                Key={"id": {"S": "race"}},
                UpdateExpression="SET n = :next",
                ConditionExpression="n = :seen",
                ExpressionAttributeValues={":seen": {"N": "0"}, ":next": {"N": "1"}},
            )
            won.append(client)
        except client.exceptions.ConditionalCheckFailedException:
            pass

    threads = [threading.Thread(target=increment, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1


def test_a_reshard_keeps_the_parents_records_sends_new_ones_to_the_children_and_ends_the_parents(
    endpoint: str,
) -> None:
    kinesis = _client("kinesis", endpoint)
    kinesis.create_stream(StreamName="resharded", ShardCount=1)
    kinesis.put_record(StreamName="resharded", Data=b"before", PartitionKey="k")
    kinesis.update_shard_count(StreamName="resharded", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    after = kinesis.put_record(StreamName="resharded", Data=b"after", PartitionKey="k")
    assert after["ShardId"] != "shardId-000000000000"

    def read(shard: str) -> tuple[list[bytes], str | None]:
        iterator = kinesis.get_shard_iterator(
            StreamName="resharded", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        response = kinesis.get_records(ShardIterator=iterator)
        records = [r["Data"] for r in response["Records"]]
        return records, kinesis.get_records(ShardIterator=response["NextShardIterator"]).get(
            "NextShardIterator"
        )

    parent, parent_next = read("shardId-000000000000")
    assert parent == [b"before"] and parent_next is None  # read to its end: no next iterator
    child, child_next = read(after["ShardId"])
    assert child == [b"after"] and child_next is not None  # open: reading goes on


def test_a_query_on_the_table_key_reads_that_partition_in_order_and_pages(dynamodb: Any) -> None:
    for pk in ("q-a", "q-b"):
        for sk in (3, 1, 2, 5, 4):
            dynamodb.put_item(TableName="sorted", Item={"pk": {"S": pk}, "sk": {"N": str(sk)}})

    def query(**extra: Any) -> dict[str, Any]:
        return _partition(dynamodb, "q-a", **extra)

    def keys(response: dict[str, Any]) -> list[int]:
        return [int(item["sk"]["N"]) for item in response["Items"]]

    assert keys(query()) == [1, 2, 3, 4, 5]
    assert keys(query(ScanIndexForward=False)) == [5, 4, 3, 2, 1]
    first = query(Limit=2)
    assert keys(first) == [1, 2]
    assert keys(query(Limit=10, ExclusiveStartKey=first["LastEvaluatedKey"])) == [3, 4, 5]
    assert _partition(dynamodb, "nobody")["Items"] == []


def _served(endpoint: str) -> dict[str, Any]:
    """What the emulator counted: ``{operation: {"count", "cpuSeconds"}}``."""
    with urllib.request.urlopen(f"{endpoint}/acr-emulator/requests", timeout=5) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def test_the_emulator_counts_each_operation_and_its_cpu_time(endpoint: str, dynamodb: Any) -> None:
    def served() -> dict[str, Any]:
        return _served(endpoint)

    before = served().get("dynamodb.GetItem", {"count": 0, "cpuSeconds": 0.0})
    for _ in range(3):
        dynamodb.get_item(TableName="plain", Key={"id": {"S": "nobody"}})
    after = served()["dynamodb.GetItem"]
    assert after["count"] == before["count"] + 3
    assert after["cpuSeconds"] >= before["cpuSeconds"]


def test_a_long_poll_on_a_fifo_group_in_flight_sleeps_instead_of_spinning(endpoint: str) -> None:
    sqs = _client("sqs", endpoint)
    url = sqs.create_queue(
        QueueName="held-group.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}", MessageGroupId="ride-1")
    held = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert [m["Body"] for m in held] == ["m0"]  # the group is now in flight: m1 may not be delivered

    before = _served(endpoint)["sqs.ReceiveMessage"]["cpuSeconds"]
    started = time.monotonic()
    waited = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=2)
    took = time.monotonic() - started
    spent = _served(endpoint)["sqs.ReceiveMessage"]["cpuSeconds"] - before

    assert waited.get("Messages", []) == []
    assert took >= 1.9
    assert spent < 0.2, f"the long poll used {spent:.2f} CPU-s of the emulator in {took:.1f} s"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=held[0]["ReceiptHandle"])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]] == ["m1"]


STORE_AND_FORGET = """
import gc, json, sys
import boto3
from moto import mock_aws
from acr_stack.emulator import repair

repair()
with mock_aws():
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    ddb.create_table(
        TableName="rows", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )
    queue = sqs.create_queue(QueueName="messages")["QueueUrl"]
    gc.collect()
    before, stored_items = gc.get_freeze_count(), int(sys.argv[1])
    for n in range(stored_items):
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "rows", "Item": {
            "id": {"S": f"row-{n}"}, "payload": {"M": {"a": {"S": "x" * 50}, "b": {"N": str(n)}}}}}}])
        sqs.send_message(QueueUrl=queue, MessageBody=f"message {n}")
    gc.collect()
    stored, unfrozen = gc.get_freeze_count() - before, len(gc.get_objects(generation=2))
    for n in range(stored_items):
        ddb.delete_item(TableName="rows", Key={"id": {"S": f"row-{n}"}})
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    gc.collect()
    print(json.dumps({"stored": stored, "unfrozen": unfrozen, "kept": gc.get_freeze_count() - before}))
"""


def test_a_full_collection_freezes_what_the_emulator_stores_and_frees_it_once_deleted() -> None:
    """After a full collection the stored items and messages are frozen (the next full collection does
    not walk them); deleting them frees them all the same (no reference cycle keeps them)."""
    stored_items = 1_000
    env = os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    command = [sys.executable, "-c", STORE_AND_FORGET, str(stored_items)]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout.strip().splitlines()[-1])

    assert measured["stored"] > 5 * stored_items  # each item and message is several objects, all frozen
    assert measured["unfrozen"] < 100  # right after a full collection nothing is left for the next one
    assert measured["kept"] < measured["stored"] / 5, measured  # deleted: freed although frozen


FROZEN_CYCLE = """
import gc, json, time, weakref
from acr_stack.emulator import _freeze_survivors_of_full_collections

_freeze_survivors_of_full_collections(thaw_every_s=1.0)

class Request:
    pass

request = Request()
request.myself = request  # a cycle alive during a full collection, so frozen with it
alive = weakref.ref(request)
gc.collect()
del request
gc.collect()
while_frozen = alive() is not None
time.sleep(1.1)
gc.collect()  # thaws
gc.collect()  # walks everything once
print(json.dumps({"while_frozen": while_frozen, "after_thaw": alive() is not None}))
"""


def test_a_cycle_frozen_while_in_use_is_freed_after_the_next_thaw() -> None:
    run = subprocess.run([sys.executable, "-c", FROZEN_CYCLE], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"while_frozen": True, "after_thaw": False}
