"""`hpo worker`: join a study another process created and claim its budget slots until none is left."""

from __future__ import annotations

import signal
from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP, seconds


def worker(
    ctx: typer.Context,
    study: str = typer.Option(..., "--study", "-s", help="The study to join (created by `hpo run SPACE [--create-only]`)."),
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    timeout: Optional[str] = typer.Option(
        None, "--timeout", metavar="SECONDS", help="Start no new trial after this many seconds (running ones finish)."
    ),
    wait_for_study: str = typer.Option(
        "0", "--wait-for-study", metavar="SECONDS", help="Wait this long for the study's creator (it may start with the workers)."
    ),
    gpus: Optional[str] = typer.Option(
        None, "--gpus", metavar="LIST", help="Devices this worker's fits see, e.g. 0 or 0,1 (sets CUDA_VISIBLE_DEVICES)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; only errors and the best trial."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the outcome, nothing else."),
) -> None:
    """Join STUDY as one worker: claim budget slots until the budget is spent.

    Exit code 0 when no slot is left (or --timeout passed); 128 + the signal when one stopped it early:
    143 for SIGTERM, which fails the running trial and puts it back in its budget slot at once, 130
    for Ctrl-C. Start as many workers as you like, on any host: each slot is run once.
    """

    def body() -> int:
        from rich.console import Console

        from hpo.cli._output import BarProgress, print_json, print_result
        from hpo.run import join_study
        from hpo.run._devices import parse_devices

        err = Console(stderr=True)
        progress = None if quiet or as_json else BarProgress(err)
        result = join_study(
            study,
            storage=storage,
            progress=progress,
            timeout=seconds("--timeout", timeout),
            wait=seconds("--wait-for-study", wait_for_study) or 0.0,
            gpus=None if gpus is None else parse_devices(gpus),
        )
        if as_json:
            print_json(result.as_dict())
        elif quiet:
            b = result.after.best
            if b is not None:
                typer.echo(f"best trial #{b.number}: {result.metric} = {b.value:.6g}")
        else:
            print_result(Console(), result)
        return 0 if result.stop_signal is None else 128 + int(result.stop_signal)

    code = guarded(body, ctx, renamed={"wait": "wait_for_study"})
    if code:
        name = signal.Signals(code - 128).name
        typer.echo(f"worker stopped by {name} before the budget was spent (exit code {code})", err=True)
        raise typer.Exit(code)
