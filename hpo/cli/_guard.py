"""`guarded`: how every verb turns an ``HpoError`` into one line on stderr and a non-zero exit."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from hpo.errors import HpoError, disk_full
from hpo.secrets import masked

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
