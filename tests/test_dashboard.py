"""`hpo dashboard` as a real server on a real storage: read-only unless asked, and a warning off loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo.dashboard import READ_ONLY_REASON, exposure_warning


@pytest.fixture
def storage(workspace: Path) -> str:
    """studies/hpo.db with a study to keep (one trial) and a throwaway study."""
    (workspace / "studies").mkdir()
    url = f"sqlite:///{workspace / 'studies' / 'hpo.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kept = optuna.create_study(study_name="kept", storage=url)
    kept.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    optuna.create_study(study_name="throwaway", storage=url)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def dashboard(ws: Path, *args: str, ready: str = "optuna-dashboard for") -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`hpo dashboard ARGS` as a subprocess, until its stderr shows ``ready``; stopped (SIGTERM) on leaving."""
    err = ws / f"dashboard-{time.monotonic_ns()}.err"
    env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    with open(err, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "hpo", "dashboard", *args], cwd=ws, env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 30
        while ready not in err.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready in err.read_text(), err.read_text()
        yield proc, err
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def call(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One request to the dashboard on loopback (retried while it starts listening): status, JSON body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for _ in range(100):
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")
        except (ConnectionRefusedError, urllib.error.URLError):
            time.sleep(0.1)
    raise AssertionError(f"the dashboard on port {port} never answered")


def study_ids(port: int) -> dict[str, int]:
    status, body = call(port, "GET", "/api/studies")
    assert status == 200
    return {s["study_name"]: s["study_id"] for s in body["study_summaries"]}


def test_the_dashboard_is_read_only_by_default(workspace: Path, storage: str) -> None:
    port = free_port()
    with dashboard(workspace, "--port", str(port)) as (_, err):
        ids = study_ids(port)
        assert set(ids) == {"kept", "throwaway"}
        assert call(port, "GET", f"/api/studies/{ids['kept']}")[0] == 200
        refused = [
            ("DELETE", f"/api/studies/{ids['kept']}", None),
            ("POST", f"/api/studies/{ids['kept']}/rename", {"study_name": "renamed"}),
            ("PUT", f"/api/studies/{ids['kept']}/note", {"version": 1, "body": "written"}),
            ("POST", "/api/studies", {"study_name": "new", "directions": ["minimize"]}),
        ]
        for method, path, body in refused:
            assert call(port, method, path, body) == (403, {"reason": READ_ONLY_REASON}), (method, path)
        assert "read-only" in err.read_text() and "warning" not in err.read_text()
    assert sorted(optuna.get_all_study_names(storage)) == ["kept", "throwaway"]
    rdb = optuna.storages.RDBStorage(storage)
    kept = rdb.get_study_id_from_name("kept")
    assert len(rdb.get_all_trials(kept)) == 1 and not rdb.get_study_system_attrs(kept)  # the dashboard keeps notes there


def test_allow_write_lets_the_dashboard_delete_a_study(workspace: Path, storage: str) -> None:
    port = free_port()
    with dashboard(workspace, "--port", str(port), "--allow-write") as (_, err):
        ids = study_ids(port)
        assert call(port, "DELETE", f"/api/studies/{ids['throwaway']}")[0] == 204
        assert set(study_ids(port)) == {"kept"}
        assert "with write access" in err.read_text()
    assert optuna.get_all_study_names(storage) == ["kept"]


def test_a_bind_address_other_hosts_reach_is_warned_about(workspace: Path, storage: str) -> None:
    # Bound only to see the warning; no request goes to it.
    with dashboard(workspace, "--host", "0.0.0.0", "--port", str(free_port())) as (_, err):
        shown = err.read_text()
    assert shown.splitlines()[0] == (
        "warning: --host 0.0.0.0: anyone who can reach every network interface can read every study in the storage "
        "(no password); bind to 127.0.0.1 (an SSH tunnel reaches it from elsewhere)"
    )
    # The same words for every address but loopback (checked without binding), stronger with write access.
    assert str(exposure_warning("0.0.0.0", allow_write=True)).startswith(
        "warning: --host 0.0.0.0 with --allow-write: anyone who can reach every network interface can delete and rename studies"
    )
    for host in ("::", "192.168.1.20", "10.0.0.7"):
        assert "anyone who can reach" in str(exposure_warning(host, allow_write=False)), host
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert exposure_warning(host, allow_write=True) is None, host
