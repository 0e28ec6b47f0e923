"""The run of ``hpo try`` in the data version's scratch space: one fit, its metrics and parameters."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.schema import BY_FOLD, TRIAL_FIT_SECONDS, VAL
from hpo.tracking._client import ensure_experiment
from hpo.tracking._tags import written

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class ScratchRun:
    """What a scratch run records: the fit's validation metrics (with cv, fold means and each fold's value)."""

    name: str  # the run's name (branch and short commit)
    tags: dict[str, str]
    metrics: dict[str, float]  # by metric name, without the val_ prefix; NaN is left out
    metric: str  # the space's metric: its folds are logged under val_<metric>_by_fold
    fold_values: list[float] | None
    fit_seconds: float
    params: dict[str, Any]  # logged as given when a string, else as repr()


def log_scratch_run(c: MlflowClient, experiment: str, run: ScratchRun) -> str:
    """Log ``run`` to the experiment named ``experiment`` (created if need be), finished; its run id."""
    from mlflow.entities import Metric, Param

    exp_id = ensure_experiment(c, experiment)
    created = c.create_run(exp_id, run_name=run.name, tags=written(run.tags))
    run_id: str = created.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(f"{VAL}{k}", float(v), now, 0) for k, v in run.metrics.items() if v == v]
    metrics += [Metric(f"{VAL}{run.metric}{BY_FOLD}", float(v), now, k) for k, v in enumerate(run.fold_values or [])]
    metrics.append(Metric(TRIAL_FIT_SECONDS, run.fit_seconds, now, 0))
    params = [Param(k, v if isinstance(v, str) else repr(v)) for k, v in run.params.items()]
    c.log_batch(run_id, metrics=metrics, params=params)
    c.set_terminated(run_id)
    return run_id
