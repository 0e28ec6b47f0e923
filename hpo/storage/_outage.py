"""Riding out a storage outage: a database restart or a network blip must not kill the workers.

Every call into a PostgreSQL or MySQL storage is retried, with exponential backoff and jitter, while
the server cannot be reached, for up to ``HPO_OUTAGE_SECONDS`` (60 s by default) from the first
failure; past that the call raises :class:`StorageUnreachable`, one line without the password, and
so does every later call through the same storage (the worker is going down: no second wait).

A call is retried whole: the lost connection rolled its transaction back, so a retried read is
harmless. A write whose commit went through but whose reply was lost must not be done twice;
:class:`hpo.storage._retrying.RetryingRDBStorage` makes each of Optuna's non-idempotent writes find out first (a trial
created twice would run a budget slot twice).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hpo.errors import HpoError

T = TypeVar("T")

_REACHED: set[str] = set()  # storage URLs this process (or the parent it was forked from) has reached
_RECOVERED: dict[str, float] = {}  # storage URL -> time.monotonic() when its last outage ended

FIRST_DELAY = 0.1  # seconds before the first retry; doubled after each failure
MAX_DELAY = 2.0  # at most this between retries, so a worker is back within ~2 s of the server

# Errors that say "the server is not there (yet)", not "your request is wrong": libpq's and MySQL's words.
_TRANSIENT_TEXT = (
    "connection refused",
    "server closed the connection",
    "terminating connection",
    "the database system is",  # ... starting up, shutting down, in recovery mode
    "connection reset",
    "connection timed out",
    "timeout expired",
    "no route to host",
    "network is unreachable",
    "connection not open",
    "connection is closed",
    "consuming input failed",
    "sorry, too many clients",
    "lost connection",
    "server has gone away",
    "can't connect",
    "broken pipe",
)
# SQLSTATE: connection exceptions, shutdown/crash/cannot connect now, too many connections; and a
# deadlock or serialization failure, which the server rolled back (Optuna retries those too).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")
_TRANSIENT_MYSQL_CODES = {1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055}


class StorageUnreachable(HpoError):
    """The storage server did not answer for longer than ``HPO_OUTAGE_SECONDS``."""


def transient_cause(error: BaseException) -> BaseException | None:
    """The database driver's error behind ``error`` if it means a lost or refused connection, else None."""
    from sqlalchemy.exc import DBAPIError

    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, StorageUnreachable):
            return None
        if isinstance(e, DBAPIError):
            orig = e.orig if isinstance(e.orig, BaseException) else e
            if e.connection_invalidated or _transient_driver_error(orig):
                return orig
            return None
        e = e.__cause__ or e.__context__
    return None


def _transient_driver_error(orig: BaseException) -> bool:
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str) and state.startswith(_TRANSIENT_SQLSTATE_PREFIXES):
        return True
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _TRANSIENT_MYSQL_CODES:
        return True
    text = str(orig).lower()
    return any(marker in text for marker in _TRANSIENT_TEXT)


def reached(url: str) -> bool:
    """Whether this process has reached the server of ``url`` before (a fork inherits it)."""
    return url in _REACHED


def reach(url: str, fn: Callable[[bool], T], window: float | None = None) -> T:
    """``fn(retried)`` through an :class:`Outage` if this process has reached ``url`` before, else once.

    A server never reached fails at once: a wrong host or port, or a server not started, is what
    that usually is, and a minute of silence before saying so would look like a hang. A forked
    worker inherits what its parent reached, so a worker started during a restart waits for it.
    """
    if url in _REACHED:
        return Outage(url, window).call(fn)
    result = fn(False)
    _REACHED.add(url)
    return result


def recovered_within(url: str, seconds: float) -> bool:
    """Whether an outage of ``url`` ended less than ``seconds`` ago in this process.

    Heartbeats could not be recorded during it: until every live worker has beaten again, an old
    heartbeat does not mean a dead worker.
    """
    ended = _RECOVERED.get(url)
    return ended is not None and time.monotonic() - ended < seconds


class Outage:
    """Retries calls to the storage at ``url`` while its server cannot be reached, up to ``window`` seconds."""

    def __init__(self, url: str, window: float | None = None) -> None:
        from hpo.storage._timing import safe_url, timing

        self.url = url
        self.shown = safe_url(url)
        self.window = float(window if window is not None else timing("HPO_OUTAGE_SECONDS"))
        self.since: float | None = None  # time.monotonic() of the first failure of the current outage
        self.gave_up: str | None = None  # the message, once the window has passed

    def call(self, fn: Callable[[bool], T], stop: threading.Event | None = None) -> T:
        """``fn(retried)``, called again after each lost or refused connection; ``retried`` tells a
        write that its previous attempt may have been committed. ``stop`` set ends the waiting at once."""
        delay = FIRST_DELAY
        retried = False
        while True:
            if self.gave_up:
                raise StorageUnreachable(self.gave_up)
            try:
                result = fn(retried)
            except Exception as e:
                cause = transient_cause(e)
                if cause is None:
                    raise
                now = time.monotonic()
                since = self.since = self.since if self.since is not None else now
                left = since + self.window - now
                if left <= 0:
                    self.gave_up = self._message(cause)
                    raise StorageUnreachable(self.gave_up) from None
                pause = min(delay * random.uniform(0.5, 1.0), left)
                if stop is not None:
                    if stop.wait(pause):
                        raise
                else:
                    time.sleep(pause)
                delay = min(delay * 2, MAX_DELAY)
                retried = True
                continue
            _REACHED.add(self.url)
            if self.since is not None:
                self.since = None
                _RECOVERED[self.url] = time.monotonic()
            return result

    def _message(self, cause: BaseException) -> str:
        from urllib.parse import unquote, urlsplit

        from hpo.secrets import masked

        why = masked((str(cause).strip().splitlines() or [type(cause).__name__])[0])
        with_password = urlsplit(self.url).password if "://" in self.url else None
        for secret in {with_password, unquote(with_password or "")} - {None, ""}:  # a driver may quote it bare
            why = why.replace(str(secret), "***")
        return (
            f"storage {self.shown}: unreachable for {self.window:.0f} s ({why}); trials left running are retried on the next run"
        )


def retry_on(storage: Any, fn: Callable[[bool], T]) -> T:
    """``fn(retried)`` through the outage handling of ``storage``'s RDB backend, or once if it has none."""
    outage = getattr(storage, "outage", None)
    return outage.call(fn) if isinstance(outage, Outage) else fn(False)
