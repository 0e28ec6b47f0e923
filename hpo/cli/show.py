"""`hpo show`: one study, a line per fact."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP


def show(
    ctx: typer.Context,
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

    guarded(body, ctx)
