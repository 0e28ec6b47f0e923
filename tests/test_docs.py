"""The docs say what the code is: every file they cite exists, every link resolves.

Docs drift silently when a module or a test moves; these checks make the move fail CI instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# Source-tree paths quoted in backticks (not files a command writes, such as studies/ or a derived space).
CITED = re.compile(r"`((?:tests|hpo|benchmarks|docs|\.ci)/[A-Za-z0-9_./-]+?)(?:::[A-Za-z0-9_]+)?`")
LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)#\s]+)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_source_path_a_doc_cites_exists(doc: Path) -> None:
    missing = sorted({p for p in CITED.findall(doc.read_text()) if not (ROOT / p.rstrip("/")).exists()})
    assert not missing, f"{doc.relative_to(ROOT)} cites {missing}, which do not exist"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_of_a_doc_resolves(doc: Path) -> None:
    broken = sorted({t for t in LINK.findall(doc.read_text()) if not (doc.parent / t).exists()})
    assert not broken, f"{doc.relative_to(ROOT)} links to {broken}, which do not exist"


def test_the_development_guide_lists_every_test_file() -> None:
    listed = (ROOT / "docs" / "development.md").read_text()
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py"))
    missing = [f for f in files if f"`{f}`" not in listed]
    assert not missing, f"docs/development.md's test table lacks {missing}"


def test_the_development_guide_maps_every_module() -> None:
    guide = (ROOT / "docs" / "development.md").read_text()
    section = guide.split("## Modules", 1)[1].split("\n## ", 1)[0]
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", section))
    missing = []
    for path in sorted((ROOT / "hpo").iterdir()):
        if path.name.startswith(".") or path.name == "__pycache__" or not (path.suffix == ".py" or path.is_dir()):
            continue
        top = f"hpo/{path.name}/" if path.is_dir() else f"hpo/{path.name}"
        if top not in section:
            missing.append(top)
        if path.is_dir():  # each private module of a package is named on its lines
            missing += [f"{top}{m.name}" for m in sorted(path.glob("_*.py")) if m.stem != "__init__" and m.stem not in words]
    assert not missing, f"docs/development.md's module map lacks {missing}"
