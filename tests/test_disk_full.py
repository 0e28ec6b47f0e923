"""A disk that fills up during `hpo run`: one line naming the store, nothing half-written, and the run resumes.

The workspace (Optuna storage and MLflow store) lies on a real 2 MB tmpfs, mounted for the test (as root).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, trials_of, write_space

N_TRIALS = 10
FAST = {"HPO_HEARTBEAT_INTERVAL": "1", "HPO_GRACE_PERIOD": "2"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A workspace on a 2 MB tmpfs: the MLflow store takes about half of it when made."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (this test fills a real file system)")
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(ws)], check=True)
    try:
        (ws / "search_spaces").mkdir()
        yield ws
    finally:
        if subprocess.run(["umount", str(ws)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(ws)], check=False)  # a process still holds a file: detach it


def test_a_full_disk_ends_in_one_line_and_the_run_resumes_after_space_is_freed(small_disk: Path) -> None:
    ws = small_disk
    space = write_space(ws / "search_spaces", "small.yaml", n_trials=N_TRIALS)
    env = {**FAST, "MLFLOW_TRACKING_URI": f"sqlite:///{ws / 'mlflow.db'}"}

    r = run_cli("run", str(space), "--quiet", cwd=ws, env=env)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith("error: disk full while writing "), r.stderr
    assert "database or disk is full" in errors[0] and "free some space" in errors[0], r.stderr
    assert any(store in errors[0] for store in ("studies/hpo.db", "mlflow.db")), r.stderr
    # Optuna's wrapper blamed "invalid data ..., e.g. exceeding max length"; MLflow logged its SQL and parameters.
    assert "exceeding max length" not in r.stderr and "[SQL:" not in r.stderr
    assert len(r.stderr.splitlines()) <= 6, r.stderr
    done = [t for t in trials_of(ws, "small") if t.state.name == "COMPLETE"]
    assert 0 < len(done) < N_TRIALS

    # Nothing half-written: both databases are whole, and with space the same command finishes the budget.
    for db in (ws / "studies" / "hpo.db", ws / "mlflow.db"):
        with contextlib.closing(sqlite3.connect(db)) as con:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    subprocess.run(["mount", "-o", "remount,size=64m", str(ws)], check=True)
    r = run_cli("run", str(space), "--quiet", cwd=ws, env=env)
    assert r.returncode == 0, r.stderr
    states = [t.state.name for t in trials_of(ws, "small")]
    assert states.count("COMPLETE") == N_TRIALS and set(states) <= {"COMPLETE", "FAIL"}  # the trial cut short, retried
