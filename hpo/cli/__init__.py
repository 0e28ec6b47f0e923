"""The ``hpo`` command: one thin function per verb (parse, call the library, print).

Heavy libraries are imported inside the verbs, so ``hpo --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from hpo.errors import HpoError, disk_full
from hpo.secrets import masked

app = typer.Typer(
    name="hpo",
    help="Optuna studies in isolated MLflow spaces: run, analyze, promote.",
    no_args_is_help=True,
    # --install-completion / --show-completion: Typer's, for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    # -h as well as --help, on `hpo` and every verb (a verb's context inherits it).
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from hpo import __version__

        typer.echo(f"hpo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print hpo's version and exit."
    ),
) -> None:
    """Optuna studies in isolated MLflow spaces: run, analyze, promote."""


T = TypeVar("T")


def guarded(fn: Callable[[], T]) -> T:
    """Run a verb's body; an ``HpoError`` becomes its message on stderr and a non-zero exit.

    Every URL in the message is masked: a message may quote a library's error that quotes the URL.
    """
    try:
        return fn()
    except HpoError as e:
        for line in masked(str(e)).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(e.exit_code) from None
    except Exception as e:
        # A full disk is no bug, whichever library's write met it first (and whatever it then calls it).
        full = disk_full(e)
        if full is None:
            raise
        typer.echo(f"error: {masked(str(full))}", err=True)
        raise typer.Exit(full.exit_code) from None


from hpo.cli import _analyze, _chores, _data, _promote, _run, _space, _studies, _sweep, _sync, _try  # noqa: E402,F401  (verbs register themselves on `app`)


def main() -> None:
    app(prog_name="hpo")


if __name__ == "__main__":
    main()
