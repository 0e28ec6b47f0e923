"""The Optuna objective: one trial is one :func:`hpo.models.train` with suggested parameters."""

from __future__ import annotations

import math
import os
import socket
from typing import TYPE_CHECKING

from hpo.models import train, trial_seed
from hpo.prepare import Prepared
from hpo.run._suggest import suggest
from hpo.schema import TRIAL_BEST_ITERATION, TRIAL_FIT_SECONDS, TRIAL_SEED, TRIAL_VALIDATION_METRICS, TRIAL_WORKER
from hpo.storage import set_intermediate_values

if TYPE_CHECKING:
    import optuna


class Objective:
    """Trains the model for a trial, reports the validation metric per iteration, records extras.

    The trial's seed comes from the study seed and the trial number, or, for a retried trial,
    from the trial it retries, so that any trial can be re-run exactly.
    """

    def __init__(self, prep: Prepared, thread_count: int | None = None) -> None:
        self._prep = prep
        self._threads = thread_count
        self._prunes = prep.space.pruner.name != "none"

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        space = self._prep.space
        seed = trial.user_attrs.get(TRIAL_SEED)
        if seed is None:
            seed = trial_seed(space.seed, trial.number)
            trial.set_user_attr(TRIAL_SEED, seed)
        trial.set_user_attr(TRIAL_WORKER, f"{socket.gethostname()}:{os.getpid()}")
        tuned = suggest(trial, dict(space.params))

        curve: dict[int, float] = {}

        def report(step: int, value: float) -> bool:
            if not math.isfinite(value):
                return True
            if not self._prunes:
                curve[step] = value  # nothing reads it live: written once, after the fit
                return True
            trial.report(value, step)
            return not trial.should_prune()

        result = train(
            model=space.model,
            metric=space.metric,
            data=self._prep.data,
            params={**space.fixed, **tuned},
            seed=seed,
            thread_count=self._threads,
            report=report,
        )
        if curve:
            set_intermediate_values(trial, curve)
        trial.set_user_attr(TRIAL_FIT_SECONDS, round(result.fit_seconds, 4))
        trial.set_user_attr(TRIAL_BEST_ITERATION, result.best_iteration)
        trial.set_user_attr(TRIAL_VALIDATION_METRICS, result.metrics)
        if result.stopped_at is not None:
            raise optuna.TrialPruned(f"pruned at iteration {result.stopped_at}")
        if not math.isfinite(result.objective):
            raise ValueError(f"validation {space.metric} is {result.objective} (constant predictions?); the trial has no score")
        return result.objective
