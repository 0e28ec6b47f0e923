"""Opening a storage (SQLite in WAL mode, or any SQLAlchemy URL, always with heartbeats) and the
study lock that serialises creating a study across processes and hosts.

An SQLite file that is not a database, is truncated, or that hpo may not write ends in one line
naming the file; a file hpo may only read is opened read-only for the verbs that only read.
Only SQLite opens the file: see :func:`write_problem` for why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from hpo.errors import HpoError, option
from hpo.storage._timing import CONNECT_TIMEOUT, MAX_RETRY, SQLITE_TIMEOUT, check_timings, safe_url, timing

if TYPE_CHECKING:
    import optuna


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def open_storage(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """Open the storage at ``url``.

    With ``create`` (``hpo run``), make the SQLite file and its folder, and refuse a file hpo cannot
    write. Without it, an SQLite file hpo may only read is opened read-only (``hpo studies`` and
    ``hpo show`` work on a read-only folder), and a write to it raises an ``HpoError``.
    """
    check_timings()
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    engine_kwargs: dict[str, object] = {}
    path = sqlite_path(url)
    opened = url
    if path is not None:
        if path.is_dir():
            raise HpoError(f"storage {url}: {path} is a folder, not an SQLite file (e.g. sqlite:///{path}/hpo.db)")
        if not path.exists():
            if not create:
                raise HpoError(f"storage {url}: no such database (run `hpo run` first, or pass {option('storage')})")
            _make_folder(path.parent)
        problem = write_problem(path) if create else None
        if problem:
            raise HpoError(problem)
        if path.exists() and not _writable(path):  # only without `create`: write_problem refused it
            opened = _read_only_url(path)
        else:
            _enable_wal(path)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT}}
    elif url.startswith(("postgresql", "mysql")):
        # No ping before each use of a pooled connection (a round trip per session: 1.3x the trials per
        # second without it, on loopback): a connection a server restart closed fails its first
        # statement, which invalidates the pool, and every storage call is retried on a new one
        # (storage/_retrying.py). MySQL keeps the ping Optuna gives it.
        engine_kwargs = {"pool_pre_ping": True} if url.startswith("mysql") else {}
        if url.startswith("postgresql"):
            engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}  # a host that drops packets
    elif "://" not in url:
        raise HpoError(
            f"storage {safe_url(url)!r}: not a storage URL (e.g. sqlite:///studies/hpo.db or postgresql://user@host/db)"
        )
    import warnings

    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

    try:
        with warnings.catch_warnings():
            # Heartbeats have been "experimental" since Optuna 2.8; hpo depends on them knowingly.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if path is not None or not url.startswith(("postgresql", "mysql")):
                storage = _rdb(RDBStorage, RetryHeartbeatStaleTrialCallback, opened, engine_kwargs)
            else:
                storage = _server_rdb(RetryHeartbeatStaleTrialCallback, url, engine_kwargs)
    except NoSuchModuleError:
        scheme = url.split("://")[0]
        raise HpoError(f"storage {safe_url(url)}: no database kind {scheme!r} (sqlite, postgresql, mysql)") from None
    except ImportError as e:
        cause = e if isinstance(e, ModuleNotFoundError) else e.__cause__
        missing = getattr(cause, "name", None) or "a module"
        raise HpoError(
            f"storage {safe_url(url)}: its database driver is not installed ({missing} is missing; see docs/scaling-out.md)"
        ) from None
    except ArgumentError as e:
        raise HpoError(f"storage {safe_url(url)}: not a valid database URL ({e})") from None
    except DBAPIError as e:
        message = _sqlite_error(path, e.orig) if path is not None else None
        if message:
            raise HpoError(message) from None
        if isinstance(e, OperationalError):
            raise HpoError(f"storage {safe_url(url)}: cannot be opened ({str(e.orig).splitlines()[0]})") from None
        raise
    if path is not None:
        _errors_as_hpo_errors(storage, path)
    return storage


def _rdb(RDBStorage: Any, Retry: Any, url: str, engine_kwargs: dict[str, object], **more: Any) -> optuna.storages.BaseStorage:
    storage: optuna.storages.BaseStorage = RDBStorage(
        url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=timing("HPO_HEARTBEAT_INTERVAL"),
        grace_period=timing("HPO_GRACE_PERIOD"),
        heartbeat_stale_trial_callback=Retry(max_retry=MAX_RETRY),
        **more,
    )
    return storage


def _server_rdb(Retry: Any, url: str, engine_kwargs: dict[str, object]) -> optuna.storages.BaseStorage:
    """A database server's storage, whose calls ride out an outage (:mod:`hpo.storage._outage`);
    opening it too, once this process has reached the server (see :func:`hpo.storage._outage.reach`)."""
    from hpo.storage._outage import reach
    from hpo.storage._retrying import RetryingRDBStorage  # imports Optuna's RDB storage: only when one is opened

    window = timing("HPO_OUTAGE_SECONDS")
    return reach(url, lambda retried: _rdb(RetryingRDBStorage, Retry, url, engine_kwargs, outage_seconds=window), window)


def _enable_wal(path: Path) -> None:
    # WAL lets readers (the dashboard, the progress bar) and several writer processes share the
    # file without "database is locked"; the mode is stored in the file, so this runs once.
    _sqlite_execute(path, str(path), "PRAGMA journal_mode=WAL")


def _sqlite_execute(path: Path, target: str, sql: str, uri: bool = False) -> None:
    """Run one statement on its own connection; SQLite's errors about the file become one line."""
    try:
        con = sqlite3.connect(target, uri=uri, timeout=SQLITE_TIMEOUT)
        try:
            con.execute(sql).fetchone()
        finally:
            con.close()
    except sqlite3.Error as e:
        message = _sqlite_error(path, e)
        if message is None:
            raise
        raise HpoError(message) from None


# --- what can go wrong with an SQLite file -------------------------------------------------------


def check_storage(url: str) -> None:
    """Raise an ``HpoError`` if ``hpo run`` could not use the SQLite file at ``url``: hpo cannot
    write it or make it, or it is not a readable SQLite database. Other storages are not contacted."""
    path = sqlite_path(url)
    if path is None:
        return
    if path.is_dir():
        raise HpoError(f"storage {url}: {path} is a folder, not an SQLite file (e.g. sqlite:///{path}/hpo.db)")
    missing = path.parent
    while not missing.parent.exists() and missing.parent != missing.parent.parent:
        missing = missing.parent
    if not missing.exists() and not os.access(missing.parent, os.W_OK | os.X_OK):
        # What `hpo run` would say when it makes the folder.
        raise HpoError(f"cannot create {_shown(missing, folder=True)}: {_denied(missing.parent)}")
    problem = write_problem(path)
    if problem:
        raise HpoError(problem)
    if path.exists() and path.stat().st_size:  # SQLite takes an empty file as a new database
        _read_schema(path)


def write_problem(path: Path) -> str | None:
    """Why hpo may not write the SQLite file at ``path`` (or make it), or None.

    Permissions only, read without opening the file: a descriptor of it opened and closed beside
    SQLite's would drop the locks SQLite holds on it in this process (POSIX locks are per process),
    and another process could then delete the WAL under a live connection. A damaged file is
    reported by SQLite itself, on the first read (see :func:`_sqlite_error`).
    """
    if path.exists() and not os.access(path, os.W_OK):
        return f"cannot write to {_shown(path)}: {_denied(path)}"
    if path.parent.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        return (
            f"cannot write to {_shown(path)}: {_denied(path.parent)} on its folder {_shown(path.parent, folder=True)} "
            "(SQLite keeps its -wal and -shm files and hpo its lock file there)"
        )
    return None


def _read_schema(path: Path) -> None:
    """Read the schema of the SQLite file at ``path`` (SQLite checks its header and its size)."""
    from urllib.parse import quote

    _sqlite_execute(path, f"file:{quote(str(path.resolve()))}?mode=ro", "PRAGMA schema_version", uri=True)


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _read_only_url(path: Path) -> str:
    """A URL that reads ``path`` without writing anything beside it.

    A WAL database needs its -shm file: read-only mode works when the last writer left it and the
    -wal file in place; otherwise (a clean close removes both) the file is opened immutable, which
    SQLite reads without them."""
    from urllib.parse import quote

    mode = "mode=ro" if all(Path(f"{path}{s}").exists() for s in ("-wal", "-shm")) else "immutable=1"
    return f"sqlite:///file:{quote(str(path.resolve()))}?{mode}&uri=true"


def _sqlite_error(path: Path | None, error: BaseException | None) -> str | None:
    """One line for an SQLite error a user can act on (a corrupt file, a read-only one), else None."""
    if path is None or not isinstance(error, sqlite3.Error):
        return None
    name = getattr(error, "sqlite_errorname", "")
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return _unreadable(path, str(error))
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM")):
        return f"cannot write to {_shown(path)}: {_denied(path)}"
    if name.startswith("SQLITE_CANTOPEN"):
        return f"cannot open {_shown(path)}: {error}"
    return None


def _errors_as_hpo_errors(storage: optuna.storages.BaseStorage, path: Path) -> None:
    """A corrupt page met mid-query, or a write to a file opened read-only, ends in one line."""
    from sqlalchemy import event

    from hpo.storage._optuna import rdb_backend

    def handle_error(context: Any) -> None:
        message = _sqlite_error(path, context.original_exception)
        if message:
            raise HpoError(message)

    event.listen(rdb_backend(storage).engine, "handle_error", handle_error)


def _unreadable(path: Path, why: str) -> str:
    return (
        f"{_shown(path)} is not a readable SQLite database ({why}); restore it from a backup, or move it aside to start a new one"
    )


def _denied(path: Path) -> str:
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def _shown(path: Path, *, folder: bool = False) -> str:
    """``path`` for messages: relative to the current folder when below it; a folder ends in '/'."""
    from hpo.workspace import relative_path

    shown = relative_path(path, Path.cwd())
    return shown + "/" if folder and not shown.endswith("/") else shown


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HpoError(f"cannot create {_shown(folder, folder=True)}: {(e.strerror or str(e)).lower()}") from None


@contextlib.contextmanager
def flocked(f: IO[Any]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the open file ``f`` (one host), and close it afterwards."""
    import fcntl

    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def study_lock(url: str, study: str) -> Iterator[None]:
    """Hold a lock named after ``study`` across processes and hosts that share the storage at ``url``.

    Workers started at the same moment then create the study and fill its budget one after the
    other, never both. PostgreSQL: a session advisory lock; MySQL: ``GET_LOCK``; SQLite (one host):
    an ``flock`` on a file beside the database. Other storages are not locked.
    """
    check_timings()
    path = sqlite_path(url)
    if path is not None:
        _make_folder(path.parent)
        problem = write_problem(path)  # the lock file is beside it
        if problem:
            raise HpoError(problem)
        if path.exists() and path.stat().st_size:
            _read_schema(path)  # a damaged file is refused before the lock file is made beside it
        lock_file = path.with_name(path.name + ".lock")
        try:
            f = open(lock_file, "a")  # closed by the `with` below, after the lock is released
        except OSError as e:
            raise HpoError(f"cannot write to {_shown(lock_file)}: {(e.strerror or str(e)).lower()}") from None
        with flocked(f):
            yield
        return
    if not url.startswith(("postgresql", "mysql")):
        yield
        return
    import sqlalchemy

    key = int.from_bytes(hashlib.sha256(f"hpo-study:{study}".encode()).digest()[:8], "big", signed=True)
    postgres = url.startswith("postgresql")
    lock, unlock = (
        ("SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)")
        if postgres
        else ("SELECT GET_LOCK(:k, 600)", "SELECT RELEASE_LOCK(:k)")
    )
    params: dict[str, object] = {"k": key if postgres else f"hpo-{key}"}
    engine, conn = _locked(url, sqlalchemy.text(lock), params)
    try:
        try:
            yield
        finally:
            _unlock(conn, sqlalchemy.text(unlock), params)
    finally:
        engine.dispose()


def _locked(url: str, lock: Any, params: dict[str, object]) -> tuple[Any, Any]:
    """An engine for ``url`` and a connection of it holding the lock, taken through an outage as any
    storage call is; a server this process has never reached is reported at once (:func:`hpo.storage._outage.reach`)."""
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    from hpo.storage._outage import reach

    def attempt(retried: bool) -> Any:
        conn = engine.connect()
        try:
            conn.execute(lock, params)
        except BaseException:
            conn.close()
            raise
        return conn

    try:
        args = {"connect_timeout": CONNECT_TIMEOUT} if url.startswith("postgresql") else {}
        engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=args)
        try:
            return engine, reach(url, attempt)
        except BaseException:
            engine.dispose()
            raise
    except ArgumentError as e:
        raise HpoError(f"storage {safe_url(url)}: not a valid database URL ({e})") from None
    except NoSuchModuleError:
        raise HpoError(f"storage {safe_url(url)}: no database kind {url.split('://')[0]!r} (sqlite, postgresql, mysql)") from None
    except ImportError as e:
        missing = getattr(e, "name", None) or "a module"
        raise HpoError(f"storage {safe_url(url)}: its database driver is not installed ({missing} is missing)") from None
    except DBAPIError as e:
        why = (str(e.orig).strip().splitlines() or [type(e.orig).__name__])[0]
        raise HpoError(f"storage {safe_url(url)}: cannot be opened ({why})") from None


def _unlock(conn: Any, unlock: Any, params: dict[str, object]) -> None:
    """Release the lock; a connection the server closed meanwhile took the lock with it."""
    from hpo.storage._outage import transient_cause

    try:
        conn.execute(unlock, params)
    except Exception as e:
        if transient_cause(e) is None:
            raise
    finally:
        conn.close()
