"""`hpo dashboard`: optuna-dashboard on the study storage."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP


def dashboard(
    ctx: typer.Context,
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

    guarded(body, ctx)
