"""Statistics and the recommendation for a categorical parameter: drop a choice that is clearly
worse, fix on evidence that no choice matters, else keep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpo.analyze._evidence import _CategoricalStats, _evidence, _group, _group_sd, _kruskal, _no_effect, _why_no_effect
from hpo.analyze._results import CategoricalAnalysis, ChoiceStat, Recommendation, _Context, format_p_value

if TYPE_CHECKING:
    import numpy as np


def _categorical_stats(name: str, choices: Sequence[Any], values: list[Any], ys: np.ndarray, ctx: _Context) -> _CategoricalStats:
    import numpy as np
    from scipy import stats

    members = {c: np.array([i for i, v in enumerate(values) if v == c], dtype=int) for c in choices}
    good = ctx.sign * ys
    # The reference: the choice with the best mean among those tried at least 3 times.
    tried = [c for c in choices if len(members[c]) >= 3]
    ref = max(tried, key=lambda c: float(np.mean(good[members[c]]))) if tried else None
    p_worse: dict[Any, float] = {}
    for c in tried:
        if c != ref:
            p_worse[c] = float(stats.mannwhitneyu(good[members[c]], good[members[ref]], alternative="less").pvalue)
    gp = _kruskal([ys[members[c]] for c in choices])
    means = [float(np.mean(ys[members[c]])) for c in tried]
    effect = max(means) - min(means) if len(means) >= 2 else 0.0
    min_p = min([gp if gp is not None else 1.0, *(p * len(p_worse) for p in p_worse.values())])
    return _CategoricalStats(
        name=name,
        choices=choices,
        values=values,
        ys=ys,
        members=members,
        ref=ref,
        p_worse=p_worse,
        groups_p=gp,
        effect=effect,
        effect_sd=_group_sd([ys[members[c]] for c in choices]),
        min_p=min_p,
    )


def _categorical(st: _CategoricalStats, ctx: _Context, importance: float | None) -> CategoricalAnalysis:
    import numpy as np

    name, choices, values, ys, members, ref = st.name, st.choices, st.values, st.ys, st.members, st.ref
    n = len(values)
    good = ctx.sign * ys
    ref_mean = float(np.mean(ys[members[ref]])) if ref is not None else 0.0
    floor = ctx.noise.sd if ctx.noise is not None else 0.0
    worse = {
        c
        for c, p in st.p_worse.items()
        if p < ctx.alpha / max(len(st.p_worse), 1) and ctx.sign * (ref_mean - float(np.mean(ys[members[c]]))) >= floor
    }
    stats_ = [
        ChoiceStat(c, g.count, g.mean, g.median, g.best, st.p_worse.get(c), c in worse)
        for c in choices
        for g in [_group(str(c), c, c, ys[members[c]], ctx.sign)]
    ]
    gp = st.groups_p
    order = np.argsort(-good, kind="stable")
    top_choices = list(dict.fromkeys(values[i] for i in order[: ctx.top_count]))
    best = ctx.best.params.get(name) if ctx.best is not None else None
    evidence = _evidence(st, ctx)

    if n < ctx.min_trials:
        rec = Recommendation("none", f"only {n} COMPLETE trial(s) with {name}; a recommendation needs at least {ctx.min_trials}")
    elif ctx.noisy:
        rec = Recommendation(
            "keep",
            f"the study's values cannot be told apart from noise (see the study's message; test across choices "
            f"p={format_p_value(gp)}, descriptive): keep all",
            choices=list(choices),
        )
    elif worse:
        keep = [c for c in choices if c not in worse]
        why = "; ".join(
            f"{c} is worse than {ref} (mean {np.mean(ys[members[c]]):.4g} vs {ref_mean:.4g} over {len(members[c])} and "
            f"{len(members[ref])} trials, one-sided Mann-Whitney p={format_p_value(st.p_worse[c])}, descriptive"
            + (f"; the gap exceeds the noise floor {floor:.3g}" if ctx.noise is not None else "")
            + ")"
            for c in choices
            if c in worse
        )
        if len(keep) == 1:
            rec = Recommendation("fix", f"{why}: fix {name} at {keep[0]}", value=keep[0], choices=keep, evidence=evidence)
        else:
            dropped = ", ".join(str(c) for c in choices if c in worse)
            rec = Recommendation("drop", f"{why}: drop {dropped}", choices=keep, evidence=evidence)
    elif best is not None and _no_effect(st, ctx, n):
        rec = Recommendation(
            "fix",
            f"no choice matters over {n} trials ({_why_no_effect(st, ctx)}): fix {name} at {best}, as in the best trial",
            value=best,
            evidence=evidence,
        )
    else:
        untried = [str(c) for c in choices if len(members[c]) < 3]
        note = f"; {', '.join(untried)} tried fewer than 3 times" if untried else ""
        rec = Recommendation(
            "keep",
            f"no choice is clearly worse (test across choices p={format_p_value(gp)}, descriptive{note}): keep all",
            choices=list(choices),
            evidence=evidence,
        )
    return CategoricalAnalysis(name, n, stats_, gp, best, importance, rec, top_choices=top_choices)
