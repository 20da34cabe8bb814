"""The committed deploy/ and schemas/ are what `acr-topology export` writes from the code today, so the
templates, the AsyncAPI document and the schema registry never drift from the slices and the catalog."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from acr.catalog import SPECS
from acr.topology import discover
from acr.topology.export import MAX_RECEIVES, export
from acr.topology.plan import plan

ROOT = Path(__file__).resolve().parents[2]
DEPLOY, SCHEMAS = ROOT / "deploy", ROOT / "schemas"
FIX = "run `.venv/bin/acr-topology export` and commit deploy/ and schemas/"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_committed_templates_and_schemas_are_a_fresh_export(tmp_path: Path) -> None:
    shutil.copytree(SCHEMAS, tmp_path / "schemas")  # released versions stay; the export adds or updates
    export(tmp_path / "deploy", tmp_path / "schemas")
    for committed, fresh in ((DEPLOY, tmp_path / "deploy"), (SCHEMAS, tmp_path / "schemas")):
        ours, theirs = _files(committed), _files(fresh)
        stale = sorted(name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name))
        assert stale == [], f"{committed.name}/ differs from a fresh export in {stale}: {FIX}"


def _asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DEPLOY / "asyncapi.json").read_text())
    return document


def test_the_asyncapi_document_has_every_bus_topic_stream_queue_and_websocket_message() -> None:
    document = _asyncapi()
    assert document["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in document["channels"].values()}
    plans = plan(discover(), MAX_RECEIVES)
    wanted = {s.destination.name for s in SPECS}
    wanted |= {q.name for p in plans for d in p.deliveries for q in (d.queue, d.dlq)}
    wanted |= {p.producer_dlq.name for p in plans if p.producer_dlq}
    assert wanted <= addresses
    assert {s.type for s in SPECS} <= set(document["components"]["messages"])
    websocket = document["channels"]["websocket"]["messages"]
    assert set(websocket) == {"ride.updated", "ride.eta", "resume", "error"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_every_reference_of_the_asyncapi_document_resolves() -> None:
    document = _asyncapi()
    for target in _refs(document):
        if target.startswith("#/"):
            node: Any = document
            for part in target[2:].split("/"):
                node = node[part]
        else:
            assert (DEPLOY / target).resolve().is_file(), target
