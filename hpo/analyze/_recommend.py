"""The recommendation for a numeric parameter: move an edge the best trials press against, narrow
around an interior optimum, fix on evidence of no effect, else keep (the rules are in
:mod:`._results`' docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.analyze._evidence import _clear, _no_effect, _Stats, _why_no_effect
from hpo.analyze._results import (
    EDGE_ZONE,
    MARGIN,
    MIN_TOP,
    WIDEN_BY,
    Recommendation,
    _Context,
    _per_value,
    _range_str,
    _round_sig,
    format_number,
    format_p_value,
)

if TYPE_CHECKING:
    import numpy as np


def _recommend_numeric(st: _Stats, ctx: _Context, evidence: dict[str, Any]) -> Recommendation:
    a = st.base
    is_int = a["type"] == "int"
    name, n = a["name"], a["n"]
    searched = _range_str(a["low"], a["high"], is_int)
    if n < ctx.min_trials:
        return Recommendation("none", f"only {n} COMPLETE trial(s) with {name}; a recommendation needs at least {ctx.min_trials}")
    if a["spearman_rho"] is None:
        return Recommendation("none", f"every COMPLETE trial has the same {name} or the same objective; nothing to compare")

    per = "value" if _per_value(a) else "bin"
    described = (
        f"rho={a['spearman_rho']:+.2f} (p={format_p_value(a['spearman_p'])}), per-{per} test p={format_p_value(a['groups_p'])}; "
        f"descriptive p-values, clear below {evidence['p_threshold']:.2g}"
    )
    if ctx.noise is not None:
        described += f"; groups' true means spread by {st.effect_sd:.3g} (sd) against a noise floor of {ctx.noise.sd:.3g}"
    if ctx.noisy or not _clear(st, ctx):
        if not ctx.noisy and a["best"] is not None and _no_effect(st, ctx, n):
            value = a["best"] if is_int else _round_sig(a["best"], 6)
            return Recommendation(
                "fix",
                f"no effect on the objective over {n} trials ({_why_no_effect(st, ctx)}): "
                f"fix {name} at {format_number(value)}, its value in the best trial",
                value=value,
                evidence=evidence,
            )
        return _unclear(st, ctx, evidence, _why_unclear(st, ctx), described)

    scale = _scale(st)
    edge = _pressed_edge(st, ctx)
    if edge is not None and a["spearman_p"] < evidence["p_threshold"] and not edge[1]:
        side = edge[0]
        low, high, limit = _widened(st, ctx, side, scale.band)
        trend = f"the objective still improves towards it ({described})"
        if (high > a["high"]) if side == "upper" else (low < a["low"]):
            return Recommendation(
                "widen",
                f"best trial has {name}={format_number(a['best'])}, at the {side} edge of {searched}, and {trend}: "
                f"search {_range_str(low, high, is_int)}: {_moves(a, low, high, limit, narrowed=True)}",
                low=low,
                high=high,
                log=a["log"],
                evidence=evidence,
            )
        # Already at the model's limit: the best that can be done is to narrow towards it.
        edge_value = a["high"] if side == "upper" else a["low"]
        reason_limit = (
            f"best trial has {name}={format_number(edge_value)}, at the {side} edge, "
            f"which is the model's limit ({format_number(limit)})"
        )
        return _narrow(a, ctx, scale, reason_limit, described, evidence)
    return _narrow(a, ctx, scale, None, described, evidence)


@dataclass(frozen=True)
class _Scale:
    """A numeric parameter's searched range in the analysis scale (log10 for a log range)."""

    lo: float
    hi: float
    width: float
    band: tuple[float, float]  # the resampled top range
    is_int: bool
    tf: Any  # parameter value -> analysis scale


def _scale(st: _Stats) -> _Scale:
    """The searched range in the analysis scale, its width, and the resampled top range."""
    a = st.base
    lo_t, hi_t = float(st.tf(a["low"])), float(st.tf(a["high"]))
    band = st.band or (float(st.tf(a["top_low"])), float(st.tf(a["top_high"])))
    return _Scale(lo=lo_t, hi=hi_t, width=hi_t - lo_t, band=band, is_int=a["type"] == "int", tf=st.tf)


def _pressed_edge(st: _Stats, ctx: _Context) -> tuple[str, bool] | None:
    """The edge ("upper" or "lower") the best trial sits at (its outer fifth) while the trend points
    past it, and whether the trend turns back within that half of the range; None if neither does."""
    a, t, ys = st.base, st.t, st.ys
    scale = _scale(st)
    lo_t, width = scale.lo, scale.width
    if width <= 0 or a["best"] is None or a["spearman_rho"] is None:
        return None
    u = (t - lo_t) / width
    u_best = (float(st.tf(a["best"])) - lo_t) / width
    good_rho = ctx.sign * a["spearman_rho"]
    for side in ("upper", "lower"):
        outward = good_rho > 0 if side == "upper" else good_rho < 0
        at_edge = u_best >= 1 - EDGE_ZONE if side == "upper" else u_best <= EDGE_ZONE
        if at_edge and outward:
            half = u >= 0.5 if side == "upper" else u <= 0.5
            local = _spearman(u[half], ctx.sign * ys[half])
            return side, local is not None and (local < 0 if side == "upper" else local > 0)
    return None


# Where a widen stops for a parameter whose library declares no upper bound: a boosting step above 1
# overshoots (every gradient-boosting library's learning_rate is a shrinkage in (0, 1]). A space that
# already searches past it is the team's choice and is not capped.
SENSIBLE_HIGH = {"learning_rate": 1.0}


def _limits(st: _Stats, ctx: _Context) -> tuple[Any, Any]:
    a = st.base
    limit_lo, limit_hi = ctx.hard_limits.get(a["name"], (None, None))
    if limit_lo is None and a["low"] >= 0 and not a["log"]:
        limit_lo = 0  # a non-negative parameter stays non-negative
    if limit_hi is None and a["name"] in SENSIBLE_HIGH and a["high"] <= SENSIBLE_HIGH[a["name"]]:
        limit_hi = SENSIBLE_HIGH[a["name"]]  # a library that declares no bound (HistGradientBoosting's learning_rate)
    return limit_lo, limit_hi


def _widened(st: _Stats, ctx: _Context, side: str, band: tuple[float, float] | None) -> tuple[Any, Any, Any]:
    """The range with the ``side`` edge moved out by the searched width (within the model's limit),
    and the other edge brought in to the resampled top trials less a margin (``band``; None: kept).
    Returns (low, high, the limit on that side or None)."""
    a = st.base
    scale = _scale(st)
    lo_t, hi_t, width = scale.lo, scale.hi, scale.width
    limit_lo, limit_hi = _limits(st, ctx)
    limit = limit_hi if side == "upper" else limit_lo
    limit_t = None if limit is None or (a["log"] and limit <= 0) else float(st.tf(limit))
    if side == "upper":
        new_hi_t = hi_t + WIDEN_BY * width if limit_t is None else min(hi_t + WIDEN_BY * width, limit_t)
        new_lo_t = lo_t if band is None else max(lo_t, band[0] - MARGIN * width)
    else:
        new_lo_t = lo_t - WIDEN_BY * width if limit_t is None else max(lo_t - WIDEN_BY * width, limit_t)
        new_hi_t = hi_t if band is None else min(hi_t, band[1] + MARGIN * width)
    low, high = _snap(new_lo_t, new_hi_t, a["log"], a["type"] == "int", a["step"], a["low"], limits=(limit_lo, limit_hi))
    if band is None:  # the other edge stays exactly where it was searched
        low, high = (a["low"], high) if side == "upper" else (low, a["high"])
    return low, high, limit


def _moves(a: dict[str, Any], low: Any, high: Any, limit: Any, narrowed: bool) -> str:
    """Every bound that changed, both sides, and why each moved."""
    moves = []
    for side, old, new in (("lower", a["low"], low), ("upper", a["high"], high)):
        if new == old:
            continue
        outward = (new < old) if side == "lower" else (new > old)
        if outward:
            why = "out by the searched width" + (" in log10" if a["log"] else "")
            if limit is not None and new == limit:
                why += f", capped at the parameter's bound {format_number(limit)}"
        else:
            why = "in to where the resampled top trials start, less a margin" if narrowed else "in"
        moves.append(f"{side} edge {format_number(old)} -> {format_number(new)}, {why}")
    return "; ".join(moves)


def _why_unclear(st: _Stats, ctx: _Context) -> str:
    """Which gate of a clear effect failed, with its numbers."""
    a = st.base
    study = "the study's values cannot be told apart from noise (see the study's message)" if ctx.noisy else ""
    if ctx.noise is None:
        if st.min_p < ctx.alpha_each:
            return study
        gate = (
            f"its smallest descriptive p-value, {format_p_value(st.min_p)}, "
            f"is not below {ctx.alpha_each:.2g} (0.05 over every test)"
        )
    elif st.min_p >= ctx.alpha:
        gate = f"its smallest descriptive p-value, {format_p_value(st.min_p)}, is not below {ctx.alpha:.2g}"
    elif st.effect_sd < ctx.noise.sd:
        kind = "value" if _per_value(a) else "bin"
        used = sum(1 for g in a["groups"] if g.count >= 2)
        sized = sum(1 for g in a["groups"] if g.count >= 3)
        raw = f"; the means of the {sized} {kind}s with 3 or more trials span {st.effect:.3g}" if sized >= 2 else ""
        gate = (
            f"its trend passes the p-value gate ({format_p_value(st.min_p)} < {ctx.alpha:.2g}), "
            "but not the size gate: the spread of its "
            f"groups' true means, {st.effect_sd:.3g} (sd, noise removed, over the {used} of {len(a['groups'])} {kind}s with "
            f"at least 2 trials{raw}), is below the noise floor {ctx.noise.sd:.3g} (from the {ctx.noise.basis})"
        )
    else:
        return study
    return f"{study}; {gate}" if study else gate


def _unclear(st: _Stats, ctx: _Context, evidence: dict[str, Any], why: str, described: str) -> Recommendation:
    """No clear effect: keep, unless a strong monotone trend presses against an edge, which then
    moves out (that edge only: without a clear effect nothing is cut), within the model's limits."""
    a = st.base
    is_int = a["type"] == "int"
    name, n = a["name"], a["n"]
    searched = _range_str(a["low"], a["high"], is_int)
    unclear = f"no clear effect after {n} trials: {why} ({described})"

    def keep(note: str = "") -> Recommendation:
        return Recommendation("keep", f"{unclear}{note}: keep {searched}", evidence=evidence)

    edge = _pressed_edge(st, ctx)
    if edge is None:
        return keep()
    side, turns_back = edge
    at = f"the best trial has {name}={format_number(a['best'])}, at the {side} edge, and the trend points past it"
    if turns_back:
        return keep(f"; {at}, but it turns back within the {side} half of the range")
    if a["spearman_p"] >= ctx.alpha_each:
        return keep(
            f"; {at} (rho={a['spearman_rho']:+.2f}, p={format_p_value(a['spearman_p'])}), but not strongly enough to move an "
            f"edge without a clear effect (that needs p < {ctx.alpha_each:.2g}, 0.05 over every test)"
        )
    low, high, limit = _widened(st, ctx, side, None)
    strong = f"a strong monotone trend (rho={a['spearman_rho']:+.2f}, p={format_p_value(a['spearman_p'])} < {ctx.alpha_each:.2g})"
    if (high > a["high"]) if side == "upper" else (low < a["low"]):
        return Recommendation(
            "widen",
            f"{at}, {strong}, though the effect is not clear ({why}): search {_range_str(low, high, is_int)}: "
            f"{_moves(a, low, high, limit, narrowed=False)}; the {'lower' if side == 'upper' else 'upper'} edge is kept, "
            "since nothing is cut without a clear effect",
            low=low,
            high=high,
            log=a["log"],
            evidence=evidence,
        )
    return keep(f"; {at}, {strong}, but {format_number(limit)} is the model's limit: the edge cannot move")


def _narrow(
    a: dict[str, Any], ctx: _Context, scale: _Scale, prefix: str | None, described: str, evidence: dict[str, Any]
) -> Recommendation:
    """Narrow around the resampled top range (``prefix``: the reason this comes before any other), or keep."""
    name, log = a["name"], a["log"]
    is_int, tf, width, band = scale.is_int, scale.tf, scale.width, scale.band
    searched = _range_str(a["low"], a["high"], is_int)
    boot = evidence.get("bootstrap")
    if ctx.top_count < MIN_TOP or boot is None:
        return Recommendation(
            "keep", f"only {ctx.top_count} top trials; a narrowed range needs {MIN_TOP}: keep {searched}", evidence=evidence
        )
    resampled = _range_str(_num_of(boot["low"], is_int), _num_of(boot["high"], is_int), is_int)
    top = (
        f"the top {ctx.top_count} trials have {name} in {_range_str(a['top_low'], a['top_high'], is_int)}, "
        f"{resampled} over {boot['resamples']} bootstrap resamples"
    )
    new_lo_t = max(scale.lo, band[0] - MARGIN * width)
    new_hi_t = min(scale.hi, band[1] + MARGIN * width)
    low, high = _snap(new_lo_t, new_hi_t, log, is_int, a["step"], a["low"], limits=(a["low"], a["high"]))
    new_width = float(tf(high)) - float(tf(low)) if high > low else 0.0
    if width <= 0 or new_width >= (1 - MARGIN) * width:
        cut = 0.0 if width <= 0 else max(0.0, 1 - new_width / width)
        return Recommendation(
            "keep",
            f"{top}, nearly all of {searched} ({described}): the range around them, {_range_str(low, high, is_int)}, "
            f"would be {cut:.0%} narrower, less than the {MARGIN:.0%} a narrowed range must save: keep {searched}",
            evidence=evidence,
        )
    reason = f"{top} ({described}): search {_range_str(low, high, is_int)} instead of {searched}"
    if prefix:
        reason = f"{prefix}; {reason}"
    return Recommendation("narrow", reason, low=low, high=high, log=log, evidence=evidence)


def _num_of(x: float, is_int: bool) -> Any:
    return round(x) if is_int else _round_sig(x, 4)


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
