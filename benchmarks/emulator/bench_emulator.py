"""The embedded emulator against plain moto, in the same run: does a request cost more as data grows?

Each server (plain ``python -m moto.server`` = the baseline, then ``python -m acr_stack.emulator``) gets the
same load: TransactWriteItems of three 600-byte puts into three tables (as a consumer writes its marker,
state and outbox row), then Kinesis records in batches of 500 with single PutRecord/GetRecords probes.
Reported per window: transactions per second and the server's RSS; per Kinesis checkpoint: the latency
of one PutRecord and of one GetRecords at the end of the stream.

    .venv/bin/python benchmarks/emulator/bench_emulator.py [--transactions 1800] [--records 40000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from acr_testkit.emulator import emulator_process

TABLES = ("marker", "state", "outbox")
SERVERS = {"moto (baseline)": "moto.server", "acr_stack.emulator": "acr_stack.emulator"}


def rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def measure(module: str, transactions: int, records: int) -> dict[str, Any]:
    with emulator_process(module) as (url, pid):
        kwargs = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "config": Config(retries={"max_attempts": 1}),
        }
        dynamodb = boto3.client("dynamodb", **kwargs)
        for table in TABLES:
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        result: dict[str, Any] = {"start_rss": rss_mb(pid), "windows": [], "kinesis": []}
        checkpoints = sorted({transactions // 6, transactions // 2, transactions})
        done, window_start = 0, time.perf_counter()
        for checkpoint in checkpoints:
            for i in range(done, checkpoint):
                dynamodb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": t, "Item": {"pk": {"S": f"{t}-{i}"}, "data": {"S": "x" * 600}}}}
                        for t in TABLES
                    ]
                )
            now = time.perf_counter()
            result["windows"].append((checkpoint, (checkpoint - done) / (now - window_start), rss_mb(pid)))
            done, window_start = checkpoint, time.perf_counter()

        kinesis = boto3.client("kinesis", **kwargs)
        kinesis.create_stream(StreamName="telemetry", ShardCount=1)
        shard = kinesis.list_shards(StreamName="telemetry")["Shards"][0]["ShardId"]
        put = 0
        for checkpoint in sorted({records // 4, records // 2, records}):
            while put < checkpoint:
                batch = [{"PartitionKey": f"car-{j}", "Data": b"y" * 300} for j in range(500)]
                kinesis.put_records(StreamName="telemetry", Records=batch)
                put += len(batch)
            put_ms, get_ms = [], []
            for _ in range(5):
                started = time.perf_counter()
                sequence = kinesis.put_record(StreamName="telemetry", PartitionKey="car-x", Data=b"y" * 300)
                put_ms.append((time.perf_counter() - started) * 1000)
                iterator = kinesis.get_shard_iterator(
                    StreamName="telemetry",
                    ShardId=shard,
                    ShardIteratorType="AT_SEQUENCE_NUMBER",
                    StartingSequenceNumber=sequence["SequenceNumber"],
                )["ShardIterator"]
                started = time.perf_counter()
                kinesis.get_records(ShardIterator=iterator, Limit=100)
                get_ms.append((time.perf_counter() - started) * 1000)
            result["kinesis"].append((put, statistics.median(put_ms), statistics.median(get_ms), rss_mb(pid)))
        return result


def report(results: dict[str, dict[str, Any]], transactions: int, records: int) -> str:
    base, ours = results["moto (baseline)"], results["acr_stack.emulator"]
    lines = [
        "# The embedded emulator against plain moto",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.platform()}",
        f"· Python {platform.python_version()}",
        f"· load average {Path('/proc/loadavg').read_text().split()[0]}",
        "",
        f"`benchmarks/emulator/bench_emulator.py --transactions {transactions} --records {records}`: "
        "both servers in the same run, the same requests.",
        "",
        "## TransactWriteItems (3 puts of 600 B into 3 tables)",
        "",
        "| after | moto tx/s | moto RSS MB | ours tx/s | ours RSS MB | ours / moto tx/s |",
        "|---|---|---|---|---|---|",
    ]
    for (n, b_rate, b_rss), (_, o_rate, o_rss) in zip(base["windows"], ours["windows"], strict=True):
        lines.append(f"| {n} | {b_rate:.0f} | {b_rss} | {o_rate:.0f} | {o_rss} | {o_rate / b_rate:.1f}x |")
    lines += [
        "",
        f"RSS at start: moto {base['start_rss']} MB, ours {ours['start_rss']} MB.",
        "",
        "## Kinesis (median of 5 probes at each size)",
        "",
        "| records | moto PutRecord ms | moto GetRecords ms | moto RSS MB "
        "| ours PutRecord ms | ours GetRecords ms | ours RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for (n, bp, bg, br), (_, op, og, orss) in zip(base["kinesis"], ours["kinesis"], strict=True):
        lines.append(f"| {n} | {bp:.1f} | {bg:.1f} | {br} | {op:.1f} | {og:.1f} | {orss} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1800)
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/emulator.md"))
    args = parser.parse_args()
    results = {name: measure(module, args.transactions, args.records) for name, module in SERVERS.items()}
    text = report(results, args.transactions, args.records)
    args.out.write_text(text)
    print(text)  # noqa: T201


if __name__ == "__main__":
    main()
