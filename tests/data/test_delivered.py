"""The data as delivered, through the real CLI: a count target with a regression metric, nullable
labels given to a training function, and data digests that name every column before `data.drop`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import invoke, trials_of, write_space_as


@pytest.fixture(scope="module")
def migrated_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow store with its tables made once: each test gets a copy (migrations take seconds)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def mlflow_db(workspace: Path, migrated_mlflow: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real MLflow store (SQLite) in the workspace, where `hpo` would make it."""
    shutil.copy(migrated_mlflow, workspace / "mlflow.db")
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


# --- a small-integer count target with a regression metric (issue 25 item 3) ----------------------


def counts_space(**extra: Any) -> dict[str, Any]:
    return {
        "study": "counts",
        "data": {"version": "v0.1.0", "source": "counts.csv", "target": "count", "split": {"validation": 0.25, "test": 0.25}},
        "model": "catboost",
        "metric": "r2",
        "n_trials": 2,
        "sampler": {"name": "random"},
        "params": {"depth": {"type": "int", "low": 2, "high": 3}},
        "fixed": {"iterations": 10, "thread_count": 1},
        **extra,
    }


def test_a_count_target_with_a_regression_metric_is_told_to_state_the_task(workspace: Path) -> None:
    # Eight rows, eight distinct counts: read as eight classes, each in one split only.
    pd.DataFrame({"x": range(8), "count": [235, 12, 40, 7, 99, 3, 18, 51]}).to_csv(workspace / "counts.csv", index=False)
    path = str(write_space_as(workspace, counts_space()))
    for verb in ("validate", "run"):
        code, _, err = invoke(verb, path)
        assert code == 2, err
        (line,) = err.strip().splitlines()
        assert "`metric` 'r2' is a regression metric, but the target 'count' is classification (inferred: " in line, line
        assert "state `task: regression`" in line and "appears in" not in line, line
    assert not (workspace / "studies" / "hpo.db").exists()  # refused before anything was written
    code, _, err = invoke("run", str(write_space_as(workspace, counts_space(task="regression"))), "--quiet")
    assert code == 0, err
    assert [t.state.name for t in trials_of(workspace, "counts")] == ["COMPLETE", "COMPLETE"]


# --- nullable labels given to a training function (issue 25 item 4) --------------------------------

TRAIN_FN = """
from sklearn.linear_model import LogisticRegression


def fit(params, train, seed):
    return LogisticRegression(C=params["C"]).fit(train.X, train.y)


def fit_floats(params, train, seed):
    # A library that learns integer labels as floats: classes_ 0.0, 1.0, 2.0 are still the data's 0, 1, 2.
    return LogisticRegression(C=params["C"]).fit(train.X, train.y.astype(float))


def fit_shifted(params, train, seed):
    # Other classes (1, 2, 3 for 0, 1, 2): never taken for the data's.
    return LogisticRegression(C=params["C"]).fit(train.X, train.y + 1)
"""

LABELS = {
    "Int64": pd.array(np.arange(60) % 3, dtype="Int64"),
    "boolean": pd.array(np.arange(60) % 2 == 0, dtype="boolean"),
    "string": pd.array([f"c{i % 3}" for i in range(60)], dtype="string"),
}


def fn_space(function: str, study: str = "fn") -> dict[str, Any]:
    return {
        "study": study,
        "data": {"version": "v0.1.0", "source": "labels.parquet", "target": "y", "split": {"validation": 0.25, "test": 0.25}},
        "model": f"train_fn:{function}",
        "metric": "accuracy",
        "n_trials": 2,
        "sampler": {"name": "random"},
        "params": {"C": {"type": "float", "low": 0.1, "high": 1.0}},
    }


def labels_table(workspace: Path, dtype: str) -> None:
    rng = np.random.default_rng(0)
    y = LABELS[dtype]
    pd.DataFrame({"a": rng.normal(size=60) + (np.arange(60) % 3), "b": rng.normal(size=60), "y": y}).to_parquet(
        workspace / "labels.parquet"
    )
    (workspace / "train_fn.py").write_text(TRAIN_FN)


@pytest.mark.parametrize("dtype", list(LABELS))
def test_a_training_function_trains_on_nullable_labels_from_parquet(workspace: Path, dtype: str) -> None:
    labels_table(workspace, dtype)
    assert str(pd.read_parquet(workspace / "labels.parquet")["y"].dtype) == dtype  # as the user's table holds it
    code, _, err = invoke("run", str(write_space_as(workspace, fn_space("fit"))), "--quiet")
    assert code == 0, err
    trials = trials_of(workspace, "fn")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"], [t.user_attrs.get("error") for t in trials]


def test_model_classes_match_the_data_by_label_not_by_representation(workspace: Path) -> None:
    labels_table(workspace, "Int64")
    code, _, err = invoke("run", str(write_space_as(workspace, fn_space("fit_floats", "floats"))), "--quiet")
    assert code == 0, err
    assert {t.state.name for t in trials_of(workspace, "floats")} == {"COMPLETE"}
    # The served model (raw rows in, labels out) orders its probabilities by the same labels.
    code, _, err = invoke("promote", "best", "--study", "floats", "--allow-dirty")
    assert code == 0, err
    code, _, err = invoke("run", str(write_space_as(workspace, fn_space("fit_shifted", "shifted"))), "--quiet")
    assert code != 0
    assert "the model's classes [1, 2, 3] are not the data's [0, 1, 2]; it was trained on other data" in err, err
    assert {t.state.name for t in trials_of(workspace, "shifted")} == {"FAIL"}


# --- the data version names the data as delivered, not a study's `data.drop` (issue 25 item 8) ----

ROWS = 90


def table(test_row_changed: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=ROWS), "z": rng.normal(size=ROWS)})
    df["y"] = 2 * df.x + rng.normal(size=ROWS) * 0.3
    df["part"] = ["train"] * 60 + ["validation"] * 15 + ["test"] * 15
    if test_row_changed:
        df.loc[85, "x"] += 1.0
    return df


def space(study: str, source: str = "a.csv", drop: list[str] | None = None, version: str = "v0.1.0") -> dict[str, Any]:
    return {
        "study": study,
        "data": {"version": version, "source": source, "target": "y", "split": {"column": "part"}, "drop": drop or []},
        "model": "catboost",
        "metric": "rmse",
        "n_trials": 1,
        "sampler": {"name": "random"},
        "params": {"depth": {"type": "int", "low": 2, "high": 3}},
        "fixed": {"iterations": 10, "thread_count": 1},
    }


def run(ws: Path, study: str, *extra: str, **kw: Any) -> tuple[int, str]:
    code, _, err = invoke("run", str(write_space_as(ws, space(study, **kw), f"{study}.yaml")), "--quiet", *extra)
    return code, err


@pytest.fixture
def tables(workspace: Path) -> Path:
    table().to_csv(workspace / "a.csv", index=False)
    table(test_row_changed=True).to_csv(workspace / "b.csv", index=False)
    return workspace


def ledger_row(ws: Path) -> tuple[dict[str, str], dict[str, Any]]:
    with sqlite3.connect(ws / "studies" / "hpo.db") as db:
        digests, overview = db.execute("SELECT digests, overview FROM hpo_data_versions WHERE version = 'v0.1.0'").fetchone()
    return json.loads(digests), json.loads(overview)


def test_a_feature_ablation_shares_its_baselines_data_version(tables: Path) -> None:
    assert run(tables, "baseline") == (0, "")
    code, err = run(tables, "ablation", drop=["z"])
    assert code == 0, err  # the same rows and columns delivered: the same version, whatever the study drops
    # The drop is the study's, recorded with it and on its MLflow runs; the digests are the data's.
    import optuna

    url = f"sqlite:///{tables / 'studies' / 'hpo.db'}"
    attrs = {s: optuna.load_study(study_name=s, storage=url).user_attrs for s in ("baseline", "ablation")}
    assert attrs["ablation"]["data_drop"] == ["z"] and attrs["baseline"]["data_drop"] == []
    assert attrs["ablation"]["data_digests"] == attrs["baseline"]["data_digests"]
    parents = {
        r.data.tags["hpo.study"]: r.data.tags
        for r in MlflowClient().search_runs(
            [e.experiment_id for e in MlflowClient().search_experiments()], filter_string="tags.`hpo.role` = 'study'"
        )
    }
    assert parents["ablation"]["data.drop"] == '["z"]' and parents["baseline"]["data.drop"] == "[]"
    # Other test rows under the same name are still other data.
    code, err = run(tables, "other", source="b.csv", drop=["z"])
    assert code == 2 and "data version v0.1.0 is recorded with other data (first used by study 'baseline')" in err, err
    assert "its test digest is" in err and "call this data v0.2.0" in err
    code, out, _ = invoke("data", "v0.1.0", "--json")
    assert json.loads(out)["columns"] == 3 and json.loads(out)["studies"] == ["baseline", "ablation"]


def legacy_digests(ws: Path, source: str, features: list[str]) -> dict[str, str]:
    """The digests as hpo computed them before they named the data as delivered: the columns left
    after `data.drop` and the target, split by the `part` column."""
    from hpo.data import digest

    df = pd.read_csv(ws / source)
    return {s: digest(df[df.part == s][[*features, "y"]]) for s in ("train", "validation", "test")}


def make_legacy(ws: Path, study: str, digests: dict[str, str]) -> None:
    """Rewrite the ledger, the study and the data-version experiment as an older hpo wrote them."""
    import optuna

    url = f"sqlite:///{ws / 'studies' / 'hpo.db'}"
    s = optuna.load_study(study_name=study, storage=url)
    overview = {k: v for k, v in s.user_attrs["data_overview"].items() if k not in ("digest_basis", "columns")}
    overview["digests"] = digests
    s.set_user_attr("data_digests", digests)
    s.set_user_attr("data_overview", overview)
    with sqlite3.connect(ws / "studies" / "hpo.db") as db:
        db.execute(
            "UPDATE hpo_data_versions SET digests = ?, overview = ? WHERE version = 'v0.1.0'",
            (json.dumps(digests, sort_keys=True), json.dumps(overview, sort_keys=True)),
        )
    c = MlflowClient()
    exp = c.get_experiment_by_name(f"{ws.name}-Data-v0.1.0")
    if exp is not None:
        if "hpo.digest_basis" in exp.tags:
            c.delete_experiment_tag(exp.experiment_id, "hpo.digest_basis")
        for split, d in digests.items():
            c.set_experiment_tag(exp.experiment_id, f"digest.{split}", d)


def test_a_version_an_older_hpo_recorded_after_drop_is_still_accepted_and_upgraded(tables: Path) -> None:
    assert run(tables, "old", drop=["z"])[0] == 0
    old = legacy_digests(tables, "a.csv", ["x"])
    make_legacy(tables, "old", old)
    assert json.loads(invoke("data", "--json")[1])[0]["digests"] == old  # as an older hpo recorded it

    # validate, a resume of the old study, its promotion and a new study with its drop: all accepted.
    code, _, err = invoke("validate", "search_spaces/old.yaml")
    assert code == 0, err
    code, err = run(tables, "old", "--n-trials", "2", drop=["z"])  # resumed with one more trial
    assert code == 0, err
    code, _, err = invoke("promote", "best", "--study", "old", "--allow-dirty")
    assert code == 0, err
    code, err = run(tables, "same-drop", drop=["z"])
    assert code == 0, err
    # ... and the entry is upgraded: the digests of the data as delivered, the old ones kept.
    digests, overview = ledger_row(tables)
    assert digests == legacy_digests(tables, "a.csv", ["x", "z"]) and overview["legacy_digests"] == old
    assert overview["digest_basis"] == "delivered"
    # From then on any drop over that data is the same version; other test rows are not.
    assert run(tables, "no-drop")[0] == 0
    code, err = run(tables, "other", source="b.csv", drop=["z"])
    assert code == 2 and "data version v0.1.0 is recorded with other data" in err, err


def test_a_legacy_entry_accepts_the_same_data_under_another_drop_and_refuses_other_data(tables: Path) -> None:
    assert run(tables, "old", drop=["z"])[0] == 0
    make_legacy(tables, "old", legacy_digests(tables, "a.csv", ["x"]))
    # Not yet upgraded: the entry's features (its first study's) tell which columns its digests cover.
    code, err = run(tables, "no-drop")
    assert code == 0, err
    assert ledger_row(tables)[1]["digest_basis"] == "delivered"
    old = legacy_digests(tables, "a.csv", ["x"])
    make_legacy(tables, "old", old)
    code, _, err = invoke("validate", str(write_space_as(tables, space("other", source="b.csv"), "other.yaml")))
    assert code == 2 and "data version v0.1.0 is recorded with other data (first used by study 'old')" in err, err
    # Both digests as the entry took them (over its first study's features), so they differ only where the data does.
    theirs = legacy_digests(tables, "b.csv", ["x"])["test"]
    assert f"its test digest is {old['test'][:12]}, this data's is {theirs[:12]}; " in err, err
