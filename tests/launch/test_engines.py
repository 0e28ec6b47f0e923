"""`hpo run --backend ray|dask`: a study run to its exact budget by workers on a real local Ray
cluster and a real local Dask cluster (two nodes each, on 127.0.0.1), one node killed mid-run.

Each cluster is started by the test with the engine's own CLI (`ray start`, `dask scheduler`,
`dask worker`), each node in a session of its own, so that killing the session's processes is losing
the node: its hpo worker dies with it, mid-trial, without running any handler.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from tests.conftest import write_space

BIN = Path(sys.executable).parent
SLEEPY = """
import time
from sklearn.dummy import DummyRegressor

def fit(params, train):
    time.sleep(params["sleep"])
    return DummyRegressor().fit(train.X, train.y)
"""
BUDGET = 8
# Short waits, so a dead worker's trial is failed and requeued within seconds (tests/servers.py does the same).
FAST = {"HPO_HEARTBEAT_INTERVAL": "1", "HPO_GRACE_PERIOD": "4", "RAY_AUTH_MODE": "disabled"}
# Ray notices a lost node after this many missed health checks of this period.
RAY_HEALTH = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_timeout_ms": "1000",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    env.update(FAST, **more)
    return env


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A node's processes in a session of their own (killing the session loses the node)."""
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _kill_node(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process of the node's session (Ray puts its workers in process groups of their own)."""
    for pid in _session(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _session(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
    return pids


def _wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout} s")


def _space(ws: Path) -> Path:
    (ws / "sleepy.py").write_text(SLEEPY)
    alpha = {"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}}
    return write_space(ws, model="sleepy:fit", metric="r2", n_trials=BUDGET, params=alpha, fixed={"sleep": 1.5})


def _trials(ws: Path) -> list[optuna.trial.FrozenTrial]:
    db = ws / "studies" / "hpo.db"
    try:  # Optuna's storage is opened only once `hpo run` has created it: two first openings race
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            if not conn.execute("SELECT 1 FROM studies WHERE study_name = 'small'").fetchone():
                return []
    except sqlite3.Error:
        return []
    return optuna.load_study(study_name="small", storage=f"sqlite:///{db}").get_trials()


def _running_in_session(ws: Path, session: int) -> optuna.trial.FrozenTrial | None:
    """A RUNNING trial whose worker process belongs to the session ``session`` (one node)."""
    for t in _trials(ws):
        if t.state.name != "RUNNING":
            continue
        pid = int(str(t.user_attrs.get("worker", ":0")).rsplit(":", 1)[1])
        try:
            if pid and os.getsid(pid) == session:
                return t
        except ProcessLookupError:
            continue
    return None


def _run_killing_one_node(ws: Path, args: list[str], victim: subprocess.Popen[bytes]) -> tuple[dict[str, object], int]:
    """`hpo run SPACE --json` with ``args``; once ``victim``'s node runs a trial, kill the node."""
    space = _space(ws)
    env = _env(MLFLOW_TRACKING_URI=f"sqlite:///{ws / 'mlflow.db'}")
    cmd = [sys.executable, "-m", "hpo", "run", str(space), "--json", *args]
    run = subprocess.Popen(cmd, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[optuna.trial.FrozenTrial] = []

    def victim_busy() -> bool:
        t = _running_in_session(ws, victim.pid)
        if t is not None:
            killed.append(t)
        return t is not None or run.poll() is not None

    _wait_until(victim_busy, 120, "the node to be killed started no trial")
    assert killed, f"the run ended before the node ran a trial: {run.communicate()}"
    time.sleep(0.3)
    _kill_node(victim)
    out, err = run.communicate(timeout=240)
    assert run.returncode == 0, err
    assert "Traceback" not in err, err
    return json.loads(out), killed[0].number


def _assert_exact_budget(ws: Path, killed: int) -> None:
    trials = _trials(ws)
    dead = next(t for t in trials if t.number == killed)
    assert dead.state.name == "FAIL", dead.state  # its worker died with the node
    retried = {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}
    assert killed in retried
    counted = [t for t in trials if t.state.is_finished() and t.number not in retried]
    assert sorted(t.user_attrs["budget_slot"] for t in counted) == list(range(BUDGET))  # each slot once
    assert [t.state.name for t in counted] == ["COMPLETE"] * BUDGET
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`ray start --head` on 127.0.0.1 and a second node, one CPU each; yields (address, second node)."""
    pytest.importorskip("ray")
    port = _free_port()
    env = _env(**RAY_HEALTH)
    ray = str(BIN / "ray")
    common = ["--num-cpus", "1", "--disable-usage-stats", "--block"]
    head = _start(
        [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard=false", *common],
        tmp_path / "head.log",
        env,
    )
    address = f"127.0.0.1:{port}"
    nodes = [head]
    try:
        _wait_until(lambda: _answers(port), 60, f"ray head: {(tmp_path / 'head.log').read_text()[-2000:]}")
        second = _start([ray, "start", "--address", address, *common], tmp_path / "node.log", env)
        nodes.append(second)
        _wait_until(lambda: _ray_nodes(address, env) == 2, 60, "the second Ray node did not join")
        yield address, second
    finally:
        for n in nodes:
            _kill_node(n)
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=60)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _ray_nodes(address: str, env: dict[str, str]) -> int:
    r = subprocess.run([str(BIN / "ray"), "status", "--address", address], env=env, capture_output=True, text=True, timeout=60)
    return r.stdout.count(" node_")


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`dask scheduler` on 127.0.0.1 and two `dask worker`s of one thread; yields (address, second worker)."""
    pytest.importorskip("distributed")
    port = _free_port()
    env = _env()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(BIN / "dask")
    procs = [_start([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], tmp_path / "s.log", env)]
    try:
        _wait_until(lambda: _answers(port), 60, "dask scheduler")
        for i in range(2):
            worker = [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"]
            procs.append(_start(worker, tmp_path / f"w{i}.log", env))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, procs[-1]
    finally:
        for p in procs:
            _kill_node(p)


def test_a_study_runs_to_its_exact_budget_on_a_ray_cluster_that_loses_a_node(
    workspace: Path, ray_cluster: tuple[str, subprocess.Popen[bytes]]
) -> None:
    address, second = ray_cluster
    result, killed = _run_killing_one_node(workspace, ["--backend", "ray", "--address", address, "--workers", "2"], second)
    assert result["states"] == {"COMPLETE": BUDGET, "FAIL": 1}
    _assert_exact_budget(workspace, killed)


def test_a_study_runs_to_its_exact_budget_on_a_dask_cluster_that_loses_a_worker(
    workspace: Path, dask_cluster: tuple[str, subprocess.Popen[bytes]]
) -> None:
    address, second = dask_cluster
    result, killed = _run_killing_one_node(workspace, ["--backend", "dask", "--address", address, "--workers", "2"], second)
    assert result["states"] == {"COMPLETE": BUDGET, "FAIL": 1}
    _assert_exact_budget(workspace, killed)


def test_cluster_flags_are_checked_before_anything_is_written(workspace: Path) -> None:
    space = _space(workspace)
    port = _free_port()  # nothing listens there
    for args, says in (
        (["--backend", "ray", "--address", f"127.0.0.1:{port}", "--workers", "2"], f"nothing answers at 127.0.0.1:{port}"),
        (["--backend", "dask", "--address", f"tcp://127.0.0.1:{port}", "--workers", "2"], "nothing answers at"),
        (["--backend", "dask", "--workers", "2"], "--address is required with --backend dask"),
        (["--backend", "ray", "--address", "x:1"], "--workers must be a whole number from 1 to 10000"),
        (["--backend", "ray", "--address", "x:1", "--workers", "2", "--jobs", "2"], "--jobs is for --backend local"),
        (["--backend", "ray", "--address", "x:1", "--workers", "2", "--gpus", "0"], "--gpus is for --backend local"),
        (
            ["--backend", "dask", "--address", "x:1", "--workers", "2", "--cpus-per-worker", "2"],
            "--cpus-per-worker is for --backend ray",
        ),
        (
            ["--backend", "ray", "--address", "x:1", "--workers", "2", "--cpus-per-worker", "0"],
            "--cpus-per-worker must be above 0",
        ),
        (["--backend", "ray", "--address", "x:1", "--workers", "two"], "--workers must be a whole number"),
        (["--workers", "2"], "--workers is for --backend ray or dask"),
        (["--backend", "spark"], "--backend must be one of local, ray, dask"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "hpo", "run", str(space), *args],
            cwd=workspace,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and r.stderr.startswith("error: ") and says in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr
    assert not (workspace / "studies").exists() and not (workspace / "mlruns").exists() and not (workspace / "mlflow.db").exists()
