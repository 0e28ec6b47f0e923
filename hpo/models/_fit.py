"""One training and its scores, for any family: the body of every trial, promotion and reproduction.

Nothing here knows Optuna: progress goes through a plain ``report`` callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.metrics import metrics_for
from hpo.models._interface import Reporter
from hpo.models._registry import model_spec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from hpo.data import DataVersion, Split


@dataclass(frozen=True)
class FitResult:
    """What one fit produced."""

    model: Any
    objective: float
    metrics: dict[str, float]
    best_iteration: int | None
    fit_seconds: float
    stopped_at: int | None  # the step at which ``report`` asked to stop, if it did
    # With cv: the objective on each fold (``objective`` and ``metrics`` are then fold means, and
    # ``model`` is the final fit on train + validation, or None when it was not asked for).
    fold_values: list[float] | None = None


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
    fitted = model_spec(model).fit(metric=metric, data=data, params=params, seed=seed, thread_count=thread_count, report=report)
    scores = evaluate(fitted.estimator, data.validation, data)
    return FitResult(
        model=fitted.estimator,
        objective=scores[metric],
        metrics=scores,
        best_iteration=fitted.best_iteration,
        fit_seconds=fitted.fit_seconds,
        stopped_at=fitted.stopped_at,
    )


def predict(model: Any, X: pd.DataFrame, data: DataVersion) -> np.ndarray:
    """Class probabilities (one column per class, in the study's order), or values for regression."""
    import numpy as np

    from hpo.data import label_key

    if data.task != "classification":
        return np.asarray(model.predict(X), dtype=float).ravel()
    # One label in any representation (0, 0.0, '0'; a training function's library may turn integer
    # labels into floats or text) is one class; labels that differ as labels never match.
    got = [label_key(c) for c in model.classes_]
    want = [label_key(c) for c in data.classes]
    if len(set(got)) != len(got) or sorted(got) != sorted(want):
        shown = [c.item() if hasattr(c, "item") else c for c in model.classes_]
        raise HpoError(f"the model's classes {shown} are not the data's {data.classes}; it was trained on other data")
    proba = np.asarray(model.predict_proba(X), dtype=float)
    # In the study's class order (scikit-learn sorts its classes_; CatBoost is given the order).
    return proba if got == want else proba[:, [got.index(k) for k in want]]


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


def trial_seed(study_seed: int, trial_number: int) -> int:
    """The seed of trial ``trial_number``: a pure function of the study seed and the number."""
    import numpy as np

    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0] % (2**31 - 1))
