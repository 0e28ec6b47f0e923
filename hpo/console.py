"""Terminal output: the progress bar and the closing tables, built from the runner's data."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from hpo.runner import Progress, RunResult, StudySnapshot

if TYPE_CHECKING:
    from rich.console import Console


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


class BarProgress(Progress):
    """A rich progress bar on stderr: trials done/total, best value so far, elapsed time."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar: Any = None
        self._task: Any = None
        self._start = time.perf_counter()

    def start(self, study: str, budget: int | None, snapshot: StudySnapshot, resumed: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        verb = "Resuming" if resumed else "Starting"
        left = "" if budget is None else f", {max(budget - snapshot.finished, 0)} to go"
        inherited = f", {snapshot.inherited} inherited from its parent study" if snapshot.inherited else ""
        self._console.print(f"{verb} study [bold]{study}[/] ({snapshot.finished} trials done{left}{inherited})")
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._task = self._bar.add_task("trials", total=budget, completed=snapshot.finished, best=_best(snapshot))
        self._bar.start()

    def update(self, snapshot: StudySnapshot) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=snapshot.finished, best=_best(snapshot))

    def message(self, text: str) -> None:
        (self._bar.console if self._bar is not None else self._console).print(text, highlight=False, markup=False)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _best(s: StudySnapshot) -> str:
    return "best -" if s.best is None else f"best {s.best.value:.5g} (#{s.best.number})"


def print_result(console: Console, r: RunResult) -> None:
    """The closing table: the best trial, and how many trials ended in each state."""
    from rich.table import Table

    best = r.after.best
    head = f"Study [bold]{r.study}[/]: {r.ran} trial(s) run in {r.elapsed_seconds:.1f}s"
    if r.interrupted:
        head += " [yellow](stopped by Ctrl-C; run again to resume)[/]"
    console.print(head)
    if best is not None:
        console.print(f"Best trial [bold]#{best.number}[/]: {r.metric} = [bold]{best.value:.6g}[/] ({r.direction})")
        t = Table(show_header=True)
        t.add_column("parameter")
        t.add_column("value", justify="right")
        for k, v in best.params.items():
            t.add_row(k, _fmt(v))
        t.add_row("seed", _fmt(best.seed), style="dim")
        console.print(t)
    states = Table(title="Trials by state")
    for s in r.after.states:
        states.add_column(s.lower(), justify="right")
    states.add_row(*[str(n) for n in r.after.states.values()])
    console.print(states)
    if r.after.inherited:
        console.print(f"{r.after.inherited} of the COMPLETE trials were inherited from the parent study (warm start).")
    console.print(f"Storage: {r.storage}", highlight=False)
