"""The noise floor of a study hpo ran: its best trial re-fitted with other seeds.

The spread of those values is what the objective moves when nothing but the seed changes;
differences between trials smaller than that are no evidence of anything. The best trial's
own value is left out: it was selected for being high, so it is biased (the winner's curse).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hpo.analyze._results import Noise
from hpo.errors import HpoError
from hpo.schema import STUDY_NOISE
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

    from hpo.models import trial_seed
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
        values = [float(replace(recipe, seed=trial_seed(recipe.seed, i + 1)).train(data).objective) for i in range(refits)]
    except HpoError as e:
        warn(f"no noise floor: trial #{best.number} could not be re-fitted ({e})")
        return None
    if keep:
        study.set_user_attr(STUDY_NOISE, {"trial": best.number, "values": values})
    return Noise(statistics.stdev(values), source, values)
