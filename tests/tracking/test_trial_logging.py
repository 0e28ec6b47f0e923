"""A trial's MLflow run: ended by the live projection's writer thread, complete and the same as `hpo sync`
writes it, also after a Ctrl-C; its per-iteration history sampled, whole or left out (`tracking.history`)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow import MlflowClient

from hpo.space import SpaceFile
from tests.conftest import invoke, run_cli, small_space, write_space

HISTORY = "val_pearson_r_by_iteration"
# The search hash of `small_space()` as hpo computed it before `tracking` existed: a study created
# then must resume now, with or without the key.
HASH_BEFORE_TRACKING = "f7df380b34bb8d267c2e5b22bfc11beeb54b37b74d4839cc064a904684eef42f"


def _study(ws: Path, name: str = "small") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{ws / 'studies' / 'hpo.db'}")


def _trial_runs(uri: str, ws: Path) -> dict[int, Any]:
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(f"{ws.name}-HPO-v0.1.0")
    found = c.search_runs([exp.experiment_id], max_results=1000)
    return {int(r.data.tags["hpo.trial_number"]): r for r in found if r.data.tags.get("hpo.role") == "trial"}


def _history(uri: str, run_id: str) -> dict[int, float]:
    return {m.step: m.value for m in MlflowClient(uri).get_metric_history(run_id, HISTORY)}


def test_history_is_sampled_by_default_and_whole_or_left_out_on_request(workspace: Path, mlflow_store: str) -> None:
    fixed = {"iterations": 60, "thread_count": 1}
    for study, tracking in (("sampled", None), ("all", {"history": "all"}), ("none", {"history": "none"})):
        space = write_space(workspace, f"{study}.yaml", study=study, n_trials=2, fixed=fixed, tracking=tracking)
        assert invoke("run", str(space), "--quiet")[0] == 0
    runs = {}
    for study in ("sampled", "all", "none"):
        for t in _study(workspace, study).trials:
            assert t.state.name == "COMPLETE" and len(t.intermediate_values) > 20
            run = MlflowClient(mlflow_store).get_run(t.user_attrs["mlflow_run_id"])
            assert run.info.status == "FINISHED"
            assert {"val_pearson_r", "val_rmse", "fit_seconds", "best_iteration"} <= set(run.data.metrics)
            runs[study, t.number] = (t, _history(mlflow_store, run.info.run_id))
    for (study, _), (t, history) in runs.items():
        values = t.intermediate_values
        if study == "all":
            assert history == pytest.approx(values)
        elif study == "none":
            assert history == {}
        else:  # at most 20 points of the real history: the first, the last, the best (pearson_r is maximized)
            steps = sorted(values)
            best = max(steps, key=lambda s: values[s])
            assert len(history) <= 20 and {steps[0], steps[-1], best} <= set(history)
            assert history == pytest.approx({s: values[s] for s in history})


def test_tracking_is_not_part_of_the_search_hash_and_a_study_without_it_resumes(workspace: Path, mlflow_store: str) -> None:
    hashes = {
        SpaceFile.model_validate(small_space(tracking=t)).search_hash() for t in (None, {"history": "all"}, {"history": "none"})
    }
    assert hashes == {HASH_BEFORE_TRACKING}
    assert invoke("run", str(write_space(workspace, n_trials=1)), "--quiet")[0] == 0
    code, out, err = invoke("run", str(write_space(workspace, n_trials=2, tracking={"history": "none"})), "--json")
    assert code == 0, err
    assert json.loads(out)["states"] == {"COMPLETE": 2}
    # The study's runs follow the space it recorded (as `hpo sync` does): the default, sampled history.
    for t in _study(workspace).trials:
        assert 0 < len(_history(mlflow_store, t.user_attrs["mlflow_run_id"])) <= 20 < len(t.intermediate_values)


def test_a_bad_history_is_one_line_naming_the_key(workspace: Path) -> None:
    code, _, err = invoke("validate", str(write_space(workspace, tracking={"history": "some"})))
    assert code != 0
    assert err.strip().splitlines() == [
        f"error: {workspace / 'space.yaml'}: `tracking.history` must be one of all, sampled, none, but got 'some'"
    ]


def test_every_run_the_writer_threads_end_is_what_sync_writes(workspace: Path) -> None:
    # Forked workers each end their trials' runs in a writer thread, flushed when the worker ends.
    live = f"sqlite:///{workspace / 'live.db'}"
    space = write_space(workspace, n_trials=6)
    r = run_cli("run", str(space), "--jobs", "2", "--json", cwd=workspace, env={"MLFLOW_TRACKING_URI": live})
    assert r.returncode == 0, r.stderr
    rebuilt = f"sqlite:///{workspace / 'rebuilt.db'}"
    r = run_cli("sync", "--json", cwd=workspace, env={"MLFLOW_TRACKING_URI": rebuilt})
    assert r.returncode == 0 and json.loads(r.stdout)["created"] == 6, r.stderr

    live_runs, rebuilt_runs = _trial_runs(live, workspace), _trial_runs(rebuilt, workspace)
    assert sorted(live_runs) == sorted(rebuilt_runs) == list(range(6))
    for number, a in live_runs.items():
        b = rebuilt_runs[number]
        assert a.info.status == b.info.status == "FINISHED"
        assert (a.info.start_time, a.info.end_time) == (b.info.start_time, b.info.end_time)
        assert a.data.params == b.data.params and a.data.metrics == b.data.metrics
        assert _history(live, a.info.run_id) == _history(rebuilt, b.info.run_id) != {}
        other = {"mlflow.parentRunId"}  # each store has its own parent run
        assert {k: v for k, v in a.data.tags.items() if k not in other} == {
            k: v for k, v in b.data.tags.items() if k not in other
        }


# A team's training function that deletes the MLflow run of the trial it trains: logging the trial's
# end then fails (a run must be active), in the writer thread.
DELETES_ITS_RUN = """\
import time

from mlflow import MlflowClient
from sklearn.linear_model import Ridge


def fit(params, train):
    c = MlflowClient()
    deadline = time.time() + 60  # the run is created by hpo's writer thread while this fit runs: wait for it
    while time.time() < deadline:
        runs = [
            r
            for e in c.search_experiments()
            for r in c.search_runs([e.experiment_id], "attributes.status = 'RUNNING'")
            if r.data.tags.get("hpo.role") == "trial"
        ]
        if runs:
            break
        time.sleep(0.05)
    for r in runs:
        c.delete_run(r.info.run_id)
    return Ridge(alpha=params["alpha"]).fit(train.X, train.y)
"""


def test_a_failure_in_the_writer_thread_is_warned_once_and_sync_logs_the_rest(workspace: Path) -> None:
    (workspace / "deletes.py").write_text(DELETES_ITS_RUN)
    params = {"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}}
    space = write_space(workspace, model="deletes:fit", metric="r2", n_trials=3, params=params, fixed=None)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}"}
    r = run_cli("run", str(space), "--json", cwd=workspace, env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["states"] == {"COMPLETE": 3}, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "hpo sync" in warnings[0], r.stderr
    r = run_cli("sync", "--json", cwd=workspace, env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["created"] == 3, r.stderr
    runs = _trial_runs(env["MLFLOW_TRACKING_URI"], workspace)
    assert sorted(runs) == [0, 1, 2] and all(run.info.status == "FINISHED" for run in runs.values())


def _completed(ws: Path) -> int:
    db = ws / "studies" / "hpo.db"
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=30)
    try:
        return int(con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_leaves_every_finished_trials_run_finished_and_complete(workspace: Path, jobs: int) -> None:
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    space = write_space(workspace, n_trials=200)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "run", str(space), "--json", "--jobs", str(jobs)],
        cwd=workspace,
        env={**{k: v for k, v in os.environ.items() if k != "HPO_STORAGE"}, "MLFLOW_TRACKING_URI": uri},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 180
        while _completed(workspace) < 3:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["interrupted"]
    trials = [t for t in _study(workspace).trials if t.state.is_finished()]
    assert 3 <= len(trials) < 200
    runs = _trial_runs(uri, workspace)
    for t in trials:
        run = runs[t.number]
        assert run.info.run_id == t.user_attrs["mlflow_run_id"]
        assert run.info.status == "FINISHED" and run.data.tags["hpo.trial_state"] == "COMPLETE"
        assert run.data.metrics["val_pearson_r"] == pytest.approx(t.value)
        assert run.data.params["depth"] == str(t.params["depth"]) and run.data.params["iterations"] == "40"
        assert _history(uri, run.info.run_id)
