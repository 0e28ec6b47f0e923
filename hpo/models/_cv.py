"""Cross-validated training: one fit per fold, the fold mean as the trial's value, and the final model.

A fold is a :class:`hpo.data.DataVersion` whose train and validation are the fold's rows
(:func:`hpo.data.folds`), so each family fits a fold as it fits the study's own split. Pruning
acts between folds, on the running mean: within a fold the model trains to its end.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.models._fit import FitResult, train
from hpo.models._interface import Reporter
from hpo.models._registry import model_spec

if TYPE_CHECKING:
    from hpo.data import DataVersion


@dataclass(frozen=True)
class CVResult:
    """What the folds of one trial produced (up to the fold it was pruned after)."""

    fold_values: list[float]  # the objective on each fold's held-out rows, in fold order
    metrics: dict[str, float]  # each metric's mean over the folds
    best_iterations: list[int | None]
    fit_seconds: float  # all folds together
    stopped_at: int | None  # the fold after which ``report`` asked to stop, if it did

    @property
    def objective(self) -> float:
        return statistics.fmean(self.fold_values)

    @property
    def best_iteration(self) -> int | None:
        """The folds' mean best iteration, rounded (None when the model has no iterations)."""
        known = [b for b in self.best_iterations if b is not None]
        return round(statistics.fmean(known)) if known else None

    @property
    def spread(self) -> float | None:
        """The folds' standard deviation (None with fewer than two folds done)."""
        return statistics.stdev(self.fold_values) if len(self.fold_values) > 1 else None


def cross_validate(
    *,
    model: str,
    metric: str,
    folds: Sequence[DataVersion],
    params: dict[str, Any],
    seed: int,
    thread_count: int | None = None,
    report: Reporter | None = None,
) -> CVResult:
    """Fit ``model`` on each fold with the same ``params`` and ``seed``; ``report(k, running mean)`` after fold k."""
    values: list[float] = []
    scores: list[dict[str, float]] = []
    best: list[int | None] = []
    seconds = 0.0
    stopped = None
    for k, fold in enumerate(folds):
        fit = train(model=model, metric=metric, data=fold, params=params, seed=seed, thread_count=thread_count)
        values.append(float(fit.objective))
        scores.append(fit.metrics)
        best.append(fit.best_iteration)
        seconds += fit.fit_seconds
        # Reported after the last fold too (the curve is complete), but a trial that is done stays done.
        if report is not None and not report(k, statistics.fmean(values)) and k < len(folds) - 1:
            stopped = k
            break
    means = {name: statistics.fmean(s[name] for s in scores) for name in scores[0]}
    return CVResult(values, means, best, seconds, stopped)


def fit_final(
    *,
    model: str,
    metric: str,
    data: DataVersion,
    params: dict[str, Any],
    seed: int,
    best_iterations: list[int | None],
    thread_count: int | None = None,
) -> FitResult:
    """The final model of a cross-validated trial: fit on train + validation (its ``metrics`` are on
    those same rows, so they say nothing of quality; score it on test)."""
    from hpo.data import merged

    hook = model_spec(model).final_params
    final = hook(params, best_iterations) if hook else dict(params)
    return train(model=model, metric=metric, data=merged(data), params=final, seed=seed, thread_count=thread_count)
