"""A run's live projection: the study's MLflow runs kept up to date while its trials run."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpo.tracking._client import client
from hpo.tracking._data_space import describe_data_experiment
from hpo.tracking._projection import LiveProjection, StudyProjection

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient

    from hpo.workspace import Workspace


def open_live(
    ws: Workspace,
    study: optuna.Study,
    overview: dict[str, Any],
    warn: Callable[[str], None],
    *,
    describe: bool = True,
    opened: MlflowClient | Exception | None = None,
) -> LiveProjection:
    """The study's MLflow projection for a run, which warns through ``warn`` once if MLflow fails.

    ``opened`` is a client already opened, or why there is none (the store did not answer a moment
    ago: warn once, do not wait for it again). With ``describe`` (the main process, not each worker),
    the data-version space is also described from ``overview`` (the data version's ``overview()``).
    """

    def open_projection() -> StudyProjection:
        if isinstance(opened, Exception):
            raise opened
        c = opened or client()
        projection = StudyProjection.open(ws, study, c)
        if describe:
            describe_data_experiment(c, ws, overview)
        return projection

    return LiveProjection(open_projection, warn)
