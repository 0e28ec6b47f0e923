"""The data-version experiment's description: the data overview and the source versions seen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.schema import (
    NOTE,
    TAG_DIGEST_BASIS,
    TAG_DIGEST_PREFIX,
    TAG_SRC_VERSIONS,
)
from hpo.tracking._client import ensure_experiment, tracking_uri
from hpo.tracking._store import _is_file_store, _sqlite_file
from hpo.tracking._tags import normalized, written
from hpo.workspace import Workspace, experiment_names

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class Tracked:
    """The split digests a data-version experiment in MLflow records (the ledger's copy there)."""

    experiment: str
    digests: dict[str, str]
    delivered: bool = True  # False: recorded by an hpo that digested after `data.drop` (no basis tag)


def describe_data_experiment(c: MlflowClient, ws: Workspace, overview: dict[str, Any], src_version: str | None = None) -> str:
    """Create the data-version experiment if needed and keep its description up to date.

    The description states rows and columns per split, the target and the digests, and lists
    every src_version that has produced runs there (``src_version`` adds one).
    """
    name = experiment_names(ws, str(overview["version"]))["data"]
    exp_id = ensure_experiment(c, name)
    tags = normalized(c.get_experiment(exp_id).tags)
    if any(overview["digests"].get(split) != d for split, d in _digests(tags).items()):
        # Other data under this version's name (the ledger refuses it), or digests an older hpo took
        # after `data.drop` (the ledger accepts them by the data): never describe it here.
        return exp_id
    known = [v for v in (tags.get(TAG_SRC_VERSIONS) or "").split(",") if v]
    if src_version and src_version not in known:
        known.append(src_version)
        _set(c, exp_id, TAG_SRC_VERSIONS, ",".join(known))
    text = data_description(overview, known)
    if tags.get(NOTE) != text:
        _set(c, exp_id, NOTE, text)
    for split, d in overview["digests"].items():  # the ledger's copy: written once, by the first user
        if TAG_DIGEST_PREFIX + split not in tags:
            _set(c, exp_id, TAG_DIGEST_PREFIX + split, d)
    from hpo.data import DIGEST_BASIS

    if overview.get(DIGEST_BASIS) and tags.get(TAG_DIGEST_BASIS) != overview[DIGEST_BASIS]:
        # The digests (equal to this data's delivered ones, checked above) name the data as delivered.
        _set(c, exp_id, TAG_DIGEST_BASIS, str(overview[DIGEST_BASIS]))
    return exp_id


def _set(c: MlflowClient, exp_id: str, key: str, value: str) -> None:
    """Set one experiment tag, under its old spelling too while it has one."""
    for k, v in written({key: value}).items():
        c.set_experiment_tag(exp_id, k, v)


def recorded_digests(c: MlflowClient, ws: Workspace, version: str) -> Tracked:
    """The split digests the data-version experiment of ``version`` records (none when it records none)."""
    name = experiment_names(ws, version)["data"]
    exp = c.get_experiment_by_name(name)
    return _tracked(name, None if exp is None else exp.tags)


def _tracked(name: str, tags: dict[str, str] | None) -> Tracked:
    """What the tags of experiment ``name`` record (``None``: there is no such experiment)."""
    from hpo.data import DELIVERED

    if tags is None:
        return Tracked(name, {})
    # Without the basis tag, an older hpo wrote the digests (after `data.drop`, if its study dropped any).
    tags = normalized(tags)
    return Tracked(name, _digests(tags), delivered=tags.get(TAG_DIGEST_BASIS) == DELIVERED)


def _digests(tags: dict[str, str]) -> dict[str, str]:
    splits = ("train", "validation", "test")
    return {s: tags[TAG_DIGEST_PREFIX + s] for s in splits if TAG_DIGEST_PREFIX + s in tags}


def read_tracked(ws: Workspace, version: str) -> tuple[MlflowClient | Exception | None, Tracked | None]:
    """The client and the split digests the data-version experiment of ``version`` records, without
    creating a tracking store (a refused command must leave none behind): ``(None, None)`` when there
    is none yet, ``(why, None)`` when it does not answer; the Optuna storage's ledger alone decides then."""
    from hpo.tracking._client import client

    uri = tracking_uri()
    path = _sqlite_file(uri)
    if (path is not None and not path.exists()) or _is_file_store(uri):
        return None, None
    try:
        c = client()
        return c, recorded_digests(c, ws, version)
    except Exception as e:  # MLflow down: trials go on in Optuna, and `hpo sync` logs them later
        return e, None


def tracked_digests(ws: Workspace, version: str) -> Tracked | None:
    """What :func:`read_tracked` finds, for a command that writes nothing to MLflow (``validate``, ``try``).

    A local SQLite store is read with ``sqlite3``, read-only: importing MLflow and building its
    SQLAlchemy store took 1-2 s, more than the rest of ``hpo validate``. Every other store, and a
    file MLflow would not open as it stands (see :func:`_read_sqlite`), goes through MLflow, so the
    verdict is always the one MLflow's reading gives.
    """
    uri = _uri_without_mlflow()
    if uri is not None and _is_file_store(uri):
        return None  # as read_tracked: MLflow 3 refuses file stores
    path = None if uri is None else _sqlite_file(uri)
    if path is not None:
        if not path.exists():
            return None  # no store yet, and none is created by looking
        name = experiment_names(ws, version)["data"]
        try:
            return _tracked(name, _read_sqlite(path, name))
        except _Unsure:
            pass
    return read_tracked(ws, version)[1]


class _Unsure(Exception):
    """The store is not one to read by hand: MLflow reads it."""


def _uri_without_mlflow() -> str | None:
    """The tracking URI as ``mlflow.get_tracking_uri()`` gives it, without importing MLflow; ``None`` when unsure.

    Once MLflow is imported, it is asked (``mlflow.set_tracking_uri`` may have changed it in this
    process); before, only its environment variable or its default can hold. A test compares this
    with MLflow's own answer, so a change of MLflow's default shows there.
    """
    import os
    import sys

    if "mlflow" in sys.modules:
        return tracking_uri()
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    if os.path.lexists("mlruns") or sys.platform == "win32":
        return None  # MLflow keeps to a file store it finds there (and spells paths its own way on Windows)
    from posixpath import abspath
    from urllib.request import pathname2url

    return "sqlite:///" + abspath(pathname2url(os.path.abspath("mlflow.db")))  # MLflow 3's default store


def _read_sqlite(path: Path, name: str) -> dict[str, str] | None:
    """The tags of experiment ``name`` in MLflow's SQLite store at ``path`` (``None``: no such experiment),
    read as MLflow's ``get_experiment_by_name`` reads them; ``_Unsure`` where MLflow could answer otherwise.

    MLflow refuses a store whose schema is not at its head revision, one with a migration cut short
    (alembic's ``_alembic_tmp_`` tables) and, unless workspaces are enabled, one with experiments in
    other workspaces; with two experiments of one name (workspaces) it raises. In each case, and on
    any error, MLflow reads the store itself. Tables and columns: MLflow 3.17's
    ``mlflow/store/tracking/dbmodels/models.py`` (``experiments``, ``experiment_tags``).
    """
    import os
    import sqlite3

    head = _schema_head()
    if head is None or os.environ.get("MLFLOW_ENABLE_WORKSPACES"):
        raise _Unsure
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        try:
            tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            ((revision,),) = con.execute("SELECT version_num FROM alembic_version").fetchall()
            if revision != head or any(t.startswith("_alembic_tmp_") for t in tables):
                raise _Unsure
            if con.execute("SELECT 1 FROM experiments WHERE workspace != 'default' LIMIT 1").fetchone():
                raise _Unsure
            ids = con.execute(
                "SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage IN ('active', 'deleted')", (name,)
            ).fetchall()
            if not ids:
                return None
            if len(ids) > 1:
                raise _Unsure
            rows = con.execute("SELECT key, value FROM experiment_tags WHERE experiment_id = ?", ids[0]).fetchall()
        finally:
            con.close()
    except (sqlite3.Error, ValueError):  # ValueError: not one row in alembic_version
        raise _Unsure from None
    return dict(rows)


def _schema_head() -> str | None:
    """The schema revision the installed MLflow needs, found without importing MLflow; ``None`` when unsure."""
    from hpo.storage import alembic_head

    return alembic_head("mlflow", "store", "db_migrations", "versions")


def data_description(overview: dict[str, Any], src_versions: list[str]) -> str:
    rows = overview["rows"]
    lines = [
        f"# Data version {overview['version']}",
        "",
        f"Source: `{overview['source']}`. Target: `{overview['target']}` ({overview['task']}). "
        # Every column as delivered: the version's, whatever a study drops (older overviews: their study's features).
        f"Features: {overview['columns'] - 1 if overview.get('columns') else overview['features']} columns"
        + (f", categorical: {', '.join(overview['cat_features'])}" if overview.get("cat_features") else "")
        + "."
        + (f" Classes, in the study's order: {', '.join(map(repr, overview['classes']))}." if overview.get("classes") else ""),
        "",
        "| split | rows | columns | digest (sha256) |",
        "|---|---|---|---|",
    ]
    # The data as delivered (every column, the target included); an overview from before named only its study's.
    columns = overview.get("columns") or overview["features"] + 1
    for split in ("train", "validation", "test"):
        lines.append(f"| {split} | {rows[split]} | {columns} | `{overview['digests'][split]}` |")
    lines += [
        "",
        "Results are comparable only when their test digests are equal.",
        "",
        "Source versions with runs here: " + (", ".join(f"`{v}`" for v in src_versions) if src_versions else "none yet") + ".",
    ]
    return "\n".join(lines)
