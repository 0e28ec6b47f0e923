"""Trend statistics of a finished study, and the search-space recommendation they support.

Pure computation: trials in, dataclasses out. No plotting, no files, no storage, no MLflow:
the terminal table, the HTML report, the dashboard note and the derived space are all built
from an :class:`Analysis` elsewhere (``hpo.report``, ``hpo.derive``).

How a numeric parameter is judged (all on COMPLETE trials, in the parameter's own scale: log10
when its distribution is log):

* **effect**: Spearman's rho (a monotone trend) or a Kruskal-Wallis test across the per-value
  or binned groups (any shape, e.g. an interior optimum) is significant at ``alpha``;
* **no effect**: ``fix`` it at the best trial's value once there are ``3 × min_trials`` trials
  to back that up, else ``keep`` the range;
* **widen**: the best trial sits in the outer 10% of the range at one edge, the trend towards
  that edge is significant overall and does not turn back within the edge half: the optimum may
  lie outside, so the range is extended past the edge by a quarter of its width (within the
  model's hard limits), and tightened on the other side to where the top trials start;
* **narrow**: otherwise, the range the top trials hold plus a margin of a tenth of the searched
  width each side (ints snapped outward, log kept). If that is not at least 10% narrower, ``keep``.

A categorical choice is ``drop``-ped when a one-sided Mann-Whitney test says its objective is
worse than that of the best choice (Bonferroni-corrected over the choices compared); when one
choice is left, the parameter is ``fix``-ed at it.

Below ``min_trials`` COMPLETE trials (default 10) nothing is recommended (kind ``none``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import optuna

MIN_TRIALS = 10
TOP_FRACTION = 0.2
ALPHA = 0.05
EDGE_ZONE = 0.1  # the outer tenth of a range counts as "at the edge"
WIDEN_BY = 0.25  # a widened range reaches this fraction of the searched width past the edge
MARGIN = 0.1  # a narrowed range keeps this fraction of the searched width around the top trials
MAX_PER_VALUE = 25  # int parameters with at most this many values get one group per value
N_BINS = 10

Kind = Literal["narrow", "widen", "keep", "fix", "drop", "none"]


@dataclass(frozen=True)
class Recommendation:
    """What to search next for one parameter; ``reason`` says why, in words and numbers."""

    kind: Kind
    reason: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    value: Any = None


@dataclass(frozen=True)
class Group:
    """Trials whose parameter falls in one value or bin (``low`` == ``high`` for one value)."""

    label: str
    low: Any
    high: Any
    count: int
    mean: float | None
    median: float | None
    best: float | None


@dataclass(frozen=True)
class NumericAnalysis:
    name: str
    type: Literal["int", "float"]
    log: bool
    low: float
    high: float
    step: float | None
    n: int
    pearson_r: float | None
    pearson_p: float | None
    spearman_rho: float | None
    spearman_p: float | None
    groups_p: float | None  # Kruskal-Wallis across the groups
    groups: list[Group]
    top_low: float | None
    top_high: float | None
    best: float | None  # the parameter's value in the best trial
    importance: float | None
    recommendation: Recommendation

    @property
    def searched(self) -> str:
        return _range_str(self.low, self.high, self.type == "int")

    @property
    def top_range(self) -> str:
        return "-" if self.top_low is None else _range_str(self.top_low, self.top_high, self.type == "int")


@dataclass(frozen=True)
class ChoiceStat:
    choice: Any
    count: int
    mean: float | None
    median: float | None
    best: float | None
    p_worse: float | None  # one-sided Mann-Whitney against the best choice
    worse: bool


@dataclass(frozen=True)
class CategoricalAnalysis:
    name: str
    n: int
    choices: list[ChoiceStat]
    groups_p: float | None
    best: Any
    importance: float | None
    recommendation: Recommendation
    type: Literal["categorical"] = "categorical"
    top_choices: list[Any] = field(default_factory=list)

    @property
    def searched(self) -> str:
        return ", ".join(map(str, (c.choice for c in self.choices)))

    @property
    def top_range(self) -> str:
        return ", ".join(map(str, self.top_choices)) or "-"


ParamAnalysis = NumericAnalysis | CategoricalAnalysis


@dataclass(frozen=True)
class Analysis:
    """The trends of one study, per parameter, with the settings they were computed under."""

    study: str
    direction: Literal["maximize", "minimize"]
    n_complete: int
    n_trials: int
    top_fraction: float
    top_count: int
    min_trials: int
    alpha: float
    best_number: int | None
    best_value: float | None
    importance_method: str | None
    params: dict[str, ParamAnalysis]

    @property
    def enough(self) -> bool:
        return self.n_complete >= self.min_trials

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the keys of ``hpo analyze --json``."""
        out = {k: v for k, v in asdict(self).items() if k != "params"}
        out["params"] = {}
        for name, p in self.params.items():
            out["params"][name] = asdict(p)
        return _clean(out)


def _clean(x: Any) -> Any:
    """Floats that JSON can hold: NaN and infinities become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


# --- entry point --------------------------------------------------------------------------------


def analyze(
    study_name: str,
    trials: Sequence[optuna.trial.FrozenTrial],
    direction: Literal["maximize", "minimize"],
    *,
    params: Sequence[str] | None = None,
    top: float = TOP_FRACTION,
    min_trials: int = MIN_TRIALS,
    alpha: float = ALPHA,
    hard_limits: dict[str, tuple[float | None, float | None]] | None = None,
    importance: Literal["ped-anova", "fanova", "mdi"] | None = "ped-anova",
    n_trials: int | None = None,
) -> Analysis:
    """Statistics and a recommendation for each parameter of ``trials``.

    Args:
        trials: the study's trials; only COMPLETE ones with a finite value are used.
        params: the parameters to analyse (default: every parameter seen).
        top: the fraction of best trials whose range is reported and narrowed to.
        min_trials: COMPLETE trials needed before anything is recommended.
        hard_limits: per parameter, the model's own (low, high) bounds; a widened range stays inside.
        importance: Optuna's importance evaluator, or None to skip it.
        n_trials: trials in the study in every state (default: ``len(trials)``), for the report.
    """
    import numpy as np

    if not 0 < top < 1:
        raise ValueError(f"`top` must lie in (0, 1), but got {top}")
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    sign = 1.0 if direction == "maximize" else -1.0
    names = list(params) if params else _param_names(complete or list(trials))
    n = len(complete)
    top_count = min(n, max(3, math.ceil(top * n)))
    best = max(complete, key=lambda t: sign * t.value) if complete else None  # type: ignore[operator]
    # Importance is shared out over every parameter, even when only some are analysed.
    imp = _importances(complete, direction, _param_names(complete), top, importance) if n >= min_trials else {}
    ctx = _Context(sign, top, top_count, min_trials, alpha, hard_limits or {}, best)

    out: dict[str, ParamAnalysis] = {}
    for name in names:
        with_param = [t for t in complete if name in t.params]
        dist = _distribution(name, with_param or [t for t in trials if name in t.distributions])
        values = [t.params[name] for t in with_param]
        ys = np.array([t.value for t in with_param], dtype=float)
        if dist is None:
            continue
        if dist.__class__.__name__ == "CategoricalDistribution":
            out[name] = _categorical(name, dist.choices, values, ys, ctx, imp.get(name))
        else:
            out[name] = _numeric(name, dist, np.array(values, dtype=float), ys, ctx, imp.get(name))
    return Analysis(
        study=study_name,
        direction=direction,
        n_complete=n,
        n_trials=len(trials) if n_trials is None else n_trials,
        top_fraction=top,
        top_count=top_count,
        min_trials=min_trials,
        alpha=alpha,
        best_number=None if best is None else best.number,
        best_value=None if best is None else float(best.value),  # type: ignore[arg-type]
        importance_method=importance if imp else None,
        params=out,
    )


@dataclass(frozen=True)
class _Context:
    sign: float
    top: float
    top_count: int
    min_trials: int
    alpha: float
    hard_limits: dict[str, tuple[float | None, float | None]]
    best: optuna.trial.FrozenTrial | None


def _param_names(trials: Sequence[optuna.trial.FrozenTrial]) -> list[str]:
    names: dict[str, None] = {}
    for t in trials:
        names.update(dict.fromkeys(t.distributions))
    return list(names)


def _distribution(name: str, trials: Sequence[optuna.trial.FrozenTrial]) -> Any:
    """The searched distribution; for a study whose ranges changed, the union of its ranges."""
    dists = [t.distributions[name] for t in trials if name in t.distributions]
    if not dists:
        return None
    last = dists[-1]
    if last.__class__.__name__ == "CategoricalDistribution":
        return last
    same = [d for d in dists if type(d) is type(last) and d.log == last.log]
    low, high = min(d.low for d in same), max(d.high for d in same)
    if (low, high) == (last.low, last.high):
        return last
    cls = type(last)
    return cls(low, high, log=last.log, step=last.step) if not last.log else cls(low, high, log=True)


def _importances(
    trials: Sequence[optuna.trial.FrozenTrial], direction: str, names: Sequence[str], top: float, method: str | None
) -> dict[str, float]:
    """Optuna's importance of each parameter, computed on an in-memory copy of the trials."""
    if method is None or len(names) < 1:
        return {}
    import warnings

    import optuna

    evaluators = {
        "ped-anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(target_quantile=top),
        "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=0),
        "mdi": lambda: optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0),
    }
    usable = [t for t in trials if all(n in t.params for n in names)]
    if len(usable) < 2:
        return {}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created in memory" line
    try:
        study = optuna.create_study(direction=direction)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Fresh copies: the trials may come without timestamps (hpo.studies.complete_trials).
            study.add_trials(
                [optuna.trial.create_trial(params=t.params, distributions=t.distributions, value=t.value) for t in usable]
            )
            result = optuna.importance.get_param_importances(study, evaluator=evaluators[method](), params=list(names))
    except (ValueError, RuntimeError):
        return {}
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {k: float(v) for k, v in result.items()}


# --- numeric parameters ---------------------------------------------------------------------


def _numeric(name: str, dist: Any, xs: np.ndarray, ys: np.ndarray, ctx: _Context, importance: float | None) -> NumericAnalysis:
    import numpy as np
    from scipy import stats

    is_int = dist.__class__.__name__ == "IntDistribution"
    log = bool(dist.log)
    step = None if log else dist.step
    n = len(xs)
    tf = np.log10 if log else (lambda v: np.asarray(v, dtype=float))
    t = tf(xs) if n else xs
    pr = sp = None
    pp = spp = None
    if n >= 3 and np.ptp(t) > 0 and np.ptp(ys) > 0:
        r = stats.pearsonr(t, ys)
        pr, pp = float(r.statistic), float(r.pvalue)
        s = stats.spearmanr(t, ys)
        sp, spp = float(s.statistic), float(s.pvalue)
    groups, members = _groups(xs, ys, dist, is_int, log, ctx.sign)
    gp = _kruskal([ys[m] for m in members])

    top_low = top_high = best_x = None
    if n:
        order = np.argsort(-ctx.sign * ys, kind="stable")
        k = min(n, max(3, math.ceil(ctx.top * n)))
        top_x = xs[order[:k]]
        top_low, top_high = _py(top_x.min(), is_int), _py(top_x.max(), is_int)
        if ctx.best is not None and name in ctx.best.params:
            best_x = _py(ctx.best.params[name], is_int)

    base = dict(
        name=name,
        type="int" if is_int else "float",
        log=log,
        low=_py(dist.low, is_int),
        high=_py(dist.high, is_int),
        step=step,
        n=n,
        pearson_r=pr,
        pearson_p=pp,
        spearman_rho=sp,
        spearman_p=spp,
        groups_p=gp,
        groups=groups,
        top_low=top_low,
        top_high=top_high,
        best=best_x,
        importance=importance,
    )
    rec = _recommend_numeric(base, t, ys, ctx, is_int, tf)
    return NumericAnalysis(**base, recommendation=rec)  # type: ignore[arg-type]


def _groups(xs: np.ndarray, ys: np.ndarray, dist: Any, is_int: bool, log: bool, sign: float) -> tuple[list[Group], list[Any]]:
    """One group per value (ints with few values) or per bin (equal width, in log space if log)."""
    import numpy as np

    if is_int and (dist.high - dist.low) // dist.step + 1 <= MAX_PER_VALUE:
        values = range(dist.low, dist.high + 1, dist.step)
        members = [np.flatnonzero(xs == v) for v in values]
        groups = [_group(str(v), v, v, ys[m], sign) for v, m in zip(values, members, strict=True)]
        return groups, members
    lo, hi = (math.log10(dist.low), math.log10(dist.high)) if log else (float(dist.low), float(dist.high))
    edges = np.linspace(lo, hi, N_BINS + 1)
    if log:
        edges = 10**edges
    idx = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, N_BINS - 1)
    members = [np.flatnonzero(idx == i) for i in range(N_BINS)]
    groups = []
    for i, m in enumerate(members):
        a, b = float(edges[i]), float(edges[i + 1])
        if is_int:
            a, b = math.ceil(a), math.floor(b) if i == N_BINS - 1 else math.ceil(b) - 1
        groups.append(_group(f"{_num(a)}-{_num(b)}", a, b, ys[m], sign))
    return groups, members


def _group(label: str, low: Any, high: Any, ys: np.ndarray, sign: float) -> Group:
    import numpy as np

    if len(ys) == 0:
        return Group(label, low, high, 0, None, None, None)
    best = float(ys.max() if sign > 0 else ys.min())
    return Group(label, low, high, int(len(ys)), float(np.mean(ys)), float(np.median(ys)), best)


def _kruskal(samples: list[np.ndarray]) -> float | None:
    from scipy import stats

    samples = [s for s in samples if len(s) >= 2]
    if len(samples) < 2 or len({float(v) for s in samples for v in s}) < 2:
        return None
    return float(stats.kruskal(*samples).pvalue)


def _recommend_numeric(a: dict[str, Any], t: np.ndarray, ys: np.ndarray, ctx: _Context, is_int: bool, tf: Any) -> Recommendation:
    import numpy as np

    name, n, log = a["name"], a["n"], a["log"]
    searched = _range_str(a["low"], a["high"], is_int)
    if n < ctx.min_trials:
        return Recommendation("none", f"only {n} COMPLETE trial(s) with {name}; a recommendation needs at least {ctx.min_trials}")
    if a["spearman_rho"] is None:
        return Recommendation("none", f"every COMPLETE trial has the same {name} or the same objective; nothing to compare")

    per = "value" if _per_value(a) else "bin"
    evidence = f"rho={a['spearman_rho']:+.2f} (p={_p(a['spearman_p'])}), per-{per} test p={_p(a['groups_p'])}"
    effect = min(a["spearman_p"], a["groups_p"] if a["groups_p"] is not None else 1.0) < ctx.alpha
    if not effect:
        if n >= 3 * ctx.min_trials and a["best"] is not None:
            value = a["best"] if is_int else _round_sig(a["best"], 6)
            return Recommendation(
                "fix",
                f"no effect on the objective over {n} trials ({evidence}): "
                f"fix {name} at {_num(value)}, its value in the best trial",
                value=value,
            )
        return Recommendation("keep", f"no clear effect yet ({evidence}) after {n} trials: keep {searched}")

    lo_t, hi_t = float(tf(a["low"])), float(tf(a["high"]))
    width = hi_t - lo_t
    u = (t - lo_t) / width if width > 0 else np.zeros_like(t)
    u_best = (float(tf(a["best"])) - lo_t) / width if width > 0 and a["best"] is not None else 0.5
    good_rho = ctx.sign * a["spearman_rho"]
    top_lo_t, top_hi_t = float(tf(a["top_low"])), float(tf(a["top_high"]))
    limit_lo, limit_hi = ctx.hard_limits.get(name, (None, None))
    if limit_lo is None and a["low"] >= 0 and not log:
        limit_lo = 0  # a non-negative parameter stays non-negative

    for side in ("upper", "lower"):
        outward = good_rho > 0 if side == "upper" else good_rho < 0
        at_edge = u_best >= 1 - EDGE_ZONE if side == "upper" else u_best <= EDGE_ZONE
        if not (at_edge and outward and a["spearman_p"] < ctx.alpha):
            continue
        half = u >= 0.5 if side == "upper" else u <= 0.5
        local = _spearman(u[half], ctx.sign * ys[half])
        if local is not None and (local < 0 if side == "upper" else local > 0):
            continue  # the trend turns back before the edge: an interior optimum
        limit = limit_hi if side == "upper" else limit_lo
        limit_t = None if limit is None or (log and limit <= 0) else float(tf(limit))
        if side == "upper":
            new_hi_t = hi_t + WIDEN_BY * width
            if limit_t is not None:
                new_hi_t = min(new_hi_t, limit_t)
            new_lo_t = max(lo_t, top_lo_t - MARGIN * width)
            low, high = _snap(new_lo_t, new_hi_t, log, is_int, a["step"], a["low"], limits=(limit_lo, limit_hi))
            widened = high > a["high"]
        else:
            new_lo_t = lo_t - WIDEN_BY * width
            if limit_t is not None:
                new_lo_t = max(new_lo_t, limit_t)
            new_hi_t = min(hi_t, top_hi_t + MARGIN * width)
            low, high = _snap(new_lo_t, new_hi_t, log, is_int, a["step"], a["low"], limits=(limit_lo, limit_hi))
            widened = low < a["low"]
        edge_value = a["high"] if side == "upper" else a["low"]
        trend = f"the objective still {'improves' if outward else 'worsens'} towards it ({evidence})"
        if widened:
            return Recommendation(
                "widen",
                f"best trial has {name}={_num(a['best'])}, at the {side} edge of {searched}, and {trend}: "
                f"search {_range_str(low, high, is_int)}, past the edge"
                + (f" (limit {_num(limit)})" if limit is not None and (high == limit or low == limit) else ""),
                low=low,
                high=high,
                log=log,
            )
        # Already at the model's limit: the best that can be done is to narrow towards it.
        reason_limit = f"best trial has {name}={_num(edge_value)}, at the {side} edge, which is the model's limit ({_num(limit)})"
        return _narrow(a, ctx, is_int, tf, lo_t, hi_t, top_lo_t, top_hi_t, width, reason_limit, evidence)
    return _narrow(a, ctx, is_int, tf, lo_t, hi_t, top_lo_t, top_hi_t, width, None, evidence)


def _narrow(
    a: dict[str, Any],
    ctx: _Context,
    is_int: bool,
    tf: Any,
    lo_t: float,
    hi_t: float,
    top_lo_t: float,
    top_hi_t: float,
    width: float,
    prefix: str | None,
    evidence: str,
) -> Recommendation:
    name, log = a["name"], a["log"]
    searched = _range_str(a["low"], a["high"], is_int)
    new_lo_t = max(lo_t, top_lo_t - MARGIN * width)
    new_hi_t = min(hi_t, top_hi_t + MARGIN * width)
    low, high = _snap(new_lo_t, new_hi_t, log, is_int, a["step"], a["low"], limits=(a["low"], a["high"]))
    top = f"the top {ctx.top_count} trials ({ctx.top:.0%}) have {name} in {_range_str(a['top_low'], a['top_high'], is_int)}"
    new_width = float(tf(high)) - float(tf(low)) if high > low else 0.0
    if width <= 0 or new_width >= (1 - MARGIN) * width:
        return Recommendation("keep", f"{top}, nearly all of {searched} ({evidence}): keep {searched}")
    reason = f"{top} ({evidence}): search {_range_str(low, high, is_int)} instead of {searched}"
    if prefix:
        reason = f"{prefix}; {reason}"
    return Recommendation("narrow", reason, low=low, high=high, log=log)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    import numpy as np
    from scipy import stats

    if len(x) < 5 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(x, y).statistic)


def _snap(
    lo_t: float,
    hi_t: float,
    log: bool,
    is_int: bool,
    step: float | None,
    origin: float,
    limits: tuple[float | None, float | None],
) -> tuple[Any, Any]:
    """Back from the analysis scale to parameter values, rounded outward but kept within ``limits``.

    Ints snap to the step grid that starts at ``origin``; floats keep 4 significant digits.
    """
    lo, hi = (10**lo_t, 10**hi_t) if log else (lo_t, hi_t)
    limit_lo, limit_hi = limits
    if is_int or step:
        s = step or 1
        low = origin + math.floor((lo - origin) / s + 1e-9) * s
        high = origin + math.ceil((hi - origin) / s - 1e-9) * s
        while limit_lo is not None and low < limit_lo:
            low += s
        while limit_hi is not None and high > limit_hi:
            high -= s
        return (int(low), int(high)) if is_int else (round(low, 12), round(high, 12))
    low, high = _round_sig(lo, 4, "down"), _round_sig(hi, 4, "up")
    if limit_lo is not None:
        low = max(low, float(limit_lo))
    if limit_hi is not None:
        high = min(high, float(limit_hi))
    return low, high


# --- categorical parameters ---------------------------------------------------------------------


def _categorical(
    name: str, choices: Sequence[Any], values: list[Any], ys: np.ndarray, ctx: _Context, importance: float | None
) -> CategoricalAnalysis:
    import numpy as np
    from scipy import stats

    n = len(values)
    members = {c: np.array([i for i, v in enumerate(values) if v == c], dtype=int) for c in choices}
    good = ctx.sign * ys
    # The reference: the choice with the best mean among those tried at least 3 times.
    tried = [c for c in choices if len(members[c]) >= 3]
    ref = max(tried, key=lambda c: float(np.mean(good[members[c]]))) if tried else None
    compared = [c for c in tried if c != ref]
    p_worse: dict[Any, float] = {}
    for c in compared:
        p_worse[c] = float(stats.mannwhitneyu(good[members[c]], good[members[ref]], alternative="less").pvalue)
    worse = {c for c, p in p_worse.items() if p < ctx.alpha / max(len(compared), 1)}

    stats_ = [
        ChoiceStat(c, g.count, g.mean, g.median, g.best, p_worse.get(c), c in worse)
        for c in choices
        for g in [_group(str(c), c, c, ys[members[c]], ctx.sign)]
    ]
    gp = _kruskal([ys[members[c]] for c in choices])
    order = np.argsort(-good, kind="stable")
    top_choices = list(dict.fromkeys(values[i] for i in order[: ctx.top_count]))
    best = ctx.best.params.get(name) if ctx.best is not None else None

    if n < ctx.min_trials:
        rec = Recommendation("none", f"only {n} COMPLETE trial(s) with {name}; a recommendation needs at least {ctx.min_trials}")
    elif worse:
        keep = [c for c in choices if c not in worse]
        ref_mean = float(np.mean(ys[members[ref]]))
        why = "; ".join(
            f"{c} is worse than {ref} (mean {np.mean(ys[members[c]]):.4g} vs {ref_mean:.4g}, "
            f"one-sided Mann-Whitney p={_p(p_worse[c])})"
            for c in choices
            if c in worse
        )
        if len(keep) == 1:
            rec = Recommendation("fix", f"{why}: fix {name} at {keep[0]}", value=keep[0], choices=keep)
        else:
            rec = Recommendation("drop", f"{why}: drop {', '.join(str(c) for c in choices if c in worse)}", choices=keep)
    elif (gp is None or gp >= ctx.alpha) and n >= 3 * ctx.min_trials and best is not None:
        rec = Recommendation(
            "fix",
            f"no choice matters over {n} trials (test across choices p={_p(gp)}): fix {name} at {best}, as in the best trial",
            value=best,
        )
    else:
        untried = [str(c) for c in choices if len(members[c]) < 3]
        note = f"; {', '.join(untried)} tried fewer than 3 times" if untried else ""
        rec = Recommendation(
            "keep", f"no choice is clearly worse (test across choices p={_p(gp)}{note}): keep all", choices=list(choices)
        )
    return CategoricalAnalysis(name, n, stats_, gp, best, importance, rec, top_choices=top_choices)


# --- formatting helpers shared with the reports -------------------------------------------------


def _per_value(a: dict[str, Any]) -> bool:
    return a["type"] == "int" and all(g.low == g.high for g in a["groups"])


def _py(x: Any, is_int: bool) -> Any:
    return int(x) if is_int else float(x)


def _round_sig(x: float, digits: int, mode: Literal["down", "up", "nearest"] = "nearest") -> float:
    if x == 0 or not math.isfinite(x):
        return x
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(x))))
    f = {"down": math.floor, "up": math.ceil, "nearest": round}[mode]
    return float(f(x * scale) / scale)


def _num(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _range_str(low: Any, high: Any, is_int: bool) -> str:
    return f"{_num(low)}-{_num(high)}" if is_int else f"{_num(low)}..{_num(high)}"


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
