"""``hpo sync``: rebuild a study's projection from the storage, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpo.errors import HpoError
from hpo.schema import STUDY_DATA_VERSION, STUDY_SPACE_YAML, TRIAL_INHERITED_FROM
from hpo.tracking._client import mark_training, tracking_uri
from hpo.tracking._projection import StudyProjection
from hpo.tracking._store import unavailable
from hpo.workspace import Workspace, experiment_names

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient


@dataclass(frozen=True)
class SyncResult:
    study: str
    experiment_id: str
    created: int
    completed: int
    unchanged: int


def sync_study(ws: Workspace, study: optuna.Study, c: MlflowClient | None = None) -> SyncResult:
    """Rebuild the study's projection: every finished trial gets exactly one complete run.

    Trials inherited from a parent study (warm start) get none: the parent's runs hold them.

    Idempotent: runs are found by their study and trial-number tags, so a second sync (or a
    sync after a live ``hpo run``) creates nothing.
    """
    _check_keys(study)
    try:
        return _sync(ws, study, c)
    except _store_errors() as e:  # the store went away or broke mid-sync: one line, not a traceback
        raise unavailable(tracking_uri(), e) from None


def _check_keys(study: optuna.Study) -> None:
    """Refuse, before anything is written, a study whose parameter names MLflow would refuse as keys.

    A space file can no longer name such a parameter, but a study made before may hold one: its
    trials stay in the Optuna storage, and MLflow can never hold them.
    """
    import yaml

    from hpo.space import key_refusal

    text = study.user_attrs.get(STUDY_SPACE_YAML)
    try:
        fixed = (yaml.safe_load(text) or {}).get("fixed") or {} if isinstance(text, str) else {}
    except yaml.YAMLError:
        fixed = {}
    names = dict.fromkeys(str(k) for k in fixed) if isinstance(fixed, dict) else {}
    for t in study.get_trials(deepcopy=False):
        names.update(dict.fromkeys(t.distributions))
    for name in names:
        why = key_refusal(name)
        if why is not None:
            raise HpoError(
                f"study {study.study_name!r} cannot be logged to MLflow: its parameter {name!r} {why} "
                "(its trials stay in the Optuna storage)"
            )


def _store_errors() -> tuple[type[Exception], ...]:
    import requests
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    return (MlflowException, sqlalchemy.exc.SQLAlchemyError, requests.RequestException, OSError)


def _sync(ws: Workspace, study: optuna.Study, c: MlflowClient | None) -> SyncResult:
    from optuna.trial import TrialState

    projection = StudyProjection.open(ws, study, c)
    # The study's other experiments, made by an older hpo, open on MLflow's runs table from now on.
    names = experiment_names(ws, str(study.user_attrs.get(STUDY_DATA_VERSION, "unknown")))
    mark_training(projection.client, [n for key, n in names.items() if key != "hpo"])
    runs = projection.trial_runs()
    created = completed = unchanged = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        if TRIAL_INHERITED_FROM in t.user_attrs:
            continue  # a warm-start observation: its run is the parent study's
        if t.number in runs:
            run_id, state = runs[t.number]
            if state == t.state.name:
                unchanged += 1
                continue
            projection.finish_trial(run_id, t)  # created live, but its end was never logged
            completed += 1
        else:
            projection.finish_trial(projection.start_trial(t.number, t.datetime_start), t)
            created += 1
    projection.finish_study(study)
    return SyncResult(study.study_name, projection.experiment_id, created, completed, unchanged)
