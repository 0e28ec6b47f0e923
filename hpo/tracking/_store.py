"""Opening the MLflow tracking store: under a lock, built whole, failing fast with one line.

MLflow creates and migrates an SQLite store the first time a process builds a client for it (the
``SqlAlchemyStore`` constructor), with no lock between processes, and Python's ``sqlite3`` commits
each schema statement of a migration on its own. So ``hpo run`` started two or three times at once
in a fresh workspace raced on the schema ("table ... already exists", "duplicate column"), and a
migration cut short left the store half-migrated: alembic's batch mode leaves its copy table
``_alembic_tmp_<table>`` behind, after which every migration, and so every client, fails.

Here, for an SQLite store, the client is built under an ``flock`` on a file beside the database,
and a new store is built in a file beside it and moved into place whole; ``repair_store`` (``hpo
sync``) finishes a migration that was cut short, on a copy. MLflow retries a database it cannot
open for about 100 s (a warning each time); the file is opened here first, without retries.

MLflow's private database utilities are used in this module only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hpo.errors import HpoError
from hpo.secrets import masked

if TYPE_CHECKING:
    from mlflow import MlflowClient

_TMP_PREFIX = "_alembic_tmp_"  # alembic's batch mode on SQLite: copy into this table, drop, rename
_SQLITE_TIMEOUT = 30.0  # seconds to wait for another process's write
_REBUILD = (
    "move it aside and run `hpo sync` to rebuild the HPO spaces from the Optuna storage "
    "(promoted runs and registered models stay only in the old file)"
)


class TrackingUnavailable(HpoError):
    """The MLflow tracking store cannot be used; the message names its URI and why (one line).

    Every URL in the message is masked, so a password in the URI (or in MLflow's error, which quotes
    it) reaches no terminal, warning or file.
    """

    def __init__(self, message: str) -> None:
        super().__init__(masked(message))


def quiet_and_quick() -> None:
    """MLflow without minutes of retries, progress bars, printed URLs or INFO logs."""
    # An unreachable tracking server must cost seconds, not MLflow's default minutes of retries:
    # hpo then warns once and leaves the trials for `hpo sync`.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    # Model logging and loading draw download bars on stderr, over hpo's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # With a tracking server MLflow prints "View run ... at" to stdout for every finished run,
    # which would break `--json` output (one object, nothing else).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import logging

    import mlflow  # noqa: F401  (it configures its loggers on import: set their levels after that)

    # MLflow announces its own table migrations at INFO; hpo's terminal has no room for them.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # MLflow logs each failed database write with its traceback, SQL and parameters before raising it;
    # hpo reports the error it raises, in one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def open_client(uri: str) -> MlflowClient:
    """A client for ``uri`` whose store exists and answers, else ``TrackingUnavailable``."""
    quiet_and_quick()
    from mlflow import MlflowClient

    if _is_file_store(uri):
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE

        if not MLFLOW_ALLOW_FILE_STORE.get():
            raise TrackingUnavailable(
                f"MLflow at {uri}: MLflow 3 refuses file stores (they are in maintenance mode); use a "
                "database such as sqlite:///mlflow.db, or set MLFLOW_ALLOW_FILE_STORE=true to keep this one"
            )
    path = _sqlite_file(uri)
    with _store_lock(uri, path):
        if path is not None:
            schema = _schema(uri, path)
            leftovers = _leftovers(schema)
            if leftovers:
                raise TrackingUnavailable(
                    f"MLflow at {uri}: an MLflow schema migration was cut short (table {leftovers[0]} is left "
                    "over); `hpo sync` repairs it"
                )
            if not schema:
                _create(uri, path)
        try:
            # Building the client builds the store: for SQLite, MLflow creates or migrates the
            # schema here, which must happen under the lock. The search asks a server to answer.
            c = MlflowClient(uri)
            c.search_experiments(max_results=1)
        except Exception as e:  # any failure of the store is the user's environment: one line
            raise _failed(uri, path, e) from None
    return c


def repair_store(uri: str) -> str | None:
    """Finish an SQLite store's MLflow migration that was cut short; ``None`` when there is none.

    Returns one line saying what was done.

    What a cut-short migration leaves: alembic's batch mode runs CREATE TABLE ``_alembic_tmp_<t>``,
    which ``sqlite3`` commits at once (it opens a transaction only before a data statement), then
    copies the rows, drops ``<t>`` and renames the copy inside one transaction, which a crash rolls
    back. So ``<t>`` is whole, the copy is empty and the schema version is the one before: dropping
    the copy and migrating again repairs it, unless the migration changed the schema before its
    first data statement (then migrating again fails: "duplicate column"). The repair is done on a
    copy and written back only once it worked; the file as it was is kept beside it.
    """
    path = _sqlite_file(uri)
    if path is None:
        return None
    quiet_and_quick()
    with _store_lock(uri, path):
        schema = _schema(uri, path)
        leftovers = _leftovers(schema)
        if not leftovers:
            return None
        for tmp in leftovers:
            if schema.get(tmp.removeprefix(_TMP_PREFIX)) != "table":
                raise TrackingUnavailable(
                    f"MLflow at {uri}: an MLflow schema migration was cut short and table "
                    f"{tmp.removeprefix(_TMP_PREFIX)} is gone ({tmp} may hold its rows), so hpo will not repair "
                    f"it; restore it from a backup, or {_REBUILD}"
                )
        work = path.with_name(path.name + ".repairing")
        work.unlink(missing_ok=True)  # from a repair that was cut short
        _copy(uri, path, work)
        try:
            with _connect(uri, work) as con:
                con.isolation_level = None  # sqlite3 would commit each DROP on its own
                con.execute("BEGIN IMMEDIATE")
                for tmp in leftovers:
                    con.execute(f'DROP TABLE "{tmp}"')
                con.execute("COMMIT")
            _migrate(_uri_of(work))
        except Exception as e:
            work.unlink(missing_ok=True)
            raise TrackingUnavailable(
                f"MLflow at {uri}: an MLflow schema migration was cut short and cannot be finished "
                f"({_reason(e)}); the file is unchanged: restore it from a backup, or {_REBUILD}"
            ) from None
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.bak")
        _copy(uri, path, backup)
        _copy(uri, work, path)  # through SQLite, so a reader holding the file sees before or after
        work.unlink()
        dropped = ", ".join(leftovers)
        return (
            f"MLflow at {uri}: finished a schema migration that was cut short (dropped {dropped}; the file as it was: {backup})"
        )


def unavailable(uri: str, e: BaseException) -> TrackingUnavailable:
    """``e``, raised by MLflow or its store, as one line naming the store."""
    if isinstance(e, TrackingUnavailable):
        return e
    if uri.startswith(("http:", "https:")):
        return TrackingUnavailable(f"MLflow at {uri} is unreachable ({_reason(e)})")
    return TrackingUnavailable(f"MLflow at {uri} failed ({_reason(e)})")


def _failed(uri: str, path: Path | None, e: Exception) -> TrackingUnavailable:
    """Why MLflow could not build the store at ``uri``, and what to do, in one line."""
    revision = None if path is None else _revision(path)
    if revision is None or revision == _head():
        return unavailable(uri, e)
    from mlflow.store.db.utils import _all_tables_exist, create_sqlalchemy_engine

    engine = create_sqlalchemy_engine(uri)
    try:
        complete = _all_tables_exist(engine)
    finally:
        engine.dispose()
    if complete:  # MLflow does not migrate a store made by an older MLflow: that is the user's call
        from mlflow.version import VERSION

        return TrackingUnavailable(
            f"MLflow at {uri}: its schema is at revision {revision}, MLflow {VERSION} needs {_head()}; "
            f"back it up, then run `mlflow db upgrade {uri}`"
        )
    return TrackingUnavailable(
        f"MLflow at {uri}: migrating its schema from revision {revision} failed ({_reason(e)}), so it is "
        f"half-migrated; restore it from a backup, or {_REBUILD}"
    )


def _create(uri: str, path: Path) -> None:
    """Build a new store beside ``path`` and move it in whole: a crash never leaves half a schema."""
    building = path.with_name(path.name + ".creating")
    building.unlink(missing_ok=True)  # from a creation that was cut short
    try:
        _migrate(_uri_of(building))
    except Exception as e:
        building.unlink(missing_ok=True)
        raise unavailable(uri, e) from None
    os.replace(building, path)


def _migrate(uri: str) -> None:
    """What MLflow's store does on creation (without its retries), and migrate a complete schema too."""
    from mlflow.store.db.utils import _all_tables_exist, _initialize_tables, _upgrade_db, create_sqlalchemy_engine

    engine = create_sqlalchemy_engine(uri)
    try:
        if _all_tables_exist(engine):
            _upgrade_db(engine)  # what `mlflow db upgrade` does
        else:
            _initialize_tables(engine)
    finally:
        engine.dispose()


def _head() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return str(_get_latest_schema_revision())


def _revision(path: Path) -> str | None:
    try:
        con = sqlite3.connect(path, timeout=_SQLITE_TIMEOUT)
        try:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def _reason(e: BaseException) -> str:
    from hpo.errors import disk_full_reason

    full = disk_full_reason(e)  # MLflow's first line is then SQLAlchemy's note on autoflush, which misleads
    if full is not None:
        return full
    text = str(e)
    # requests and urllib3 bury the socket's error (Connection refused) deep in their message.
    errno = re.search(r"\[Errno -?\d+\] [^\"'()\]]+", text)
    if errno and not isinstance(e, OSError):
        return errno.group(0).strip()
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    first = text.splitlines()[0].strip() if text.strip() else type(e).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def _is_file_store(uri: str) -> bool:
    from urllib.parse import urlparse

    # A plain path is a file store to MLflow too; "databricks" and its kin have no scheme either.
    scheme = urlparse(uri).scheme
    return scheme == "file" or (scheme == "" and uri not in ("databricks", "databricks-uc", "uc"))


# SQLAlchemy 2's URL grammar (``sqlalchemy/engine/url.py`` ``_parse_url``), copied so that finding a store's
# file does not import SQLAlchemy (0.3 s of ``hpo validate``); a test compares the two on many URIs.
_SQLA_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
        (?:(?:\[(?P<ipv6host>[^/\?]+)\]|(?P<ipv4host>[^/:\?]+))?(?::(?P<port>[^/\?]*))?)?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)


def _sqlite_file(uri: str) -> Path | None:
    """The file of an ``sqlite://`` URI as SQLAlchemy reads it; ``None`` for other stores, in-memory
    databases, SQLite ``uri=true`` forms and URIs SQLAlchemy would not parse (MLflow says what is wrong)."""
    from urllib.parse import parse_qsl, unquote

    m = _SQLA_URL.match(uri) if uri.startswith("sqlite:") else None
    if m is None or m.group("database") is None:
        return None
    database = unquote(m.group("database"))
    query = parse_qsl(m.group("query") or "")
    if not database or database == ":memory:" or ("uri", "true") in query:
        return None
    return Path(database)


def _uri_of(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def store_lock(uri: str) -> contextlib.AbstractContextManager[None]:
    """Hold the lock of the store at ``uri`` (SQLite; other stores are not locked). Not re-entrant."""
    return _store_lock(uri, _sqlite_file(uri))


@contextlib.contextmanager
def _store_lock(uri: str, path: Path | None) -> Iterator[None]:
    """Hold an ``flock`` on ``<db>.lock`` beside an SQLite store (as hpo locks its own storage)."""
    if path is None:
        yield
        return
    from hpo.storage import flocked

    if path.is_dir():
        raise TrackingUnavailable(f"MLflow at {uri}: {path} is a folder, not an SQLite file (e.g. sqlite:///{path}/mlflow.db)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else f"cannot create the folder {path.parent} ({e.strerror or e})"
        raise TrackingUnavailable(f"MLflow at {uri}: {why}") from None
    try:
        lock = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115 (held across the yield)
    except OSError as e:
        raise TrackingUnavailable(f"MLflow at {uri}: cannot create the lock file beside {path} ({e.strerror or e})") from None
    with flocked(lock):
        yield


@contextlib.contextmanager
def _connect(uri: str, path: Path) -> Iterator[sqlite3.Connection]:
    try:
        con = sqlite3.connect(path, timeout=_SQLITE_TIMEOUT)
    except sqlite3.Error as e:
        raise TrackingUnavailable(f"MLflow at {uri}: cannot open {path} ({e})") from None
    try:
        yield con
    finally:
        con.close()


def _schema(uri: str, path: Path) -> dict[str, str]:
    """Name -> type of every table, index, view and trigger; opened here, it fails at once where MLflow retries."""
    with _connect(uri, path) as con:
        try:
            return {name: kind for name, kind in con.execute("SELECT name, type FROM sqlite_master")}
        except sqlite3.Error as e:
            raise TrackingUnavailable(f"MLflow at {uri}: cannot open {path} ({e})") from None


def _leftovers(schema: dict[str, str]) -> list[str]:
    return sorted(name for name, kind in schema.items() if kind == "table" and name.startswith(_TMP_PREFIX))


def _copy(uri: str, src: Path, dst: Path) -> None:
    """Copy an SQLite database with SQLite's backup API (consistent while others read or write it)."""
    with _connect(uri, src) as a, _connect(uri, dst) as b:
        a.backup(b)
