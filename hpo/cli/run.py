"""`hpo run`: create or resume a study and run it to its budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import number, seconds, whole


def run(
    ctx: typer.Context,
    space: Path = typer.Argument(..., help="Search-space YAML file."),
    storage: Optional[str] = typer.Option(
        None,
        help="Optuna storage URL. Default: $HPO_STORAGE, then tool.hpo.storage in pyproject.toml, then sqlite under studies/.",
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes on this host (they share the study's budget)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; only errors and the best trial."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the outcome, nothing else."),
    n_trials: Optional[str] = typer.Option(
        None,
        "--n-trials",
        metavar="N",
        help="The study's budget instead of the space file's n_trials (as editing it: a resume may raise it).",
    ),
    timeout: Optional[str] = typer.Option(
        None,
        "--timeout",
        metavar="SECONDS",
        help="Seconds for this run instead of the space file's timeout: after it no new trial starts (running ones finish).",
    ),
    create_only: bool = typer.Option(
        False, "--create-only", help="Create or resume the study and fill its budget; run no trial (`hpo worker` joins it)."
    ),
    backend: str = typer.Option(
        "local",
        "--backend",
        metavar="local|ray|dask",
        help="Who runs the workers: this host, or a Ray or Dask cluster.",
    ),
    address: Optional[str] = typer.Option(None, "--address", help="The cluster: a Ray address (or auto), a Dask scheduler."),
    workers: Optional[str] = typer.Option(None, "--workers", metavar="N", help="Workers on the cluster (--backend ray or dask)."),
    cpus_per_worker: Optional[str] = typer.Option(None, "--cpus-per-worker", metavar="C", help="CPUs Ray gives each worker (1)."),
    gpus_per_worker: Optional[str] = typer.Option(
        None, "--gpus-per-worker", metavar="G", help="GPUs Ray or Dask give each worker (0); Ray sets CUDA_VISIBLE_DEVICES."
    ),
    gpus: Optional[str] = typer.Option(
        None, "--gpus", metavar="LIST", help="GPUs the workers share, e.g. 0,1: each sees its share (CUDA_VISIBLE_DEVICES)."
    ),
) -> None:
    """Create or resume the study of SPACE and run it to its n_trials budget."""

    def body() -> None:
        from rich.console import Console

        from hpo.cli._output import BarProgress, print_json, print_result
        from hpo.launch import engine_of
        from hpo.run import run_study
        from hpo.run._devices import parse_devices

        err = Console(stderr=True)
        progress = None if quiet or as_json or create_only else BarProgress(err)
        result = run_study(
            space,
            storage=storage,
            jobs=jobs,
            progress=progress,
            n_trials=whole("--n-trials", n_trials),
            timeout=seconds("--timeout", timeout),
            gpus=None if gpus is None else parse_devices(gpus),
            create_only=create_only,
            engine=engine_of(
                backend,
                address=address,
                workers=whole("--workers", workers),
                cpus_per_worker=number("--cpus-per-worker", cpus_per_worker),
                gpus_per_worker=number("--gpus-per-worker", gpus_per_worker),
                jobs=jobs if jobs != 1 else None,
                gpus=gpus,
                timeout=seconds("--timeout", timeout),
            ),
        )
        if as_json:
            print_json(result.as_dict())
            return
        if create_only:
            done = sum(n for state, n in result.after.states.items() if state not in ("WAITING", "RUNNING"))
            storage_flag = "" if storage is None else " --storage URL"
            how = "created" if result.created else "resumed"
            typer.echo(
                f"Study {result.study} is ready: a budget of {result.budget or 'unlimited'} trials, {done} finished ({how}). "
                f"Workers join it with `hpo worker --study {result.study}{storage_flag}`."
            )
            return
        if quiet:
            b = result.after.best
            if b is not None:
                typer.echo(f"best trial #{b.number}: {result.metric} = {b.value:.6g} {json.dumps(b.params)}")
        else:
            print_result(Console(), result)
        if result.note:
            typer.echo(f"note: {result.note}", err=True)

    guarded(body, ctx)
