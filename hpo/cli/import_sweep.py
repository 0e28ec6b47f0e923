"""`hpo import-sweep`: a W&B sweep converted into a space file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hpo.cli._guard import guarded


def import_sweep(
    ctx: typer.Context,
    sweep: Path = typer.Argument(..., help="A W&B sweep configuration (YAML)."),
    data: str = typer.Option(..., "--data", help="The data source: a table file or sklearn:<name>."),
    target: str = typer.Option("target", help="The target column."),
    version: str = typer.Option("v0.1.0", help="The data version (vMAJOR.MINOR.PATCH)."),
    study: Optional[str] = typer.Option(None, help="The study name. Default: the sweep's name, else the file's name."),
    model: str = typer.Option("catboost", help="The model: a registry name, an estimator class or module:function."),
    metric: Optional[str] = typer.Option(None, help="The hpo metric, for a sweep whose metric names none of hpo's."),
    n_trials: Optional[int] = typer.Option(None, "--n-trials", min=1, help="The budget. Default: the sweep's run_cap."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the space file here. Default: print it."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --output file."),
) -> None:
    """Convert a W&B sweep into a space file; say what could not be carried over."""

    def body() -> None:
        from hpo.sweep import check_output, convert_sweep, read_sweep, write_space_file

        if output is not None:
            check_output(output, force)
        result = convert_sweep(
            read_sweep(sweep),
            source=str(sweep),
            data=data,
            target=target,
            version=version,
            study=study,
            model=model,
            metric=metric,
            n_trials=n_trials,
        )
        for item in result.not_carried:
            typer.echo(f"not carried over: {item}", err=True)
        for note in result.notes:
            typer.echo(f"note: {note}", err=True)
        if output is None:
            typer.echo(result.text, nl=False)
            return
        write_space_file(output, result.text, force=force)
        s = result.space
        typer.echo(
            f"wrote {output}: study {s.study!r}, {len(s.params)} tuned params, {len(s.fixed)} fixed, metric {s.metric} "
            f"({s.direction}), sampler {s.sampler.name}, pruner {s.pruner.name}; next: hpo validate {output}"
        )

    guarded(body, ctx, renamed={"path": "output"})
