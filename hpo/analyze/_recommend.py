"""The recommendation for a numeric parameter: move an edge the best trials press against, narrow
around an interior optimum, fix on evidence of no effect, else keep (the rules are in
:mod:`._results`' docstring)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hpo.analyze._evidence import _clear, _no_effect, _Stats, _why_no_effect
from hpo.analyze._results import (
    EDGE_ZONE,
    MARGIN,
    MIN_TOP,
    WIDEN_BY,
    Recommendation,
    _Context,
    _num,
    _p,
    _per_value,
    _range_str,
    _round_sig,
)

if TYPE_CHECKING:
    import numpy as np


def _recommend_numeric(st: _Stats, ctx: _Context, evidence: dict[str, Any]) -> Recommendation:
    a, t, ys, tf = st.base, st.t, st.ys, st.tf
    is_int = a["type"] == "int"
    name, n, log = a["name"], a["n"], a["log"]
    searched = _range_str(a["low"], a["high"], is_int)
    if n < ctx.min_trials:
        return Recommendation("none", f"only {n} COMPLETE trial(s) with {name}; a recommendation needs at least {ctx.min_trials}")
    if a["spearman_rho"] is None:
        return Recommendation("none", f"every COMPLETE trial has the same {name} or the same objective; nothing to compare")
    if ctx.noisy:
        return Recommendation("keep", f"the study's values cannot be told apart from noise: keep {searched}", evidence=evidence)

    per = "value" if _per_value(a) else "bin"
    described = (
        f"rho={a['spearman_rho']:+.2f} (p={_p(a['spearman_p'])}), per-{per} test p={_p(a['groups_p'])}; "
        f"descriptive p-values, clear below {evidence['p_threshold']:.2g}"
    )
    if ctx.noise is not None:
        described += f"; groups' true means spread by {st.effect_sd:.3g} (sd) against a noise floor of {ctx.noise.sd:.3g}"
    if not _clear(st, ctx):
        if a["best"] is not None and _no_effect(st, ctx, n):
            value = a["best"] if is_int else _round_sig(a["best"], 6)
            return Recommendation(
                "fix",
                f"no effect on the objective over {n} trials ({_why_no_effect(st, ctx)}): "
                f"fix {name} at {_num(value)}, its value in the best trial",
                value=value,
                evidence=evidence,
            )
        return Recommendation("keep", f"no clear effect ({described}) after {n} trials: keep {searched}", evidence=evidence)

    lo_t, hi_t = float(tf(a["low"])), float(tf(a["high"]))
    width = hi_t - lo_t
    u = (t - lo_t) / width if width > 0 else 0.0 * t
    u_best = (float(tf(a["best"])) - lo_t) / width if width > 0 and a["best"] is not None else 0.5
    good_rho = ctx.sign * a["spearman_rho"]
    band = st.band or (float(tf(a["top_low"])), float(tf(a["top_high"])))
    limit_lo, limit_hi = ctx.hard_limits.get(name, (None, None))
    if limit_lo is None and a["low"] >= 0 and not log:
        limit_lo = 0  # a non-negative parameter stays non-negative

    for side in ("upper", "lower"):
        outward = good_rho > 0 if side == "upper" else good_rho < 0
        at_edge = u_best >= 1 - EDGE_ZONE if side == "upper" else u_best <= EDGE_ZONE
        if not (at_edge and outward and a["spearman_p"] < evidence["p_threshold"]):
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
            new_lo_t = max(lo_t, band[0] - MARGIN * width)
            low, high = _snap(new_lo_t, new_hi_t, log, is_int, a["step"], a["low"], limits=(limit_lo, limit_hi))
            widened = high > a["high"]
        else:
            new_lo_t = lo_t - WIDEN_BY * width
            if limit_t is not None:
                new_lo_t = max(new_lo_t, limit_t)
            new_hi_t = min(hi_t, band[1] + MARGIN * width)
            low, high = _snap(new_lo_t, new_hi_t, log, is_int, a["step"], a["low"], limits=(limit_lo, limit_hi))
            widened = low < a["low"]
        edge_value = a["high"] if side == "upper" else a["low"]
        trend = f"the objective still improves towards it ({described})"
        if widened:
            return Recommendation(
                "widen",
                f"best trial has {name}={_num(a['best'])}, at the {side} edge of {searched}, and {trend}: "
                f"search {_range_str(low, high, is_int)}, the edge moved out by the searched width"
                + (f" (limit {_num(limit)})" if limit is not None and (high == limit or low == limit) else ""),
                low=low,
                high=high,
                log=log,
                evidence=evidence,
            )
        # Already at the model's limit: the best that can be done is to narrow towards it.
        reason_limit = f"best trial has {name}={_num(edge_value)}, at the {side} edge, which is the model's limit ({_num(limit)})"
        return _narrow(a, ctx, is_int, tf, lo_t, hi_t, band, width, reason_limit, described, evidence)
    return _narrow(a, ctx, is_int, tf, lo_t, hi_t, band, width, None, described, evidence)


def _narrow(
    a: dict[str, Any],
    ctx: _Context,
    is_int: bool,
    tf: Any,
    lo_t: float,
    hi_t: float,
    band: tuple[float, float],
    width: float,
    prefix: str | None,
    described: str,
    evidence: dict[str, Any],
) -> Recommendation:
    name, log = a["name"], a["log"]
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
    new_lo_t = max(lo_t, band[0] - MARGIN * width)
    new_hi_t = min(hi_t, band[1] + MARGIN * width)
    low, high = _snap(new_lo_t, new_hi_t, log, is_int, a["step"], a["low"], limits=(a["low"], a["high"]))
    new_width = float(tf(high)) - float(tf(low)) if high > low else 0.0
    if width <= 0 or new_width >= (1 - MARGIN) * width:
        return Recommendation("keep", f"{top}, nearly all of {searched} ({described}): keep {searched}", evidence=evidence)
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
