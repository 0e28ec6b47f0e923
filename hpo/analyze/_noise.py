"""The noise floor of a study hpo ran: its best trial re-fitted with other seeds, or its folds.

The spread of re-fitted values is what the objective moves when nothing but the seed changes;
differences between trials smaller than that are no evidence of anything. The best trial's
own value is left out: it was selected for being high, so it is biased (the winner's curse).

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
from typing import TYPE_CHECKING

from hpo.analyze._results import Noise
from hpo.errors import HpoError
from hpo.schema import STUDY_NOISE, TRIAL_FOLD_VALUES
from hpo.workspace import Workspace

if TYPE_CHECKING:
    import optuna

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
    """The sd of the best trial's value over ``refits`` other seeds, or None (with a warning) when
    it cannot be re-fitted here (data moved or changed, a trial without a recorded seed).

    The values are kept in the study (``keep``), so the next analysis with the same best trial
    re-fits nothing."""
    from dataclasses import replace

    from hpo.models import ModelImportError, trial_seed
    from hpo.promote import Recipe
    from hpo.storage import trial_by_number

    best = (max if direction == "maximize" else min)(trials, key=lambda t: t.value)  # type: ignore[arg-type, return-value]
    source = f"{refits} re-fits of trial #{best.number} with other seeds"
    kept = study.user_attrs.get(STUDY_NOISE) or {}
    if kept.get("trial") == best.number and len(kept.get("values", [])) == refits:
        return Noise(statistics.stdev(kept["values"]), source, list(kept["values"]))
    try:
        recipe = Recipe.from_trial(study, trial_by_number(study, best.number))  # the light copy has no attributes
        data = recipe.load_data(ws, f"study {study.study_name!r}")
        values = [
            float(replace(recipe, seed=trial_seed(recipe.seed, i + 1)).train(data, final=False).objective) for i in range(refits)
        ]
    except (HpoError, ModelImportError) as e:
        warn(f"no noise floor: trial #{best.number} could not be re-fitted ({e})")
        return None
    if keep:
        study.set_user_attr(STUDY_NOISE, {"trial": best.number, "values": values})
    return Noise(statistics.stdev(values), source, values)


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
    return Noise(math.sqrt(mean_square / k), source, [float(v) for v in full.std(axis=1, ddof=1)], from_folds=True)
