"""Per-parameter trend statistics of a finished study: pure computation, trials in, an
:class:`Analysis` out; no plotting, files, storage or MLflow."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from hpo.analyze._recommend import _recommend_numeric
from hpo.analyze._results import (
    ALPHA,
    MAX_PER_VALUE,
    MIN_TRIALS,
    N_BINS,
    TOP_FRACTION,
    Analysis,
    CategoricalAnalysis,
    ChoiceStat,
    Group,
    NumericAnalysis,
    ParamAnalysis,
    Recommendation,
    _Context,
    _num,
    _p,
    _py,
)

if TYPE_CHECKING:
    import numpy as np
    import optuna


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


def _param_names(trials: Sequence[optuna.trial.FrozenTrial]) -> list[str]:
    names: dict[str, None] = {}
    for t in trials:
        names.update(dict.fromkeys(t.distributions))
    return list(names)


def _distribution(name: str, trials: Sequence[optuna.trial.FrozenTrial]) -> Any:
    """The searched distribution; for a study whose ranges changed, the union of its ranges."""
    dists: list[Any] = [t.distributions[name] for t in trials if name in t.distributions]
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
        study = optuna.create_study(direction="maximize" if direction == "maximize" else "minimize")
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
