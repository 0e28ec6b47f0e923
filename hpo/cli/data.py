"""`hpo data`: the data ledger, one version name per set of split digests."""

from __future__ import annotations

from typing import Any, Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP
from hpo.secrets import masked_url


def data(
    ctx: typer.Context,
    version: Optional[str] = typer.Argument(None, help="One data version (e.g. v0.1.0). Default: all."),
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON value, nothing else."),
) -> None:
    """List the data versions the ledger knows: rows, columns and digests per split, the studies and
    promoted runs that used each, and the source versions seen."""

    def body() -> None:
        from hpo.cli._output import print_json
        from hpo.ledger import data_versions
        from hpo.workspace import load_workspace

        ws = load_workspace()
        url = ws.storage_url(storage)
        rows = data_versions(storage, version, workspace=ws)
        if as_json:
            print_json(rows[0] if version is not None else rows)
            return
        if not rows:
            typer.echo(f"no data versions yet in {masked_url(url)} (the first `hpo run` of a space records its version)")
            return
        if version is not None:
            for line in _detail(rows[0]):
                typer.echo(line)
            return
        _table(rows, url)

    guarded(body, ctx)


def _short(digests: dict[str, str]) -> str:
    return " ".join(f"{s[:2]}:{digests.get(s, '?')[:8]}" for s in ("train", "validation", "test"))


def _promoted(row: dict[str, Any]) -> str:
    runs = row["promoted_runs"]
    return "?" if runs is None else str(len(runs))


def _table(rows: list[dict[str, Any]], url: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Data versions in {masked_url(url)}", title_justify="left")
    for col in ("version", "rows (train/val/test)", "cols", "digests", "studies", "promoted", "source versions"):
        table.add_column(col, justify="right" if col in ("cols", "promoted") else "left")
    for r in rows:
        n = r["rows"] or {}
        table.add_row(
            r["version"],
            "/".join(str(n.get(s, "?")) for s in ("train", "validation", "test")),
            str(r["columns"] or "?"),
            _short(r["digests"]),
            ", ".join(r["studies"]) or "-",
            _promoted(r),
            ", ".join(r["src_versions"]) or "-",
        )
    out = Console()
    (out if out.is_terminal else Console(width=160)).print(table)


def _detail(r: dict[str, Any]) -> list[str]:
    n = r["rows"] or {}
    lines = [
        f"version      {r['version']}",
        f"source       {r['source'] or '?'}, target {r['target'] or '?'} ({r['task'] or '?'}), {r['columns'] or '?'} columns",
        f"recorded     {r['recorded_at'] or '?'}, first by study {r['first_study'] or '?'}",
    ]
    for s in ("train", "validation", "test"):
        lines.append(f"{s:<12} {n.get(s, '?')} rows, digest {r['digests'].get(s, '?')}")
    lines.append(f"studies      {', '.join(r['studies']) or 'none'}")
    runs = r["promoted_runs"]
    if runs is None:
        lines.append("promoted     unknown (the MLflow store does not answer)")
    else:
        lines.append(f"promoted     {len(runs)} run(s)")
        lines += [f"  {x['run_id']} (study {x['study']}, trial #{x['trial']}, source {x['src_version']})" for x in runs]
    lines.append(f"source       {', '.join(r['src_versions']) or 'none seen'}")
    return lines
