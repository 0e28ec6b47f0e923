"""The evidence behind a verdict: bootstrap resamples of the top trials, the noise floor, and
the rules for a clear effect and for no effect (see :mod:`._results`' docstring)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpo.analyze._results import BOOTSTRAP, MIN_TOP, MIN_TOP_COUNT, NO_EFFECT_P, Group, Noise, _Context, format_p_value

if TYPE_CHECKING:
    import numpy as np


def _top_count(values: np.ndarray, sign: float, top: float, noise: Noise | None) -> int:
    """The best ``top`` fraction (at least ``MIN_TOP_COUNT``), and every trial within the noise floor of the best."""
    n = len(values)
    k = max(MIN_TOP_COUNT, math.ceil(top * n))
    if noise is not None and n:
        good = sign * values
        k = max(k, int((good >= good.max() - noise.sd).sum()))
    return min(n, k)


def _top_reason(n: int, top: float, k: int, noise: Noise | None) -> str:
    """How many top trials were taken, their true share of the COMPLETE trials, and why that share
    differs from ``top`` (rounding up, the minimum count, the trials within the noise floor)."""
    if n == 0:
        return "no COMPLETE trial"
    exact = top * n
    by_fraction = math.ceil(exact - 1e-9)
    text = f"{k} of {n} COMPLETE trials ({k / n:.0%})"
    asked = f"the best {top:.0%} of {n} is {exact:.3g}" + (f", rounded up to {by_fraction}" if by_fraction != exact else "")
    parts = [asked]
    base = by_fraction
    if by_fraction < MIN_TOP_COUNT:
        base = min(n, MIN_TOP_COUNT)
        capped = f" (capped at the {n} there are)" if n < MIN_TOP_COUNT else ""
        parts.append(f"raised to the minimum of {MIN_TOP_COUNT}{capped}")
    if k > base and noise is not None:
        parts.append(
            f"plus {k - base} more within the noise floor (sd {noise.sd:.3g}) of the best, "
            "no worse than it as far as the study can tell"
        )
    return f"{text}: {'; '.join(parts)}"


class _Bootstrap:
    """Resamples of the trials, and the top trials of each: shared by every parameter."""

    def __init__(self, values: np.ndarray, sign: float, k: int) -> None:
        import numpy as np

        self.k = k
        n = len(values)
        if n < MIN_TOP or k >= n:
            self.top: np.ndarray | None = None
            return
        rng = np.random.default_rng(0)
        idx = rng.integers(0, n, size=(BOOTSTRAP, n))
        part = np.argpartition(-sign * values[idx], k - 1, axis=1)[:, :k]
        self.top = np.take_along_axis(idx, part, axis=1)

    def envelope(self, t: np.ndarray) -> tuple[float, float] | None:
        """The 5th percentile of the resampled top trials' lows, and the 95th of their highs."""
        import numpy as np

        if self.top is None:
            return None
        x = t[self.top]
        return float(np.quantile(x.min(axis=1), 0.05)), float(np.quantile(x.max(axis=1), 0.95))


@dataclasses.dataclass
class _Stats:
    """One numeric parameter's statistics, before its verdict."""

    base: dict[str, Any]  # NumericAnalysis' fields but importance and recommendation
    t: np.ndarray  # values in the analysis scale
    ys: np.ndarray
    tf: Any
    effect: float  # the range of its groups' means
    effect_sd: float  # the spread of its groups' true means: see _group_sd
    min_p: float
    band: tuple[float, float] | None  # the resampled top range, in the analysis scale

    @property
    def name(self) -> str:
        return str(self.base["name"])


def _clear(st: _Stats | _CategoricalStats, ctx: _Context) -> bool:
    """A clear effect. Without a noise floor: a descriptive p below the Bonferroni-corrected alpha.
    With one (an independent measure of the noise): a p below alpha, and a spread of the groups'
    true means (noise removed) of at least the floor."""
    if ctx.noise is None:
        return st.min_p < ctx.alpha_each
    return st.min_p < ctx.alpha and st.effect_sd >= ctx.noise.sd


def _evidence(st: _Stats | _CategoricalStats, ctx: _Context) -> dict[str, Any]:
    bootstrap = None
    if isinstance(st, _Stats) and st.band is not None:
        low, high = (10**b for b in st.band) if st.base["log"] else st.band  # back from the analysis scale
        bootstrap = {"resamples": BOOTSTRAP, "low": low, "high": high}
    return {
        "n_top": ctx.top_count,
        "min_top": MIN_TOP,
        "bootstrap": bootstrap,
        "noise": None if ctx.noise is None else ctx.noise.sd,
        "effect": st.effect,
        "effect_sd": st.effect_sd,
        "min_p": st.min_p,
        "p_threshold": ctx.alpha_each if ctx.noise is None else ctx.alpha,
        "clear_effect": _clear(st, ctx),
        "p_values": "descriptive: the sampler chose the trials, so they are not independent samples",
    }


@dataclasses.dataclass
class _CategoricalStats:
    name: str
    choices: Sequence[Any]
    values: list[Any]
    ys: np.ndarray
    members: dict[Any, np.ndarray]
    ref: Any
    p_worse: dict[Any, float]
    groups_p: float | None
    effect: float
    effect_sd: float
    min_p: float


def _group_sd(samples: Sequence[np.ndarray]) -> float:
    """The spread of the groups' true means: the sd of their means less what noise alone adds
    (a one-way random-effects estimate; 0 when the groups differ no more than noise would make them)."""
    import numpy as np

    samples = [s for s in samples if len(s) >= 2]
    if len(samples) < 2:
        return 0.0
    means = np.array([s.mean() for s in samples])
    within = float(np.mean([s.var(ddof=1) / len(s) for s in samples]))
    return math.sqrt(max(0.0, float(means.var(ddof=1)) - within))


def _no_effect(st: _Stats | _CategoricalStats, ctx: _Context, n: int) -> bool:
    """Evidence of no effect, not just absence of evidence: see the rules in :mod:`._results`."""
    if ctx.noisy or n < 3 * ctx.min_trials or not (ctx.others_clear - {st.name}):
        return False
    if st.min_p < NO_EFFECT_P:
        return False
    limit = 0.25 * ctx.clear_effect
    if ctx.noise is not None:
        limit = min(limit, ctx.noise.sd)
    return st.effect_sd < limit


def _why_no_effect(st: _Stats | _CategoricalStats, ctx: _Context) -> str:
    floor = (
        f"the noise floor {ctx.noise.sd:.3g}"
        if ctx.noise is not None
        else f"a quarter of the clear effect {ctx.clear_effect:.3g}"
    )
    return (
        f"descriptive p={format_p_value(st.min_p)} >= {NO_EFFECT_P}; "
        f"its groups' true means spread by {st.effect_sd:.3g} (sd, noise removed), below {floor}, "
        f"while {', '.join(sorted(ctx.others_clear))} clearly matter"
    )


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
