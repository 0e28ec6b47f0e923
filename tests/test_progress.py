"""The progress bar of `hpo run` counts budget slots, not attempts: a retried trial is one slot."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_cli, write_space


def _states(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    con = sqlite3.connect(db, timeout=30)
    try:
        return dict(con.execute("select state, count(*) from trials group by state").fetchall())
    except sqlite3.OperationalError:
        return {}  # the tables are not created yet
    finally:
        con.close()


def test_a_trial_retried_in_its_slot_counts_once_in_the_progress_bar(workspace: Path) -> None:
    # A worker killed mid-trial leaves it RUNNING; the next run fails it once its heartbeat is stale
    # and retries it in the same slot. The bar counted the FAIL and the retry: "3/2".
    space = write_space(workspace, n_trials=2, fixed={"iterations": 8000, "thread_count": 1})  # 1-3 s fits
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}"}
    db = workspace / "studies" / "hpo.db"
    first = subprocess.Popen(
        [sys.executable, "-m", "hpo", "run", str(space), "--json"],
        cwd=workspace,
        env={k: v for k, v in os.environ.items() if k != "HPO_STORAGE"} | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not _states(db).get("RUNNING"):
        time.sleep(0.1)
    time.sleep(0.3)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    assert _states(db).get("RUNNING") == 1 and not _states(db).get("COMPLETE"), "the test needs slower trials"

    r = run_cli("run", str(space), cwd=workspace, env=env)
    assert r.returncode == 0, r.stderr
    assert _states(db) == {"COMPLETE": 2, "FAIL": 1}
    assert "Resuming study small (0 trials done, 2 to go)" in r.stderr
    bar = [line for line in r.stderr.splitlines() if line.startswith("trials ")]
    assert bar and " 2/2 best " in bar[-1], r.stderr
