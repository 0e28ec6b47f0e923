"""`hpo analyze`: per-parameter trends in a study, and the narrowed or widened space they recommend."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP, STUDY_HELP


def analyze(
    ctx: typer.Context,
    study: Optional[str] = typer.Option(None, "--study", "-s", help=STUDY_HELP),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="Parameter to analyse (repeat it). Default: all."),
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    top: float = typer.Option(0.2, help="Fraction of best trials whose range counts as where the top trials sit."),
    min_trials: int = typer.Option(10, help="COMPLETE trials needed before anything is recommended."),
    importance: str = typer.Option("ped-anova", help="Optuna importance evaluator: ped-anova, fanova (slow), mdi or none."),
    name: Optional[str] = typer.Option(None, help="Study name of the derived space. Default: <study>-gen<N>."),
    warm_start: bool = typer.Option(
        True, help="Let the derived study see the parent's trials (same data) and run its best configurations first."
    ),
    noise_refits: Optional[int] = typer.Option(
        None,
        help="Re-fit the best trial with this many other seeds to measure the noise floor (0: none). "
        "Default: a cross-validated study's fold spread (no re-fit), otherwise 3.",
    ),
    data_version: Optional[str] = typer.Option(
        None, help="Derive for this new data version (transfer): its study starts from this study's best configurations."
    ),
    data_source: Optional[str] = typer.Option(
        None, help="The new version's data.source: a path, sklearn:<name>, or train=PATH,validation=PATH,test=PATH."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the analysis; write nothing (no report, space, note or artifact)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, nothing else."),
) -> None:
    """Find per-parameter trends in a study and recommend (and write) a narrowed or widened space."""

    def body() -> None:
        from rich.console import Console

        from hpo.analyze import analyze_study
        from hpo.cli._output import print_analysis, print_json
        from hpo.prepare import check_writable
        from hpo.workspace import load_workspace, relative_path

        err = Console(stderr=True)
        ws = load_workspace()
        if not dry_run:  # the report, the derived space and the noise floor are written
            check_writable(ws, storage, (ws.studies_dir, ws.search_spaces_dir), hint="; --dry-run writes nothing")
        result = analyze_study(
            study,
            params=param or None,
            storage=storage,
            top=top,
            min_trials=min_trials,
            importance=None if importance == "none" else importance,
            write=not dry_run,
            name=name,
            warm_start=warm_start,
            noise_refits=noise_refits,
            data_version=data_version,
            data_source=data_source,
            workspace=ws,
            warn=lambda text: err.print(f"warning: {text}", highlight=False, markup=False),
        )
        if as_json:
            print_json(result.as_dict())
            return
        out = Console()
        if not out.is_terminal:
            out = Console(width=160)  # piped or logged: do not squeeze the table into 80 columns
        print_analysis(out, result.analysis, result.metric, groups=bool(param))
        if result.html is not None:
            out.print(f"Report: {relative_path(result.html, Path.cwd())}", highlight=False)
        if result.derived_space is not None:
            path = relative_path(result.derived_space, Path.cwd())
            out.print(f"Derived space: {path} (study {result.derived_study}); run it with: hpo run {path}", highlight=False)
        for note in result.notes:
            out.print(note, style="dim", highlight=False)

    guarded(body, ctx, renamed={"params": "param"})
