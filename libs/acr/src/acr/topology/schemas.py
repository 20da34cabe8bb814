"""The schema registry folder and its compatibility gate.

Every catalog type has one JSON Schema per published version, ``<registry>/<context>/<EventName>/v<N>.json``
(committed: the folder is the record of what was released). A change to a type is backward compatible when
the new schema accepts every payload the released one accepted: consumers on the new catalog still read the
events already in queues, outboxes, DLQs and replays. Not compatible: a field removed or renamed, a type or
format narrowed, an enum value removed, a new required field, a closed object that was open. Such a change is
published as a new version (``EventSpec.version`` + 1, a new file), never written over a released one.

Enums: adding a value is compatible here (old payloads stay valid), and it is a change consumers must
handle: an ACR consumer rejects a value its catalog does not know, so the consumers of the type deploy the
new catalog before the producer emits the value (docs/deploy.md, "Schemas"). A producer that cannot wait for
them publishes a new version instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acr.catalog import SPECS
from acr.catalog.base import EventSpec

JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
_VERSION_FILE = re.compile(r"^v(\d+)\.json$")
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


class GateFailed(Exception):
    """The catalog is not compatible with the registry; ``problems`` says where and how to fix it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Incompatibility:
    field: str
    change: str


def schema_of(spec: EventSpec) -> dict[str, Any]:
    """The JSON Schema of one version of a type's payload, as the registry stores it."""
    schema = spec.model.model_json_schema(by_alias=True)
    return {
        "$schema": JSON_SCHEMA,
        "$id": spec.dataschema,
        **schema,
        "title": spec.type,
        "x-acr": {
            "context": spec.context,
            "destination": str(spec.destination),
            "kind": spec.kind,
            "source": spec.source,
            "version": spec.version,
        },
    }


def dumps(document: Any) -> str:
    """The one JSON layout of every exported file: sorted keys, two-space indent, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def path_of(registry: Path, spec: EventSpec, version: int | None = None) -> Path:
    return registry / spec.context / spec.name / f"v{spec.version if version is None else version}.json"


def released_versions(registry: Path, spec: EventSpec) -> list[int]:
    folder = registry / spec.context / spec.name
    if not folder.is_dir():
        return []
    found = (_VERSION_FILE.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def gate(registry: Path, specs: Iterable[EventSpec] = SPECS) -> list[str]:
    """Problems of the catalog against the registry folder; empty when every type's current version is
    published there and matches it."""
    problems: list[str] = []
    for spec in specs:
        problems += _gate_one(registry, spec)
    return problems


def _gate_one(registry: Path, spec: EventSpec) -> list[str]:
    versions = released_versions(registry, spec)
    shown = _shown(registry, spec)
    if versions and spec.version < versions[-1]:
        return [
            f"{spec.type} is v{spec.version} in the catalog but v{versions[-1]} is released "
            f"({_shown(registry, spec, versions[-1])}): versions only grow; set version={versions[-1]} "
            "or higher on its EventSpec"
        ]
    if spec.version not in versions:
        return [f"{spec.type} v{spec.version} is not published: run `acr-topology export` to write {shown}"]
    released = json.loads(path_of(registry, spec).read_text())
    problems = [_message(registry, spec, i) for i in incompatibilities(released, schema_of(spec))]
    if not problems and released != schema_of(spec):
        problems.append(
            f"{spec.type} v{spec.version} changed compatibly but {shown} is not updated: "
            "run `acr-topology export`"
        )
    return problems


def _shown(registry: Path, spec: EventSpec, version: int | None = None) -> str:
    return str(path_of(registry, spec, version).relative_to(registry.parent))


def _message(registry: Path, spec: EventSpec, problem: Incompatibility) -> str:
    module = f"libs/acr/src/acr/catalog/{spec.context}.py"
    return (
        f"{spec.type} v{spec.version} is not backward compatible with {_shown(registry, spec)}: "
        f"field '{problem.field}' {problem.change}. Fix: keep v{spec.version} compatible (restore the "
        f"field, or make the new field optional), or publish the change as v{spec.version + 1}: set "
        f"version={spec.version + 1} on its EventSpec in {module} and run `acr-topology export`, which "
        f"writes {_shown(registry, spec, spec.version + 1)}"
    )


def export_registry(registry: Path, specs: Iterable[EventSpec] = SPECS) -> list[Path]:
    """Write each type's current version; refuses (``GateFailed``) to overwrite a released version with an
    incompatible schema or to go back to an older version. Released files of older versions stay."""
    specs = list(specs)
    blocking = [
        p
        for spec in specs
        for p in _gate_one(registry, spec)
        if "not backward compatible" in p or "versions only grow" in p
    ]
    if blocking:
        raise GateFailed(blocking)
    written = []
    for spec in specs:
        path = path_of(registry, spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = dumps(schema_of(spec))
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


# --- backward compatibility: does ``new`` accept every instance ``old`` accepts? -------------------------
def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[Incompatibility]:
    """What ``new`` no longer accepts of ``old`` (both whole documents, their ``$defs`` included)."""
    return _Compare(old, new).values(old, new, "")


class _Compare:
    def __init__(self, old_root: dict[str, Any], new_root: dict[str, Any]) -> None:
        self.old_root = old_root
        self.new_root = new_root

    def values(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[Incompatibility]:
        new_branches = _branches(new, self.new_root)
        problems: list[Incompatibility] = []
        for branch in _branches(old, self.old_root):
            candidates = [b for b in new_branches if _kind_accepts(_kind(b), _kind(branch))]
            if not candidates:
                problems.append(
                    Incompatibility(
                        path or "(payload)",
                        f"narrowed: {_describe(branch)} is no longer accepted "
                        f"(now {' | '.join(_describe(b) for b in new_branches)})",
                    )
                )
                continue
            closest: list[Incompatibility] = min((self.one(branch, b, path) for b in candidates), key=len)
            problems += closest
        return problems

    def one(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[Incompatibility]:
        field = path or "(payload)"
        problems = [Incompatibility(field, change) for change in _narrowed_constraints(old, new)]
        if _kind(old) == "object" and _kind(new) == "object":
            problems += self.objects(old, new, path)
        if _kind(old) == "array" and _kind(new) == "array":
            problems += self.values(old.get("items", {}), new.get("items", {}), f"{path}[]")
        return problems

    def objects(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[Incompatibility]:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        extra = new.get("additionalProperties", True)
        added = sorted(set(new_props) - set(old_props))
        problems: list[Incompatibility] = []
        for name in sorted(old_props):
            field = f"{path}.{name}" if path else name
            if name in new_props:
                problems += self.values(old_props[name], new_props[name], field)
            elif extra is False:
                hint = f" (new fields: {', '.join(added)})" if added else ""
                problems.append(Incompatibility(field, f"removed or renamed{hint}"))
            elif isinstance(extra, dict):
                problems += self.values(old_props[name], extra, field)
        for name in sorted(new_required - old_required):
            field = f"{path}.{name}" if path else name
            change = "made required" if name in old_props else "added as a new required field"
            problems.append(Incompatibility(field, change))
        old_extra = old.get("additionalProperties", True)
        if extra is False and old_extra is not False:
            problems.append(
                Incompatibility(path or "(payload)", "closed: other fields are no longer accepted")
            )
        elif isinstance(extra, dict) and isinstance(old_extra, dict):
            problems += self.values(old_extra, extra, f"{path}.*")
        return problems


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = root.get("$defs", {})[name]
    return schema


def _branches(schema: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return [b for alternative in alternatives for b in _branches(alternative, root)]
    if isinstance(schema.get("type"), list):
        return [{**schema, "type": t} for t in schema["type"]]
    return [schema]


def _kind(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return str(schema["type"])
    values = schema.get("enum") or ([schema["const"]] if "const" in schema else None)
    if values:
        return _json_type(values[0])
    return "any"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "any"


def _kind_accepts(new: str, old: str) -> bool:
    return new in ("any", old) or (new == "number" and old == "integer")


def _allowed_values(schema: dict[str, Any]) -> set[Any] | None:
    if "const" in schema:
        return {schema["const"]}
    return set(schema["enum"]) if "enum" in schema else None


def _narrowed_constraints(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes: list[str] = []
    old_values, new_values = _allowed_values(old), _allowed_values(new)
    if new_values is not None:
        if old_values is None:
            changes.append(f"narrowed: now one of {sorted(map(str, new_values))}")
        elif old_values - new_values:
            changes.append(f"narrowed: values {sorted(map(str, old_values - new_values))} removed")
    if new.get("format") and new.get("format") != old.get("format"):
        changes.append(f"narrowed: now format {new['format']}")
    if new.get("pattern") and new.get("pattern") != old.get("pattern"):
        changes.append(f"narrowed: now pattern {new['pattern']}")
    for key in _LOWER_BOUNDS:
        if key in new and (key not in old or new[key] > old[key]):
            changes.append(f"narrowed: {key} {new[key]}")
    for key in _UPPER_BOUNDS:
        if key in new and (key not in old or new[key] < old[key]):
            changes.append(f"narrowed: {key} {new[key]}")
    return changes


def _describe(schema: dict[str, Any]) -> str:
    values = _allowed_values(schema)
    if values is not None:
        return f"{_kind(schema)} {sorted(map(str, values))}"
    return _kind(schema) + (f" ({schema['format']})" if "format" in schema else "")


# --- the EventBridge schema registry's form (JSON Schema draft 4) ---------------------------------------
DRAFT4 = "http://json-schema.org/draft-04/schema#"


def eventbridge_schema(spec: EventSpec) -> dict[str, Any]:
    """What travels for one version of a type, in draft 4 (the registry's ``JSONSchemaDraft4``): on a bus, the
    EventBridge event whose ``detail`` is the CloudEvent; on a topic or a stream, the CloudEvent itself."""
    data = _draft4(spec.model.model_json_schema(by_alias=True))
    definitions = {**data.pop("definitions", {}), "Data": data, "CloudEvent": _cloudevent(spec)}
    if spec.destination.kind != "bus":
        return {
            "$schema": DRAFT4,
            "title": spec.type,
            "$ref": "#/definitions/CloudEvent",
            "definitions": definitions,
        }
    return {
        "$schema": DRAFT4,
        "title": spec.type,
        "type": "object",
        "required": ["detail-type", "source", "detail"],
        "properties": {
            "detail-type": {"type": "string", "enum": [spec.type]},
            "source": {"type": "string", "enum": [spec.source]},
            "detail": {"$ref": "#/definitions/CloudEvent"},
        },
        "definitions": definitions,
    }


def _cloudevent(spec: EventSpec) -> dict[str, Any]:
    text, integer = {"type": "string"}, {"type": "integer"}
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "data"],
        "properties": {
            "specversion": {"type": "string", "enum": ["1.0"]},
            "id": text,
            "source": {"type": "string", "enum": [spec.source]},
            "type": {"type": "string", "enum": [spec.type]},
            "subject": text,
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": text,
            "dataschema": {"type": "string", "enum": [spec.dataschema]},
            "eventcount": integer,
            "sequence": integer,
            "traceparent": text,
            "tracestate": text,
            "data": {"$ref": "#/definitions/Data"},
        },
    }


def _draft4(schema: Any) -> Any:
    """``$defs`` -> ``definitions`` and the refs to them (what pydantic writes is otherwise draft 4 too)."""
    if isinstance(schema, list):
        return [_draft4(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {("definitions" if k == "$defs" else k): _draft4(v) for k, v in schema.items()}
    if isinstance(converted.get("$ref"), str):
        converted["$ref"] = converted["$ref"].replace("#/$defs/", "#/definitions/")
    return converted
