"""`hpo run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hpo.cli import app, guarded


@app.command()
def run(
    space: Path = typer.Argument(..., help="Search-space YAML file."),
    storage: Optional[str] = typer.Option(
        None,
        help="Optuna storage URL. Default: $HPO_STORAGE, then tool.hpo.storage in pyproject.toml, then sqlite under studies/.",
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes on this host (they share the study's budget)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; only errors and the best trial."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the outcome, nothing else."),
) -> None:
    """Create or resume the study of SPACE and run it to its n_trials budget."""

    def body() -> None:
        from rich.console import Console

        from hpo.cli._output import BarProgress, print_json, print_result
        from hpo.run import run_study

        err = Console(stderr=True)
        progress = None if quiet or as_json else BarProgress(err)
        result = run_study(space, storage=storage, jobs=jobs, progress=progress)
        if as_json:
            print_json(result.as_dict())
        elif quiet:
            b = result.after.best
            if b is not None:
                typer.echo(f"best trial #{b.number}: {result.metric} = {b.value:.6g} {json.dumps(b.params)}")
        else:
            print_result(Console(), result)

    guarded(body)
