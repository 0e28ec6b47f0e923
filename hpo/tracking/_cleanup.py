"""A study's runs found and soft-deleted (``hpo delete``), and a data version's promoted runs (``hpo data``).

Both only look at a store that is there: with a SQLite store not yet created there are no runs, and
looking must not create one (:func:`existing_client`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpo.schema import ROLE_PROMOTED, ROLE_STUDY, ROLE_TRIAL, TAG_ROLE, TAG_STUDY
from hpo.tracking._client import client, tracking_uri
from hpo.tracking._tags import normalized, searchable

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from hpo.workspace import Workspace


@dataclass
class StudyRuns:
    """A study's runs in its HPO space (deleted with it) and its promoted runs (kept)."""

    hpo_experiments: list[str] = field(default_factory=list)  # where its runs are (names)
    runs: list[str] = field(default_factory=list)  # the trials' runs, then the parent run
    data_experiment: str | None = None
    promoted: list[str] = field(default_factory=list)  # promoted runs of the study in its data-version space


@dataclass(frozen=True)
class PromotedRun:
    """A promoted run of a data version: its id and its tags (read under their current names)."""

    run_id: str
    tags: dict[str, str]


def existing_client() -> MlflowClient | None:
    """A client for the tracking store, or None when its SQLite file is not there (no store, so no runs).

    Raises what :func:`hpo.tracking.client` raises (``TrackingUnavailable``) when the store does not answer.
    """
    from hpo.storage import sqlite_path

    path = sqlite_path(tracking_uri())
    if path is not None and not path.exists():
        return None  # don't create a store by looking into it
    return client()


def study_runs(c: MlflowClient, ws: Workspace, study: str, data_version: str, parent_run_id: str | None) -> StudyRuns:
    """The study's runs in its HPO space, and its promoted runs in its data-version space."""
    from hpo.workspace import experiment_names

    names = experiment_names(ws, data_version)
    hpo_ids = [e.experiment_id for e in [c.get_experiment_by_name(names["hpo"])] if e is not None]
    if parent_run_id:  # the experiment the study logged to, if the templates changed since
        try:
            exp = c.get_run(parent_run_id).info.experiment_id
            hpo_ids += [exp] if exp not in hpo_ids else []
        except Exception:
            pass  # deleted, or never there
    trials, parents = [], []
    for run in _search(c, hpo_ids, study):
        role = normalized(run.data.tags).get(TAG_ROLE)
        if role == ROLE_TRIAL:
            trials.append(run.info.run_id)
        elif role == ROLE_STUDY:
            parents.append(run.info.run_id)
    found = StudyRuns(
        hpo_experiments=[c.get_experiment(i).name for i in hpo_ids],
        runs=trials + parents,  # children before their parent, as the UI would
        data_experiment=names["data"],
    )
    data = c.get_experiment_by_name(names["data"])
    if data is not None and data.lifecycle_stage == "active":
        runs = _search(c, [data.experiment_id], study)
        found.promoted = [r.info.run_id for r in runs if normalized(r.data.tags).get(TAG_ROLE) == ROLE_PROMOTED]
    return found


def delete_runs(c: MlflowClient, run_ids: list[str]) -> None:
    """Soft-delete these runs, in order (as MLflow's ``delete_run`` does); all or none.

    Raises the store's error once the runs already deleted are restored.
    """
    deleted: list[str] = []
    try:
        for run_id in run_ids:
            c.delete_run(run_id)
            deleted.append(run_id)
    except Exception:
        restore_runs(c, deleted)
        raise


def restore_runs(c: MlflowClient, run_ids: list[str]) -> None:
    """Undo :func:`delete_runs` as far as the store lets: a run not restored stays soft-deleted."""
    for run_id in run_ids:
        try:
            c.restore_run(run_id)
        except Exception:
            pass  # the store went away: the runs stay soft-deleted, restorable with `mlflow runs restore`


def promoted_runs(c: MlflowClient, experiment: str) -> list[PromotedRun]:
    """The promoted runs of the data-version experiment named ``experiment`` (none if it does not exist)."""
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = c.search_runs([exp.experiment_id], filter_string=f"tags.`{searchable(TAG_ROLE)}` = '{ROLE_PROMOTED}'")
    return [PromotedRun(r.info.run_id, normalized(r.data.tags)) for r in runs]


def _search(c: MlflowClient, experiment_ids: list[str], study: str) -> list[Run]:
    """The active runs tagged with ``study`` in these experiments, every page."""
    if not experiment_ids:
        return []
    quote = "'" if "'" not in study else '"' if '"' not in study else None
    # A name with both quotes cannot be written in MLflow's filter: read the experiments' runs.
    where = f"tags.`{searchable(TAG_STUDY)}` = {quote}{study}{quote}" if quote else ""
    out: list[Run] = []
    token = None
    while True:
        page = c.search_runs(experiment_ids, filter_string=where, max_results=1000, page_token=token)
        out += [r for r in page if normalized(r.data.tags).get(TAG_STUDY) == study]
        token = page.token
        if not token:
            return out
