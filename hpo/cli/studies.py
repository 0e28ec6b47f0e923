"""`hpo studies`: the studies in a storage, one table row each."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP


def studies(
    ctx: typer.Context,
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

    guarded(body, ctx)
