"""The CloudEvents 1.0 envelope (structured JSON mode) every ACR event travels in.

The id is minted once, when the event is recorded, and reused on every resend; ``eventcount``
grows by one on each resend; ``sequence`` is the aggregate version so consumers can drop stale updates.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkCloudEvent
from pydantic import BaseModel, ConfigDict, Field

from acr import tracing

_FORMAT = JSONFormat()
_EXTENSIONS = ("eventcount", "sequence", "traceparent", "tracestate")


class InvalidEnvelope(ValueError):
    """The bytes are not a CloudEvents 1.0 structured JSON event."""


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event with ACR's extensions."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    eventcount: int = 1
    sequence: int | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def dedup_key(self) -> str:
        """What a consumer deduplicates on: the producer's source and the event id (never a broker id)."""
        return f"{self.source}#{self.id}"

    def resent(self) -> CloudEvent:
        """The same event, one send later: same id, ``eventcount`` + 1."""
        return self.model_copy(update={"eventcount": self.eventcount + 1})

    def to_json(self) -> str:
        """Structured-mode JSON, written by the CloudEvents SDK."""
        attributes: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "datacontenttype": self.datacontenttype,
        }
        for name in ("subject", "dataschema", *_EXTENSIONS):
            value = getattr(self, name)
            if value is not None:
                attributes[name] = value
        return _FORMAT.write(SdkCloudEvent(attributes, self.data)).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> CloudEvent:
        """Parse and validate structured-mode JSON; raises ``InvalidEnvelope``."""
        try:
            sdk_event = _FORMAT.read(None, raw)
        except (BaseCloudEventException, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidEnvelope(f"not a CloudEvent: {exc}") from exc
        attributes = dict(sdk_event.get_attributes())
        data = sdk_event.get_data()
        if data is not None and not isinstance(data, dict):
            raise InvalidEnvelope("event data must be a JSON object")
        attributes.pop("specversion", None)
        try:
            return cls(**attributes, data=data or {})
        except ValueError as exc:
            raise InvalidEnvelope(f"bad CloudEvent attributes: {exc}") from exc


def new_event(
    *,
    type: str,  # noqa: A002 - the CloudEvents attribute name
    source: str,
    subject: str | None,
    data: dict[str, Any],
    dataschema: str | None = None,
    sequence: int | None = None,
    ride_id: str | None = None,
) -> CloudEvent:
    """Record a new event: mint its id once, stamp the time and the trace context it continues (the
    current span's, else the ride's: ``acr.tracing.event_context``)."""
    traceparent, tracestate = tracing.event_context(type, ride_id)
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=type,
        subject=subject,
        time=datetime.now(UTC),
        dataschema=dataschema,
        data=json.loads(json.dumps(data)),
        sequence=sequence,
        traceparent=traceparent,
        tracestate=tracestate,
    )
