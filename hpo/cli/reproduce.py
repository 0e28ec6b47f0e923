"""`hpo reproduce`: a promoted run re-trained from its tags and params alone, every metric compared."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli._guard import guarded


def reproduce(
    ctx: typer.Context,
    run_id: Optional[str] = typer.Argument(
        None, help="Run id of a promoted run (in a data-version experiment). Or name the trial with --study/--trial."
    ),
    study: Optional[str] = typer.Option(
        None, "--study", "-s", help="Reproduce the promoted run of a trial of this study (instead of a run id)."
    ),
    trial: str = typer.Option("best", help="With --study: the trial number, or best."),
    storage: Optional[str] = typer.Option(None, help="With --study: the Optuna storage URL (default as for `hpo run`)."),
    tolerance: float = typer.Option(1e-6, help="Largest |difference| allowed per metric."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the outcome, nothing else."),
) -> None:
    """Re-train a promoted run from its tags and params alone and compare every metric it logged."""

    def body() -> None:
        from hpo.cli._output import print_json
        from hpo.errors import HpoError
        from hpo.promote import promoted_run_id
        from hpo.promote import reproduce as run_reproduce

        if (run_id is None) == (study is None):
            raise HpoError("give a promoted run's id, or --study (with --trial, default best), but not both")
        r = run_reproduce(run_id or promoted_run_id(study, trial, storage=storage), tolerance=tolerance)
        if as_json:
            print_json(r.as_dict())
        else:
            if r.src_version != r.current_src_version:
                typer.echo(
                    f"note: the run was made at source {r.src_version}, the code here is {r.current_src_version}", err=True
                )
            width = max(len(c.name) for c in r.checks)
            for c in r.checks:
                mark = "ok" if c.ok else "DIFFERS"
                typer.echo(
                    f"{c.name:<{width}}  logged {c.recorded:<12.6g} re-trained {c.reproduced:<12.6g} |diff| {c.diff:.3g}  {mark}"
                )
            mc = r.model_check
            if mc is not None:
                mark = "ok" if r.model_ok else "DIFFERS"
                typer.echo(
                    f"logged model on {mc.rows} raw {mc.split} rows: max |diff| {mc.max_abs_diff:.3g} "
                    f"from the re-trained model  {mark}"
                )
            served = "" if mc is None else f", and the logged model's predictions on {mc.rows} raw {mc.split} rows"
            bad = [c.name for c in r.checks if not c.ok] + ([] if r.model_ok else ["the logged model's predictions"])
            if bad:
                typer.echo(
                    f"NOT reproduced: {len(bad)} of {len(r.checks) + (mc is not None)} checks differ by more than "
                    f"{r.tolerance:g} ({', '.join(bad)})"
                )
            else:
                typer.echo(f"Reproduced: all {len(r.checks)} metrics{served}, within {r.tolerance:g}")
        if not r.ok:
            raise typer.Exit(1)

    guarded(body, ctx)
