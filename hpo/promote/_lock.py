"""The promotion lock: one ``hpo promote`` of a trial at a time, across processes and hosts.

Two promotions of one trial started together would both find it unpromoted, both re-train it and
both log a run. The lock is named for the (study, trial), not the study: a re-train takes minutes,
and ``hpo run`` workers take the study lock (:func:`hpo.storage.study_lock`) to top up their budget,
which a promotion must not stall. On SQLite (one file, one lock file) that lock is even one per
database, so here every trial has its own byte range of one lock file beside the database instead.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

from hpo.errors import HpoError

_RANGE = 1 << 40  # byte offsets a trial's lock may take in the SQLite lock file


@contextlib.contextmanager
def promotion_lock(url: str, study: str, trial: int, waiting: Callable[[], None]) -> Iterator[None]:
    """Hold the lock of ``study``'s trial ``trial`` in the storage at ``url``; call ``waiting`` first if another holds it.

    SQLite (one host): a POSIX record lock on one byte of ``<database>.promote.lock``; PostgreSQL: a
    session advisory lock; MySQL: ``GET_LOCK``. Other storages are not locked.
    """
    name = f"hpo-promote:{study}#{trial}"
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    from hpo.storage import sqlite_path

    path = sqlite_path(url)
    if path is not None:
        with _file_lock(path.with_name(path.name + ".promote.lock"), key % _RANGE, waiting):
            yield
        return
    if not url.startswith(("postgresql", "mysql")):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    postgres = url.startswith("postgresql")
    arg = {"k": key if postgres else f"hpo-{key}"}
    try_lock, lock, unlock = (
        ("SELECT pg_try_advisory_lock(:k)", "SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)")
        if postgres
        else ("SELECT GET_LOCK(:k, 0)", "SELECT GET_LOCK(:k, 31536000)", "SELECT RELEASE_LOCK(:k)")
    )
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not conn.execute(sqlalchemy.text(try_lock), arg).scalar():
                waiting()
                conn.execute(sqlalchemy.text(lock), arg)
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text(unlock), arg)
    finally:
        engine.dispose()


@contextlib.contextmanager
def _file_lock(path: Path, offset: int, waiting: Callable[[], None]) -> Iterator[None]:
    """An exclusive ``lockf`` on the byte at ``offset`` of the file at ``path`` (made if missing).

    ``lockf``, not ``flock``: it locks a byte range, so one file serves every trial. Its locks belong
    to the process and end when any descriptor of the file closes; only this function opens it.
    """
    import fcntl

    from hpo.workspace import relative_path

    try:
        f = open(path, "a")
    except OSError as e:
        raise HpoError(f"cannot write to {relative_path(path, Path.cwd())}: {(e.strerror or str(e)).lower()}") from None
    with f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError:
            waiting()
            fcntl.lockf(f, fcntl.LOCK_EX, 1, offset)
        try:
            yield
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN, 1, offset)
