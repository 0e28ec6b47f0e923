"""The Optuna objective: one trial is one :func:`hpo.models.train` with suggested parameters."""

from __future__ import annotations

import math
import os
import socket
from typing import TYPE_CHECKING, Any

from hpo.models import cross_validate, train, trial_seed
from hpo.prepare import Prepared
from hpo.run._suggest import suggest
from hpo.schema import (
    TRIAL_BEST_ITERATION,
    TRIAL_FIT_SECONDS,
    TRIAL_FOLD_SD,
    TRIAL_FOLD_VALUES,
    TRIAL_SEED,
    TRIAL_VALIDATION_METRICS,
    TRIAL_WORKER,
)
from hpo.storage import record_fit, set_user_attrs, study_view, trial_id

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

    def started(self, number: int) -> dict[str, Any]:
        """What trial ``number`` records when it starts, where it has none yet: its seed (a retried trial keeps
        the seed of the trial it retries) and its worker. A claim writes them (see ``claim_trial``)."""
        return {TRIAL_SEED: trial_seed(self._prep.space.seed, number), TRIAL_WORKER: f"{socket.gethostname()}:{os.getpid()}"}

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        space = self._prep.space
        missing = {k: v for k, v in self.started(trial.number).items() if k not in trial.user_attrs}
        set_user_attrs(trial, missing)  # one commit, not one per attribute (none when the claim wrote them)
        seed = trial.user_attrs[TRIAL_SEED]
        tuned = suggest(trial, dict(space.params))

        pruning = _Pruning(trial, space.direction) if self._prunes else None
        curve: dict[int, float] = {}

        def report(step: int, value: float) -> bool:
            if not math.isfinite(value):
                return True
            curve[step] = value  # written once, after the fit (each write is a commit)
            return pruning is None or not pruning.prune(step, value, curve)

        params = {**space.fixed, **tuned}
        fitting: dict[str, Any] = dict(
            model=space.model, metric=space.metric, params=params, seed=seed, thread_count=self._threads, report=report
        )
        folds = self._prep.folds
        extra: dict[str, Any] = {}  # beside fit_seconds, best_iteration, validation_metrics
        if folds is None:
            try:
                fit = train(data=self._prep.data, **fitting)
            except optuna.TrialPruned:  # the team's function stopped without a model: the curve it reported stays
                record_fit(trial, curve, {})
                raise
            value, metrics, seconds, best = fit.objective, fit.metrics, fit.fit_seconds, fit.best_iteration
            pruned = None if fit.stopped_at is None else f"pruned at iteration {fit.stopped_at}"
        else:  # one fit per fold; the value is the fold mean, and a pruner decides after each fold
            cv = cross_validate(folds=folds, **fitting)
            value, metrics, seconds, best = cv.objective, cv.metrics, cv.fit_seconds, cv.best_iteration
            pruned = None if cv.stopped_at is None else f"pruned after fold {cv.stopped_at + 1} of {len(folds)}"
            extra = {TRIAL_FOLD_VALUES: cv.fold_values, TRIAL_FOLD_SD: cv.spread}
        # The curve and what the fit measured in one transaction (each write alone would be a commit).
        ended = {TRIAL_FIT_SECONDS: round(seconds, 4), TRIAL_BEST_ITERATION: best, TRIAL_VALIDATION_METRICS: metrics, **extra}
        record_fit(trial, curve, ended)
        if pruned is not None:
            raise optuna.TrialPruned(pruned)
        if not math.isfinite(value):
            raise ValueError(f"validation {space.metric} is {value} (constant predictions?); the trial has no score")
        return value


class _Pruning:
    """A trial's pruning decisions, at the cost of one storage read per trial, not two per report.

    Optuna's ``should_prune`` needs the value in the storage (``trial.report``, a commit) and reads
    every finished trial again, at each of a fit's ~50 reports: about 16 ms a report on SQLite,
    more than the fits it stops save on small data. A percentile pruner (``median``) decides from
    the finished trials' curves and this trial's own, so they are read once, when the trial first
    reports, and Optuna's own ``prune`` is asked over them: the same rule, the same decisions as
    ``should_prune`` against the trials finished when this one started. Pruners that keep state in
    the storage (successive halving, Hyperband) are asked through ``should_prune`` as before.
    """

    def __init__(self, trial: optuna.Trial, direction: str) -> None:
        import optuna

        self._trial = trial
        self._pruner = trial.study.pruner
        self._direction = direction
        self._local = isinstance(self._pruner, optuna.pruners.PercentilePruner)
        self._finished: object | None = None

    def prune(self, step: int, value: float, curve: dict[int, float]) -> bool:
        if not self._local:
            self._trial.report(value, step)
            return self._trial.should_prune()
        if self._finished is None:
            from optuna.trial import TrialState

            done = self._trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            self._finished = study_view(done, self._direction)
        return bool(self._pruner.prune(self._finished, self._frozen(curve)))  # type: ignore[arg-type]

    def _frozen(self, curve: dict[int, float]) -> optuna.trial.FrozenTrial:
        from optuna.trial import FrozenTrial, TrialState

        t = self._trial
        return FrozenTrial(
            number=t.number,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=None,
            datetime_complete=None,
            params=t.params,
            distributions=t.distributions,
            user_attrs={},
            system_attrs={},
            intermediate_values=curve,
            trial_id=trial_id(t),
        )
