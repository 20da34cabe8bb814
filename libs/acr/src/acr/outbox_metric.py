"""On AWS, the age of a service's oldest pending outbox row as a CloudWatch metric, every minute.

The exported templates alarm on it (``ACR/Outbox`` ``OldestPendingAgeSeconds`` by ``Service``): a relay that
falls behind, or stops publishing the metric at all, pages someone. With the ``pipes`` relay the rows the
Pipe publishes are never pending (``acr.unit_of_work.outbox_row``), so the metric is the age of the relay's
own backlog (topic rows, bus rows left from polling) and a Pipe row never counts as pending forever; what the
Pipe cannot deliver lands in its DLQ, alarmed like every DLQ.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

log = logging.getLogger(__name__)
NAMESPACE = "ACR/Outbox"
METRIC = "OldestPendingAgeSeconds"
EVERY_S = 60.0


class OutboxAgeMetric:
    """A loop: put the oldest pending row's age (0 when none is pending) every ``every_s``."""

    def __init__(
        self,
        cloudwatch: CloudWatchClient,
        service: str,
        oldest_pending_ms: Callable[[], float | None],
        every_s: float = EVERY_S,
    ) -> None:
        self._cloudwatch = cloudwatch
        self._service = service
        self._oldest_pending_ms = oldest_pending_ms
        self._every_s = every_s

    def put_once(self) -> float:
        """Put one data point; returns the age in seconds it reported."""
        age_s = (self._oldest_pending_ms() or 0.0) / 1000
        self._cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": METRIC,
                    "Dimensions": [{"Name": "Service", "Value": self._service}],
                    "Value": age_s,
                    "Unit": "Seconds",
                }
            ],
        )
        return age_s

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._every_s):
            try:
                self.put_once()
            except (
                Exception
            ):  # a missed data point shows as missing data, which the alarm treats as breaching
                log.exception("could not put the outbox age metric")
