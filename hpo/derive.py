"""Derived spaces: the next search space an analysis recommends, and its warm start.

A derived space is the parent study's space file with the recommended ranges, fixed values and
dropped choices applied, a new study name, and ``derived_from`` (parent, time, one line per
change). Every other setting is carried over as the parent recorded it.

With ``derived_from.warm_start``, the new study starts with the parent's COMPLETE trials that
lie inside the new space, as prior observations (same value, intermediate values and seed), so
no evaluation is wasted. The study records which trials it inherited.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hpo.errors import HpoError, StudyError
from hpo.space import CategoricalParam, FloatParam, IntParam, SpaceFile, parse_space

if TYPE_CHECKING:
    import optuna

    from hpo.analysis import Analysis
    from hpo.prepare import Prepared

# Study and trial user attributes written for a warm start.
ATTR_INHERITED = "inherited_trials"
ATTR_INHERITED_FROM = "inherited_from"
# Trial user attributes an inherited trial keeps from its parent.
_KEPT_ATTRS = ("seed", "fit_seconds", "best_iteration", "validation_metrics")

_GEN_RE = re.compile(r"^(?P<base>.+)-gen(?P<n>\d+)$")


@dataclass(frozen=True)
class DerivedSpace:
    study: str
    text: str
    changes: list[str]


def derive_space(
    parent_yaml: str,
    analysis: Analysis,
    *,
    study: str,
    at: str,
    storage: str | None,
    warm_start: bool,
) -> DerivedSpace | None:
    """The parent's space with the analysis' recommendations applied, or None if nothing changes."""
    raw = yaml.safe_load(parent_yaml)
    params: dict[str, Any] = raw["params"]
    fixed: dict[str, Any] = dict(raw.get("fixed") or {})
    changes: list[str] = []
    for name, pa in analysis.params.items():
        rec = pa.recommendation
        if name not in params or rec.kind in ("keep", "none"):
            continue
        if rec.kind in ("narrow", "widen"):
            params[name] = {**params[name], "low": rec.low, "high": rec.high}
        elif rec.kind == "fix":
            if len(params) == 1:
                continue  # a space needs one parameter to tune: keep the last one searched
            del params[name]
            fixed[name] = rec.value
        elif rec.kind == "drop":
            params[name] = {**params[name], "choices": rec.choices}
        changes.append(f"{name}: {rec.kind}: {rec.reason}")
    if not changes:
        return None
    raw["study"] = study
    raw["params"] = params
    if fixed:
        raw["fixed"] = fixed
    raw["derived_from"] = {"study": analysis.study, "at": at, "storage": storage, "reasons": changes, "warm_start": warm_start}
    text = (
        f"# Derived by `hpo analyze` from study {analysis.study} ({analysis.n_complete} COMPLETE trials) at {at}.\n"
        f"# Run it with: hpo run search_spaces/{study}.yaml\n" + yaml.dump(raw, Dumper=_Dumper, sort_keys=False, width=10_000)
    )
    parse_space(text, f"derived space {study}")  # what is written must load
    return DerivedSpace(study, text, changes)


def next_study_name(parent: str, taken: set[str]) -> str:
    """``name`` -> ``name-gen2`` -> ``name-gen3``; skipping names already taken."""
    m = _GEN_RE.match(parent)
    base, n = (m["base"], int(m["n"]) + 1) if m else (parent, 2)
    while f"{base}-gen{n}" in taken:
        n += 1
    return f"{base}-gen{n}"


def write_space(path: Path, text: str) -> None:
    """Write a new space file; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        path.hardlink_to(tmp)  # atomic, and fails if the file exists
    except FileExistsError:
        raise HpoError(f"{path}: already exists; give the derived study another name with --name") from None
    finally:
        tmp.unlink(missing_ok=True)


class _Dumper(yaml.SafeDumper):
    """Block style for sections, flow style for one parameter (`depth: {type: int, low: 2, high: 10}`)."""


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    leaf = all(not isinstance(v, dict) for v in data.values()) and "type" in data
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=leaf or None)


_Dumper.add_representer(dict, _represent_dict)


# --- warm start ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inheritance:
    parent: str
    trials: list[optuna.trial.FrozenTrial]

    @property
    def numbers(self) -> list[int]:
        return [t.user_attrs[ATTR_INHERITED_FROM]["trial"] for t in self.trials]


def inherited_trials(prep: Prepared, url: str) -> Inheritance:
    """The parent's COMPLETE trials that lie inside this space, as new trials for it.

    Raises:
        StudyError: the parent study is missing, or measured something else (data, metric, model).
    """
    from hpo.studies import load_study

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
        ("data_digests", prep.data.digests, "other data (split digests)"),
        ("metric", space.metric, "another metric"),
        ("model", space.model, "another model"),
    ):
        if attrs.get(key) != ours:
            raise StudyError(
                f"{where}: `derived_from.warm_start` needs a parent that measured the same thing, but study "
                f"{d.study!r} has {what}; set `warm_start: false`"
            )
    parent_fixed = dict((yaml.safe_load(attrs.get("space_yaml") or "{}") or {}).get("fixed") or {})
    dists = {name: to_distribution(p) for name, p in space.params.items()}

    import optuna
    from optuna.trial import TrialState

    out = []
    for t in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if not _inside(t, dists, space, parent_fixed):
            continue
        kept = {k: t.user_attrs[k] for k in _KEPT_ATTRS if k in t.user_attrs}
        kept[ATTR_INHERITED_FROM] = {"study": d.study, "trial": t.number}
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
        if name not in t.params or not dist._contains(dist.to_internal_repr(t.params[name])):
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
    """The Optuna distribution that ``runner.suggest`` samples ``p`` from."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(p, IntParam):
        return IntDistribution(p.low, p.high, log=p.log, step=p.step)
    if isinstance(p, FloatParam):
        return FloatDistribution(p.low, p.high, log=p.log, step=p.step)
    return CategoricalDistribution(p.choices)
