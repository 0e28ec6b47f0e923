"""Database connections across ``os.fork``: ``hpo run --jobs N`` forks its workers on Linux."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_FORK_GUARD: list[int] = []  # the pid that installed the guard, once per process tree
_ORPHANS: list[Any] = []  # a parent's connections met in a forked child: kept, never closed


def fork_safe_pools() -> None:
    """Make every SQLAlchemy pool (Optuna's and MLflow's) safe across ``os.fork``.

    SQLAlchemy's recipe for pools and ``os.fork``: a connection is tagged with the pid that opened
    it, and a forked child that checks out one of its parent's discards it and opens its own. A
    database connection shared by two processes corrupts what both read (MLflow keeps one store,
    and its engine, per tracking URI for the life of the process). The child keeps the parent's
    connection objects alive rather than closing them: SQLite must not close a connection in a
    process that did not open it. Connections from before the guard count as this process's.
    """
    if _FORK_GUARD:
        return
    import os

    from sqlalchemy import event, exc
    from sqlalchemy.pool import Pool

    owner = os.getpid()
    _FORK_GUARD.append(owner)

    @event.listens_for(Pool, "connect")
    def _tag(dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(Pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        pid = os.getpid()
        if record.info.setdefault("pid", owner) != pid:
            _ORPHANS.append(dbapi_connection)
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError(f"connection from process {record.info['pid']}, checked out in {pid}")


def ready_to_fork(sqlite_files: list[Path]) -> bool:
    """Close this process's pooled database connections; True when none of ``sqlite_files`` is open.

    Closing the pools is not only tidy: SQLite keeps, per process, which locks it holds on each
    open database file, and a forked child inherits that record but not the locks (POSIX locks
    belong to a process). A child's own connection would then skip taking a lock it believes it
    has, and two workers could both claim one trial (seen with ``--jobs 2``: the same trial run
    twice, a worker dead on "already finished"). So a fork is safe only when no connection to
    the file is open at all, which ``/proc/self/fd`` shows; otherwise the caller spawns.
    """
    import gc
    import os

    from sqlalchemy.engine import Engine

    fork_safe_pools()
    for obj in gc.get_objects():
        if isinstance(obj, Engine):
            obj.dispose()  # closes the checked-in connections; new ones open on demand
    watched = {os.path.realpath(p) + suffix for p in sqlite_files for suffix in ("", "-wal", "-shm", "-journal")}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") in watched:
                return False
        except OSError:
            continue
    return True
