"""`hpo worker` joins a study another process created: exact budgets with workers started twice,
killed and restarted; SIGTERM fails and requeues the running trial and says so in the exit code;
GPU pinning sets each worker's CUDA_VISIBLE_DEVICES. Real processes, real SQLite storage and MLflow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from hpo.errors import HpoError
from hpo.run._devices import device_groups, parse_devices
from tests.conftest import run_cli, write_space

# A training function that sleeps SLOW_FIT seconds and writes down which devices it saw, per process.
SLOW_FIT = """
import os, time
from sklearn.dummy import DummyRegressor

def fit(params, train, seed):
    seen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen")
    os.makedirs(seen, exist_ok=True)
    with open(os.path.join(seen, str(os.getpid())), "a") as f:
        f.write(os.environ.get("CUDA_VISIBLE_DEVICES", "-") + "\\n")
    time.sleep(float(os.environ.get("SLOW_FIT", "0")))
    return DummyRegressor().fit(train.X, train.y)
"""
ALPHA = {"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}}
FAST_BEATS = {"HPO_HEARTBEAT_INTERVAL": "1", "HPO_GRACE_PERIOD": "4"}


def _space(ws: Path, n_trials: int) -> Path:
    (ws / "slowfit.py").write_text(SLOW_FIT)
    return write_space(ws, model="slowfit:fit", metric="r2", n_trials=n_trials, params=ALPHA, fixed=None)


def _env(ws: Path, **more: str) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{ws / 'mlflow.db'}", **FAST_BEATS, **more}


def _worker(ws: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    full.update(_env(ws, **env))
    cmd = [sys.executable, "-m", "hpo", "worker", "--study", "small", "--json", *args]
    return subprocess.Popen(cmd, cwd=ws, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _trials(ws: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="small", storage=f"sqlite:///{ws / 'studies' / 'hpo.db'}").get_trials()


def _assert_exact(ws: Path, budget: int) -> list[optuna.trial.FrozenTrial]:
    """Every budget slot finished exactly once (a FAIL that was retried in its slot aside), nothing left over."""
    trials = _trials(ws)
    retried = {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL") and t.number not in retried]
    assert sorted(t.user_attrs["budget_slot"] for t in counted) == list(range(budget))
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    return trials


def _running(ws: Path, pid: int, timeout: float = 60) -> optuna.trial.FrozenTrial:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for t in _trials(ws):
            if t.state.name == "RUNNING" and t.user_attrs.get("worker", "").endswith(f":{pid}"):
                return t
        time.sleep(0.2)
    raise AssertionError(f"worker {pid} started no trial within {timeout} s")


def test_workers_join_a_created_study_and_spend_exactly_its_budget(workspace: Path) -> None:
    space = _space(workspace, n_trials=6)
    created = run_cli("run", str(space), "--create-only", "--json", cwd=workspace, env=_env(workspace))
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["ran"] == 0 and len(_trials(workspace)) > 0  # slots enqueued, none run

    # Two workers at once, a third started after them: together they run each slot once.
    procs = [_worker(workspace, SLOW_FIT="0.3") for _ in range(2)]
    time.sleep(1.0)
    procs.append(_worker(workspace, SLOW_FIT="0.3"))
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    ran = [json.loads(o)["ran"] for o, _ in outs]
    assert sum(ran) == 6
    trials = _assert_exact(workspace, 6)
    assert [t.state.name for t in trials].count("COMPLETE") == 6
    # Every trial has its MLflow run: `hpo sync` finds nothing to create.
    synced = run_cli("sync", "--study", "small", "--json", cwd=workspace, env=_env(workspace))
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["created"] == 0

    # A worker joining a finished study has nothing to claim: it exits 0 at once.
    late = _worker(workspace)
    out, err = late.communicate(timeout=120)
    assert late.returncode == 0 and json.loads(out)["ran"] == 0, err


def test_sigterm_fails_and_requeues_the_running_trial_and_exits_143(workspace: Path) -> None:
    space = _space(workspace, n_trials=3)
    assert run_cli("run", str(space), "--create-only", cwd=workspace, env=_env(workspace)).returncode == 0
    proc = _worker(workspace, SLOW_FIT="30")
    trial = _running(workspace, proc.pid)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert time.time() - sent < 15  # at once, not after the 30 s fit
    assert "SIGTERM" in err and "Traceback" not in err
    assert json.loads(out)["stop_signal"] == "SIGTERM"
    trials = _trials(workspace)
    cut = next(t for t in trials if t.number == trial.number)
    assert cut.state.name == "FAIL" and cut.user_attrs["error"] == "interrupted (SIGTERM); retried in the same budget slot"
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == trial.number]
    assert len(retry) == 1 and retry[0].state.name == "WAITING"
    assert retry[0].user_attrs["budget_slot"] == trial.user_attrs["budget_slot"]
    assert retry[0].user_attrs["seed"] == trial.user_attrs["seed"]

    # A new worker finishes the budget: the interrupted slot is run once more, not counted twice.
    again = _worker(workspace, SLOW_FIT="0")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    _assert_exact(workspace, 3)


def test_a_killed_worker_restarted_never_counts_a_slot_twice(workspace: Path) -> None:
    space = _space(workspace, n_trials=5)
    assert run_cli("run", str(space), "--create-only", cwd=workspace, env=_env(workspace)).returncode == 0
    survivor = _worker(workspace, SLOW_FIT="0.5")
    victim = _worker(workspace, SLOW_FIT="20")
    killed = _running(workspace, victim.pid)
    victim.kill()  # as a lost node: no signal handler runs
    victim.communicate(timeout=30)
    restarted = _worker(workspace, SLOW_FIT="0.5")  # the engine starts it again
    for p in (survivor, restarted):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    trials = _assert_exact(workspace, 5)
    dead = next(t for t in trials if t.number == killed.number)
    assert dead.state.name == "FAIL" and "heartbeats" in dead.user_attrs["error"]
    assert [t.state.name for t in trials].count("COMPLETE") == 5


def test_a_worker_waits_for_its_creator_and_refuses_what_it_cannot_join(workspace: Path) -> None:
    space = _space(workspace, n_trials=2)
    missing = run_cli("worker", "--study", "small", cwd=workspace, env=_env(workspace))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "study 'small' is not in" in missing.stderr and "--create-only" in missing.stderr

    # Started before its creator, it waits, then joins.
    early = _worker(workspace, "--wait-for-study", "120")
    time.sleep(1.5)
    assert early.poll() is None
    assert run_cli("run", str(space), "--create-only", cwd=workspace, env=_env(workspace)).returncode == 0
    out, err = early.communicate(timeout=120)
    assert early.returncode == 0 and json.loads(out)["ran"] == 2, err

    for bad, says in (
        (["--wait-for-study", "-1"], "--wait-for-study must be seconds"),
        (["--wait-for-study", "soon"], "--wait-for-study must be a number"),
        (["--timeout", "0"], "--timeout must be seconds above 0"),
        (["--gpus", "0,,1"], "--gpus must be a comma-separated list"),
        (["--gpus", "1,1"], "--gpus must name each device once"),
    ):
        r = run_cli("worker", "--study", "small", *bad, cwd=workspace, env=_env(workspace))
        assert r.returncode == 2 and r.stderr.startswith("error: ") and says in r.stderr, (bad, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr


def test_a_worker_joins_from_another_workspace_and_is_refused_other_data(workspace: Path) -> None:
    space = _space(workspace, n_trials=2)
    assert run_cli("run", str(space), "--create-only", cwd=workspace, env=_env(workspace)).returncode == 0
    # Another host's checkout: the same code and data, its own folder, no space file needed.
    other = workspace / "elsewhere"
    other.mkdir()
    (other / "slowfit.py").write_text(SLOW_FIT)
    storage = f"sqlite:///{workspace / 'studies' / 'hpo.db'}"
    r = run_cli("worker", "--study", "small", "--storage", storage, "--json", cwd=other, env=_env(workspace))
    assert r.returncode == 0 and json.loads(r.stdout)["ran"] == 2, r.stderr

    # A study whose data digests are not this workspace's data: refused before anything is claimed.
    raised = run_cli("run", str(space), "--n-trials", "3", "--create-only", cwd=workspace, env=_env(workspace))
    assert raised.returncode == 0, raised.stderr
    rdb = optuna.storages.RDBStorage(storage)
    sid = rdb.get_study_id_from_name("small")
    digests = rdb.get_study_user_attrs(sid)["data_digests"]
    rdb.set_study_user_attr(sid, "data_digests", {k: "0" * 64 for k in digests})
    before = [(t.number, t.state.name) for t in _trials(workspace)]
    r = run_cli("worker", "--study", "small", cwd=workspace, env=_env(workspace))
    assert r.returncode == 2 and "this worker's data is not the data of study 'small'" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
    assert [(t.number, t.state.name) for t in _trials(workspace)] == before and ("WAITING" in {s for _, s in before})


def test_gpus_are_shared_out_to_the_workers_of_a_run_and_pinned_for_a_worker(workspace: Path) -> None:
    space = _space(workspace, n_trials=6)
    r = run_cli("run", str(space), "--jobs", "2", "--gpus", "0,1,2,3", "-q", cwd=workspace, env=_env(workspace, SLOW_FIT="0.3"))
    assert r.returncode == 0, r.stderr
    seen = {p.name: set(p.read_text().split()) for p in (workspace / "seen").iterdir()}
    assert sorted(v for s in seen.values() for v in s) == ["0,1", "2,3"]  # one share per worker process
    for p in (workspace / "seen").iterdir():
        p.unlink()

    r = run_cli("run", str(space), "--n-trials", "8", "--gpus", "GPU-5c2e9f1a", "-q", cwd=workspace, env=_env(workspace))
    assert r.returncode == 0, r.stderr
    assert {v for p in (workspace / "seen").iterdir() for v in p.read_text().split()} == {"GPU-5c2e9f1a"}

    bad = run_cli("run", str(space), "--gpus", "cuda:0", cwd=workspace, env=_env(workspace))
    assert bad.returncode == 2 and "--gpus must be a comma-separated list" in bad.stderr, bad.stderr


def test_device_groups_give_each_worker_its_own_share_or_take_turns() -> None:
    assert device_groups(["0", "1", "2", "3"], 2) == ["0,1", "2,3"]
    assert device_groups(["0", "1", "2"], 2) == ["0,1", "2"]
    assert device_groups(["0", "1"], 4) == ["0", "1", "0", "1"]
    assert device_groups(["0"], 1) == ["0"]
    assert device_groups([], 3) == []
    assert parse_devices(" 0, 2") == ["0", "2"]
    with pytest.raises(HpoError, match="comma-separated"):
        parse_devices("")


@pytest.mark.skipif(
    not Path("/dev/nvidia0").exists(), reason="no NVIDIA GPU on this machine: CatBoost's task_type GPU fit is not run"
)
def test_catboost_fits_on_the_pinned_gpu(workspace: Path, mlflow_store: str) -> None:
    space = write_space(workspace, n_trials=2, fixed={"iterations": 20, "task_type": "GPU"})
    r = run_cli("run", str(space), "--gpus", "0", "--json", cwd=workspace, env={"MLFLOW_TRACKING_URI": mlflow_store})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["states"] == {"COMPLETE": 2}
