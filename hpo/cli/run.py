"""`hpo run`: create or resume a study and run it to its budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hpo.cli._guard import guarded


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
) -> None:
    """Create or resume the study of SPACE and run it to its n_trials budget."""

    def body() -> None:
        from rich.console import Console

        from hpo.cli._output import BarProgress, print_json, print_result
        from hpo.run import run_study

        err = Console(stderr=True)
        progress = None if quiet or as_json else BarProgress(err)
        result = run_study(
            space,
            storage=storage,
            jobs=jobs,
            progress=progress,
            n_trials=_whole("--n-trials", n_trials),
            timeout=_seconds("--timeout", timeout),
        )
        if as_json:
            print_json(result.as_dict())
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


# Parsed here, not by Typer: a value that is no number is one line naming the option, as a bad range is.
def _whole(option: str, text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        raise _bad(option, "a whole number", text) from None


def _seconds(option: str, text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        raise _bad(option, "a number of seconds", text) from None


def _bad(option: str, what: str, text: str | None) -> Exception:
    from hpo.errors import HpoError

    return HpoError(f"{option} must be {what}, but got {text!r}")
