"""Opening a storage (SQLite in WAL mode, or any SQLAlchemy URL, always with heartbeats) and the
study lock that serialises creating a study across processes and hosts."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError

if TYPE_CHECKING:
    import optuna

HEARTBEAT_INTERVAL = 5  # seconds between a running trial's heartbeats
GRACE_PERIOD = 20  # seconds without a heartbeat before a RUNNING trial counts as dead
MAX_RETRY = 3  # a trial whose worker died is retried this often, with the same parameters
SQLITE_TIMEOUT = 120  # seconds a writer waits for SQLite's lock before giving up


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def open_storage(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """Open the storage at ``url``; with ``create``, make the SQLite file and its folder."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    engine_kwargs: dict[str, object] = {}
    path = sqlite_path(url)
    if path is not None:
        if path.is_dir():
            raise HpoError(f"storage {url}: {path} is a folder, not an SQLite file (e.g. sqlite:///{path}/hpo.db)")
        if not path.exists():
            if not create:
                raise HpoError(f"storage {url}: no such database (run `hpo run` first, or pass --storage)")
            path.parent.mkdir(parents=True, exist_ok=True)
        _enable_wal(path)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT}}
    elif url.startswith(("postgresql", "mysql")):
        engine_kwargs = {"pool_pre_ping": True}
    elif "://" not in url:
        raise HpoError(f"storage {url!r}: not a storage URL (e.g. sqlite:///studies/hpo.db or postgresql://user@host/db)")
    import warnings

    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    try:
        with warnings.catch_warnings():
            # Heartbeats have been "experimental" since Optuna 2.8; hpo depends on them knowingly.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _rdb(RDBStorage, RetryHeartbeatStaleTrialCallback, url, engine_kwargs)
    except NoSuchModuleError:
        scheme = url.split("://")[0]
        raise HpoError(f"storage {_safe(url)}: no database kind {scheme!r} (sqlite, postgresql, mysql)") from None
    except ImportError as e:
        cause = e if isinstance(e, ModuleNotFoundError) else e.__cause__
        missing = getattr(cause, "name", None) or "a module"
        raise HpoError(
            f"storage {_safe(url)}: its database driver is not installed ({missing} is missing; see docs/scaling-out.md)"
        ) from None
    except ArgumentError as e:
        raise HpoError(f"storage {_safe(url)}: not a valid database URL ({e})") from None
    except OperationalError as e:
        raise HpoError(f"storage {_safe(url)}: cannot be opened ({str(e.orig).splitlines()[0]})") from None


def _safe(url: str) -> str:
    """``url`` without its password, for messages."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return url.replace(f":{parts.password}@", ":***@") if parts.password else url
    except ValueError:
        return url


def _rdb(RDBStorage: Any, Retry: Any, url: str, engine_kwargs: dict[str, object]) -> optuna.storages.BaseStorage:
    return RDBStorage(
        url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=HEARTBEAT_INTERVAL,
        grace_period=GRACE_PERIOD,
        heartbeat_stale_trial_callback=Retry(max_retry=MAX_RETRY),
    )


def _enable_wal(path: Path) -> None:
    # WAL lets readers (the dashboard, the progress bar) and several writer processes share the
    # file without "database is locked"; the mode is stored in the file, so this runs once.
    con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


@contextlib.contextmanager
def study_lock(url: str, study: str) -> Iterator[None]:
    """Hold a lock named after ``study`` across processes and hosts that share the storage at ``url``.

    Workers started at the same moment then create the study and fill its budget one after the
    other, never both. PostgreSQL: a session advisory lock; MySQL: ``GET_LOCK``; SQLite (one host):
    an ``flock`` on a file beside the database. Other storages are not locked.
    """
    path = sqlite_path(url)
    if path is not None:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return
    if not url.startswith(("postgresql", "mysql")):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(f"hpo-study:{study}".encode()).digest()[:8], "big", signed=True)
    postgres = url.startswith("postgresql")
    lock, unlock = (
        ("SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)")
        if postgres
        else ("SELECT GET_LOCK(:k, 600)", "SELECT RELEASE_LOCK(:k)")
    )
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(lock), {"k": key if postgres else f"hpo-{key}"})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text(unlock), {"k": key if postgres else f"hpo-{key}"})
    finally:
        engine.dispose()
