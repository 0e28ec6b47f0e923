"""The data ledger: one version name, one set of split digests, through run, validate, promote and `hpo data`.

Tables differ in one row of one split, so each case knows which digest moved.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import invoke, trials_of, write_space_as

ROWS = 90
TEST_ROW, TRAIN_ROW = 85, 5  # part: train 0-59, validation 60-74, test 75-89


def table(*changed_rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=ROWS), "z": rng.normal(size=ROWS)})
    df["y"] = 2 * df.x + rng.normal(size=ROWS) * 0.3
    df["part"] = ["train"] * 60 + ["validation"] * 15 + ["test"] * 15
    for row in changed_rows:
        df.loc[row, "x"] += 1.0
    return df


def space(study: str, source: str, version: str) -> dict[str, Any]:
    return {
        "study": study,
        "data": {"version": version, "source": source, "target": "y", "split": {"column": "part"}},
        "model": "catboost",
        "metric": "rmse",
        "n_trials": 1,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {"depth": {"type": "int", "low": 2, "high": 3}},
        "fixed": {"iterations": 10, "thread_count": 1},
    }


@pytest.fixture
def tables(workspace: Path) -> Path:
    table().to_csv(workspace / "a.csv", index=False)
    table(TEST_ROW).to_csv(workspace / "b.csv", index=False)  # one test row differs
    table(TRAIN_ROW).to_csv(workspace / "c.csv", index=False)  # one train row differs
    table(TEST_ROW, TRAIN_ROW).to_csv(workspace / "d.csv", index=False)  # b.csv with one train row changed
    return workspace


def run(ws: Path, study: str, source: str, version: str, *extra: str) -> tuple[int, str]:
    code, _, err = invoke("run", str(write_space_as(ws, space(study, source, version), f"{study}.yaml")), "--quiet", *extra)
    return code, err


def studies_in(url: str) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(url)]


def test_the_same_version_over_another_table_is_refused_at_validate_and_run(tables: Path, mlflow_store: str) -> None:
    assert run(tables, "first", "a.csv", "v0.1.0")[0] == 0
    url = f"sqlite:///{tables / 'studies' / 'hpo.db'}"
    runs_before = len(MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()]))
    for verb in ("validate", "run"):
        code, _, err = invoke(verb, str(write_space_as(tables, space("second", "b.csv", "v0.1.0"), "second.yaml")))
        assert code == 2, err
        (line,) = err.strip().splitlines()
        assert "data version v0.1.0 is recorded with other data (first used by study 'first')" in line
        assert "its test digest is " in line and ", this data's is " in line
        assert "bump MINOR when the test split changes, PATCH when only train or validation change" in line
        assert "call this data v0.2.0" in line
    assert studies_in(url) == ["first"]  # nothing written: no study, no trial, no MLflow run
    assert len(MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])) == runs_before


def test_a_patch_bump_keeps_the_test_split_and_a_minor_bump_may_change_it(tables: Path) -> None:
    assert run(tables, "first", "a.csv", "v0.1.0")[0] == 0
    # Same MAJOR.MINOR, other test rows: refused, and the message names both versions and the test digests.
    code, err = run(tables, "wrong-patch", "b.csv", "v0.1.1")
    assert code == 2
    assert "data version v0.1.1 shares v0.1 with v0.1.0, whose test split differs" in err and "call this data v0.2.0" in err
    # Only a train row changed: a PATCH bump is right, and accepted.
    assert run(tables, "patch", "c.csv", "v0.1.1")[0] == 0
    # The test split changed: a MINOR bump is accepted.
    assert run(tables, "minor", "b.csv", "v0.2.0")[0] == 0
    # The next suggestion skips names already taken.
    code, err = run(tables, "again", "d.csv", "v0.2.0")
    assert code == 2 and "its train digest is" in err and "call this data v0.2.1" in err, err

    code, out, err = invoke("data", "--json")
    assert code == 0, err
    versions = {v["version"]: v for v in json.loads(out)}
    assert list(versions) == ["v0.1.0", "v0.1.1", "v0.2.0"]
    assert versions["v0.1.1"]["digests"]["test"] == versions["v0.1.0"]["digests"]["test"]
    assert versions["v0.1.1"]["digests"]["train"] != versions["v0.1.0"]["digests"]["train"]
    assert versions["v0.1.0"]["rows"] == {"train": 60, "validation": 15, "test": 15} and versions["v0.1.0"]["columns"] == 3
    assert versions["v0.2.0"]["studies"] == ["minor"] and versions["v0.1.0"]["first_study"] == "first"
    code, out, _ = invoke("data", "v0.1.1")
    assert code == 0 and "studies      patch" in out and "first by study patch" in out
    code, _, err = invoke("data", "v9.9.9")
    assert code == 2 and "data version 'v9.9.9' is not in the ledger" in err and "known: v0.1.0, v0.1.1, v0.2.0" in err


def test_another_storage_is_refused_what_the_data_version_experiment_records(
    tables: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two storages (say, two people's SQLite files) and one MLflow: the data-version experiment
    # keeps the digests of the version's first use, and the other storage's ledger is empty.
    elsewhere = tables / "other.db"
    experiment = f"{tables.name}-Data-v0.1.0"
    assert run(tables, "first", "a.csv", "v0.1.0")[0] == 0
    (first,) = json.loads(invoke("data", "--json")[1])
    code, err = run(tables, "second", "b.csv", "v0.1.0", "--storage", f"sqlite:///{elsewhere}")
    assert code == 2 and f"(in MLflow experiment '{experiment}')" in err, err
    assert f"its test digest is {first['digests']['test'][:12]}" in err and "call this data v0.2.0" in err
    assert not elsewhere.exists()  # refused before the storage was opened
    monkeypatch.setenv("HPO_STORAGE", f"sqlite:///{elsewhere}")
    code, _, err = invoke("validate", "search_spaces/second.yaml")
    assert code == 2 and f"(in MLflow experiment '{experiment}')" in err, err
    # The experiment's description still states the data it is named for.
    assert first["digests"]["test"] in MlflowClient().get_experiment_by_name(experiment).tags["mlflow.note.content"]


def test_a_study_from_before_the_ledger_is_read_into_it_and_its_conflict_refused_at_promote(
    tables: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    here = f"sqlite:///{tables / 'studies' / 'hpo.db'}"
    elsewhere = f"sqlite:///{tables / 'other.db'}"
    assert run(tables, "first", "a.csv", "v0.1.0")[0] == 0
    with monkeypatch.context() as m:  # its own storage and its own MLflow: nothing knew v0.1.0
        m.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tables / 'their-mlflow.db'}")
        assert run(tables, "second", "b.csv", "v0.1.0", "--storage", elsewhere)[0] == 0
    # A storage from before the ledger: no table, and both studies in it.
    optuna.copy_study(from_study_name="second", from_storage=elsewhere, to_storage=here)
    with sqlite3.connect(tables / "studies" / "hpo.db") as db:
        db.execute("DROP TABLE hpo_data_versions")
    code, _, err = invoke("promote", "best", "--study", "second", "--allow-dirty")
    assert code == 2, err
    assert "data version v0.1.0 is recorded with other data (first used by study 'first')" in err, err
    code, _, err = invoke("promote", "best", "--study", "first", "--allow-dirty")
    assert code == 0, err
    # The promotion recorded the digests on the data-version experiment too: a study in another
    # storage that promotes the same name with other data is refused there.
    code, _, err = invoke("promote", "best", "--study", "second", "--storage", elsewhere, "--allow-dirty")
    assert code == 2 and f"(in MLflow experiment '{tables.name}-Data-v0.1.0')" in err, err
    assert len(trials_of(tables, "second")) == 1
    code, out, _ = invoke("data", "v0.1.0", "--json")
    assert json.loads(out)["promoted_runs"][0]["study"] == "first"


def test_two_runs_started_together_on_new_data_define_the_version_once(tables: Path) -> None:
    for study, source in (("one", "a.csv"), ("two", "b.csv")):
        write_space_as(tables, space(study, source, "v0.1.0"), f"{study}.yaml")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tables / 'mlflow.db'}"}
    import os

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hpo", "run", f"search_spaces/{s}.yaml", "--quiet"],
            cwd=tables,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in ("one", "two")
    ]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "data version v0.1.0 is recorded with other data" in refused
    code, out, _ = invoke("data", "--json")
    assert [v["version"] for v in json.loads(out)] == ["v0.1.0"]


def test_the_leaderboard_compares_only_runs_scored_on_the_same_test_rows(workspace: Path, mlflow_store: str) -> None:
    from hpo.promote import post_leaderboard
    from hpo.schema import TAG_DATA_VERSION, TAG_DIGEST_PREFIX, TAG_METRIC, VAL
    from hpo.workspace import load_workspace

    c = MlflowClient()
    exp = c.create_experiment("promoted")

    def promoted(test_digest: str, rmse: float) -> Any:
        tags = {TAG_DATA_VERSION: "v0.1.0", TAG_METRIC: "rmse", TAG_DIGEST_PREFIX + "test": test_digest}
        run = c.create_run(exp, tags=tags)
        c.log_metric(run.info.run_id, f"{VAL}rmse", rmse)
        c.set_terminated(run.info.run_id)
        return c.get_run(run.info.run_id)

    ws = load_workspace()
    first = post_leaderboard(c, ws, promoted("aaa", 1.0))
    other = post_leaderboard(c, ws, promoted("bbb", 0.5))  # better, but on other test rows: a row of its own
    assert first["updated"] and other["updated"] and other["run_id"] != first["run_id"]
    better = post_leaderboard(c, ws, promoted("aaa", 0.8))
    assert better["updated"] and better["run_id"] == first["run_id"]
    worse = post_leaderboard(c, ws, promoted("bbb", 0.9))
    assert not worse["updated"] and worse["run_id"] == other["run_id"]
