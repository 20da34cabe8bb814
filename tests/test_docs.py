"""The docs tell the truth about the code: every event type of the catalog is in the event storming."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from acr.catalog import CATALOG

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_catalog_event_type_appears_in_the_docs() -> None:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    missing = [spec.name for spec in CATALOG.values() if f"`{spec.name}`" not in text]
    assert missing == []


ROOT = DOCS.parent
TEXT_SUFFIXES = {".py", ".js", ".html", ".md", ".toml", ".yml", ".yaml", ".sh", ".cfg"}
LINK = re.compile(r"\]\(([^)\s]+)\)")  # a Markdown link's target
DOC_NAME = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")  # a Markdown file named in text


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    paths = [ROOT / name for name in names.splitlines()]
    return [p for p in paths if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name == "Makefile")]


def _exists(name: str, mentioned_in: Path, basenames: set[str]) -> bool:
    """A path resolves from the file that names it, the root or docs/; a bare name is any file's name."""
    if "/" not in name and name in basenames:
        return True
    return any((base / name).exists() for base in (mentioned_in.parent, ROOT, DOCS))


def test_every_file_the_code_and_docs_name_is_in_the_repository() -> None:
    """A docstring, comment or doc that points at a file outside the repository (or at one since removed)."""
    files = _tracked_text_files()
    basenames = {p.name for p in files}
    missing = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        links = [t.split("#")[0] for t in LINK.findall(text) if path.suffix == ".md" and "://" not in t]
        for name in {*filter(None, links), *DOC_NAME.findall(text)}:
            if not _exists(name, path, basenames):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert missing == []
