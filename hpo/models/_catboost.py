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
    """Every argument of CatBoostRegressor or CatBoostClassifier (:data:`PARAMS`)."""
    return set(PARAMS)


# The arguments of CatBoostRegressor and CatBoostClassifier (catboost 1.2.10), written out: reading them
# from the signatures imports catboost, 0.7 s of `hpo validate`, which fits nothing. A test compares this
# list with the installed catboost's signatures, so an upgrade that adds or drops one fails there.
PARAMS = frozenset(
    """
    allow_const_label allow_writing_files approx_on_full_history auto_class_weights bagging_temperature
    best_model_min_trees boost_from_average boosting_type bootstrap_type border_count callback cat_features class_names
    class_weights classes_count colsample_bylevel combinations_ctr counter_calc_method ctr_description ctr_history_unit
    ctr_leaf_count_limit ctr_target_border_count custom_loss custom_metric data_partition depth dev_efb_max_buckets
    dev_score_calc_obj_block_size device_config devices dictionaries diffusion_temperature early_stopping_rounds
    embedding_features eta eval_fraction eval_metric feature_border_type feature_calcers feature_weights
    final_ctr_computation_mode first_feature_use_penalties fixed_binary_splits fold_len_multiplier
    fold_permutation_block gpu_cat_features_storage gpu_ram_part grow_policy has_time ignored_features input_borders
    iterations l2_leaf_reg langevin leaf_estimation_backtracking leaf_estimation_iterations leaf_estimation_method
    learning_rate logging_level loss_function max_bin max_ctr_complexity max_depth max_leaves metadata metric_period
    min_child_samples min_data_in_leaf model_shrink_mode model_shrink_rate model_size_reg monotone_constraints mvs_reg
    n_estimators name nan_mode num_boost_round num_leaves num_trees objective od_pval od_type od_wait one_hot_max_size
    output_borders penalties_coefficient per_feature_ctr per_float_feature_quantization per_object_feature_penalties
    pinned_memory_size posterior_sampling random_score_type random_seed random_state random_strength reg_lambda rsm
    sampling_frequency sampling_unit save_snapshot scale_pos_weight score_function silent simple_ctr snapshot_file
    snapshot_interval sparse_features_conflict_fraction store_all_simple_ctr subsample target_border task_type
    text_features text_processing thread_count tokenizers train_dir use_best_model used_ram_limit verbose
    """.split()
)


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
