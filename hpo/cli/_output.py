"""Everything the CLI draws: the run's progress bar and closing tables, the analysis table, the
study listing and `hpo show`. The library returns data; this module turns it into text.
"""

from __future__ import annotations

import json
import math
import signal
import statistics
import time
from typing import TYPE_CHECKING, Any

from hpo.analyze import (
    Analysis,
    CategoricalAnalysis,
    NumericAnalysis,
    ParamAnalysis,
    format_number,
    format_p_value,
    format_statistic,
    recommended,
)
from hpo.run import Progress, RunResult, StudySnapshot
from hpo.secrets import masked, masked_url
from hpo.studies import StudyDetail

if TYPE_CHECKING:
    from rich.console import Console


def print_json(data: Any, indent: int | None = None) -> None:
    """`--json`: one JSON document on stdout, nothing else; no URL in it shows its password."""
    import typer

    typer.echo(masked(json.dumps(data, indent=indent)))


def fmt(value: Any) -> str:
    """A value in a table cell: floats to 6 significant digits, nothing as `-`."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)


def states(counts: dict[str, int]) -> str:
    return " ".join(f"{n} {s.lower()}" for s, n in counts.items()) or "none"


# --- hpo run ----------------------------------------------------------------------------------


class BarProgress(Progress):
    """A rich progress bar on stderr: trials done/total, best value so far, elapsed time."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar: Any = None
        self._task: Any = None
        self._budget: int | None = None
        self._start = time.perf_counter()

    def start(self, study: str, budget: int | None, snapshot: StudySnapshot, resumed: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        verb = "Resuming" if resumed else "Starting"
        self._budget = budget
        done = _done(snapshot, budget)
        left = "" if budget is None else f", {budget - done} to go"
        inherited = f", {snapshot.inherited} inherited from its parent study" if snapshot.inherited else ""
        self._console.print(f"{verb} study [bold]{study}[/] ({done} trials done{left}{inherited})")
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._task = self._bar.add_task("trials", total=budget, completed=done, best=_best(snapshot))
        self._bar.start()

    def update(self, snapshot: StudySnapshot) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=_done(snapshot, self._budget), best=_best(snapshot))

    def message(self, text: str) -> None:
        (self._bar.console if self._bar is not None else self._console).print(text, highlight=False, markup=False)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _done(s: StudySnapshot, budget: int | None) -> int:
    """Budget slots done, never more than the budget (slots left over from a larger one are not)."""
    return s.done if budget is None else min(s.done, budget)


def _best(s: StudySnapshot) -> str:
    return "best -" if s.best is None else f"best {s.best.value:.5g} (#{s.best.number})"


def print_result(console: Console, r: RunResult) -> None:
    """The closing table: the best trial, and how many trials ended in each state."""
    from rich.table import Table

    best = r.after.best
    head = f"Study [bold]{r.study}[/]: {r.ran} trial(s) run in {r.elapsed_seconds:.1f}s"
    if r.interrupted:
        by = "Ctrl-C" if r.stop_signal in (None, signal.SIGINT) else signal.Signals(r.stop_signal).name
        head += f" [yellow](stopped by {by}; run again to resume)[/]"
    console.print(head)
    if best is not None:
        console.print(f"Best trial [bold]#{best.number}[/]: {r.metric} = [bold]{best.value:.6g}[/] ({r.direction})")
        t = Table(show_header=True)
        t.add_column("parameter")
        t.add_column("value", justify="right")
        for k, v in best.params.items():
            t.add_row(k, fmt(v))
        t.add_row("seed", fmt(best.seed), style="dim")
        console.print(t)
    states = Table(title="Trials by state")
    for s in r.after.states:
        states.add_column(s.lower(), justify="right")
    states.add_row(*[str(n) for n in r.after.states.values()])
    console.print(states)
    if r.after.inherited:
        console.print(f"{r.after.inherited} of the COMPLETE trials were inherited from the parent study (warm start).")
    console.print(f"Storage: {masked_url(r.storage)}", highlight=False)


# --- hpo analyze ------------------------------------------------------------------------------


_KIND_STYLE = {"narrow": "green", "widen": "yellow", "keep": "dim", "fix": "cyan", "drop": "red", "none": "dim"}


def print_analysis(console: Console, a: Analysis, metric: str, groups: bool = False) -> None:
    """The summary table, one line of reasons per parameter, and (``groups``) the per-value tables."""
    from rich.table import Table

    best = "no COMPLETE trial" if a.best_number is None else f"best #{a.best_number} {metric} = {a.best_value:.6g}"
    console.print(
        f"Study [bold]{a.study}[/]: {a.n_complete} COMPLETE of {a.n_trials} trials, {metric} ({a.direction}), {best}",
        highlight=False,
    )
    if not a.enough:
        console.print(
            f"[yellow]Only {a.n_complete} COMPLETE trial(s): hpo recommends from {a.min_trials}; "
            "the statistics below are for reading only.[/]"
        )
    t = Table(show_header=True, header_style="bold")
    for col, just in (
        ("parameter", "left"),
        ("searched", "left"),
        ("pearson r (p)", "right"),
        ("spearman rho (p)", "right"),
        ("importance", "right"),
        (f"top {a.top_fraction:.0%}{' + noise' if a.top_count > _top_share(a) else ''} ({a.top_count})", "left"),
        ("best", "right"),
        ("recommendation", "left"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for p in a.params.values():
        r = p.recommendation
        if isinstance(p, NumericAnalysis):
            pr = f"{format_statistic(p.pearson_r)} ({format_p_value(p.pearson_p)})"
            sp = f"{format_statistic(p.spearman_rho)} ({format_p_value(p.spearman_p)})"
            best_v = format_number(p.best)
        else:
            pr, sp, best_v = "-", f"groups p={format_p_value(p.groups_p)}", str(p.best)
        t.add_row(
            p.name,
            p.searched + (" (log)" if getattr(p, "log", False) else ""),
            pr,
            sp,
            format_statistic(p.importance, ".2f"),
            p.top_range,
            best_v,
            f"[{_KIND_STYLE[r.kind]}]{r.kind}[/] {recommended(p)}",
        )
    console.print(t)
    if a.top_reason:
        console.print(f"Top trials: {a.top_reason}.", highlight=False, soft_wrap=True)
    if a.noise is not None:
        console.print(f"Noise floor: sd {a.noise.sd:.3g} ({a.noise.source}).", highlight=False)
    if a.message:
        console.print(f"[yellow]{a.message}.[/]", highlight=False, soft_wrap=True)
    for p in a.params.values():
        console.print(f"  [bold]{p.name}[/] {p.recommendation.kind}: {p.recommendation.reason}", highlight=False, soft_wrap=True)
    if groups:
        for p in a.params.values():
            console.print(_group_table(p, metric))


def _top_share(a: Analysis) -> int:
    """The top trials by ``--top`` alone: more are top trials when they are within the noise floor."""
    import math

    return min(a.n_complete, max(3, math.ceil(a.top_fraction * a.n_complete)))


def _group_table(p: ParamAnalysis, metric: str) -> Any:
    from rich.table import Table

    t = Table(title=f"{p.name}: {metric} per {'choice' if isinstance(p, CategoricalAnalysis) else 'value or bin'}")
    for col in ("value", "trials", "mean", "median", "best"):
        t.add_column(col, justify="left" if col == "value" else "right")
    if isinstance(p, CategoricalAnalysis):
        t.add_column("worse than best (p)", justify="right")
        for c in p.choices:
            t.add_row(
                str(c.choice),
                str(c.count),
                format_statistic(c.mean, ".4g"),
                format_statistic(c.median, ".4g"),
                format_statistic(c.best, ".4g"),
                format_p_value(c.p_worse) + (" worse" if c.worse else ""),
            )
    else:
        for g in p.groups:
            t.add_row(
                g.label,
                str(g.count),
                format_statistic(g.mean, ".4g"),
                format_statistic(g.median, ".4g"),
                format_statistic(g.best, ".4g"),
            )
    return t


# --- hpo show ---------------------------------------------------------------------------------


def show_lines(d: StudyDetail) -> list[str]:
    """`hpo show`: one study, a line per fact."""
    i, r = d.info, d.record
    lines = [
        f"study        {i.name}" + ("" if i.by_hpo else " (not created by hpo)"),
        f"metric       {fmt(i.metric)} ({i.direction}), model {fmt(r.model)}",
        f"data         {fmt(i.data_version)}" + "".join(f", {k} {v[:12]}" for k, v in (r.digests or {}).items()),
        f"source       {fmt(r.src_version)} (commit {fmt(r.commit)[:12]}" + (", dirty" if r.dirty else "") + ")",
        f"space        {fmt(r.space_path)}, created {fmt(i.created_at)}",
        "scoring      "
        + (
            f"{d.cv['folds']}-fold cross-validation, {d.cv.get('repeats', 1)} repeat(s), "
            f"seed {d.cv.get('seed', 0)}: the fold mean"
            if d.cv
            else "the validation split"
        ),
        f"trials       {states(i.states)} of budget {fmt(d.n_trials)}"
        + (f" ({len(r.inherited_numbers)} inherited)" if r.inherited_numbers else ""),
        "lineage      " + " <- ".join([i.name, *d.ancestors]),
    ]
    if d.children:
        lines.append(f"derived      {', '.join(d.children)}")
    inh = r.inherited or {}
    if inh:
        first = ", ".join(f"#{n}" for n in inh.get("run_first", [])) or "none"
        if inh.get("mode") == "transfer":
            lines.append(
                f"warm start   transfer from {inh.get('study')} (other data): its trials {first} ran first; no values copied"
            )
        else:
            lines.append(
                f"warm start   history: {len(inh.get('trials', []))} trials of {inh.get('study')}; its trials {first} ran first"
            )
    for reason in (r.derived_from or {}).get("reasons", []):
        lines.append(f"  because    {reason}")
    b = d.best
    if b is None:
        lines.append("best         no COMPLETE trial yet")
    else:
        lines.append(f"best         #{b.number}: {i.metric or 'value'} = {fmt(b.value)}, seed {fmt(b.seed)}")
        lines.append(f"  params     {json.dumps(b.params)}")
        if b.fold_values:
            folds = ", ".join(f"{v:.4g}" for v in b.fold_values)
            sd = f" (sd {statistics.stdev(b.fold_values):.3g})" if len(b.fold_values) > 1 else ""
            lines.append(f"  folds      {folds}{sd}")
        if b.inherited_from:
            lines.append(f"  inherited  from trial #{b.inherited_from['trial']} of {b.inherited_from['study']}")
        if b.mlflow_run_id:
            lines.append(f"  MLflow run {b.mlflow_run_id}")
        lines.append(f"  promote    hpo promote {b.number} --study {i.name}")
    return lines
