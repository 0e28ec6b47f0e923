"""The MLflow projection: HPO space per data version, provenance tags, and `hpo sync`."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from hpo.provenance import source_version
from tests.conftest import invoke, run_cli, shared_workspace, write_space


def runs(uri: str, experiment: str, role: str | None = None) -> list:
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return []
    found = c.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in found if role is None or r.data.tags.get("hpo.role") == role]


def study(ws: Path, name: str = "small") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{ws / 'studies' / 'hpo.db'}")


def test_every_finished_trial_has_one_child_run_with_provenance(workspace: Path, mlflow_store: str) -> None:
    params = {
        "depth": {"type": "int", "low": 2, "high": 3},
        "bootstrap_type": {"type": "categorical", "choices": ["Bayesian", "Bernoulli"]},
    }
    space = write_space(workspace, n_trials=6, params=params, fixed={"iterations": 30, "thread_count": 1, "subsample": 0.5})
    assert invoke("run", str(space), "--quiet")[0] == 0
    hpo_exp = f"{workspace.name}-HPO-v0.1.0"
    parents, children = runs(mlflow_store, hpo_exp, "study"), runs(mlflow_store, hpo_exp, "trial")
    assert len(parents) == 1 and len(children) == 6
    parent = parents[0]
    assert parent.info.status == "FINISHED" and "best_val_pearson_r" in parent.data.metrics
    assert MlflowClient(mlflow_store).download_artifacts(parent.info.run_id, "space.yaml") and True

    s = study(workspace)
    by_number = {int(r.data.tags["hpo.trial_number"]): r for r in children}
    assert sorted(by_number) == list(range(6))
    states = set()
    for t in s.trials:
        r = by_number[t.number]
        tags = r.data.tags
        assert t.user_attrs["mlflow_run_id"] == r.info.run_id  # Optuna -> MLflow
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["hpo.study"] == "small" and tags["hpo.trial_state"] == t.state.name
        assert tags["data_version"] == "v0.1.0" and tags["seed"] == str(t.user_attrs["seed"])
        assert {tags[f"digest.{k}"] for k in ("train", "validation", "test")} == set(s.user_attrs["data_digests"].values())
        assert tags["src_version"] == "unknown" and tags["git_dirty"] == "unknown"
        assert {"hpo_version", "version.python", "version.optuna", "version.catboost", "version.mlflow"} <= set(tags)
        assert r.data.params["iterations"] == "30" and r.data.params["depth"] == str(t.params["depth"])
        states.add(t.state.name)
        if t.state.name == "COMPLETE":
            assert r.info.status == "FINISHED"
            assert r.data.metrics["val_pearson_r"] == pytest.approx(t.value)
            assert {"val_rmse", "val_r2", "val_mae", "fit_seconds", "best_iteration"} <= set(r.data.metrics)
            history = MlflowClient(mlflow_store).get_metric_history(r.info.run_id, "val_pearson_r_by_iteration")
            assert min(len(t.intermediate_values), 19) <= len(history) <= 20  # sampled by default (`tracking.history`)
        else:
            assert r.info.status == "FAILED" and "bayesian bootstrap" in tags["error"]
    assert states == {"COMPLETE", "FAIL"}

    # nothing from `hpo run` lands in the data-version space; its description states the data
    data_exp = MlflowClient(mlflow_store).get_experiment_by_name(f"{workspace.name}-Data-v0.1.0")
    assert runs(mlflow_store, data_exp.name) == []
    note = data_exp.tags["mlflow.note.content"]
    assert "| train | 266 | 11 |" in note and s.user_attrs["data_digests"]["test"] in note and "`target`" in note


def test_experiment_names_follow_templates(workspace: Path, mlflow_store: str) -> None:
    (workspace / "pyproject.toml").write_text(
        '[tool.hpo]\nproject = "acme"\nhpo_experiment = "{project}/tuning/{data_version}"\n'
    )
    assert invoke("run", str(write_space(workspace, n_trials=1)), "--quiet")[0] == 0
    assert len(runs(mlflow_store, "acme/tuning/v0.1.0", "trial")) == 1
    assert MlflowClient(mlflow_store).get_experiment_by_name("acme-Data-v0.1.0") is not None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_mlflow_then_sync_finds_every_trial_once(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    space = write_space(workspace, n_trials=3)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    code, out, err = invoke("run", str(space), "--json")
    assert code == 0 and json.loads(out)["states"] == {"COMPLETE": 3}
    assert err.count("unreachable") == 1 and "hpo sync" in err
    assert all("mlflow_run_id" not in t.user_attrs for t in study(workspace).trials)

    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, out, _ = invoke("sync", "--json")
    assert code == 0 and json.loads(out)["created"] == 3
    children = runs(uri, f"{workspace.name}-HPO-v0.1.0", "trial")
    assert sorted(int(r.data.tags["hpo.trial_number"]) for r in children) == [0, 1, 2]
    assert all(r.info.status == "FINISHED" and "val_pearson_r" in r.data.metrics for r in children)

    code, out, _ = invoke("sync", "--study", "small", "--json")
    assert json.loads(out) | {"experiment_id": None} == {
        "study": "small",
        "experiment_id": None,
        "created": 0,
        "completed": 0,
        "unchanged": 3,
    }
    assert len(runs(uri, f"{workspace.name}-HPO-v0.1.0")) == 4  # one parent, three trials


def test_sync_after_a_live_run_creates_nothing(workspace: Path, mlflow_store: str) -> None:
    assert invoke("run", str(write_space(workspace, n_trials=2)), "--quiet")[0] == 0
    code, out, _ = invoke("sync", "--json")
    assert json.loads(out)["created"] == 0 and json.loads(out)["unchanged"] == 2
    assert len(runs(mlflow_store, f"{workspace.name}-HPO-v0.1.0")) == 3


def test_sync_of_an_unknown_study_says_which_exist(workspace: Path, mlflow_store: str) -> None:
    assert invoke("run", str(write_space(workspace, n_trials=1)), "--quiet")[0] == 0
    code, _, err = invoke("sync", "--study", "nope")
    assert code == 2 and "no study 'nope'" in err and "small" in err


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_src_version_from_a_tagged_git_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "train.py").write_text("print(1)\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-qm", "first")
    git(tmp_path, "tag", "v1.2.0")

    v = source_version(tmp_path)
    assert (v.src_version, v.dirty) == ("v1.2.0", False)
    assert v.commit == git(tmp_path, "rev-parse", "HEAD")

    (tmp_path / "train.py").write_text("print(2)\n")
    assert source_version(tmp_path).dirty is True
    (tmp_path / "notes.txt").write_text("untracked files do not make a tree dirty\n")
    git(tmp_path, "commit", "-qam", "second")
    v = source_version(tmp_path)
    assert v.src_version.startswith("v1.2.0-1-g") and v.dirty is False


def test_src_version_outside_git_is_unknown(tmp_path: Path) -> None:
    v = source_version(tmp_path)
    assert (v.src_version, v.commit, v.dirty) == ("unknown", "unknown", None)


def test_study_records_the_tag_of_the_workspace_repository(workspace: Path, mlflow_store: str) -> None:
    git(workspace, "init", "-q")
    git(workspace, "config", "user.email", "t@example.com")
    git(workspace, "config", "user.name", "t")
    (workspace / ".gitignore").write_text("studies/\nmlflow.db\nmlruns/\n")
    space = write_space(workspace, n_trials=1)
    git(workspace, "add", ".")
    git(workspace, "commit", "-qm", "space")
    git(workspace, "tag", "v0.3.0")
    assert invoke("run", str(space), "--quiet")[0] == 0
    attrs = study(workspace).user_attrs
    assert (attrs["src_version"], attrs["dirty"]) == ("v0.3.0", False)
    (child,) = runs(mlflow_store, f"{workspace.name}-HPO-v0.1.0", "trial")
    assert child.data.tags["src_version"] == "v0.3.0" and child.data.tags["git_dirty"] == "false"
    assert child.data.tags["mlflow.source.git.commit"] == git(workspace, "rev-parse", "HEAD")


# --- The tracking store: created once under a lock, repaired by `hpo sync`, and failing fast in one line.

HPO_EXPERIMENT = "{}-HPO-v0.1.0"

# Builds an MLflow store as `hpo run` did and dies (like a kill or a lost terminal) the moment the
# migration that rebuilds the given table has created alembic's copy of it.
CUT_SHORT = """
import os, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "after_cursor_execute")
def die(conn, cursor, statement, *args):
    if statement.lstrip().startswith("CREATE TABLE _alembic_tmp_" + sys.argv[2]):
        os._exit(9)

from mlflow import MlflowClient
MlflowClient(sys.argv[1]).search_experiments()
"""


def sqlite_tables(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def cut_short(db: Path, table: str = "experiments") -> None:
    """A store left half-migrated, for real: its creation is killed inside one of MLflow's migrations."""
    r = subprocess.run([sys.executable, "-c", CUT_SHORT, f"sqlite:///{db}", table], capture_output=True, text=True)
    assert r.returncode == 9, r.stderr[-2000:]
    assert f"_alembic_tmp_{table}" in sqlite_tables(db)


def test_runs_started_together_in_a_fresh_workspace_all_log_live(workspace: Path) -> None:
    space = write_space(workspace, n_trials=6, fixed={"iterations": 10, "thread_count": 1})
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    with ThreadPoolExecutor(3) as pool:
        done = list(
            pool.map(lambda _: run_cli("run", str(space), "--quiet", cwd=workspace, env={"MLFLOW_TRACKING_URI": uri}), range(3))
        )
    for r in done:
        assert r.returncode == 0 and "warning" not in r.stderr, r.stderr[-2000:]
    trials = study(workspace).trials
    assert len(trials) == 6 and all("mlflow_run_id" in t.user_attrs for t in trials)
    children = runs(uri, HPO_EXPERIMENT.format(workspace.name), "trial")
    assert sorted(int(r.data.tags["hpo.trial_number"]) for r in children) == list(range(6))
    assert {r.info.run_id for r in children} == {t.user_attrs["mlflow_run_id"] for t in trials}
    assert all(r.info.status == "FINISHED" for r in children)
    (parent,) = runs(uri, HPO_EXPERIMENT.format(workspace.name), "study")
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert not any(t.startswith("_alembic_tmp_") for t in sqlite_tables(workspace / "mlflow.db"))


def test_sync_repairs_a_store_whose_migration_was_cut_short(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = workspace / "mlflow.db"
    cut_short(db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    code, _, err = invoke("run", str(write_space(workspace, n_trials=2)), "--quiet")
    assert code == 0 and err.count("\n") == 1
    assert "_alembic_tmp_experiments" in err and "`hpo sync` repairs it" in err and "unreachable" not in err
    assert all("mlflow_run_id" not in t.user_attrs for t in study(workspace).trials)

    code, out, err = invoke("sync", "--json")
    assert code == 0 and json.loads(out)["created"] == 2
    assert "finished a schema migration that was cut short" in err
    assert not any(t.startswith("_alembic_tmp_") for t in sqlite_tables(db))
    (backup,) = workspace.glob("mlflow.db.*.bak")  # the file as it was
    assert "_alembic_tmp_experiments" in sqlite_tables(backup)
    children = runs(f"sqlite:///{db}", HPO_EXPERIMENT.format(workspace.name), "trial")
    assert sorted(int(r.data.tags["hpo.trial_number"]) for r in children) == [0, 1]

    code, out, err = invoke("sync", "--json")  # nothing left to repair
    assert code == 0 and json.loads(out)["unchanged"] == 2 and err == ""


def test_sync_refuses_in_one_line_a_cut_short_migration_it_cannot_finish(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow's migration of `metrics` adds its `step` column before copying the table; sqlite3 commits
    # that at once, so migrating again fails ("duplicate column name: step").
    db = workspace / "mlflow.db"
    cut_short(db, "metrics")
    before = db.read_bytes()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    assert invoke("run", str(write_space(workspace, n_trials=1)), "--quiet")[0] == 0
    code, out, err = invoke("sync")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: MLflow at sqlite:///{db}: an MLflow schema migration was cut short and cannot be finished")
    assert "duplicate column" in err and "the file is unchanged" in err and "move it aside and run `hpo sync`" in err
    assert db.read_bytes() == before and [p.name for p in workspace.glob("mlflow.db.*")] == ["mlflow.db.lock"]

    # What the line says to do works: moved aside, the HPO space is rebuilt.
    db.rename(workspace / "mlflow.db.broken")
    code, out, _ = invoke("sync", "--json")
    assert code == 0 and json.loads(out)["created"] == 1


# One worker of a study: it opens the study's projection the moment `go` appears.
OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from hpo.studies import load_study
from hpo.tracking import StudyProjection, client
from hpo.workspace import load_workspace

ws = load_workspace()
s, c = load_study(ws.storage_url(None), "small"), client()
Path(sys.argv[1]).touch()
while not Path("go").exists():
    time.sleep(0.005)
print(StudyProjection.open(ws, s, c).parent_run_id)
"""


def test_workers_opening_one_study_at_once_share_its_parent_run(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    assert invoke("run", str(write_space(workspace, n_trials=1)), "--quiet")[0] == 0  # no parent run yet
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # the store exists: the workers race only on the parent run
    env = {k: v for k, v in os.environ.items() if k != "HPO_STORAGE"} | {"MLFLOW_TRACKING_URI": uri}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, f"ready{i}"], cwd=workspace, env=env, stdout=subprocess.PIPE, text=True
        )
        for i in range(3)
    ]
    deadline = time.monotonic() + 120
    while not all((workspace / f"ready{i}").exists() for i in range(3)) and time.monotonic() < deadline:
        time.sleep(0.01)
    (workspace / "go").touch()
    parents = {w.communicate(timeout=120)[0].strip() for w in workers}
    assert all(w.returncode == 0 for w in workers)
    (parent,) = runs(uri, HPO_EXPERIMENT.format(workspace.name), "study")
    assert parents == {parent.info.run_id}


@pytest.fixture(scope="module")
def synced_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace with a study of one trial, run while MLflow was unreachable."""
    with shared_workspace(tmp_path_factory, "unusable-mlflow") as ws, pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
        assert invoke("run", str(write_space(ws, n_trials=1)), "--quiet")[0] == 0
        yield ws


@pytest.mark.parametrize(
    ("store", "reason"),
    [
        ("closed-port", "is unreachable ([Errno 111] Connection refused)"),
        ("folder", "is a folder, not an SQLite file"),
        ("not-sqlite", "(file is not a database)"),
        ("under-a-file", "is a file, not a folder"),
        ("file-store", "MLflow 3 refuses file stores (they are in maintenance mode); use a database such as sqlite:///mlflow.db"),
    ],
)
def test_sync_with_a_store_it_cannot_use_says_so_in_one_line_at_once(
    synced_study: Path, monkeypatch: pytest.MonkeyPatch, store: str, reason: str
) -> None:
    where = synced_study / store
    uri = {
        "closed-port": f"http://127.0.0.1:{_closed_port()}",
        "folder": f"sqlite:///{where}",
        "not-sqlite": f"sqlite:///{where}.db",
        "under-a-file": f"sqlite:///{where}/mlflow.db",
        "file-store": f"file://{where}",
    }[store]
    if store == "folder":
        where.mkdir()
    elif store in ("not-sqlite", "under-a-file"):
        Path(f"{where}.db" if store == "not-sqlite" else where).write_bytes(b"not an SQLite file\n" * 200)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    start = time.perf_counter()
    code, out, err = invoke("sync")
    assert time.perf_counter() - start < 15  # not MLflow's 100 s of retries
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: MLflow at {uri}") and reason in err


@pytest.mark.parametrize("store", ["folder", "file-store"])
def test_run_with_a_store_it_cannot_use_warns_once_at_once(workspace: Path, store: str) -> None:
    uri = f"sqlite:///{workspace}" if store == "folder" else f"file://{workspace / 'mlruns'}"
    start = time.perf_counter()
    r = run_cli("run", str(write_space(workspace, n_trials=2)), "--quiet", cwd=workspace, env={"MLFLOW_TRACKING_URI": uri})
    assert time.perf_counter() - start < 60  # MLflow's retries took ~110 s
    assert r.returncode == 0
    (line,) = r.stderr.splitlines()  # no MLflow warnings despite -q
    assert line.startswith(f"warning: MLflow at {uri}: ") and "unreachable" not in line and "`hpo sync` will log them" in line
    assert ("is a folder" if store == "folder" else "MLFLOW_ALLOW_FILE_STORE=true") in line
    assert len(study(workspace).trials) == 2


def test_a_file_store_works_once_allowed(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"file://{workspace / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, _, err = invoke("run", str(write_space(workspace, n_trials=1)), "--quiet")
    assert code == 0 and "MLFLOW_ALLOW_FILE_STORE=true" in err
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    code, out, err = invoke("sync", "--json")
    assert code == 0 and json.loads(out)["created"] == 1 and err == ""
    assert len(runs(uri, HPO_EXPERIMENT.format(workspace.name), "trial")) == 1
