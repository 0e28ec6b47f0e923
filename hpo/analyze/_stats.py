"""Per-parameter trend statistics of a finished study: pure computation, trials in, an
:class:`Analysis` out; no plotting, files, storage or MLflow."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from hpo.analyze._categorical import _categorical, _categorical_stats
from hpo.analyze._evidence import (
    _Bootstrap,
    _CategoricalStats,
    _clear,
    _evidence,
    _group,
    _group_sd,
    _kruskal,
    _Stats,
    _top_count,
    _top_reason,
)
from hpo.analyze._recommend import _recommend_numeric
from hpo.analyze._results import (
    ALPHA,
    MAX_PER_VALUE,
    MIN_TRIALS,
    N_BINS,
    TOP_FRACTION,
    Analysis,
    AnalysisSettings,
    Group,
    ImportanceMethod,
    Noise,
    NumericAnalysis,
    ParamAnalysis,
    _Context,
    _py,
    format_number,
)
from hpo.storage import study_view

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
    importance: ImportanceMethod | None = "ped-anova",
    n_trials: int | None = None,
    noise: Noise | None = None,
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
        noise: the study's noise floor, where it could be measured.
    """
    settings = AnalysisSettings(top=top, min_trials=min_trials, alpha=alpha, hard_limits=hard_limits, importance=importance)
    return analysis_of(study_name, trials, direction, settings, params=params, n_trials=n_trials, noise=noise)


def analysis_of(
    study_name: str,
    trials: Sequence[optuna.trial.FrozenTrial],
    direction: Literal["maximize", "minimize"],
    settings: AnalysisSettings,
    *,
    params: Sequence[str] | None = None,
    n_trials: int | None = None,
    noise: Noise | None = None,
) -> Analysis:
    """:func:`analyze` with its thresholds in one :class:`AnalysisSettings`."""
    import numpy as np

    top, min_trials, importance = settings.top, settings.min_trials, settings.importance
    if not 0 < top < 1:
        raise ValueError(f"`top` must lie in (0, 1), but got {top}")
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    sign = 1.0 if direction == "maximize" else -1.0
    every = _param_names(complete or list(trials))
    n = len(complete)
    best = max(complete, key=lambda t: sign * t.value) if complete else None  # type: ignore[operator]
    values = np.array([t.value for t in complete], dtype=float)
    top_count = _top_count(values, sign, top, noise)
    # Importance is shared out over every parameter, even when only some are analysed.
    imp = _importances(complete, direction, _param_names(complete), top, importance) if n >= min_trials else {}
    ctx = _Context(
        sign=sign,
        top=top,
        top_count=top_count,
        min_trials=min_trials,
        alpha=settings.alpha,
        hard_limits=settings.hard_limits or {},
        best=best,
        alpha_each=settings.alpha / max(1, 2 * len(every)),
        noise=noise,
    )
    # Pass 1: every parameter's statistics, so that each verdict can weigh the others' evidence.
    stats_ = _statistics(trials, complete, every, values, ctx)
    clear = {k: st.effect_sd for k, st in stats_.items() if _clear(st, ctx)}
    message = _noise_message(values, clear, len(every), ctx) if n >= min_trials else None
    ctx = dataclasses.replace(
        ctx, noisy=message is not None, others_clear=frozenset(clear), clear_effect=max(clear.values(), default=0.0)
    )
    # Pass 2: the recommendations.
    out = _recommend(stats_, list(params) if params else every, ctx, imp)
    moved = [k for k, p in out.items() if p.recommendation.kind == "widen"]
    if message is not None and moved:
        message = message.replace(
            "Every parameter is kept.",
            f"Every parameter is kept but {', '.join(moved)}, "
            "whose edge a strong monotone trend presses against (see its reason).",
        )
    return Analysis(
        study=study_name,
        direction=direction,
        n_complete=n,
        n_trials=len(trials) if n_trials is None else n_trials,
        top_fraction=top,
        top_count=top_count,
        min_trials=min_trials,
        alpha=settings.alpha,
        best_number=None if best is None else best.number,
        best_value=None if best is None else float(best.value),  # type: ignore[arg-type]
        importance_method=importance if imp else None,
        params=out,
        noise=noise,
        message=message,
        top_reason=_top_reason(n, top, top_count, noise),
    )


def _statistics(
    trials: Sequence[optuna.trial.FrozenTrial],
    complete: Sequence[optuna.trial.FrozenTrial],
    names: Sequence[str],
    values: np.ndarray,
    ctx: _Context,
) -> dict[str, _Stats | _CategoricalStats]:
    """Each parameter's statistics over the ``complete`` trials (``values``: their objective values)."""
    import numpy as np

    boot = _Bootstrap(values, ctx.sign, ctx.top_count)
    out: dict[str, _Stats | _CategoricalStats] = {}
    for name in names:
        with_param = [t for t in complete if name in t.params]
        dist = _distribution(name, with_param or [t for t in trials if name in t.distributions])
        if dist is None:
            continue
        xs = [t.params[name] for t in with_param]
        ys = np.array([t.value for t in with_param], dtype=float)
        on = boot if len(with_param) == len(complete) else _Bootstrap(ys, ctx.sign, _top_count(ys, ctx.sign, ctx.top, ctx.noise))
        if dist.__class__.__name__ == "CategoricalDistribution":
            out[name] = _categorical_stats(name, dist.choices, xs, ys, ctx)
        else:
            out[name] = _numeric_stats(name, dist, np.array(xs, dtype=float), ys, ctx, on)
    return out


def _noise_message(values: np.ndarray, clear: dict[str, float], n_params: int, ctx: _Context) -> str | None:
    """Why the study's values cannot be told apart from noise (``clear``: the parameters with a clear effect), or None."""
    import numpy as np

    n, sign, noise = len(values), ctx.sign, ctx.noise
    spread = abs(float(np.median(np.sort(sign * values)[-ctx.top_count :])) - float(np.median(sign * values)))
    if not clear and noise is not None:
        message = f"no parameter's effect over {n} COMPLETE trials reaches the noise floor ({noise.sd:.3g}, {noise.source})"
    elif not clear:
        message = (
            f"no parameter has a clear effect on the objective over {n} COMPLETE trials (every descriptive "
            f"p-value is above {ctx.alpha_each:.2g}, i.e. {ctx.alpha} over {2 * n_params} tests)"
        )
    elif noise is not None and spread < noise.sd:
        message = (
            f"the top trials' median is only {spread:.3g} better than the median trial, below the noise floor "
            f"({noise.sd:.3g}, {noise.source})"
        )
    else:
        return None
    return (
        "the study's values cannot be told apart from noise: "
        + message
        + ". Every parameter is kept. What would help: more trials, or a less noisy validation "
        + ("(more `cv.repeats`)" if noise is not None and noise.from_folds else "(a larger validation split, or `cv`)")
    )


def _recommend(
    stats_: dict[str, _Stats | _CategoricalStats], names: Sequence[str], ctx: _Context, importance: dict[str, float]
) -> dict[str, ParamAnalysis]:
    """The verdict on each of ``names`` that has statistics, in that order."""
    out: dict[str, ParamAnalysis] = {}
    for name in names:
        if name not in stats_:
            continue
        st = stats_[name]
        if isinstance(st, _CategoricalStats):
            out[name] = _categorical(st, ctx, importance.get(name))
        else:
            rec = _recommend_numeric(st, ctx, _evidence(st, ctx))
            out[name] = NumericAnalysis(**st.base, importance=importance.get(name), recommendation=rec)
    return out


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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            view = study_view(usable, direction)
            result = optuna.importance.get_param_importances(view, evaluator=evaluators[method](), params=list(names))  # type: ignore[no-untyped-call]
    except (ValueError, RuntimeError):
        return {}
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {k: float(v) for k, v in result.items()}


def _numeric_stats(name: str, dist: Any, xs: np.ndarray, ys: np.ndarray, ctx: _Context, boot: _Bootstrap) -> _Stats:
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
    band = None
    if n:
        order = np.argsort(-ctx.sign * ys, kind="stable")
        top_x = xs[order[: boot.k]]
        top_low, top_high = _py(top_x.min(), is_int), _py(top_x.max(), is_int)
        if ctx.best is not None and name in ctx.best.params:
            best_x = _py(ctx.best.params[name], is_int)
        band = boot.envelope(t)

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
    )
    means = [g.mean for g in groups if g.count >= 3 and g.mean is not None]
    effect = float(max(means) - min(means)) if len(means) >= 2 else 0.0
    min_p = min(p for p in (spp, gp, 1.0) if p is not None)
    return _Stats(
        base=base,
        t=t,
        ys=ys,
        tf=tf,
        effect=effect,
        effect_sd=_group_sd([ys[m] for m in members]),
        min_p=min_p,
        band=band,
    )


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
        groups.append(_group(f"{format_number(a)}-{format_number(b)}", a, b, ys[m], sign))
    return groups, members
