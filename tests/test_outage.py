"""A storage outage: ``hpo run`` on PostgreSQL survives a server restart, and past ``HPO_OUTAGE_SECONDS``
says so in one line per process and loses nothing; a server that is not there says so at once.

The restarts use a cluster of this module's own (stopping the session's one would break other tests),
and a password in the URL (trust auth ignores it) to check that no message shows it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_space
from tests.servers import PG_USER, _pg_run, _pg_stop, find_pg_binaries, free_port, fresh_database

PASSWORD = "s3cret-pw"
TIMING = {"HPO_HEARTBEAT_INTERVAL": "1", "HPO_GRACE_PERIOD": "3"}


@dataclass
class Cluster:
    """A PostgreSQL cluster that a test may stop and start again on the same port."""

    pg_ctl: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        data, log = self.root / "data", self.root / "log"
        r = _pg_run([str(self.pg_ctl), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"], cwd=self.root)
        assert r.returncode == 0, r.stderr + log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """What an administrator's restart does first: end every session, then shut down."""
        r = _pg_run([str(self.pg_ctl), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"], cwd=self.root)
        assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    binaries = find_pg_binaries()
    assert binaries is not None, "PostgreSQL is needed (initdb, pg_ctl); the postgres_server fixture installs it"
    initdb, pg_ctl = binaries
    root = Path(tempfile.mkdtemp(prefix="hpo-pg-outage-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    try:
        r = _pg_run(
            [str(initdb), "-D", str(root / "data"), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
            cwd=root,
        )
        assert r.returncode == 0, r.stderr
        c = Cluster(pg_ctl, root, free_port())
        c.start()
        yield c
    finally:
        if (root / "data" / "postmaster.pid").exists():
            _pg_stop(pg_ctl, root)
        shutil.rmtree(root, ignore_errors=True)


def _run(space: Path, ws: Path, url: str, *args: str, **env: str) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    full.update(TIMING, MLFLOW_TRACKING_URI=f"sqlite:///{ws / 'mlflow.db'}", **env)
    cmd = [sys.executable, "-m", "hpo", "run", str(space), "--storage", url, *args]
    return subprocess.Popen(cmd, cwd=ws, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _completed(url: str) -> int:
    """COMPLETE trials in the storage at ``url`` (0 while it has no study), read with a plain connection."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0])  # type: ignore[index]
    except psycopg.Error:
        return 0


def _wait_for(proc: subprocess.Popen[str], url: str, n: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while _completed(url) < n:
        assert proc.poll() is None, f"hpo run ended before {n} trials completed: {proc.communicate()}"
        assert time.time() < deadline, f"fewer than {n} trials completed in {timeout:.0f} s"
        time.sleep(0.2)


def _check_exact_budget(ws: Path, url: str, budget: int) -> None:
    """The budget's slots each hold one COMPLETE trial; MLflow has one FINISHED child run per trial."""
    import optuna
    from mlflow import MlflowClient

    trials = optuna.load_study(study_name="small", storage=url).get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["budget_slot"] for t in complete) == list(range(budget)), [
        (t.number, t.state.name) for t in trials
    ]
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    c = MlflowClient(tracking_uri=f"sqlite:///{ws / 'mlflow.db'}")
    exp = c.get_experiment_by_name(f"{ws.name}-HPO-v0.1.0")
    runs = {r.info.run_id: r for r in c.search_runs([exp.experiment_id], max_results=200)}
    for t in complete:
        assert runs[t.user_attrs["mlflow_run_id"]].info.status == "FINISHED"
    assert len([r for r in runs.values() if r.data.tags.get("hpo.role") == "study"]) == 1


def test_hpo_run_survives_a_postgres_restart_with_two_workers(workspace: Path, cluster: Cluster) -> None:
    url = fresh_database(cluster.url, "restart")
    space = write_space(workspace, n_trials=6, fixed={"iterations": 200, "thread_count": 1})
    proc = _run(space, workspace, url, "--jobs", "2")
    try:
        _wait_for(proc, url, 1)
        cluster.stop()
        time.sleep(5)
        assert proc.poll() is None, f"hpo run ended during the outage: {proc.communicate()}"
        cluster.start()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and PASSWORD not in err + out, err
    _check_exact_budget(workspace, url, 6)


def test_an_outage_past_the_window_is_one_line_per_process_and_a_resume_loses_nothing(workspace: Path, cluster: Cluster) -> None:
    url = fresh_database(cluster.url, "outage")
    space = write_space(workspace, n_trials=4, fixed={"iterations": 200, "thread_count": 1})
    proc = _run(space, workspace, url, "--jobs", "2", HPO_OUTAGE_SECONDS="3")
    try:
        _wait_for(proc, url, 1)
        cluster.stop()
        stopped = time.time()
        out, err = proc.communicate(timeout=60)
        gave_up = time.time() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
        cluster.start()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2
    assert "Traceback" not in err and PASSWORD not in err + out, err
    # One line from each worker and one from `hpo run` itself, which watches the storage too.
    expected = f"error: storage postgresql://{PG_USER}:***@127.0.0.1:{cluster.port}/outage: unreachable for 3 s ("
    assert 1 <= len(errors) <= 3 and all(line.startswith(expected) for line in errors), err
    assert gave_up < 20, f"gave up {gave_up:.0f} s after the server stopped"

    resumed = run_cli(
        "run",
        str(space),
        "--storage",
        url,
        cwd=workspace,
        env={**TIMING, "MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}"},
    )
    assert resumed.returncode == 0, resumed.stderr
    _check_exact_budget(workspace, url, 4)


def test_hpo_run_against_a_server_that_is_not_there_is_one_line_and_exit_2(workspace: Path) -> None:
    space = write_space(workspace)
    url = f"postgresql://{PG_USER}:{PASSWORD}@127.0.0.1:{free_port()}/hpo"
    started = time.time()
    r = run_cli("run", str(space), "--storage", url, cwd=workspace)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: storage postgresql://{PG_USER}:***@127.0.0.1:"), r.stderr
    assert "Connection refused" in r.stderr and PASSWORD not in r.stderr + r.stdout
    assert time.time() - started < 30  # at once, not after a minute of retries
