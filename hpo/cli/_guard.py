"""`guarded`: how every verb turns an ``HpoError`` into one line on stderr and a non-zero exit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import typer

from hpo.errors import CLI_FLAGS, HpoError, disk_full
from hpo.secrets import masked

T = TypeVar("T")


def guarded(fn: Callable[[], T], ctx: typer.Context | None = None, renamed: Mapping[str, str] | None = None) -> T:
    """Run a verb's body; an ``HpoError`` becomes its message on stderr and a non-zero exit.

    Every URL in the message is masked: a message may quote a library's error that quotes the URL.
    While the body runs, :func:`hpo.errors.option` names the verb's flags (``--top``) instead of the
    library's keywords (given the verb's ``ctx``); ``renamed`` maps a library keyword to the verb's
    parameter where they differ.
    """
    token = CLI_FLAGS.set(None if ctx is None else _flags(ctx, renamed or {}))
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
    finally:
        CLI_FLAGS.reset(token)


def _flags(ctx: typer.Context, renamed: Mapping[str, str]) -> dict[str, str]:
    """The command's flags by parameter name (the longest spelling), and its arguments by their shown name."""
    flags: dict[str, str] = {}
    for p in ctx.command.params:
        if p.name is None:
            continue
        if p.param_type_name == "option":
            flags[p.name] = max(p.opts, key=len)
        else:
            flags[p.name] = p.name.upper()  # as the usage line shows an argument
    for keyword, parameter in renamed.items():
        if parameter in flags:
            flags[keyword] = flags[parameter]
    return flags
