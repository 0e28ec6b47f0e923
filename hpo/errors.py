"""The one exception family hpo raises for problems a user can fix."""

from __future__ import annotations

import errno
import os
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


class HpoError(Exception):
    """A problem with the user's input or environment, reported as one clear line per problem.

    The CLI prints the message (each line one complete problem) and exits non-zero; anything
    that is not an ``HpoError`` is a bug and keeps its traceback.
    """

    exit_code = 2


# The flags of the CLI verb under way, by the library keyword they set: set by the CLI's `guarded`, and
# handed on to the worker processes a run starts (a spawned process does not inherit it).
CLI_FLAGS: ContextVar[Mapping[str, str] | None] = ContextVar("hpo_cli_flags", default=None)


def option(name: str, value: object = None) -> str:
    """How a message names the setting ``name``, a keyword of the library call that raises it.

    Library words by default (`` `top` ``, or `` `top=0.5` `` with a value); while a CLI verb runs, the
    flag the user typed (``--top``), so that a message names what the reader can change.
    """
    flag = (CLI_FLAGS.get() or {}).get(name)
    if flag is not None:
        return flag if value is None else f"{flag} {value}"
    return f"`{name}`" if value is None else f"`{name}={value}`"


class SpaceError(HpoError):
    """The search-space file is missing, unparsable or breaks a rule."""


class DataError(HpoError):
    """The data version cannot be loaded or split as the space file says."""


class StudyError(HpoError):
    """The study in the storage conflicts with what was asked (changed space, unknown study)."""


class NoTrialCompleted(HpoError):
    """A run finished without a single COMPLETE trial."""

    exit_code = 1


class DiskFull(HpoError):
    """A write failed because its disk (or the user's quota) is full.

    The stores write in transactions (SQLite, PostgreSQL) or whole files, so what was written before is
    kept and the write under way left nothing behind: freeing space and running the command again
    resumes (a trial cut short is retried).
    """


_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_DISK_FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")
_PG_DISK_FULL = "53100"  # PostgreSQL's SQLSTATE disk_full


def disk_full(error: BaseException) -> DiskFull | None:
    """``error`` as one line if a full disk caused it, anywhere in its chain of causes, else None.

    Libraries wrap the cause in their own words (Optuna's storage blames "invalid data ..., e.g.
    exceeding max length"; MLflow repeats SQLAlchemy's error with its SQL and parameters): the line
    names the system's reason and the database or file that was being written.
    """
    what = disk_full_reason(error)
    if what is None:
        return None
    return DiskFull(
        f"{what}; what was written before is kept and nothing is half-written: free some space, then run the command again"
    )


def disk_full_reason(error: BaseException) -> str | None:
    """``disk full while writing <database or file>: <the system's reason>`` if a full disk caused ``error``, else None."""
    chain = _chain(error)
    for e in reversed(chain):  # the innermost cause has the system's own words
        reason = _full_reason(e)
        if reason is not None:
            where = next((w for w in map(_written, chain) if w), None)
            return f"disk full while writing {where or 'to disk'}: {reason}"
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes and contexts, outermost first, each once."""
    out: list[BaseException] = []
    todo = [error]
    while todo:
        e = todo.pop(0)
        if not any(e is seen for seen in out):
            out.append(e)
            todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return out


def _full_reason(e: BaseException) -> str | None:
    if isinstance(e, OSError) and e.errno is not None and e.errno in _DISK_FULL_ERRNOS:
        return os.strerror(e.errno)
    if getattr(e, "sqlite_errorname", None) == "SQLITE_FULL" or getattr(e, "pgcode", None) == _PG_DISK_FULL:
        return (str(e).splitlines() or ["disk full"])[0]
    text = str(e).lower()
    return next((phrase for phrase in _DISK_FULL_TEXTS if phrase in text), None)


def _written(e: BaseException) -> str | None:
    """The file or database ``e`` was raised while writing: its file name, or the innermost frame's database."""
    filename = getattr(e, "filename", None)
    if isinstance(filename, (str, bytes)) and filename:
        return _shown(os.fsdecode(filename))
    found = None
    tb = e.__traceback__
    while tb is not None:
        found = _database_of(tb.tb_frame.f_locals.get("self")) or found
        tb = tb.tb_next
    return found


def _database_of(obj: object) -> str | None:
    """The database of a SQLAlchemy connection, engine or session, or None for anything else."""
    for holder in (obj, getattr(obj, "engine", None), getattr(obj, "bind", None)):
        url = getattr(holder, "url", None)
        if url is None or not hasattr(url, "drivername") or not hasattr(url, "render_as_string"):
            continue
        if url.drivername.startswith("sqlite") and url.database:
            return _shown(url.database)
        from hpo.secrets import masked_url

        return masked_url(url.render_as_string(hide_password=True))
    return None


def _shown(path: str) -> str:
    from pathlib import Path

    return relative_path(Path(path), Path.cwd())


def relative_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies below it, else absolute: for messages and records."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())
