"""Warm start: a derived study starts with its parent's COMPLETE trials that lie inside the new space.

They are prior observations (same value, intermediate values and seed), so no evaluation is
wasted; the study records which trials it inherited, and each inherited trial where it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from hpo.errors import StudyError
from hpo.prepare import Prepared
from hpo.schema import (
    STUDY_DIGESTS,
    STUDY_METRIC,
    STUDY_MODEL,
    STUDY_SPACE_YAML,
    TRIAL_BEST_ITERATION,
    TRIAL_FIT_SECONDS,
    TRIAL_INHERITED_FROM,
    TRIAL_SEED,
    TRIAL_VALIDATION_METRICS,
)
from hpo.space import CategoricalParam, FloatParam, IntParam, SpaceFile
from hpo.storage import in_distribution
from hpo.studies import load_study

if TYPE_CHECKING:
    import optuna

# Trial user attributes an inherited trial keeps from its parent.
_KEPT_ATTRS = (TRIAL_SEED, TRIAL_FIT_SECONDS, TRIAL_BEST_ITERATION, TRIAL_VALIDATION_METRICS)


@dataclass(frozen=True)
class Inheritance:
    parent: str
    trials: list[optuna.trial.FrozenTrial]

    @property
    def numbers(self) -> list[int]:
        return [t.user_attrs[TRIAL_INHERITED_FROM]["trial"] for t in self.trials]


def inherited_trials(prep: Prepared, url: str) -> Inheritance:
    """The parent's COMPLETE trials that lie inside this space, as new trials for it.

    Raises:
        StudyError: the parent study is missing, or measured something else (data, metric, model).
    """
    space, where = prep.space, prep.where
    d = space.derived_from
    assert d is not None
    parent_url = d.storage or url
    try:
        parent = load_study(parent_url, d.study)
    except StudyError as e:
        raise StudyError(f"{where}: `derived_from.warm_start` needs the parent study: {e}") from None
    attrs = parent.user_attrs
    for key, ours, what in (
        (STUDY_DIGESTS, prep.data.digests, "other data (split digests)"),
        (STUDY_METRIC, space.metric, "another metric"),
        (STUDY_MODEL, space.model, "another model"),
    ):
        if attrs.get(key) != ours:
            raise StudyError(
                f"{where}: `derived_from.warm_start` needs a parent that measured the same thing, but study "
                f"{d.study!r} has {what}; set `warm_start: false`"
            )
    parent_fixed = dict((yaml.safe_load(attrs.get(STUDY_SPACE_YAML) or "{}") or {}).get("fixed") or {})
    dists = {name: to_distribution(p) for name, p in space.params.items()}

    import optuna
    from optuna.trial import TrialState

    out = []
    for t in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if not _inside(t, dists, space, parent_fixed):
            continue
        kept = {k: t.user_attrs[k] for k in _KEPT_ATTRS if k in t.user_attrs}
        kept[TRIAL_INHERITED_FROM] = {"study": d.study, "trial": t.number}
        out.append(
            optuna.trial.create_trial(
                params={n: t.params[n] for n in dists},
                distributions=dists,
                value=t.value,
                intermediate_values=dict(t.intermediate_values),
                user_attrs=kept,
            )
        )
    return Inheritance(d.study, out)


def _inside(t: optuna.trial.FrozenTrial, dists: dict[str, Any], space: SpaceFile, parent_fixed: dict[str, Any]) -> bool:
    for name, dist in dists.items():
        if name not in t.params or not in_distribution(dist, t.params[name]):
            return False
    if set(t.params) - set(dists) - set(space.fixed):
        return False  # the parent tuned something this space no longer has
    for name in {**parent_fixed, **space.fixed}:
        theirs = t.params.get(name, parent_fixed.get(name, _MISSING))
        if not _same(theirs, space.fixed.get(name, _MISSING)):
            return False
    return True


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-12)  # `fix` keeps 6 digits
        except (TypeError, ValueError):
            return False
    return a == b


def to_distribution(p: IntParam | FloatParam | CategoricalParam) -> Any:
    """The Optuna distribution that :func:`hpo.run.suggest` samples ``p`` from."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(p, IntParam):
        return IntDistribution(p.low, p.high, log=p.log, step=p.step)
    if isinstance(p, FloatParam):
        return FloatDistribution(p.low, p.high, log=p.log, step=p.step)
    return CategoricalDistribution(p.choices)
