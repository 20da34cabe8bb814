"""An in-memory stand-in for the few SQS calls the consumer makes."""

from __future__ import annotations

import itertools
from typing import Any


class FakeSqs:
    """Queues by URL. ``receive_message`` returns every message still on the queue (there is no
    visibility timeout: ``visibility`` records what the consumer asked for, by receipt handle)."""

    def __init__(self) -> None:
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.deleted: list[str] = []
        self.visibility: dict[str, int] = {}
        self._ids = itertools.count(1)

    def put(self, url: str, body: str) -> str:
        message_id = f"m{next(self._ids)}"
        self.queues.setdefault(url, []).append(
            {
                "MessageId": message_id,
                "ReceiptHandle": f"rh-{message_id}",
                "Body": body,
                "Attributes": {"ApproximateReceiveCount": "1"},
            }
        )
        return message_id

    def receive_message(self, QueueUrl: str, **_: Any) -> dict[str, Any]:  # noqa: N803 - boto3 names
        return {"Messages": list(self.queues.get(QueueUrl, []))}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:  # noqa: N803
        handles = {e["ReceiptHandle"] for e in Entries}
        self.deleted += sorted(handles)
        self.queues[QueueUrl] = [m for m in self.queues[QueueUrl] if m["ReceiptHandle"] not in handles]

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:  # noqa: N803
        self.deleted.append(ReceiptHandle)
        self.queues[QueueUrl] = [m for m in self.queues[QueueUrl] if m["ReceiptHandle"] != ReceiptHandle]

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:  # noqa: N803
        self.visibility[ReceiptHandle] = VisibilityTimeout

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        for entry in Entries:
            self.visibility[entry["ReceiptHandle"]] = int(entry["VisibilityTimeout"])
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def send_message(self, QueueUrl: str, MessageBody: str, **kwargs: Any) -> None:  # noqa: N803
        self.queues.setdefault(QueueUrl, []).append({"Body": MessageBody, **kwargs})
