"""`hpo studies`, `hpo show` and `hpo dashboard`."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli import app, guarded

STORAGE_HELP = "Optuna storage URL (default as for `hpo run`)."


@app.command()
def studies(
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list, nothing else."),
) -> None:
    """List the studies in a storage: data version, trials per state, best value, lineage."""

    def body() -> None:
        from rich.console import Console
        from rich.table import Table

        from hpo.cli._output import fmt, print_json, states
        from hpo.secrets import masked_url
        from hpo.studies import study_infos
        from hpo.workspace import load_workspace

        url = load_workspace().storage_url(storage)
        infos = study_infos(url)
        if as_json:
            print_json([i.as_dict() for i in infos])
            return
        if not infos:
            typer.echo(f"no studies in {masked_url(url)}")
            return
        table = Table(title=f"Studies in {masked_url(url)}", title_justify="left")
        for col in ("study", "data", "metric", "trials", "best", "#", "derived from", "created"):
            table.add_column(col, justify="right" if col in ("best", "#") else "left")
        for i in infos:
            table.add_row(
                i.name + ("" if i.by_hpo else " (not hpo)"),
                fmt(i.data_version),
                fmt(i.metric) + (f" ({i.direction[:3]})" if i.metric else ""),
                states(i.states),
                fmt(i.best_value),
                fmt(i.best_trial),
                fmt(i.derived_from),
                fmt(i.created_at),
            )
        out = Console()
        (out if out.is_terminal else Console(width=160)).print(table)

    guarded(body)


@app.command()
def show(
    study: str = typer.Argument(..., help="Study name."),
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, nothing else."),
) -> None:
    """Show one study: provenance, budget, lineage and its best trial."""

    def body() -> None:
        from hpo.cli._output import print_json, show_lines
        from hpo.studies import show_study
        from hpo.workspace import load_workspace

        s = show_study(load_workspace().storage_url(storage), study)
        if as_json:
            print_json(s.as_dict())
            return
        typer.echo("\n".join(show_lines(s)))

    guarded(body)


@app.command()
def dashboard(
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on; 0.0.0.0 exposes the dashboard to the network."),
    port: int = typer.Option(8080, help="Port to listen on."),
    allow_write: bool = typer.Option(
        False,
        "--allow-write",
        help="Let the dashboard change the storage (delete and rename studies, save notes, tell trials). "
        "Its Delete skips every check of `hpo delete`. Default: read-only.",
    ),
) -> None:
    """Serve optuna-dashboard on the study storage, read-only (live: it reads the storage on every request)."""

    def body() -> None:
        from hpo.dashboard import serve

        serve(storage, host=host, port=port, allow_write=allow_write, say=lambda line: typer.echo(line, err=True))

    guarded(body)
