"""The data-version experiment's description: the data overview and the source versions seen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.schema import (
    NOTE,
    TAG_DIGEST_BASIS,
    TAG_DIGEST_PREFIX,
    TAG_SRC_VERSIONS,
)
from hpo.tracking._client import ensure_experiment
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
    from hpo.data import DELIVERED

    name = experiment_names(ws, version)["data"]
    exp = c.get_experiment_by_name(name)
    if exp is None:
        return Tracked(name, {})
    # Without the basis tag, an older hpo wrote the digests (after `data.drop`, if its study dropped any).
    tags = normalized(exp.tags)
    return Tracked(name, _digests(tags), delivered=tags.get(TAG_DIGEST_BASIS) == DELIVERED)


def _digests(tags: dict[str, str]) -> dict[str, str]:
    splits = ("train", "validation", "test")
    return {s: tags[TAG_DIGEST_PREFIX + s] for s in splits if TAG_DIGEST_PREFIX + s in tags}


def read_tracked(ws: Workspace, version: str) -> tuple[MlflowClient | Exception | None, Tracked | None]:
    """The client and the split digests the data-version experiment of ``version`` records, without
    creating a tracking store (a refused command must leave none behind): ``(None, None)`` when there
    is none yet, ``(why, None)`` when it does not answer; the Optuna storage's ledger alone decides then."""
    from hpo.tracking._client import client, tracking_uri
    from hpo.tracking._store import _is_file_store, _sqlite_file

    uri = tracking_uri()
    path = _sqlite_file(uri)
    if (path is not None and not path.exists()) or _is_file_store(uri):
        return None, None
    try:
        c = client()
        return c, recorded_digests(c, ws, version)
    except Exception as e:  # MLflow down: trials go on in Optuna, and `hpo sync` logs them later
        return e, None


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
