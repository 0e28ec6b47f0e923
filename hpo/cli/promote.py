"""`hpo promote`: a trial re-trained, verified and logged into its data-version experiment."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP, STUDY_HELP


def promote(
    ctx: typer.Context,
    trial: str = typer.Argument(..., help="Trial number, or `best`."),
    study: Optional[str] = typer.Option(None, "--study", "-s", help=STUDY_HELP),
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
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

    guarded(body, ctx)
