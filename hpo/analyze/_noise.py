"""The noise floor of a study hpo ran: its best trial re-fitted with other seeds and its validation
rows resampled, or its folds.

Two independent sources of chance move a trial's value. The seed: the spread of re-fitted values
is what the objective moves when nothing but the seed changes (0 for a deterministic estimator,
such as HistGradientBoosting without early stopping). The validation rows: the metric is measured
on a finite sample of them, and a bootstrap of the best trial's validation predictions (rows drawn
with replacement, the metric recomputed) gives the spread of that measurement, for any model. Being
independent, their variances add: the floor is sqrt(seed_sd^2 + rows_sd^2), and the report says
which source dominates. Differences between trials smaller than that are no evidence of anything.
The best trial's own value is left out of the seed spread: it was selected for being high, so it
is biased (the winner's curse).

A cross-validated study measures its noise for free, from its fold values: every trial is
scored on the same folds, so a fold that is hard for one trial is hard for all, and that shared
difficulty moves no comparison. What does is the trial-by-fold residual (a two-way layout, trials
by folds, as in a randomized block design): the floor is sqrt(residual mean square / folds), the
standard error of one trial's fold mean once the folds' own effects are removed. No re-fit.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hpo.analyze._results import ROW_RESAMPLES, Noise
from hpo.errors import HpoError
from hpo.schema import STUDY_NOISE, TRIAL_FOLD_VALUES
from hpo.workspace import Workspace

if TYPE_CHECKING:
    import optuna

    from hpo.data import DataVersion

NOISE_REFITS = 3
MAX_NOISE_REFITS = 20


def measure_noise(
    study: optuna.Study,
    trials: Sequence[optuna.trial.FrozenTrial],
    direction: str,
    ws: Workspace,
    refits: int,
    warn: Callable[[str], None],
    keep: bool = True,
) -> Noise | None:
    """The best trial's noise floor: the sd over ``refits`` other seeds, combined with the sd of its
    metric over bootstrap resamples of the validation rows; None (with a warning) when it cannot
    be re-fitted here (data moved or changed, a trial without a recorded seed).

    The values are kept in the study (``keep``), so the next analysis with the same best trial
    re-fits nothing."""
    from dataclasses import replace

    from hpo.models import ModelImportError, trial_seed
    from hpo.promote import Recipe
    from hpo.storage import trial_by_number

    best = (max if direction == "maximize" else min)(trials, key=lambda t: t.value)  # type: ignore[arg-type, return-value]
    kept = study.user_attrs.get(STUDY_NOISE) or {}
    if kept.get("trial") == best.number and len(kept.get("values", [])) == refits and "rows" in kept:
        return _combined(best.number, list(kept["values"]), kept["rows"])
    try:
        recipe = Recipe.from_trial(study, trial_by_number(study, best.number))  # the light copy has no attributes
        data = recipe.load_data(ws, f"study {study.study_name!r}")
        if kept.get("trial") == best.number and len(kept.get("values", [])) == refits:
            values = list(kept["values"])  # kept by an analysis before the validation rows were resampled
        else:
            values = [
                float(replace(recipe, seed=trial_seed(recipe.seed, i + 1)).train(data, final=False).objective)
                for i in range(refits)
            ]
    except (HpoError, ModelImportError) as e:
        warn(f"no noise floor: trial #{best.number} could not be re-fitted ({e})")
        return None
    rows = None
    if recipe.cv is None:  # a CV trial keeps no validation predictions: its folds are that source (fold_noise)
        # The best trial and the median one once more, each with its own seed, for their predictions.
        ref = _median_trial(trials, best)
        try:
            other = Recipe.from_trial(study, trial_by_number(study, ref.number))
            rows = _rows_spread(recipe.train(data, final=False).model, other.train(data, final=False).model, data, recipe.metric)
        except (HpoError, ModelImportError) as e:
            warn(f"the noise floor leaves out the validation rows: trial #{ref.number} could not be re-fitted ({e})")
        if rows is not None:
            rows["reference"] = ref.number
    if keep:
        study.set_user_attr(STUDY_NOISE, {"trial": best.number, "values": values, "rows": rows})
    return _combined(best.number, values, rows)


def _combined(trial: int, values: list[float], rows: dict[str, Any] | None) -> Noise:
    """The floor from the seeds' spread and the validation rows' (independent: variances add)."""
    seed_sd = statistics.stdev(values)
    seeds = f"seeds: sd {seed_sd:.3g} over {len(values)} re-fits of trial #{trial} with other seeds"
    if rows is None:
        return Noise(seed_sd, f"{len(values)} re-fits of trial #{trial} with other seeds", values, seed_sd=seed_sd)
    rows_sd = float(rows["sd"])
    sd = math.hypot(seed_sd, rows_sd)
    resampled = (
        f"validation rows: sd {rows_sd:.3g}, the sd of trial #{trial}'s value minus trial #{rows['reference']}'s (the median "
        f"trial) over {rows['resamples']} paired bootstrap resamples of the {rows['n']} validation rows, over sqrt(2)"
    )
    if seed_sd == 0:
        source = f"{resampled}; the re-fits with other seeds all gave the same value (a deterministic fit)"
        basis = "validation rows"
    else:
        larger = "validation rows" if rows_sd >= seed_sd else "seeds"
        source = f"seeds and validation rows, sqrt of the summed variances, mostly the {larger}: {resampled}; {seeds}"
        basis = "seeds + validation rows"
    return Noise(sd, source, values, basis=basis, seed_sd=seed_sd, rows_sd=rows_sd, rows=int(rows["n"]))


def _median_trial(trials: Sequence[optuna.trial.FrozenTrial], best: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    """The trial with the median value (the lower one of an even count), the best one aside."""
    ranked = sorted((t for t in trials if t.number != best.number), key=lambda t: (t.value, t.number))
    return ranked[(len(ranked) - 1) // 2]


def _rows_spread(best: Any, reference: Any, data: DataVersion, metric: str) -> dict[str, Any] | None:
    """The validation rows' share of the noise floor, from a paired bootstrap: rows drawn with
    replacement, both models' metric recomputed on the same draw, the predictions held fixed.

    Every trial is scored on the same rows, so a draw that flatters one model tends to flatter the
    others: what moves a comparison is the spread of the difference, not of one value. Divided by
    sqrt(2), it is the sd per configuration that independent noise would need to move a difference
    that much, the scale of the other sources (seeds, folds)."""
    import warnings

    import numpy as np

    from hpo.metrics import METRICS
    from hpo.models import predict

    m = METRICS.get(metric)
    if best is None or reference is None or m is None:
        return None
    split = data.validation
    preds = [predict(model, split.X, data) for model in (best, reference)]
    classes = data.task == "classification"
    y = data.codes(split.y) if classes else split.y.to_numpy(dtype=float)
    n = len(y)

    def value(pred: np.ndarray, i: np.ndarray) -> float:
        if classes:
            return float(m.score(y[i], pred[i].argmax(axis=1), pred[i], len(data.classes)))
        return float(m.score(y[i], pred[i], None, 0))

    rng = np.random.default_rng(0)
    differences = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a draw with one class or constant values: skipped below
        for _ in range(ROW_RESAMPLES):
            i = rng.integers(0, n, size=n)
            try:
                d = value(preds[0], i) - value(preds[1], i)
            except ValueError:
                continue
            if math.isfinite(d):
                differences.append(d)
    if len(differences) < ROW_RESAMPLES // 2:
        return None
    return {"sd": statistics.stdev(differences) / math.sqrt(2), "n": n, "resamples": len(differences)}


def fold_noise(trials: Sequence[optuna.trial.FrozenTrial]) -> Noise | None:
    """The standard error of a trial's fold mean, net of the folds' shared effects; None without
    two COMPLETE trials that each have every fold's value."""
    import numpy as np

    rows = [t.user_attrs.get(TRIAL_FOLD_VALUES) or [] for t in trials]
    k = max((len(r) for r in rows), default=0)
    full = np.array([r for r in rows if len(r) == k and k > 1 and all(math.isfinite(v) for v in r)], dtype=float)
    if len(full) < 2:
        return None
    n = len(full)
    residual = full - full.mean(axis=1, keepdims=True) - full.mean(axis=0, keepdims=True) + full.mean()
    mean_square = float((residual**2).sum()) / ((n - 1) * (k - 1))
    source = f"{n} trials x {k} folds: the trial-by-fold residual, the folds' shared effects removed"
    return Noise(math.sqrt(mean_square / k), source, [float(v) for v in full.std(axis=1, ddof=1)], from_folds=True, basis="folds")
