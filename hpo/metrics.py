"""Metric registry: each metric knows its task, its direction and how to score predictions.

Adding a metric is one entry in ``METRICS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

Task = Literal["regression", "classification"]
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Metric:
    """A validation metric.

    ``score(y_true, prediction, proba, n_classes)`` gets, for regression, true and predicted
    values (``proba`` None); for classification, true and predicted classes as positions in the
    study's class order (0 .. n_classes-1, whatever the labels' type) and the class probabilities
    in that order. ``catboost_name`` names CatBoost's own
    implementation where one matches exactly, so per-iteration values cost nothing; otherwise
    hpo evaluates ``score`` on CatBoost's raw predictions during training.
    """

    name: str
    task: Task
    direction: Direction
    score: Callable[..., float]
    catboost_name: str | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "maximize"


def _pearson_r(y: np.ndarray, pred: np.ndarray, *_: object) -> float:
    import numpy as np

    # Equal values, not a zero std: the std of identical floats can come out as 1e-17.
    if np.ptp(pred) == 0 or np.ptp(y) == 0:
        return float("nan")  # undefined, and Optuna then records the trial as FAIL
    return float(np.corrcoef(y, pred)[0, 1])


def _spearman_r(y: np.ndarray, pred: np.ndarray, *_: object) -> float:
    from scipy.stats import rankdata

    return _pearson_r(rankdata(y), rankdata(pred))


def _r2(y: np.ndarray, pred: np.ndarray, *_: object) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, pred))


def _rmse(y: np.ndarray, pred: np.ndarray, *_: object) -> float:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(y, pred))


def _mae(y: np.ndarray, pred: np.ndarray, *_: object) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y, pred))


def _accuracy(y: np.ndarray, pred: np.ndarray, *_: object) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, pred))


def _f1(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import f1_score

    # Binary targets score the second class of the study's order; more classes average macro over all.
    if n_classes == 2:
        return float(f1_score(y, pred, pos_label=1))
    return float(f1_score(y, pred, average="macro", labels=list(range(n_classes))))


def _roc_auc(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import roc_auc_score

    if n_classes == 2:
        return float(roc_auc_score(y == 1, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", labels=list(range(n_classes))))


def _logloss(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """scikit-learn's ``log_loss`` (probabilities clipped to [eps, 1 - eps]), in numpy: CatBoost
    scores it on the validation set after every iteration, where ``log_loss``'s input checks
    took 9 ms a call, more than half of a 100-iteration fit on a small table."""
    import numpy as np

    p = np.asarray(proba, dtype=float)
    eps = np.finfo(p.dtype).eps
    picked = np.clip(p[np.arange(len(p)), np.asarray(y, dtype=int)], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("pearson_r", "regression", "maximize", _pearson_r),
        Metric("spearman_r", "regression", "maximize", _spearman_r),
        Metric("r2", "regression", "maximize", _r2, "R2"),
        Metric("rmse", "regression", "minimize", _rmse, "RMSE"),
        Metric("mae", "regression", "minimize", _mae, "MAE"),
        Metric("accuracy", "classification", "maximize", _accuracy),
        Metric("f1", "classification", "maximize", _f1),
        Metric("roc_auc", "classification", "maximize", _roc_auc),
        Metric("logloss", "classification", "minimize", _logloss),
    ]
}


def metrics_for(task: Task) -> list[Metric]:
    """Every registered metric that fits ``task``, in registry order."""
    return [m for m in METRICS.values() if m.task == task]
