"""Warm start of a derived study from its parent: what `hpo run` seeds the study `hpo analyze` derived with.

Same data (a *soft* warm start): the parent's whole COMPLETE history becomes the derived study's
first trials, each stored with the parent's own distributions, so the sampler keeps every
observation (also those outside the new ranges) while it samples inside them. Same value,
intermediate values and seed: no evaluation is wasted.

Other data (*transfer*, e.g. the next data version), or other scoring (``cv`` added, removed or
changed): no value is copied, since values measured on other data or other folds are not comparable.

In both modes the parent's best configurations that fit the new space run first (the parent's
best first), and a ``cmaes`` sampler gets the parent's trials as ``source_trials`` (WS-CMA-ES).
The study records what it inherited, and each inherited trial where it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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
    TRIAL_FOLD_SD,
    TRIAL_FOLD_VALUES,
    TRIAL_INHERITED_FROM,
    TRIAL_SEED,
    TRIAL_VALIDATION_METRICS,
)
from hpo.space import CategoricalParam, CVConfig, FloatParam, IntParam, SpaceFile
from hpo.storage import in_distribution, load_study

if TYPE_CHECKING:
    import optuna

# Trial user attributes an inherited trial keeps from its parent.
_KEPT_ATTRS = (TRIAL_SEED, TRIAL_FIT_SECONDS, TRIAL_BEST_ITERATION, TRIAL_VALIDATION_METRICS, TRIAL_FOLD_VALUES, TRIAL_FOLD_SD)
RUN_FIRST = 3  # the parent's best configurations that run first


@dataclass(frozen=True)
class Inheritance:
    parent: str
    transfer: bool  # the parent measured other data (or other folds): nothing but configurations carries over
    trials: list[optuna.trial.FrozenTrial] = field(default_factory=list)  # history (same data only)
    first: list[dict[str, Any]] = field(default_factory=list)  # configurations to run first, best first
    first_numbers: list[int] = field(default_factory=list)  # their trial numbers in the parent

    @property
    def numbers(self) -> list[int]:
        return [t.user_attrs[TRIAL_INHERITED_FROM]["trial"] for t in self.trials]

    def record(self, ran_first: int) -> dict[str, Any]:
        """What the derived study records of it (``inherited_trials``), when the first ``ran_first``
        configurations were given budget slots."""
        return {
            "study": self.parent,
            "mode": "transfer" if self.transfer else "history",
            "trials": self.numbers,
            "run_first": self.first_numbers[:ran_first],
        }


def parent_study(prep: Prepared, url: str) -> optuna.Study:
    """The study ``prep``'s space was derived from, checked to have measured the same thing."""
    space, where = prep.space, prep.where
    d = space.derived_from
    assert d is not None
    try:
        parent = load_study(d.storage or url, d.study)
    except StudyError as e:
        raise StudyError(f"{where}: `derived_from.warm_start` needs the parent study: {e}") from None
    attrs = parent.user_attrs
    for key, ours, what in ((STUDY_METRIC, space.metric, "another metric"), (STUDY_MODEL, space.model, "another model")):
        if attrs.get(key) != ours:
            raise StudyError(
                f"{where}: `derived_from.warm_start` needs a parent that measured the same thing, but study "
                f"{d.study!r} has {what}; set `warm_start: false`"
            )
    return parent


def inherited_trials(prep: Prepared, url: str, run_first: int = RUN_FIRST) -> Inheritance:
    """What the derived study of ``prep`` starts from (see the module docstring).

    Raises:
        StudyError: the parent study is missing, or measured with another metric or model.
    """
    import optuna
    from optuna.trial import TrialState

    space = prep.space
    parent = parent_study(prep, url)
    name = parent.study_name
    parent_space = yaml.safe_load(parent.user_attrs.get(STUDY_SPACE_YAML) or "{}") or {}
    parent_fixed = dict(parent_space.get("fixed") or {})
    parent_cv = parent_space.get("cv")
    # Values measured on other data, or scored another way (folds against one validation split,
    # other folds), are not comparable: only configurations carry over.
    same_scoring = (CVConfig.model_validate(parent_cv) if parent_cv else None) == space.cv
    # The digests name the data as delivered: a parent that dropped other columns measured other features.
    same_scoring = same_scoring and list((parent_space.get("data") or {}).get("drop") or []) == list(space.data.drop)
    transfer = parent.user_attrs.get(STUDY_DIGESTS) != prep.data.digests or not same_scoring
    dists = {n: to_distribution(p) for n, p in space.params.items()}
    sign = 1 if parent.direction.name == "MAXIMIZE" else -1
    ranked = sorted(
        (t for t in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None),
        key=lambda t: (-sign * t.value, t.number),  # type: ignore[operator]
    )
    first: list[dict[str, Any]] = []
    first_numbers: list[int] = []
    for t in ranked:
        if len(first) >= run_first:
            break
        if _inside(t, dists, space, parent_fixed):
            first.append({n: t.params[n] for n in dists})
            first_numbers.append(t.number)
    history = []
    for t in [] if transfer else sorted(ranked, key=lambda t: t.number):
        kept = _history_dists(t, dists, space, parent_fixed)
        if kept is None:
            continue
        attrs = {k: t.user_attrs[k] for k in _KEPT_ATTRS if k in t.user_attrs}
        attrs[TRIAL_INHERITED_FROM] = {"study": name, "trial": t.number}
        history.append(
            optuna.trial.create_trial(
                params={n: t.params[n] for n in kept},
                distributions=kept,
                value=t.value,
                intermediate_values=dict(t.intermediate_values),
                user_attrs=attrs,
            )
        )
    return Inheritance(name, transfer, history, first, first_numbers)


def source_trials(prep: Prepared, url: str) -> list[optuna.trial.FrozenTrial]:
    """The parent's COMPLETE trials that tuned every parameter of this space: WS-CMA-ES' source."""
    from optuna.trial import TrialState

    parent = parent_study(prep, url)
    names = set(prep.space.params)
    return [t for t in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if names <= set(t.params)]


def _history_dists(
    t: optuna.trial.FrozenTrial, dists: dict[str, Any], space: SpaceFile, parent_fixed: dict[str, Any]
) -> dict[str, Any] | None:
    """The distributions a parent trial is stored under in the derived study, or None to leave it out.

    Numeric parameters keep the parent's distribution, so a value outside the new range stays an
    observation. A categorical one takes the new choices (the storage allows one set per
    parameter), which leaves out a trial whose choice was dropped. A parameter the space now
    fixes is not carried (it is no longer searched); a value fixed in both must agree.
    """
    out = {}
    for name, dist in dists.items():
        if name not in t.params:
            continue
        if dist.__class__.__name__ == "CategoricalDistribution":
            if t.params[name] not in dist.choices:
                return None
            out[name] = dist
        elif type(t.distributions[name]) is type(dist) and getattr(t.distributions[name], "log", None) == getattr(
            dist, "log", None
        ):
            out[name] = t.distributions[name]
        else:
            return None
    for name in set(parent_fixed) & set(space.fixed):
        if not _same(parent_fixed[name], space.fixed[name]):
            return None
    return out or None


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
    return bool(a == b)


def to_distribution(p: IntParam | FloatParam | CategoricalParam) -> Any:
    """The Optuna distribution that :func:`hpo.run.suggest` samples ``p`` from."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(p, IntParam):
        return IntDistribution(p.low, p.high, log=p.log, step=p.step)
    if isinstance(p, FloatParam):
        return FloatDistribution(p.low, p.high, log=p.log, step=p.step)
    return CategoricalDistribution(p.choices)
