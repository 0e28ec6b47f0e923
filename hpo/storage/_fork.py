"""Database connections across ``os.fork``: ``hpo run --jobs N`` forks its workers on Linux."""

from __future__ import annotations

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
