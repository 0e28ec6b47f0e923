"""`hpo promote` and `hpo reproduce`."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli import app, guarded


@app.command()
def promote(
    trial: str = typer.Argument(..., help="Trial number, or `best`."),
    study: Optional[str] = typer.Option(None, "--study", "-s", help="Study name. Default: the most recently created study."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (default as for `hpo run`)."),
    tolerance: float = typer.Option(
        1e-6, help="Largest |difference| allowed between the re-trained and the recorded validation metric."
    ),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="Promote from a git tree with uncommitted changes, or outside git (the run is tagged so)."
    ),
    again: bool = typer.Option(False, "--again", help="Promote a trial that was promoted before, as one more run."),
    register: Optional[str] = typer.Option(None, help="Register the model under this name in the MLflow Model Registry."),
    alias: str = typer.Option("champion", help="Alias that --register points at the new model version."),
    leaderboard: bool = typer.Option(
        False, "--leaderboard", help="Also update the leaderboard experiment's row for this data version."
    ),
    allow_degenerate: bool = typer.Option(
        False,
        "--allow-degenerate",
        help="Promote a model that predicts one class (or one value) for every validation and test row, or whose metric "
        "is at its worst possible value (the run is tagged so).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the outcome, nothing else."),
) -> None:
    """Re-train a trial, verify it reproduces, and log it into its data-version experiment."""

    def body() -> None:
        from hpo.cli._output import print_json
        from hpo.promote import promote as run_promote
        from hpo.schema import VAL
        from hpo.secrets import masked_url
        from hpo.tracking import tracking_uri

        say = (lambda _: None) if as_json else (lambda line: typer.echo(line, err=True))

        def warn(line: str) -> None:  # on stderr with --json too: stdout stays one JSON object
            typer.echo(f"warning: {line}", err=True)

        r = run_promote(
            trial,
            study=study,
            storage=storage,
            tolerance=tolerance,
            allow_dirty=allow_dirty,
            again=again,
            register=register,
            alias=alias,
            leaderboard=leaderboard,
            allow_degenerate=allow_degenerate,
            say=say,
            warn=warn,
        )
        if as_json:
            print_json(r.as_dict())
            return
        metric = r.check.name.removeprefix(VAL) if r.check else None
        test = f"; test {metric} {r.test_metrics[metric]:.6g}" if metric and metric in r.test_metrics else ""
        verb = "Already promoted" if r.existing else "Promoted"
        typer.echo(
            f"{verb}: trial #{r.trial} of {r.study} is run {r.run_id} in experiment {r.experiment} "
            f"({masked_url(tracking_uri())}){test}"
        )
        if r.model_uri:
            typer.echo(f"Model: {r.model_uri} (mlflow.pyfunc.load_model: predicts on raw rows of the table)")
        if r.native_model_uri:
            flavor = r.model_flavor or "catboost"  # runs promoted before other flavors were logged
            typer.echo(f"Native {flavor} model: {r.native_model_uri} (mlflow.{flavor}.load_model: takes hpo's encoded features)")
        if not r.existing:
            typer.echo(f"Check it any time with: hpo reproduce {r.run_id}")

    guarded(body)


@app.command()
def reproduce(
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

    guarded(body)
