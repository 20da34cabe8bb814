"""The docs tell the truth about the code: every event type of the catalog is in the event storming."""

from __future__ import annotations

from pathlib import Path

from acr.catalog import CATALOG

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_catalog_event_type_appears_in_the_docs() -> None:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    missing = [spec.name for spec in CATALOG.values() if f"`{spec.name}`" not in text]
    assert missing == []
