"""Runs that promotion looks up: a reachable client, a run by id, a trial's promoted and HPO runs.

Also the Model Registry's rules for a model name and an alias, so that a bad ``register`` or
``alias`` is refused before anything is re-trained (MLflow keeps those rules in a private module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.errors import HpoError
from hpo.schema import ROLE_PROMOTED, TAG_PROMOTED_RUN, TAG_ROLE, TAG_STUDY, TAG_TRIAL
from hpo.secrets import masked_url
from hpo.tracking._client import client, is_reachable, tracking_uri
from hpo.tracking._projection import StudyProjection
from hpo.tracking._sync import sync_study
from hpo.tracking._tags import searchable, written

if TYPE_CHECKING:
    from collections.abc import Callable

    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from hpo.workspace import Workspace


class RunNotFound(HpoError):
    """A run id the tracking store does not know."""


def reachable_client() -> MlflowClient:
    """A client whose tracking store answers now; else one line naming the store and why not."""
    c = client()
    why = is_reachable(c)
    if why is not None:
        uri = masked_url(tracking_uri())
        raise HpoError(f"MLflow at {uri} is unreachable ({why}); set MLFLOW_TRACKING_URI to a reachable store")
    return c


def registry_name_problem(name: str) -> str | None:
    """Why the Model Registry would refuse ``name`` as a registered model's name, or None."""
    from mlflow.utils.validation import _validate_model_name

    return _problem(name, (_validate_model_name,))


def alias_problem(alias: str) -> str | None:
    """Why the Model Registry would refuse ``alias`` as a model version's alias, or None."""
    from mlflow.utils.validation import _validate_model_alias_name, _validate_model_alias_name_reserved

    return _problem(alias, (_validate_model_alias_name, _validate_model_alias_name_reserved))


def _problem(value: str, rules: tuple[Callable[[str], object], ...]) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        for rule in rules:
            rule(value)
    except MlflowException as e:
        return str(e.message)
    return None


def read_run(c: MlflowClient, run_id: str) -> Run:
    """The run ``run_id``; :class:`RunNotFound` (one line, with the store's reason) when there is none."""
    try:
        return c.get_run(run_id)
    except Exception as e:
        raise RunNotFound(f"run {run_id}: not found in the tracking store ({str(e).splitlines()[0][:200]})") from None


def find_promoted(c: MlflowClient, experiment: str, study: str, trial: int) -> Run | None:
    """The active promoted run of ``study``'s trial ``trial`` in the data-version space, if any."""
    exp = c.get_experiment_by_name(experiment)
    if exp is None or exp.lifecycle_stage != "active":
        return None
    runs = c.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"tags.`{searchable(TAG_ROLE)}` = '{ROLE_PROMOTED}' and tags.`{searchable(TAG_STUDY)}` = '{study}' "
            f"and tags.`{searchable(TAG_TRIAL)}` = '{trial}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def trial_run(c: MlflowClient, ws: Workspace, s: optuna.Study, t: optuna.trial.FrozenTrial) -> tuple[str | None, str | None]:
    """The HPO space's experiment id and the trial's child run; a missing projection is rebuilt first."""
    projection = StudyProjection.open(ws, s, c)
    runs = projection.trial_runs()
    if t.number not in runs:
        sync_study(ws, s, c)  # MLflow was unreachable during the run: rebuild the projection from the truth
        runs = projection.trial_runs()
    run = runs.get(t.number)
    return projection.experiment_id, None if run is None else run[0]


def link_promoted(c: MlflowClient, hpo_run: str, run_id: str) -> None:
    """Point the trial's HPO run at the run that promoted it."""
    for key, value in written({TAG_PROMOTED_RUN: run_id}).items():
        c.set_tag(hpo_run, key, value)
