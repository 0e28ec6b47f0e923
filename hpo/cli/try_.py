"""`hpo try`: one fit of a space in the scratch space, before a budget is spent on it."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli._guard import guarded


def try_(
    ctx: typer.Context,
    space: str = typer.Argument(..., help="Path to the space YAML file."),
    set_: Optional[list[str]] = typer.Option(
        None,
        "--set",
        help="A parameter's value, name=value (repeat it). Default: the middle of each range, a categorical's first choice.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, nothing else."),
) -> None:
    """Fit a space once and print its validation metrics; log the run in <project>-Scratch (no study)."""

    def body() -> None:
        from hpo.scratch import try_space

        r = try_space(space, set_ or [])
        for w in r.warnings:
            typer.echo(f"warning: {w}", err=True)
        if as_json:
            from hpo.cli._output import print_json  # only here: it imports hpo.analyze

            print_json(r.as_dict())
            return
        given = (
            f" ({', '.join(r.set_by_hand)} set by hand; the rest at the space's default point)"
            if r.set_by_hand
            else (" (the space's default point: the middle of each range, a categorical's first choice)")
        )
        typer.echo(f"Tried {r.space} once{given}, seed {r.seed}, in {r.fit_seconds:.2f} s:")
        typer.echo("  params     " + ", ".join(f"{k}={v!r}" for k, v in r.params.items()))
        scored = "validation" if r.fold_values is None else f"{len(r.fold_values)}-fold mean"
        for name, value in r.metrics.items():
            mark = "  <- the study's metric" if name == r.metric else ""
            typer.echo(f"  {scored:<10} {name:<11} {value:.6g}{mark}")
        if r.fold_values:
            typer.echo("  folds      " + ", ".join(f"{v:.4g}" for v in r.fold_values))
        if r.run_id:
            typer.echo(f"Scratch run {r.run_name} ({r.run_id}) in experiment {r.experiment}; no study was created.")
        else:
            typer.echo("No study was created.")

    guarded(body, ctx, renamed={"sets": "set_"})
