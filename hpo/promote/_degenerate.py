"""Is the model to promote degenerate: one class for every row, one value for every row, or its metric at its worst?

A study whose every trial learnt nothing still has a best trial (f1 = 0 on a 2%-positive target is
the best of many zeros); promoting it would put a model that never predicts the positive class
into the curated data-version space. These checks run on the re-trained model before anything is
written, and say what is degenerate in figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError, option
from hpo.models import predict
from hpo.schema import TAG_DEGENERATE

if TYPE_CHECKING:
    import numpy as np

    from hpo.data import DataVersion, Split
    from hpo.models import FitResult
    from hpo.promote._recipe import Recipe

# The worst value a metric can take, where it has one; a model there learnt nothing (or the opposite).
# rmse, mae, logloss and r2 are unbounded: no value of theirs is the worst.
WORST = {"f1": 0.0, "accuracy": 0.0, "roc_auc": 0.0, "pearson_r": -1.0, "spearman_r": -1.0}


class DegenerateModel(HpoError):
    """The re-trained model is degenerate and ``allow_degenerate`` was not given: nothing is promoted."""


def degenerate(
    model: Any, data: DataVersion, metric: str, scores: dict[str, dict[str, float]], splits: dict[str, Split]
) -> tuple[str | None, str | None]:
    """What is degenerate about ``model`` on ``splits``, and what is only worth a warning (each one sentence
    with figures, or None).

    Degenerate (refused unless allowed): one class or one value for every row, or the metric at its worst.
    A multiclass model that predicts several classes but never a rare one is a warning only: with few rows
    of that class it may be the best model there is.

    Args:
        metric: the study's metric; ``scores`` holds its value per split name (``validation``, ``test``).
        splits: the splits to predict, by name; the model's own training rows are not among them.
    """
    preds = {name: predict(model, split.X, data) for name, split in splits.items()}
    found, cautions = _classes(data, preds, splits) if data.task == "classification" else (_constant(preds), [])
    worst = WORST.get(metric)
    at_worst = [name for name, s in scores.items() if worst is not None and s.get(metric) == worst]
    if at_worst:
        found.append(f"{metric} is {worst:g} on {' and '.join(at_worst)}, its worst possible value")
    return "; ".join(found) or None, "; ".join(cautions) or None


def _classes(data: DataVersion, preds: dict[str, np.ndarray], splits: dict[str, Split]) -> tuple[list[str], list[str]]:
    """One class for every row (degenerate), or a class of the data that is never predicted.

    With two classes, never predicting one is predicting one class for every row; with more, it is a caution.
    """
    import numpy as np

    codes = {name: data.codes(split.y) for name, split in splits.items()}
    picked = {name: p.argmax(axis=1) for name, p in preds.items()}
    predicted = set().union(*(set(p.tolist()) for p in picked.values()))
    present = set().union(*(set(y.tolist()) for y in codes.values()))
    if len(predicted) == 1 and present - predicted:
        (only,) = predicted
        parts = []
        for name, y in codes.items():
            others = np.bincount(y[y != only], minlength=len(data.classes))
            rest = ", ".join(f"{n:,} {_are(n)} class {_label(data.classes[k])}" for k, n in enumerate(others) if n)
            parts.append(f"all {len(y):,} {name} rows" + (f" ({rest})" if rest else ""))
        return [f"predicts class {_label(data.classes[only])} for {' and '.join(parts)}"], []
    found = []
    for k, label in enumerate(data.classes):
        if k in predicted or k not in present:
            continue
        rows = {name: n for name, y in codes.items() if (n := int((y == k).sum()))}
        where = " and ".join(f"{n:,} of the {len(codes[name]):,} {name} rows" for name, n in rows.items())
        verb = _are(sum(rows.values()) if len(rows) == 1 else 2)
        found.append(f"never predicts class {_label(label)} ({where} {verb} class {_label(label)})")
    return ([], found) if len(data.classes) > 2 else (found, [])


def _constant(preds: dict[str, np.ndarray]) -> list[str]:
    """The same value for every row of every split."""
    import numpy as np

    values = np.concatenate(list(preds.values()))
    # Equal values, not a small spread: a model that barely moves still ranks its rows.
    if len(values) == 0 or np.ptp(values) != 0:
        return []
    parts = " and ".join(f"all {len(p):,} {name} rows" for name, p in preds.items())
    return [f"predicts {values[0]:.6g} for {parts}"]


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _label(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_degenerate(
    fit: FitResult,
    recipe: Recipe,
    data: DataVersion,
    test: dict[str, float],
    where: str,
    allow: bool,
    warn: Callable[[str], None],
) -> str | None:
    """What is degenerate about the re-trained model on validation and test; refused unless ``allow``."""
    if recipe.cv is None:
        splits, scores = {"validation": data.validation, "test": data.test}, {"validation": fit.metrics, "test": test}
    else:  # the final model was fit on train + validation: only test is unseen; validation scores are the folds' mean
        splits, scores = {"test": data.test}, {"the folds' validation": fit.metrics, "test": test}
    bad, caution = degenerate(fit.model, data, recipe.metric, scores, splits)
    if caution is not None:
        warn(f"{where} {caution}")
    if bad is not None and not allow:
        hint = (
            " (for a rare class, try class weights, e.g. CatBoost's `auto_class_weights: Balanced`, or a metric on "
            "probabilities: roc_auc, logloss)"
            if data.task == "classification"
            else ""
        )
        raise DegenerateModel(
            f"{where} is a degenerate model: {bad}. Nothing was promoted{hint}; "
            f"pass {option('allow_degenerate')} to promote it anyway, e.g. as a baseline "
            f"(the run is then tagged {TAG_DEGENERATE})"
        )
    return bad
