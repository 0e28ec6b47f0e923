"""Many workers on one study, and workers that die: real processes, real storages, real MLflow.

The PostgreSQL and MLflow-server tests start both servers on loopback (``tests/servers.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow import MlflowClient

from hpo.storage import GRACE_PERIOD, HEARTBEAT_INTERVAL
from tests.conftest import write_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Trials long enough to be killed in the middle of one (1-3 s each on one core).
SLOW = {"iterations": 8000, "thread_count": 1}


def worker(space: Path, cwd: Path, storage: str | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start one `hpo run` process, as a user on another host would."""
    args = [sys.executable, "-m", "hpo", "run", str(space), "--json"] + (["--storage", storage] if storage else [])
    full_env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    full_env.update(env or {})
    return subprocess.Popen(args, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out)


def study_of(storage: str, name: str = "small") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def running_trial_of(storage: str, pid: int, timeout: float = 120) -> optuna.trial.FrozenTrial:
    """Wait until process ``pid`` is in the middle of a trial (it has sent a heartbeat), and return it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            for t in study_of(storage).get_trials(states=(optuna.trial.TrialState.RUNNING,)):
                if t.user_attrs.get("worker", "").endswith(f":{pid}") and t.user_attrs.get("mlflow_run_id"):
                    return t
        except Exception:
            pass  # the storage or the study is not created yet
        time.sleep(0.2)
    raise AssertionError(f"worker {pid} started no trial within {timeout} s")


def kill_in_trial(proc: subprocess.Popen[str], storage: str) -> tuple[optuna.trial.FrozenTrial, float]:
    trial = running_trial_of(storage, proc.pid)
    time.sleep(0.3)  # inside the fit
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.time()
    proc.communicate(timeout=30)
    state = next(t.state.name for t in study_of(storage).get_trials() if t.number == trial.number)
    assert state == "RUNNING", f"trial #{trial.number} was {state} when its worker was killed; the test needs slower trials"
    return trial, killed_at


def assert_recovered(storage: str, killed: optuna.trial.FrozenTrial, killed_at: float, budget: int) -> float:
    """The killed trial ended FAIL, was retried with its slot, seed and params, and every slot completed.

    Returns the seconds from the kill until the storage recorded the trial as failed.
    """
    trials = study_of(storage).get_trials()
    dead = next(t for t in trials if t.number == killed.number)
    assert dead.state.name == "FAIL"
    assert "stopped sending heartbeats" in dead.user_attrs["error"]  # `hpo show` and the dashboard say why
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state.name == "COMPLETE"
    assert retry.params == dead.params and set(dead.params) == {"depth", "learning_rate"}
    assert {k: retry.user_attrs[k] for k in ("budget_slot", "seed")} == {k: killed.user_attrs[k] for k in ("budget_slot", "seed")}
    assert retry.user_attrs["mlflow_run_id"] != killed.user_attrs["mlflow_run_id"]
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL") and t.number != killed.number]
    assert sorted(t.user_attrs["budget_slot"] for t in finished) == list(range(budget))
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    # The killed trial's MLflow run is closed as failed, saying why.
    run = MlflowClient().get_run(killed.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and "heartbeats" in run.data.tags["error"]
    assert dead.datetime_complete is not None
    return dead.datetime_complete.timestamp() - killed_at


def test_a_killed_run_on_the_local_storage_is_failed_and_retried_by_the_next_run(workspace: Path, mlflow_store: str) -> None:
    space = write_space(workspace, n_trials=3, fixed=SLOW)
    storage = f"sqlite:///{workspace / 'studies' / 'hpo.db'}"
    first = worker(space, workspace, env={"MLFLOW_TRACKING_URI": mlflow_store})
    killed, killed_at = kill_in_trial(first, storage)

    result = finish(worker(space, workspace, env={"MLFLOW_TRACKING_URI": mlflow_store}))
    assert result["states"]["COMPLETE"] == 3 and result["states"]["FAIL"] == 1
    seconds = assert_recovered(storage, killed, killed_at, budget=3)
    # Failed once its heartbeat was older than the grace period, and not much later.
    assert GRACE_PERIOD - HEARTBEAT_INTERVAL - 1 <= seconds <= GRACE_PERIOD + 15, seconds
    print(f"\nlocal SQLite: killed trial failed {seconds:.1f} s after SIGKILL (grace period {GRACE_PERIOD} s)")


def test_three_workers_started_together_on_postgres_finish_exactly_the_budget(
    workspace: Path, postgres_url: str, mlflow_server: str
) -> None:
    space = write_space(workspace, n_trials=12, fixed={"iterations": 1500, "thread_count": 1})
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    start = time.time()
    procs = [worker(space, workspace, postgres_url, env) for _ in range(3)]  # at the same moment
    results = [finish(p) for p in procs]
    elapsed = time.time() - start

    trials = study_of(postgres_url).get_trials()
    assert len(trials) == 12 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED", "FAIL"}
    assert sorted(t.number for t in trials) == list(range(12))
    assert sorted(t.user_attrs["budget_slot"] for t in trials) == list(range(12))
    assert sum(r["ran"] for r in results) == 12
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) >= 2
    print(f"\nPostgreSQL: 3 workers, budget 12, {len(trials)} trials finished by {len(workers)} workers in {elapsed:.1f} s")

    # One parent run and one child run per trial on the tracking server, no duplicates.
    c = MlflowClient(tracking_uri=mlflow_server)
    exp = c.get_experiment_by_name(f"{workspace.name}-HPO-v0.1.0")
    runs = c.search_runs([exp.experiment_id], max_results=100)
    children = [r for r in runs if r.data.tags["hpo.role"] == "trial"]
    assert len([r for r in runs if r.data.tags["hpo.role"] == "study"]) == 1
    assert sorted(int(r.data.tags["hpo.trial_number"]) for r in children) == list(range(12))
    assert all(r.info.status == "FINISHED" for r in children)


def test_a_sigkilled_worker_on_postgres_is_retried_and_the_study_reaches_its_budget(
    workspace: Path, postgres_url: str, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    space = write_space(workspace, n_trials=12, fixed=SLOW)
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    procs = [worker(space, workspace, postgres_url, env) for _ in range(3)]
    killed, killed_at = kill_in_trial(procs[0], postgres_url)
    for p in procs[1:]:
        finish(p)
    seconds = assert_recovered(postgres_url, killed, killed_at, budget=12)
    assert seconds <= GRACE_PERIOD + 15
    print(
        f"\nPostgreSQL: worker SIGKILLed in trial #{killed.number}; failed {seconds:.1f} s later, retried, budget of 12 reached"
    )


def test_hpo_dashboard_serves_the_study_from_postgres_on_loopback(workspace: Path, postgres_url: str) -> None:
    from tests.servers import free_port

    space = write_space(workspace, n_trials=2)
    finish(worker(space, workspace, postgres_url))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "dashboard", "--storage", postgres_url, "--port", str(port)],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline, summaries = time.time() + 60, None
        while time.time() < deadline and summaries is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=30) as r:
                    summaries = json.loads(r.read())["study_summaries"]
            except OSError:
                time.sleep(0.3)
        assert summaries is not None, "the dashboard did not answer within 60 s"
        sid = next(s["study_id"] for s in summaries if s["study_name"] == "small")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{sid}", timeout=30) as r:
            detail = json.loads(r.read())
        assert len(detail["trials"]) == 2
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert f"at http://127.0.0.1:{port}/" in err
