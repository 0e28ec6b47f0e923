"""Reading a local SQLite store with ``sqlite3`` alone, for commands that only look (``validate``, ``try``).

Opening Optuna's RDB storage imports SQLAlchemy and alembic and checks the schema: 1.4-2 s, more than
the rest of ``hpo try`` but the data. A file read here must be one its owner would open as it
stands: at the schema head of the installed library (found without importing it) and with no
migration cut short. Otherwise, and on any error, the caller opens the store the usual way, so a
verdict never differs from the one the library's reading gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Unsure(Exception):
    """The file is not one to read by hand: the library reads it."""


def alembic_head(package: str, *versions: str) -> str | None:
    """The schema revision the installed ``package`` needs: the one revision of its migrations (the folder
    ``versions`` inside it) that no other names as its ``down_revision``; ``None`` when unsure.

    Found without importing the package: its ``__init__`` is not run."""
    import importlib.util
    import re

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*versions)
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in folder.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*=\s*['\"]([\w.]+)['\"]", text, re.MULTILINE)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        down = re.search(r"^down_revision\s*=(.*)$", text, re.MULTILINE)
        if down is not None:
            parents.update(re.findall(r"['\"]([\w.]+)['\"]", down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def optuna_head() -> str | None:
    """The schema revision the installed Optuna's RDB storage needs (``RDBStorage.get_head_version()``)."""
    return alembic_head("optuna", "storages", "_rdb", "alembic", "versions")


Rows = list[dict[str, Any]]
Studies = list[tuple[str, dict[str, Any]]]


def study_attrs(path: Path, table: str, keys: tuple[str, ...]) -> tuple[Rows | None, Studies]:
    """The rows of hpo's ``table`` in the Optuna SQLite file at ``path`` (``None``: no such table), and every
    study's name with its user attributes among ``keys`` (values decoded from JSON), in creation order.

    Raises :class:`Unsure` where Optuna might not open the file as it stands (not at its schema head,
    a migration cut short), or on any error reading it. Tables and columns: Optuna 5.1's
    ``optuna/storages/_rdb/models.py`` (``studies``, ``study_user_attributes``)."""
    import sqlite3

    head = optuna_head()
    if head is None:
        raise Unsure
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        try:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            ((revision,),) = con.execute("SELECT version_num FROM alembic_version").fetchall()
            if revision != head or any(t.startswith("_alembic_tmp_") for t in tables):
                raise Unsure
            rows = None
            if table in tables:
                cursor = con.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (hpo's own table name)
                names = [d[0] for d in cursor.description]
                rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
            marks = ", ".join("?" * len(keys))
            found = con.execute(
                "SELECT s.study_id, s.study_name, a.key, a.value_json FROM studies s "
                f"LEFT JOIN study_user_attributes a ON a.study_id = s.study_id AND a.key IN ({marks}) "
                "ORDER BY s.study_id",
                keys,
            ).fetchall()
        finally:
            con.close()
        studies: dict[int, tuple[str, dict[str, Any]]] = {}
        for sid, name, key, value in found:
            _, attrs = studies.setdefault(sid, (name, {}))
            if key is not None:
                attrs[key] = json.loads(value)
    except (sqlite3.Error, ValueError):  # ValueError: not one row in alembic_version, or bad JSON
        raise Unsure from None
    return rows, list(studies.values())
