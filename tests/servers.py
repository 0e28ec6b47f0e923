"""Real-server fixtures: a throwaway PostgreSQL cluster and a real ``mlflow server``, both on loopback only.

Why: SQLite and MLflow's in-process stores hide what users hit in production -- concurrent Optuna workers on
one PostgreSQL study, and the MLflow REST client and artifact proxy. These fixtures start the real servers.

- ``postgres_server`` (session): one cluster per test session (~1-2 s to start), URL of its database ``hpo``.
- ``postgres_url`` (function): an empty database on that cluster for each test, dropped afterwards.
- ``mlflow_server`` (session): one ``mlflow server`` per session. Session scope because it takes ~10 s to start
  (importing MLflow's FastAPI app alone takes ~5 s). Tests share it, so each test must use its own experiment
  names (e.g. with a uuid or ``request.node.name`` in them); nothing else is shared.

Neither fixture skips: if a server cannot be set up the test fails, so CI notices.

Register this module once as a plugin -- ``pytest_plugins = ["tests.servers"]`` in tests/conftest.py -- and just
name the fixtures in tests. Do not import the fixture names into a test module: pytest would then hold a second
copy of each session fixture and start a second PostgreSQL and MLflow server. Helpers (``fresh_database``,
``free_port``) may be imported normally, as ``tests.servers`` like the rest of the suite.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Seconds each server took to start in this session (``postgres``, ``mlflow``), for reports and debugging.
STARTUP_SECONDS: dict[str, float] = {}

PG_USER = "hpo"
PG_DATABASE = "hpo"
MLFLOW_START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the OS picks it; a tiny race remains, handled by retrying)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _read_tail(path: Path, lines: int = 30) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError as e:
        return f"(no {path.name}: {e})"


# --------------------------------------------------------------------------------------------- PostgreSQL


def _pg_version_key(bin_dir: str) -> tuple[int, ...]:
    """Debian's /usr/lib/postgresql/<version>/bin, ordered by version (15 < 16, not as strings)."""
    return tuple(int(p) for p in re.findall(r"\d+", Path(bin_dir).parent.name)) or (0,)


def find_pg_binaries() -> tuple[Path, Path] | None:
    """``initdb`` and ``pg_ctl``: on PATH, else the highest version in Debian's /usr/lib/postgresql/*/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb), Path(pg_ctl)
    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_pg_version_key, reverse=True):
        initdb_path, pg_ctl_path = Path(bin_dir, "initdb"), Path(bin_dir, "pg_ctl")
        if os.access(initdb_path, os.X_OK) and os.access(pg_ctl_path, os.X_OK):
            return initdb_path, pg_ctl_path
    return None


def _install_postgres() -> str:
    """Install Debian's ``postgresql`` (root only); an empty string on success, else why it failed."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root or no apt-get, so it was not installed"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "postgresql"]
    r = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=900)
        r = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    return "" if r.returncode == 0 else f"`apt-get install postgresql` failed: {_tail(r.stderr or r.stdout, 3)!r}"


def _as_unprivileged() -> dict[str, Any]:
    """subprocess arguments that run PostgreSQL as ``nobody`` when we are root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("nobody")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _pg_env() -> dict[str, str]:
    """Our environment without PG* variables, so a developer's PGHOST/PGDATA cannot redirect the cluster."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _pg_run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_pg_env(), capture_output=True, text=True, timeout=timeout, **_as_unprivileged())


def _pg_stop(pg_ctl: Path, root: Path) -> None:
    """Stop the cluster at once (nothing in it is worth a clean shutdown); kill the postmaster if pg_ctl cannot."""
    data = root / "data"
    r = _pg_run([str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"], cwd=root, timeout=60)
    if r.returncode == 0:
        return
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
    except (OSError, ValueError, IndexError):
        pass


def _pg_connect(url: str, dbname: str) -> Any:
    """An autocommit psycopg connection to ``dbname`` on the server of ``url`` (CREATE/DROP DATABASE need it)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, dbname=dbname, connect_timeout=10, autocommit=True
    )


def _check_db_name(name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"database name {name!r} must be lowercase letters, digits, _ and at most 63 characters")


def _admin(url: str, statement: str, name: str) -> None:
    """Run ``statement`` (with ``{}`` for the database name) on the server of ``url``, from database ``postgres``."""
    from psycopg import sql

    _check_db_name(name)
    conn = _pg_connect(url, "postgres")
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL(statement).format(sql.Identifier(name)))
    finally:
        conn.close()


def fresh_database(url: str, name: str) -> str:
    """Create the empty database ``name`` on the server of ``url`` and return its URL (one per test keeps tests apart)."""
    from sqlalchemy.engine import make_url

    _admin(url, "CREATE DATABASE {}", name)
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database of ``url``, closing any connections a test left open (``WITH (FORCE)``, PostgreSQL 13+)."""
    from sqlalchemy.engine import make_url

    _admin(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", make_url(url).database or "")


def _start_cluster(initdb: Path, pg_ctl: Path, root: Path) -> str:
    """initdb + pg_ctl start in ``root``; the server URL (database ``postgres``), or pytest.fail with the server log."""
    data, log = root / "data", root / "log"
    r = _pg_run([str(initdb), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"], cwd=root)
    if r.returncode != 0:
        pytest.fail(f"initdb failed ({initdb}): {_tail(r.stderr or r.stdout, 10)}", pytrace=False)
    for _attempt in range(3):  # another process may grab the free port between free_port() and the bind
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        r = _pg_run([str(pg_ctl), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"], cwd=root)
        if r.returncode == 0:
            return f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"  # as the README writes it
        if "already in use" not in _read_tail(log, 10):
            break
        _pg_stop(pg_ctl, root)
    pytest.fail(
        f"PostgreSQL did not start ({pg_ctl}): {_tail(r.stderr or r.stdout, 5)}\n--- server log ---\n{_read_tail(log)}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL cluster on 127.0.0.1 for the session: ``postgresql://hpo@127.0.0.1:<port>/hpo``.

    Trust auth, fsync off, 200 connections; runs as ``nobody`` when the tests run as root. Torn down at session end.
    """
    binaries = find_pg_binaries()
    if binaries is None:
        why = _install_postgres()
        binaries = find_pg_binaries()
        if binaries is None:
            why = why or "apt-get installed postgresql, still not found"
            pytest.fail(f"PostgreSQL is needed: no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin ({why})", pytrace=False)
    initdb, pg_ctl = binaries
    started = time.monotonic()
    # Not pytest's tmp_path: its parents are mode 0700 for root, which `nobody` cannot traverse.
    root = Path(tempfile.mkdtemp(prefix="hpo-pg-"))
    try:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            os.chown(root, pw.pw_uid, pw.pw_gid)
        try:
            server_url = _start_cluster(initdb, pg_ctl, root)
            url = fresh_database(server_url, PG_DATABASE)
            STARTUP_SECONDS["postgres"] = time.monotonic() - started
            yield url
        finally:
            if (root / "data" / "postmaster.pid").exists():
                _pg_stop(pg_ctl, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database for this test on the session's PostgreSQL server; dropped when the test ends."""
    stem = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower())[:40].strip("_")
    url = fresh_database(postgres_server, f"t_{stem}_{uuid.uuid4().hex[:8]}")
    yield url
    drop_database(url)


# --------------------------------------------------------------------------------------------- MLflow


def _http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET ``url``, None if nothing answers; never through an HTTP proxy (loopback only)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, ValueError):
        return None


def _stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the server's whole process group (mlflow -> uvicorn -> workers), then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    # Stragglers keep the group (and so its id) alive; if none are left this finds no group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _wait_until_healthy(proc: subprocess.Popen[bytes], uri: str, stderr: Path, timeout: float) -> str:
    """An empty string once GET /health answers 200, else why not (exited, or too slow) with the tail of stderr."""
    deadline = time.monotonic() + timeout
    while _http_status(f"{uri}/health") != 200:
        if proc.poll() is not None:  # MLflow 3.17 exits 0 even when uvicorn cannot bind the port
            return f"mlflow server exited with {proc.returncode}:\n{_read_tail(stderr)}"
        if time.monotonic() > deadline:
            return f"mlflow server not healthy after {timeout:.0f} s:\n{_read_tail(stderr)}"
        time.sleep(0.2)
    return ""


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 for the session (SQLite backend, proxied artifacts); its tracking URI.

    Shared by all tests of the session: use unique experiment names. Artifacts go through the server's
    ``mlflow-artifacts:`` proxy into a temp dir, as with a production server.
    """
    exe = Path(sys.executable).with_name("mlflow")
    if not exe.exists():
        pytest.fail(f"no mlflow executable next to {sys.executable}", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # The job runner (huey consumers, a temp dir in /dev/shm) serves MLflow's GenAI jobs, unused here; it adds
    # seven processes and leaves a dir in /dev/shm behind after SIGTERM.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="hpo-mlflow-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # another process may grab the free port between free_port() and the bind
            uri = f"http://127.0.0.1:{free_port()}"
            cmd = [
                str(exe), "server",
                "--host", "127.0.0.1",
                "--port", uri.rsplit(":", 1)[1],
                "--workers", "1",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
            ]  # fmt: skip
            with open(root / "stdout", "wb") as out, open(root / "stderr", "wb") as err:
                proc = subprocess.Popen(
                    cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
                )
            why = _wait_until_healthy(proc, uri, root / "stderr", MLFLOW_START_TIMEOUT)
            if not why:
                break
            _stop_process_group(proc)
            proc = None
            if "address already in use" not in why:
                break
        if proc is None:
            pytest.fail(why, pytrace=False)
        STARTUP_SECONDS["mlflow"] = time.monotonic() - started
        yield uri
    finally:
        if proc is not None:
            _stop_process_group(proc)
        shutil.rmtree(root, ignore_errors=True)
