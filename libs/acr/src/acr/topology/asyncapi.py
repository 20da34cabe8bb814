"""The AsyncAPI 3 document of ACR: every bus, topic, stream and queue of the plan with the catalog types on
each, and the BFF's websocket (docs/api.md, "Push"). Payloads point at the schema registry folder."""

from __future__ import annotations

from typing import Any

from acr.catalog import SPECS
from acr.catalog.base import EventSpec, bus_name
from acr.topology.plan import Delivery, Queue, ServicePlan

Json = dict[str, Any]
ASYNCAPI = "3.0.0"
CONTENT_TYPE = "application/cloudevents+json"


def document(plans: list[ServicePlan], schemas: str) -> Json:
    """The document; ``schemas`` is the registry folder relative to where the document is written."""
    channels: Json = {}
    operations: Json = {}
    _publishers(plans, channels, operations)
    for p in plans:
        for delivery in p.deliveries:
            _delivery(p, delivery, channels, operations)
        if p.producer_dlq:
            _dead_letters(p, p.producer_dlq, channels)
    for context in sorted(
        {r.producer for p in plans for r in p.routes} | {p.context for p in plans if p.routes}
    ):
        name = f"acr-{context}-delivery-dlq"
        channels[_key("queue", name)] = {
            "address": name,
            "title": name,
            "description": f"AWS only: what the rules on {bus_name(context)} could not deliver (the events).",
            "servers": [{"$ref": "#/servers/sqs"}],
            "messages": _messages([s for s in SPECS if s.destination.kind == "bus"]),
        }
    _websocket(channels, operations)
    return {
        "asyncapi": ASYNCAPI,
        "info": {
            "title": "ACR events",
            "version": "1.0.0",
            "description": "Written by `acr-topology export` from the catalog and the services' topology "
            "slices (docs/deploy.md). Every event is a CloudEvent 1.0 (structured JSON); its data is the "
            "registry schema of its type and version.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": _components(schemas)},
    }


def _servers() -> Json:
    region = {"region": {"default": "us-east-1", "description": "The AWS region of the accounts."}}
    return {
        "eventbridge": {
            "host": "events.{region}.amazonaws.com",
            "protocol": "eventbridge",
            "description": "Amazon EventBridge: one custom bus per context account.",
            "variables": region,
        },
        "sns": {"host": "sns.{region}.amazonaws.com", "protocol": "sns", "variables": region},
        "sqs": {"host": "sqs.{region}.amazonaws.com", "protocol": "sqs", "variables": region},
        "kinesis": {
            "host": "kinesis.{region}.amazonaws.com",
            "protocol": "kinesis",
            "description": "Amazon Kinesis Data Streams.",
            "variables": region,
        },
        "bff": {
            "host": "{host}",
            "protocol": "wss",
            "description": "The BFF's websocket (ws:// on the embedded stack).",
            "variables": {"host": {"default": "localhost:8000"}},
        },
    }


def _key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def _ref(message: str) -> Json:
    return {"$ref": f"#/components/messages/{message}"}


def _messages(specs: list[EventSpec]) -> Json:
    return {_message_id(s): _ref(_message_id(s)) for s in specs}


def _message_id(spec: EventSpec) -> str:
    return spec.type


def _publishers(plans: list[ServicePlan], channels: Json, operations: Json) -> None:
    for kind, server in (("bus", "eventbridge"), ("topic", "sns"), ("stream", "kinesis")):
        names = sorted({s.destination.name for s in SPECS if s.destination.kind == kind})
        for name in names:
            specs = [s for s in SPECS if s.destination.kind == kind and s.destination.name == name]
            key = _key(kind, name)
            channels[key] = {
                "address": name,
                "title": name,
                "description": f"The {specs[0].context} context's {kind}.",
                "servers": [{"$ref": f"#/servers/{server}"}],
                "messages": _messages(specs),
            }
            writer = [p.service for p in plans if p.context == specs[0].context]
            operations[f"{'-'.join(writer) or specs[0].context}.publish.{name}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{key}"},
                "messages": [{"$ref": f"#/channels/{key}/messages/{_message_id(s)}"} for s in specs],
            }


def _delivery(p: ServicePlan, delivery: Delivery, channels: Json, operations: Json) -> None:
    types = {t for r in delivery.routes for t in r.detail_types}
    specs = [s for s in SPECS if s.type in types or s.destination.name == delivery.topic]
    key = _key("queue", delivery.queue.name)
    source = delivery.topic or ", ".join(f"{r.bus} (rule {r.rule})" for r in delivery.routes)
    channels[key] = {
        "address": delivery.queue.name,
        "title": delivery.queue.name,
        "description": f"{p.service}'s queue, fed by {source}; after {delivery.queue.max_receives} "
        f"receives a message moves to {delivery.dlq.name}.",
        "servers": [{"$ref": "#/servers/sqs"}],
        "messages": _messages(specs),
    }
    channels[_key("queue", delivery.dlq.name)] = {
        "address": delivery.dlq.name,
        "title": delivery.dlq.name,
        "description": f"The dead letters of {delivery.queue.name}: the same messages, with a reason.",
        "servers": [{"$ref": "#/servers/sqs"}],
        "messages": _messages(specs),
    }
    operations[f"{p.service}.consume.{delivery.queue.name}"] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{key}"},
        "messages": [{"$ref": f"#/channels/{key}/messages/{_message_id(s)}"} for s in specs],
    }


def _dead_letters(p: ServicePlan, dlq: Queue, channels: Json) -> None:
    channels[_key("queue", dlq.name)] = {
        "address": dlq.name,
        "title": dlq.name,
        "description": f"What {p.service}'s relay could not publish; a redrive puts them back in its outbox.",
        "servers": [{"$ref": "#/servers/sqs"}],
        "messages": {"ProducerDeadLetter": _ref("ProducerDeadLetter")},
    }


def _cloudevent(spec: EventSpec, schemas: str) -> Json:
    text = {"type": "string"}
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "Minted once; the consumers' dedup key with source."},
            "source": {"const": spec.source},
            "type": {"const": spec.type},
            "subject": text,
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"const": spec.dataschema},
            "eventcount": {"type": "integer", "minimum": 1},
            "sequence": {"type": "integer"},
            "traceparent": text,
            "tracestate": text,
            "data": {"$ref": f"{schemas}/{spec.context}/{spec.name}/v{spec.version}.json"},
        },
    }


def _components(schemas: str) -> Json:
    messages: Json = {
        _message_id(spec): {
            "name": spec.name,
            "title": f"{spec.type} v{spec.version}",
            "summary": f"A {spec.kind} of the {spec.context} context, on {spec.destination}.",
            "contentType": CONTENT_TYPE,
            "payload": _cloudevent(spec, schemas),
        }
        for spec in SPECS
    }
    messages["ProducerDeadLetter"] = {
        "name": "ProducerDeadLetter",
        "contentType": "application/json",
        "summary": "An event the relay could not publish (message attribute `reason`: the error code).",
        "payload": {
            "type": "object",
            "required": ["destination", "event"],
            "properties": {
                "destination": {"type": "string", "description": "bus:<name> or topic:<name>"},
                "group": {"type": ["string", "null"]},
                "event": {"type": "object", "description": "The CloudEvent, as recorded."},
            },
        },
    }
    messages |= _websocket_messages()
    return dict(sorted(messages.items()))


# --- the BFF's websocket (docs/api.md) ---------------------------------------------------------------------
def _websocket(channels: Json, operations: Json) -> None:
    sent = ["ride.updated", "ride.eta", "error"]
    channels["websocket"] = {
        "address": "/ws?token={token}",
        "title": "The rider's push",
        "description": "Each new version of each of the rider's rides, in version order per ride, and live "
        "ETAs; the client resumes with the last version it has. Closed with 4401 for a bad token, 1013 for "
        "a client too slow to read.",
        "servers": [{"$ref": "#/servers/bff"}],
        "parameters": {"token": {"description": "The rider's token (POST /api/v1/riders)."}},
        "messages": {name: _ref(name) for name in [*sent, "resume"]},
    }
    operations["bff.push"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/websocket"},
        "messages": [{"$ref": f"#/channels/websocket/messages/{name}"} for name in sent],
    }
    operations["bff.resume"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/websocket"},
        "messages": [{"$ref": "#/channels/websocket/messages/resume"}],
    }


def _frame(kind: str, required: list[str], properties: Json, summary: str) -> Json:
    return {
        "name": kind,
        "contentType": "application/json",
        "summary": summary,
        "payload": {
            "type": "object",
            "required": ["type", *required],
            "properties": {"type": {"const": kind}, **properties},
        },
    }


def _websocket_messages() -> Json:
    text, number = {"type": "string"}, {"type": "number"}
    return {
        "ride.updated": _frame(
            "ride.updated",
            ["rideId", "version", "status", "ride"],
            {"rideId": text, "version": {"type": "integer"}, "status": text, "ride": {"type": "object"}},
            "A new version of one of the rider's rides (the API's Ride).",
        ),
        "ride.eta": _frame(
            "ride.eta",
            ["rideId", "phase", "etaSeconds", "lat", "lon"],
            {
                "rideId": text,
                "phase": {"enum": ["TO_PICKUP", "TO_DESTINATION"]},
                "etaSeconds": number,
                "lat": number,
                "lon": number,
            },
            "A live ETA of a moving car, at most one every ACR_ETA_PUSH_S per ride.",
        ),
        "resume": _frame(
            "resume",
            ["rideId", "afterVersion"],
            {"rideId": text, "afterVersion": {"type": "integer", "minimum": 0}},
            "Sent by the client: every stored version above afterVersion, then live.",
        ),
        "error": _frame(
            "error",
            ["code"],
            {"code": {"enum": ["ride_not_found", "bad_request"]}, "rideId": text, "message": text},
            "A resume for an unknown or foreign ride, or a frame that is not JSON of at most 4 KiB.",
        ),
    }
