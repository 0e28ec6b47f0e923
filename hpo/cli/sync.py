"""`hpo sync`: the MLflow projection of studies rebuilt from the Optuna storage."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP


def sync(
    ctx: typer.Context,
    study: Optional[str] = typer.Option(None, help="Study name. Default: every hpo study in the storage."),
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per study."),
) -> None:
    """Rebuild the MLflow projection of studies from the Optuna storage (idempotent)."""

    def body() -> None:
        from hpo.cli._output import print_json
        from hpo.errors import HpoError
        from hpo.secrets import masked_url
        from hpo.storage import hpo_study_names, load_study
        from hpo.tracking import client, repair_store, sync_study, tracking_uri
        from hpo.workspace import load_workspace

        ws = load_workspace()
        url = ws.storage_url(storage)
        names = [study] if study else hpo_study_names(url)
        repaired = repair_store(tracking_uri())
        if repaired:
            typer.echo(repaired, err=True)
        c = client()
        failed = []
        for name in names:
            try:
                r = sync_study(ws, load_study(url, name), c)
            except HpoError as e:
                if study:
                    raise
                # One study MLflow cannot take must not keep the others out of it: say why, go on.
                failed.append(name)
                line = " ".join(str(e).split())
                typer.echo(f"error: {line if line.startswith(f'study {name!r}') else f'study {name!r}: {line}'}", err=True)
                continue
            if as_json:
                print_json(r.__dict__)
            else:
                typer.echo(
                    f"{name}: {r.created} run(s) created, {r.completed} completed, {r.unchanged} already logged "
                    f"(experiment {r.experiment_id} at {masked_url(tracking_uri())})"
                )
        if failed:
            raise HpoError(f"{len(failed)} of {len(names)} studies were not synced: {', '.join(failed)}")

    guarded(body, ctx)
