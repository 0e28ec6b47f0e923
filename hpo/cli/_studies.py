"""`hpo studies`, `hpo show` and `hpo dashboard`."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from hpo.cli import app, guarded

STORAGE_HELP = "Optuna storage URL (default as for `hpo run`)."


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _states(states: dict[str, int]) -> str:
    return " ".join(f"{n} {s.lower()}" for s, n in states.items()) or "none"


@app.command()
def studies(
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list, nothing else."),
) -> None:
    """List the studies in a storage: data version, trials per state, best value, lineage."""

    def body() -> None:
        from rich.console import Console
        from rich.table import Table

        from hpo.studies import study_infos
        from hpo.workspace import load_workspace

        url = load_workspace().storage_url(storage)
        infos = study_infos(url)
        if as_json:
            typer.echo(json.dumps([i.as_dict() for i in infos]))
            return
        if not infos:
            typer.echo(f"no studies in {url}")
            return
        table = Table(title=f"Studies in {url}", title_justify="left")
        for col in ("study", "data", "metric", "trials", "best", "#", "derived from", "created"):
            table.add_column(col, justify="right" if col in ("best", "#") else "left")
        for i in infos:
            table.add_row(
                i.name + ("" if i.by_hpo else " (not hpo)"),
                _fmt(i.data_version),
                _fmt(i.metric) + (f" ({i.direction[:3]})" if i.metric else ""),
                _states(i.states),
                _fmt(i.best_value),
                _fmt(i.best_trial),
                _fmt(i.derived_from),
                _fmt(i.created_at),
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
        from hpo.studies import show_study
        from hpo.workspace import load_workspace

        s = show_study(load_workspace().storage_url(storage), study)
        if as_json:
            typer.echo(json.dumps(s))
            return
        lineage = s["lineage"]
        lines = [
            f"study        {s['name']}" + ("" if s["by_hpo"] else " (not created by hpo)"),
            f"metric       {_fmt(s['metric'])} ({s['direction']}), model {_fmt(s['model'])}",
            f"data         {_fmt(s['data_version'])}"
            + ("".join(f", {k} {v[:12]}" for k, v in (s["data_digests"] or {}).items())),
            f"source       {_fmt(s['src_version'])} (commit {_fmt(s['commit'])[:12]}"
            + (", dirty" if s["dirty"] else "")
            + ")",
            f"space        {_fmt(s['space_path'])}, created {_fmt(s['created_at'])}",
            f"trials       {_states(s['states'])} of budget {_fmt(s['n_trials'])}"
            + (f" ({s['inherited']} inherited)" if s["inherited"] else ""),
            "lineage      " + " <- ".join([s["name"], *lineage["ancestors"]]),
        ]
        if lineage["children"]:
            lines.append(f"derived      {', '.join(lineage['children'])}")
        for reason in lineage["reasons"]:
            lines.append(f"  because    {reason}")
        b = s["best"]
        if b is None:
            lines.append("best         no COMPLETE trial yet")
        else:
            lines.append(f"best         #{b['number']}: {s['metric'] or 'value'} = {_fmt(b['value'])}, seed {_fmt(b['seed'])}")
            lines.append(f"  params     {json.dumps(b['params'])}")
            if b["inherited_from"]:
                lines.append(f"  inherited  from trial #{b['inherited_from']['trial']} of {b['inherited_from']['study']}")
            if b["mlflow_run_id"]:
                lines.append(f"  MLflow run {b['mlflow_run_id']}")
            lines.append(f"  promote    hpo promote {b['number']} --study {s['name']}")
        typer.echo("\n".join(lines))

    guarded(body)


@app.command()
def dashboard(
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on; 0.0.0.0 exposes the dashboard to the network."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Serve optuna-dashboard on the study storage (live: it reads the storage on every request)."""

    def body() -> None:
        from hpo.dashboard import serve

        serve(storage, host=host, port=port, say=lambda line: typer.echo(line, err=True))

    guarded(body)
