"""`hpo run` when things go wrong around it: stop signals, a killed parent, a paused worker, a study
deleted under the run, and a training function that stops without a model. Real subprocesses, a real
Optuna SQLite storage and MLflow store in a temp workspace; trials are a team's own function that
sleeps, so that a test decides how long a trial runs, not the load of the machine."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import invoke, run_cli, write_space

DB = Path("studies") / "hpo.db"
STARTUP = 180  # seconds an `hpo run` may take to reach its first trials on a loaded machine
QUICK_HEARTBEATS = {"HPO_GRACE_PERIOD": "3", "HPO_HEARTBEAT_INTERVAL": "1"}

# A trial that sleeps $FIT_SECONDS (default 1 s); the first trial (of any run) waits for a file
# `resume` instead when $PAUSE_FIRST is set, after writing its pid to `paused`.
TRAIN = """\
import os
import time

from sklearn.linear_model import Ridge


def fit(params, train):
    if os.environ.get("PAUSE_FIRST"):
        try:
            os.close(os.open("first", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass
        else:
            with open("paused.tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename("paused.tmp", "paused")
            while not os.path.exists("resume"):
                time.sleep(0.05)
    end = time.time() + float(os.environ.get("FIT_SECONDS", "1"))
    while time.time() < end:
        time.sleep(0.05)
    return Ridge(alpha=params["alpha"]).fit(train.X, train.y)
"""


def _space(ws: Path, n_trials: int) -> Path:
    (ws / "sleepy.py").write_text(TRAIN)
    return write_space(
        ws,
        model="sleepy:fit",
        metric="r2",
        n_trials=n_trials,
        params={"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        fixed=None,
    )


def _env(ws: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{ws / 'mlflow.db'}"
    return env | extra


def _start(space: Path, ws: Path, *options: str, **env: str) -> subprocess.Popen[str]:
    """`hpo run SPACE --json` in a process of its own, for tests that send it signals."""
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", "run", str(space), "--json", *options],
        cwd=ws,
        env=_env(ws, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(what: str, condition: Callable[[], bool], proc: subprocess.Popen[str] | None = None, timeout: float = STARTUP) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"hpo run ended (exit {proc.returncode}) before {what}: {proc.communicate()[1]}")
        if time.time() > deadline:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.1)


def _count(ws: Path, state: str) -> int:
    if not (ws / DB).exists():
        return 0
    con = sqlite3.connect(ws / DB, timeout=30)
    try:
        return int(con.execute("select count(*) from trials where state = ?", (state,)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _trials(ws: Path) -> list[Any]:
    import optuna

    return optuna.load_study(study_name="small", storage=f"sqlite:///{ws / DB}").trials


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie that nobody reaped, as under a container's PID 1, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the workers of `hpo run --jobs N`)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def _no_survivors(pids: list[int], timeout: float = 30) -> None:
    try:
        _wait("end of every worker", lambda: not any(_alive(p) for p in pids), timeout=timeout)
    finally:
        for p in pids:  # never leave one behind for the next test, even when this one fails
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def _parent_run_status(ws: Path) -> str:
    from mlflow import MlflowClient

    from hpo.schema import ROLE_STUDY, TAG_ROLE

    c = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    runs = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id], f"tags.`{TAG_ROLE}` = '{ROLE_STUDY}'")]
    assert len(runs) == 1
    return str(runs[0].info.status)


@pytest.mark.parametrize(("jobs", "sig"), [(2, signal.SIGTERM), (1, signal.SIGHUP)])
def test_sigterm_and_sighup_stop_after_the_running_trials_like_ctrl_c(workspace: Path, jobs: int, sig: signal.Signals) -> None:
    # `timeout`, a scheduler or a cancelled CI job send SIGTERM; a closed terminal SIGHUP. Both used to
    # end `hpo run` at once, leaving its workers to run the whole budget as orphans and the study's
    # MLflow run RUNNING.
    space = _space(workspace, n_trials=30)
    proc = _start(space, workspace, "--jobs", str(jobs))
    workers: list[int] = []
    try:
        _wait(
            "completed trial and busy workers",
            lambda: _count(workspace, "COMPLETE") >= 1 and _count(workspace, "RUNNING") == jobs,
            proc,
        )
        workers = _children(proc.pid) if jobs > 1 else []
        assert len(workers) == (jobs if jobs > 1 else 0)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        _no_survivors(workers)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    result = json.loads(out)
    assert result["interrupted"]
    assert 1 <= result["states"]["COMPLETE"] < 30
    assert _count(workspace, "RUNNING") == 0 and _count(workspace, "FAIL") == 0
    assert _parent_run_status(workspace) == "FINISHED"


def test_sigterm_to_every_process_at_once_is_one_stop_not_two(workspace: Path) -> None:
    # systemd (KillMode=control-group) or `pkill -TERM` signal the workers directly as well as the parent,
    # which forwards SIGINT: a worker that counted both would abort its trial instead of finishing it.
    space = _space(workspace, n_trials=30)
    proc = _start(space, workspace, "--jobs", "2")
    workers: list[int] = []
    try:
        _wait(
            "completed trial and busy workers",
            lambda: _count(workspace, "COMPLETE") >= 1 and _count(workspace, "RUNNING") == 2,
            proc,
        )
        workers = _children(proc.pid)
        for pid in [proc.pid, *workers]:
            os.kill(pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        _no_survivors(workers)
    assert proc.returncode == 0, err
    assert json.loads(out)["interrupted"]
    assert _count(workspace, "RUNNING") == 0 and _count(workspace, "FAIL") == 0, err


@pytest.mark.parametrize(("jobs", "first", "second"), [(2, signal.SIGTERM, signal.SIGHUP)])
def test_a_second_stop_signal_aborts_the_running_trials_and_requeues_their_slots(
    workspace: Path, jobs: int, first: signal.Signals, second: signal.Signals
) -> None:
    space = _space(workspace, n_trials=3)
    proc = _start(space, workspace, "--jobs", str(jobs), FIT_SECONDS="600")
    workers: list[int] = []
    try:
        _wait("busy workers", lambda: _count(workspace, "RUNNING") == jobs, proc)
        workers = _children(proc.pid) if jobs > 1 else []
        proc.send_signal(first)
        time.sleep(1)
        proc.send_signal(second)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        _no_survivors(workers)
    assert proc.returncode == 1, err  # no trial completed
    assert "Traceback" not in err, err
    trials = _trials(workspace)
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == jobs
    for t in failed:
        assert t.user_attrs["error"].startswith("interrupted")
        slot = t.user_attrs["budget_slot"]
        assert [u.state.name for u in trials if u.user_attrs.get("budget_slot") == slot] == ["FAIL", "WAITING"]
    assert _count(workspace, "RUNNING") == 0
    assert _parent_run_status(workspace) == "FINISHED"


def test_workers_die_with_a_killed_parent_and_a_resume_keeps_the_exact_budget(workspace: Path) -> None:
    space = _space(workspace, n_trials=4)
    proc = _start(space, workspace, "--jobs", "2", FIT_SECONDS="600", **QUICK_HEARTBEATS)
    workers: list[int] = []
    try:
        _wait("busy workers", lambda: _count(workspace, "RUNNING") == 2, proc)
        workers = _children(proc.pid)
        assert len(workers) == 2
        proc.kill()  # SIGKILL: nothing of hpo runs any more in the parent
        proc.communicate(timeout=60)
        _no_survivors(workers, timeout=20)
    finally:
        proc.kill()
        _no_survivors(workers, timeout=0)
    # Their two trials stay RUNNING until their heartbeats go stale; the next run requeues them.
    r = run_cli(
        "run", str(space), "--json", cwd=workspace, env=_env(workspace, FIT_SECONDS="0.1", **QUICK_HEARTBEATS), timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["states"] == {"COMPLETE": 4, "FAIL": 2}
    complete = [t for t in _trials(workspace) if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["budget_slot"] for t in complete) == [0, 1, 2, 3]


def test_a_worker_paused_past_the_grace_period_drops_its_result_and_goes_on(workspace: Path) -> None:
    # SIGSTOP stands for a laptop lid or a paused VM: the other worker fails the silent trial as stale
    # and runs its retry; the resumed worker used to die with UpdateFinishedTrialError.
    space = _space(workspace, n_trials=4)
    proc = _start(space, workspace, "--jobs", "2", PAUSE_FIRST="1", FIT_SECONDS="0.2", **QUICK_HEARTBEATS)
    paused = 0
    try:
        _wait("paused trial", lambda: (workspace / "paused").exists(), proc)
        paused = int((workspace / "paused").read_text())
        os.kill(paused, signal.SIGSTOP)
        _wait("trial failed as stale", lambda: _count(workspace, "FAIL") == 1, proc, timeout=120)
        (workspace / "resume").touch()
        os.kill(paused, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    finally:
        if paused and _alive(paused):
            os.kill(paused, signal.SIGCONT)
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "exited with an error" not in err, err
    assert "its result is dropped and the worker goes on" in err, err
    assert json.loads(out)["states"] == {"COMPLETE": 4, "FAIL": 1}
    failed = [t for t in _trials(workspace) if t.state.name == "FAIL"][0]
    assert "stopped sending heartbeats" in failed.user_attrs["error"]
    assert not _alive(paused)


@pytest.mark.parametrize("jobs", [1, 2])
def test_deleting_the_study_during_a_run_stops_it_with_one_line(workspace: Path, jobs: int) -> None:
    space = _space(workspace, n_trials=40)
    proc = _start(space, workspace, "--jobs", str(jobs), FIT_SECONDS="0.3")
    workers: list[int] = []
    try:
        _wait("completed trial", lambda: _count(workspace, "COMPLETE") >= 1, proc)
        workers = _children(proc.pid) if jobs > 1 else []
        r = run_cli("delete", "small", "--force", "--yes", cwd=workspace, env=_env(workspace), timeout=120)
        assert r.returncode == 0, r.stderr
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        _no_survivors(workers)
    assert proc.returncode != 0 and out == ""
    assert err.strip() == "error: study 'small' was deleted from the storage during the run; the run stopped", err


def test_a_training_function_that_returns_none_after_report_said_stop_is_pruned(workspace: Path) -> None:
    (workspace / "stops.py").write_text(
        "from sklearn.linear_model import Ridge\n\n\n"
        "def fit(params, train, report):\n"
        "    for step in range(10):\n"
        "        if not report(step, -params['alpha']):\n"
        "            return None  # told to stop: nothing to return\n"
        "    return Ridge(alpha=params['alpha']).fit(train.X, train.y)\n"
    )
    space = write_space(
        workspace,
        model="stops:fit",
        metric="r2",
        n_trials=8,
        pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        params={"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        fixed=None,
    )
    code, _, err = invoke("run", str(space), "--quiet")
    assert code == 0, err
    trials = _trials(workspace)
    assert {t.state.name for t in trials} == {"COMPLETE", "PRUNED"}, [t.user_attrs.get("error") for t in trials]
    for t in trials:
        if t.state.name == "PRUNED":
            assert 0 < len(t.intermediate_values) < 10
