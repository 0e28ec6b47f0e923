"""CatBoost, hpo's built-in model family: its fit, its parameter rules, and the hooks that
report the validation objective to a pruner while it trains."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

from hpo.metrics import METRICS, Metric
from hpo.models._interface import REPORTS_PER_FIT, Fitted, ModelSpec, Reporter

if TYPE_CHECKING:
    from hpo.data import DataVersion

DEFAULT_ITERATIONS = 1000  # CatBoost's own default


def fit(
    *,
    metric: str,
    data: DataVersion,
    params: dict[str, Any],
    seed: int,
    thread_count: int | None = None,
    report: Reporter | None = None,
) -> Fitted:
    """Fit CatBoost on train with validation as its eval set; see :class:`hpo.models.ModelSpec`."""
    import pandas as pd
    from catboost import CatBoostClassifier, CatBoostRegressor, Pool

    objective = METRICS[metric]
    kwargs = dict(params)
    iterations = int(kwargs.get("iterations", DEFAULT_ITERATIONS))
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

    best = estimator.get_best_iteration()
    return Fitted(estimator, None if best is None else int(best), callback.stopped_at if callback else None, fit_seconds)


def known_params() -> set[str]:
    """Every argument of CatBoostRegressor or CatBoostClassifier."""
    import inspect

    from catboost import CatBoostClassifier, CatBoostRegressor

    names: set[str] = set()
    for cls in (CatBoostRegressor, CatBoostClassifier):
        names |= set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    return names


def final_params(params: dict[str, Any], best_iterations: list[int | None]) -> dict[str, Any]:
    """The final fit of a cross-validated trial: as many iterations as the folds' best on average.

    CatBoost keeps the model at its best iteration on the eval set (``use_best_model``); the final
    model, trained on train + validation, has no held-out rows to pick it, so it is given the
    mean of the folds' best iterations and no overfitting detector."""
    import statistics

    if params.get("use_best_model") is False or not best_iterations or None in best_iterations:
        return dict(params)
    final = {k: v for k, v in params.items() if k not in ("early_stopping_rounds", "od_type", "od_wait", "od_pval")}
    final["iterations"] = max(1, round(statistics.mean(b + 1 for b in best_iterations if b is not None)))
    final["use_best_model"] = False
    return final


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


CATBOOST = ModelSpec(
    name="catboost",
    library="catboost",
    fit=fit,
    known_params=known_params,
    default_iterations=DEFAULT_ITERATIONS,
    final_params=final_params,
    hard_limits={
        "depth": (1, 16),
        "iterations": (1, 2**31 - 1),  # a C++ int
        "learning_rate": (1e-6, 1.0),
        "l2_leaf_reg": (0.0, None),
        "random_strength": (0.0, None),
        "bagging_temperature": (0.0, None),
        "border_count": (1, 65535),
        "subsample": (1e-6, 1.0),
        "rsm": (1e-6, 1.0),
        "min_data_in_leaf": (1, None),
        "max_leaves": (1, 64),
        "one_hot_max_size": (0, 255),
    },
    reserved=frozenset(
        {
            "random_seed",
            "random_state",
            "eval_metric",
            "cat_features",
            "metric_period",
            "verbose",
            "verbose_eval",
            "silent",
            "logging_level",
            "train_dir",
            "allow_writing_files",
            "class_names",
        }
    ),
    integer_params=frozenset({"depth", "iterations", "border_count", "min_data_in_leaf", "max_leaves"}),
)
