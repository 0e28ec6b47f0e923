"""Train one model with one set of parameters and score it: the body of every trial.

This module knows CatBoost and the metric registry, not Optuna: progress is reported through
a plain callback, so the same code serves a trial, a promotion and a reproduction.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.metrics import METRICS, Metric, metrics_for

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from hpo.data import DataVersion, Split

# Report an intermediate value about this many times per fit: enough for pruners to act early,
# few enough that a shared storage is not written to on every boosting iteration.
REPORTS_PER_FIT = 50
CATBOOST_DEFAULT_ITERATIONS = 1000

# report(step, value) -> False stops training (the trial is then pruned).
Reporter = Callable[[int, float], bool]


@dataclass(frozen=True)
class FitResult:
    """What one fit produced."""

    model: Any
    objective: float
    metrics: dict[str, float]
    best_iteration: int | None
    fit_seconds: float
    stopped_at: int | None  # the step at which ``report`` asked to stop, if it did


def train(
    *,
    model: str,
    metric: str,
    data: DataVersion,
    params: dict[str, Any],
    seed: int,
    thread_count: int | None = None,
    report: Reporter | None = None,
) -> FitResult:
    """Fit ``model`` with ``params`` on train, score every task metric on validation.

    Args:
        params: tuned and fixed parameters together, as the library takes them.
        seed: the trial seed; fixes all randomness of the fit.
        thread_count: cores for the fit, unless ``params`` sets ``thread_count``.
        report: called with (iteration, objective on validation) during training.
    """
    if model != "catboost":  # the registry has one family so far
        raise NotImplementedError(model)
    import pandas as pd
    from catboost import CatBoostClassifier, CatBoostRegressor, Pool

    objective = METRICS[metric]
    kwargs = dict(params)
    iterations = int(kwargs.get("iterations", CATBOOST_DEFAULT_ITERATIONS))
    kwargs.setdefault("thread_count", thread_count or -1)
    period = max(1, iterations // REPORTS_PER_FIT)
    kwargs.update(
        random_seed=seed,
        verbose=False,
        allow_writing_files=False,
        metric_period=period,
        eval_metric=objective.catboost_name or _CatBoostMetric(objective, data.classes),
    )
    y_train, y_val = data.train.y, data.validation.y
    if data.task == "classification":
        # CatBoost learns the classes by their text, in the study's order; every metric is then
        # scored on class positions, whatever the labels' type (int, bool, float, text, category).
        names = data.class_names
        kwargs["class_names"] = names
        y_train, y_val = (pd.Series(names).to_numpy()[data.codes(y)] for y in (y_train, y_val))
        if len(names) > 2:
            kwargs.setdefault("loss_function", "MultiClass")
        estimator = CatBoostClassifier(**kwargs)
    else:
        estimator = CatBoostRegressor(**kwargs)

    callback = _ReportCallback(report, objective, period, iterations) if report else None
    train_pool = Pool(data.train.X, y_train, cat_features=data.cat_features)
    val_pool = Pool(data.validation.X, y_val, cat_features=data.cat_features)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # CatBoost suggests numba for Python metrics; the metric cost is small next to the fit.
        warnings.filterwarnings("ignore", message=".*numba.*")
        estimator.fit(train_pool, eval_set=val_pool, callbacks=[callback] if callback else None)
    fit_seconds = time.perf_counter() - start

    scores = evaluate(estimator, data.validation, data)
    best = estimator.get_best_iteration()
    return FitResult(
        model=estimator,
        objective=scores[metric],
        metrics=scores,
        best_iteration=None if best is None else int(best),
        fit_seconds=fit_seconds,
        stopped_at=callback.stopped_at if callback else None,
    )


def predict(model: Any, X: pd.DataFrame, data: DataVersion) -> np.ndarray:
    """Class probabilities (one column per class, in the study's order), or values for regression."""
    import numpy as np

    if data.task != "classification":
        return np.asarray(model.predict(X), dtype=float).ravel()
    if [str(c) for c in model.classes_] != data.class_names:
        raise HpoError(
            f"the model's classes {list(model.classes_)} are not the data's {data.class_names}; it was trained on other data"
        )
    return np.asarray(model.predict_proba(X), dtype=float)


def score(prediction: np.ndarray, split: Split, data: DataVersion) -> dict[str, float]:
    """Every registry metric of the task, for :func:`predict`'s output on ``split``."""
    if data.task == "classification":
        y = data.codes(split.y)
        return {m.name: m.score(y, prediction.argmax(axis=1), prediction, len(data.classes)) for m in metrics_for(data.task)}
    y = split.y.to_numpy(dtype=float)
    return {m.name: m.score(y, prediction, None, 0) for m in metrics_for(data.task)}


def evaluate(model: Any, split: Split, data: DataVersion) -> dict[str, float]:
    """Every registry metric of the task, on ``split``."""
    return score(predict(model, split.X, data), split, data)


class _ReportCallback:
    """CatBoost ``after_iteration`` hook: hands the validation objective to ``report``."""

    def __init__(self, report: Reporter, metric: Metric, period: int, iterations: int) -> None:
        self._report = report
        self._period = period
        self._last = iterations - 1
        self._key = metric.catboost_name or _CatBoostMetric.__name__
        self.stopped_at: int | None = None

    def after_iteration(self, info: Any) -> bool:
        step = int(info.iteration)
        # CatBoost calls back every iteration but computes the metric every `metric_period`.
        if step % self._period and step != self._last:
            return True
        values = info.metrics.get("validation", {}).get(self._key)
        if not values:
            return True
        if self._report(step, float(values[-1])):
            return True
        self.stopped_at = step
        return False


class _CatBoostMetric:
    """A registry metric as a CatBoost ``eval_metric`` object, for metrics CatBoost lacks."""

    def __init__(self, metric: Metric, classes: list[object]) -> None:
        self._metric = metric
        self._n_classes = len(classes)

    def is_max_optimal(self) -> bool:
        return self._metric.higher_is_better

    def get_final_error(self, error: float, weight: float) -> float:
        return error

    def evaluate(self, approxes: Any, target: Any, weight: Any) -> tuple[float, float]:
        import numpy as np

        y = np.asarray(target)
        if self._metric.task == "regression":
            return self._metric.score(y, np.asarray(approxes[0])), 1.0
        raw = np.asarray(approxes, dtype=float)
        if self._n_classes == 2:
            p1 = 1.0 / (1.0 + np.exp(-raw[0]))
            proba = np.column_stack([1 - p1, p1])
        else:
            e = np.exp(raw - raw.max(axis=0))
            proba = (e / e.sum(axis=0)).T
        return self._metric.score(y.astype(int), proba.argmax(axis=1), proba, proba.shape[1]), 1.0


def trial_seed(study_seed: int, trial_number: int) -> int:
    """The seed of trial ``trial_number``: a pure function of the study seed and the number."""
    import numpy as np

    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0] % (2**31 - 1))
