"""``acr-topology export``: the deployable description of ACR, written from the code.

``<out>/stacks/<context>.json`` (one CloudFormation stack per bounded context), ``<out>/asyncapi.json``
and the schema registry folder. The same code writes the same bytes, so the committed files are checked
against a fresh export (tests/deploy).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from acr.settings import Settings
from acr.topology import asyncapi
from acr.topology.cloudformation import templates
from acr.topology.governance import violations
from acr.topology.model import ServiceTopology, discover
from acr.topology.plan import plan
from acr.topology.schemas import GateFailed, dumps, export_registry

MAX_RECEIVES: int = Settings.model_fields["max_receives"].default
"""The setting's default, not this process's environment: the export does not depend on where it runs."""


def write_json(path: Path, document: Any, *, sort_keys: bool = False) -> Path:
    """Write ``document`` in the one layout of exported files (unchanged files are not touched)."""
    text = dumps(document) if sort_keys else json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def export(out: Path, registry: Path, slices: list[ServiceTopology] | None = None) -> list[Path]:
    """Write every exported file; raises ``GateFailed`` on a governance or schema problem."""
    slices = discover() if slices is None else slices
    problems = violations(slices)
    if problems:
        raise GateFailed(problems)
    written = export_registry(registry)
    plans = plan(slices, MAX_RECEIVES)
    stacks = out / "stacks"
    for context, template in templates(plans).items():
        written.append(write_json(stacks / f"{context}.json", template))
    for stale in sorted(set(stacks.glob("*.json")) - set(written)):
        stale.unlink()
    relative = Path(os.path.relpath(registry, out)).as_posix()
    written.append(write_json(out / "asyncapi.json", asyncapi.document(plans, relative)))
    return written
