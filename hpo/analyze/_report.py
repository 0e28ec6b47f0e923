"""Reports of an analysis: the plotly figures, the HTML page and the Markdown note.

Everything here is drawn from an :class:`Analysis` (and, for the scatter plots, the trials it was
computed from); nothing here computes a statistic of its own beyond a trend line. The terminal
table is drawn by the CLI (:mod:`hpo.cli._output`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.analyze._results import (
    Analysis,
    CategoricalAnalysis,
    NumericAnalysis,
    ParamAnalysis,
    _range_str,
    format_number,
    format_statistic,
)

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import plotly.graph_objects as go


_KIND_COLOUR = {
    "narrow": "#2ca02c",
    "widen": "#ff7f0e",
    "keep": "#7f7f7f",
    "fix": "#1f77b4",
    "drop": "#d62728",
    "none": "#7f7f7f",
}


def recommended(p: ParamAnalysis) -> str:
    """The recommendation in a few characters: `6-10`, `fix 0.05`, `drop Depthwise`."""
    r = p.recommendation
    if r.kind in ("narrow", "widen"):
        return _range_str(r.low, r.high, p.type == "int")
    if r.kind == "fix":
        return f"= {format_number(r.value)}"
    if r.kind == "drop" and r.choices is not None and isinstance(p, CategoricalAnalysis):
        return "drop " + ", ".join(str(c.choice) for c in p.choices if c.choice not in r.choices)
    return p.searched if r.kind == "keep" else "-"


def figures(
    a: Analysis, trials: Sequence[optuna.trial.FrozenTrial], metric: str, max_points: int | None = None
) -> dict[str, go.Figure]:
    """One figure per parameter: value against objective (trend line, top trials, recommended range
    shaded) beside the per-value, per-bin or per-choice distribution.

    ``max_points`` caps the trials drawn (the top trials always, the rest a fixed random sample);
    the trend line and the statistics are those of all trials.
    """
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    top_numbers = _top_numbers(a, complete)
    shown = complete
    if max_points is not None and len(complete) > max_points:
        import random

        rest = [t for t in complete if t.number not in top_numbers]
        keep = {t.number for t in random.Random(0).sample(rest, max(max_points - len(top_numbers), 0))} | top_numbers
        shown = [t for t in complete if t.number in keep]
    out = {}
    for name, p in a.params.items():
        with_param = [t for t in complete if name in t.params]
        drawn = [t for t in shown if name in t.params]
        fig = (
            _numeric_figure(_FigureInput(p, with_param, drawn, top_numbers, metric, a))
            if isinstance(p, NumericAnalysis)
            else _categorical_figure(p, drawn, metric)
        )
        if len(drawn) < len(with_param):
            fig.add_annotation(
                text=f"{len(drawn):,} of {len(with_param):,} trials drawn (all top trials); the full report has every trial",
                xref="paper",
                yref="paper",
                x=0,
                y=-0.25,
                showarrow=False,
                font={"size": 11, "color": "#666"},
            )
        out[name] = fig
    return out


def _top_numbers(a: Analysis, complete: Sequence[optuna.trial.FrozenTrial]) -> set[int]:
    sign = 1 if a.direction == "maximize" else -1
    ranked = sorted(complete, key=lambda t: -sign * t.value)  # type: ignore[operator]
    return {t.number for t in ranked[: a.top_count]}


@dataclass(frozen=True)
class _FigureInput:
    """What a numeric parameter's figure is drawn from."""

    param: NumericAnalysis
    trials: Sequence[optuna.trial.FrozenTrial]  # every COMPLETE trial with the parameter: the trend line's
    drawn: Sequence[optuna.trial.FrozenTrial]  # those drawn as points
    top: set[int]  # the top trials' numbers
    metric: str
    analysis: Analysis

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """The parameter's values and the objective's, over every trial."""
        import numpy as np

        xs = np.array([t.params[self.param.name] for t in self.trials], dtype=float)
        return xs, np.array([t.value for t in self.trials], dtype=float)


def _numeric_figure(inp: _FigureInput) -> go.Figure:
    """Value against objective (left) beside the objective per value or bin (right)."""
    from plotly.subplots import make_subplots

    p, metric = inp.param, inp.metric
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        subplot_titles=(
            f"{p.name} vs {metric}",
            f"{metric} per {'value' if p.groups and p.groups[0].low == p.groups[0].high else 'bin'}",
        ),
    )
    _scatter_panel(fig, inp)
    _recommendation_marks(fig, inp)
    _scatter_axes(fig, inp)
    _bin_panel(fig, inp)
    _layout(fig, p)
    return fig


def _scatter_panel(fig: go.Figure, inp: _FigureInput) -> None:
    """The trials as points (the top trials darker) and the trend line over all of them."""
    import numpy as np
    import plotly.graph_objects as go

    p, metric, drawn, (xs, ys) = inp.param, inp.metric, inp.drawn, inp.values()
    dx = np.array([t.params[p.name] for t in drawn], dtype=float)
    dy = np.array([t.value for t in drawn], dtype=float)
    is_top = np.array([t.number in inp.top for t in drawn], dtype=bool)
    numbers = np.array([t.number for t in drawn], dtype=np.int32)
    for mask, label, colour in ((~is_top, "trials", "#9ecae1"), (is_top, "top trials", "#08519c")):
        fig.add_trace(
            go.Scatter(
                x=dx[mask],
                y=dy[mask],
                mode="markers",
                name=label,
                marker={"color": colour, "size": 6},
                customdata=numbers[mask],
                hovertemplate=f"trial #%{{customdata}}<br>{p.name}=%{{x}}<br>{metric}=%{{y:.5g}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    if len(xs) >= 2 and np.ptp(xs) > 0:
        tx = np.log10(xs) if p.log else xs
        slope, intercept = np.polyfit(tx, ys, 1)
        line_t = np.linspace(tx.min(), tx.max(), 50)
        line_x = 10**line_t if p.log else line_t
        label = f"trend (r={p.pearson_r:+.2f})" if p.pearson_r is not None else "trend"
        line_y = slope * line_t + intercept
        trend = go.Scatter(x=line_x, y=line_y, mode="lines", name=label, line={"color": "#444", "dash": "dash"})
        fig.add_trace(trend, row=1, col=1)


def _recommendation_marks(fig: go.Figure, inp: _FigureInput) -> None:
    """On the scatter panel: the searched and recommended ranges, the top trials' band, the noise floor, a fixed value."""
    p, a = inp.param, inp.analysis
    r = p.recommendation
    # The searched range as a thin outline; the recommended one shaded.
    fig.add_vrect(x0=p.low, x1=p.high, line={"color": "#bbb", "width": 1}, fillcolor="rgba(0,0,0,0)", row=1, col=1)
    if r.kind in ("narrow", "widen"):
        fig.add_vrect(
            x0=r.low,
            x1=r.high,
            fillcolor=_KIND_COLOUR[r.kind],
            opacity=0.15,
            line_width=0,
            annotation_text=f"{r.kind} {_range_str(r.low, r.high, p.type == 'int')}",
            annotation_position="top left",
            row=1,
            col=1,
        )
    band = (r.evidence or {}).get("bootstrap")
    if band:
        # Where the top trials sit, over bootstrap resamples: the evidence behind a narrowed range.
        fig.add_vrect(
            x0=band["low"],
            x1=band["high"],
            fillcolor="rgba(8,81,156,0.10)",
            line={"color": "#08519c", "width": 1, "dash": "dot"},
            annotation_text=f"top trials, {band['resamples']} resamples",
            annotation_position="bottom left",
            annotation_font_size=10,
            row=1,
            col=1,
        )
    if a.noise is not None and a.best_value is not None:
        # Trials in this band are within the noise floor of the best: no measurable difference.
        edge = a.best_value - a.noise.sd if a.direction == "maximize" else a.best_value + a.noise.sd
        fig.add_hrect(
            y0=min(edge, a.best_value),
            y1=max(edge, a.best_value),
            fillcolor="#fdae6b",
            opacity=0.2,
            line_width=0,
            annotation_text=f"noise floor (sd {a.noise.sd:.3g})",
            annotation_position="bottom right",
            annotation_font_size=10,
            row=1,
            col=1,
        )
    if r.kind == "fix":
        line = {"color": _KIND_COLOUR["fix"], "dash": "dot"}
        fig.add_vline(x=r.value, line=line, annotation_text=f"fix {format_number(r.value)}", row=1, col=1)


def _scatter_axes(fig: go.Figure, inp: _FigureInput) -> None:
    """The scatter panel's axes: wide enough for the searched and the recommended range."""
    p, r = inp.param, inp.param.recommendation
    lo = min(p.low, r.low if r.low is not None else p.low)
    hi = max(p.high, r.high if r.high is not None else p.high)
    if p.log:
        pad = (math.log10(hi) - math.log10(lo)) * 0.03
        fig.update_xaxes(type="log", range=[math.log10(lo) - pad, math.log10(hi) + pad], row=1, col=1)
    else:
        pad = (hi - lo) * 0.03 or 0.5
        fig.update_xaxes(range=[lo - pad, hi + pad], row=1, col=1)
    fig.update_xaxes(title_text=p.name + (" (log)" if p.log else ""), row=1, col=1)
    fig.update_yaxes(title_text=inp.metric, row=1, col=1)


def _bin_panel(fig: go.Figure, inp: _FigureInput) -> None:
    """The objective per value or bin, one box each."""
    p, (xs, ys) = inp.param, inp.values()
    for g in p.groups:
        inside = (xs >= g.low) & (xs <= g.high) if g.low != g.high else xs == g.low
        if inside.any():  # an empty value is a gap on the axis, not a box at 0
            fig.add_trace(_box(g.label, ys[inside], "#6baed6"), row=1, col=2)
    order = [g.label for g in p.groups]
    fig.update_xaxes(title_text=p.name, type="category", categoryorder="array", categoryarray=order, row=1, col=2)


def _box(label: str, ys: Any, colour: str) -> go.Box:
    """A box drawn from its quartiles, not its points: the same size for 10 trials or 10,000."""
    import numpy as np
    import plotly.graph_objects as go

    q1, med, q3 = (float(v) for v in np.percentile(ys, [25, 50, 75]))
    return go.Box(
        x=[label],
        q1=[q1],
        median=[med],
        q3=[q3],
        lowerfence=[float(np.min(ys))],
        upperfence=[float(np.max(ys))],
        mean=[float(np.mean(ys))],
        name=label,
        marker_color=colour,
        showlegend=False,
        hovertemplate=f"{label}: n={len(ys)}<extra></extra>",
    )


def _categorical_figure(p: CategoricalAnalysis, trials: Sequence[optuna.trial.FrozenTrial], metric: str) -> go.Figure:
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=(f"{p.name} vs {metric}", "mean per choice"))
    kept = p.recommendation.choices
    for c in p.choices:
        colour = _KIND_COLOUR["drop"] if c.worse else ("#08519c" if kept is None or c.choice in kept else "#9ecae1")
        ys = np.array([t.value for t in trials if t.params[p.name] == c.choice], dtype=float)
        fig.add_trace(
            go.Box(y=ys, name=str(c.choice), boxpoints="all", jitter=0.4, pointpos=0, marker_color=colour, showlegend=False),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=[str(c.choice)],
                y=[c.mean],
                marker_color=colour,
                text=[f"n={c.count}" + (" (drop)" if c.worse else "")],
                textposition="outside",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    fig.update_yaxes(title_text=metric, row=1, col=1)
    _layout(fig, p)
    return fig


def _layout(fig: go.Figure, p: ParamAnalysis) -> None:
    r = p.recommendation
    fig.update_layout(
        title={"text": f"<b>{html.escape(p.name)}</b>: {r.kind} {html.escape(recommended(p))}", "x": 0.01},
        height=420,
        margin={"t": 80, "l": 60, "r": 20, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        template="plotly_white",
    )


def html_page(a: Analysis, figs: dict[str, go.Figure], metric: str, derived: str | None) -> str:
    """A self-contained HTML report (plotly.js inlined once, so it opens offline)."""
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(c))}</td>"
            for c in (
                p.name,
                p.searched,
                format_statistic(getattr(p, "pearson_r", None)),
                format_statistic(getattr(p, "spearman_rho", None)),
                format_statistic(p.importance, ".2f"),
                p.top_range,
                p.recommendation.kind,
                recommended(p),
            )
        )
        + f"</tr><tr class='reason'><td colspan='8'>{html.escape(p.recommendation.reason)}</td></tr>"
        for p in a.params.values()
    )
    parts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"hpo-{html_id(name)}", config={"displaylogo": False})
        for i, (name, fig) in enumerate(figs.items())
    ]
    best = "-" if a.best_number is None else f"#{a.best_number}: {a.best_value:.6g}"
    message_html = f"<p class='message'><b>{html.escape(a.message)}</b></p>" if a.message else ""
    if a.noise is not None:
        message_html += f"<p>Noise floor: sd {a.noise.sd:.3g} ({html.escape(a.noise.source)}).</p>"
    derived_html = f"<p>Derived space: <code>{html.escape(derived)}</code></p>" if derived else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hpo analyze: {html.escape(a.study)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
tr.reason td {{ color: #555; font-size: 0.9em; border-bottom: 2px solid #ccc; }}
</style></head><body>
<h1>Study {html.escape(a.study)}</h1>
<p>{a.n_complete} COMPLETE of {a.n_trials} trials; metric {html.escape(metric)} ({a.direction}); best trial {best};
importance: {a.importance_method or "not computed"}.</p>
<p>Top trials: {html.escape(a.top_reason)}.</p>
{message_html}{derived_html}
<table><tr><th>parameter</th><th>searched</th><th>pearson r</th><th>spearman rho</th><th>importance</th>
<th>top range</th><th>recommendation</th><th>next</th></tr>{rows}</table>
{"".join(parts)}
</body></html>
"""


def markdown(a: Analysis, metric: str, derived: str | None) -> str:
    """The analysis as a Markdown note (optuna-dashboard shows it on the study page)."""
    best = "no COMPLETE trial" if a.best_number is None else f"best trial #{a.best_number}, {metric} = {a.best_value:.6g}"
    lines = [
        f"## hpo analyze: {a.study}",
        "",
        f"{a.n_complete} COMPLETE of {a.n_trials} trials, {metric} ({a.direction}), {best}. Top trials: {a.top_reason}.",
        "",
        "| parameter | searched | pearson r | spearman rho | importance | top range | recommendation |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in a.params.values():
        lines.append(
            f"| {p.name} | {p.searched} | {format_statistic(getattr(p, 'pearson_r', None))} | "
            f"{format_statistic(getattr(p, 'spearman_rho', None))} | "
            f"{format_statistic(p.importance, '.2f')} | {p.top_range} | **{p.recommendation.kind}** {recommended(p)} |"
        )
    lines.append("")
    if a.message:
        lines += [f"**{a.message}**", ""]
    if a.noise is not None:
        lines += [f"Noise floor: sd {a.noise.sd:.3g} ({a.noise.source}).", ""]
    lines += [f"- **{p.name}**: {p.recommendation.reason}" for p in a.params.values()]
    if derived:
        lines += ["", f"Derived space: `{derived}`"]
    return "\n".join(lines) + "\n"


def html_id(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "_", name)
