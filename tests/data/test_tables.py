"""Real tables end to end, through the real CLI: every kind of target, every source form, rare classes,
split edge cases, and the promoted model predicting on raw rows of its own table.

The tables are small generated frames (every column kind users bring, missing values in each) and two
real tables that ship with packages: scikit-learn's breast cancer data with its integer target, and
plotly's restaurant tips with string features and a rare-class integer column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from hpo.metrics import metrics_for
from tests.conftest import invoke, shared_workspace, small_space

N = 240


def raw_features(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Every feature kind, with missing values in each: float, int, nullable int, string, bool, category, datetime."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    flag = rng.random(n) < 0.5
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": rng.integers(0, 50, size=n),
            "count": pd.array(rng.integers(0, 10, size=n), dtype="Int64"),
            "color": color,
            "flag": flag,
            "grade": pd.Categorical(rng.choice(["a", "b", "c"], size=n), categories=["c", "b", "a"]),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, size=n), unit="D"),
        }
    )
    holes = rng.random((n, 5)) < 0.05
    frame.loc[holes[:, 0], "x1"] = np.nan
    frame.loc[holes[:, 1], "count"] = pd.NA
    frame.loc[holes[:, 2], "color"] = None
    frame.loc[holes[:, 3], "grade"] = np.nan
    frame.loc[holes[:, 4], "when"] = pd.NaT
    return frame


def signal(frame: pd.DataFrame) -> np.ndarray:
    """A score the model can learn: the labels below are cut from it."""
    return 2 * frame["x1"].fillna(0).to_numpy() + (frame["color"] == "red").to_numpy() + 0.5 * frame["flag"].to_numpy()


def labels(kind: str, s: np.ndarray) -> Any:
    high = s > np.median(s)
    third = np.digitize(s, np.quantile(s, [1 / 3, 2 / 3]))
    return {
        "int": high.astype(int),
        "bool": high,
        "float": high.astype(float),
        "multi_int": np.array([1, 2, 10])[third],  # numeric order 1 < 2 < 10, string order "1" < "10" < "2"
        "nullable_int": pd.array(high.astype(int), dtype="Int64"),
        "nullable_bool": pd.array(high, dtype="boolean"),
        "string": np.where(high, "yes", "no"),
        "category": pd.Categorical(np.array(["low", "mid", "high"])[third], categories=["low", "mid", "high"]),
    }[kind]


# The study's class order for each label kind: numeric and boolean labels in numeric order, a
# category in its declared order, anything else in string order.
EXPECTED_CLASSES = {
    "int": [0, 1],
    "bool": [False, True],
    "float": [0.0, 1.0],
    "multi_int": [1, 2, 10],
    "nullable_int": [0, 1],
    "nullable_bool": [False, True],
    "string": ["no", "yes"],
    "category": ["low", "mid", "high"],
}


def write_source(ws: Path, name: str, frame: pd.DataFrame, source: str) -> dict[str, Any]:
    """Write ``frame`` in one of the source forms hpo reads; return the space's `data` section."""
    data: dict[str, Any] = {"version": "v0.1.0", "target": "y"}
    if source in ("csv", "parquet"):
        path = ws / f"{name}.{source}"
        frame.to_csv(path, index=False) if source == "csv" else frame.to_parquet(path, index=False)
        return {**data, "source": path.name, "split": {"validation": 0.25, "test": 0.25, "seed": 1}}
    part = np.arange(len(frame)) % 4
    names = np.array(["train", "train", "validation", "test"])[part]
    if source == "column":
        frame.assign(part=names).to_csv(ws / f"{name}.csv", index=False)
        return {**data, "source": f"{name}.csv", "split": {"column": "part"}}
    assert source == "files"
    files = {}
    for split in ("train", "validation", "test"):
        files[split] = f"{name}-{split}.parquet"
        frame[names == split].to_parquet(ws / files[split], index=False)
    return {**data, "source": files}


def space_for(name: str, data: dict[str, Any], metric: str, **overrides: Any) -> dict[str, Any]:
    space = small_space(
        study=name,
        data=data,
        metric=metric,
        n_trials=2,
        params={"depth": {"type": "int", "low": 2, "high": 4}, "learning_rate": {"type": "float", "low": 0.1, "high": 0.3}},
        fixed={"iterations": 15, "thread_count": 1},
    )
    space.update(overrides)
    return space


_VERSIONS: dict[tuple[Path, str], str] = {}


def write_space_file(ws: Path, space: dict[str, Any]) -> Path:
    """Write ``space``; each table of a workspace gets a data version of its own (the data ledger
    holds one set of digests per version name), the same table the same version."""
    import json

    data = {k: v for k, v in space["data"].items() if k != "version"}
    key = (ws, json.dumps(data, sort_keys=True))
    version = _VERSIONS.setdefault(key, f"v{sum(w == ws for w, _ in _VERSIONS)}.1.0")
    space = {**space, "data": {**space["data"], "version": version}}
    path = ws / "search_spaces" / f"{space['study']}.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One workspace and one MLflow store for the studies of this module (each study has its own name)."""
    with shared_workspace(tmp_path_factory, "tables") as ws:
        yield ws


def load(ws: Path, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{ws / 'studies' / 'hpo.db'}")


# --- every kind of label, every source form, every classification metric -----------------------

CASES = [
    ("int", "csv", "accuracy"),
    ("int", "files", "roc_auc"),
    ("bool", "csv", "f1"),
    ("float", "parquet", "logloss"),
    ("multi_int", "column", "f1"),
    ("multi_int", "csv", "roc_auc"),
    ("nullable_int", "parquet", "roc_auc"),
    ("nullable_bool", "files", "accuracy"),
    ("string", "column", "logloss"),
    ("category", "parquet", "roc_auc"),
]


@pytest.mark.parametrize(("label", "source", "metric"), CASES, ids=["-".join(c) for c in CASES])
def test_every_label_kind_runs_and_scores_every_metric_in_the_class_order(
    shared_ws: Path, label: str, source: str, metric: str
) -> None:
    frame = raw_features(seed=CASES.index((label, source, metric)))
    frame["y"] = labels(label, signal(frame))
    name = f"{label}-{source}-{metric}".replace("_", "")
    data = write_source(shared_ws, name, frame, source)
    space = space_for(name, data, metric, **({"task": "classification"} if label == "float" else {}))
    path = write_space_file(shared_ws, space)

    code, out, err = invoke("validate", str(path))
    assert code == 0, err
    assert "classification" in out

    code, out, err = invoke("run", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["states"] == {"COMPLETE": 2}

    study = load(shared_ws, name)
    assert study.user_attrs["data_overview"]["classes"] == EXPECTED_CLASSES[label]
    for trial in study.trials:
        scores = trial.user_attrs["validation_metrics"]
        assert set(scores) == {m.name for m in metrics_for("classification")}
        assert all(math.isfinite(v) for v in scores.values()), scores
        assert trial.value == scores[metric]
        # The labels are cut from a learnable score: scored against the right class (the second in
        # the study's order for binary targets), AUC is high; against the wrong one it would be low.
        assert scores["roc_auc"] > 0.75, scores
        assert 0 < scores["accuracy"] <= 1 and 0 <= scores["f1"] <= 1 and scores["logloss"] > 0

    # Promoted, its logged model gives the labels as the table has them; reproduce agrees.
    code, out, err = invoke("promote", "best", "--study", name, "--allow-dirty", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["model_check"]["max_abs_diff"] <= 1e-12
    assert all(math.isfinite(v) for v in result["test_metrics"].values())
    import mlflow

    predicted = list(mlflow.pyfunc.load_model(result["model_uri"]).predict(frame.drop(columns="y").head(40)))
    classes = EXPECTED_CLASSES[label]
    assert set(predicted) <= set(classes) and len(set(predicted)) > 1
    assert {type(p) for p in predicted} == {type(classes[0])}
    code, out, err = invoke("reproduce", result["run_id"])
    assert code == 0 and "Reproduced: all 8 metrics, and the logged model's predictions" in out, out + err


def test_a_real_integer_labelled_table_runs_analyzes_and_promotes(shared_ws: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame  # target is 0/1 integers, as the file has it
    frame = frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame.to_csv(shared_ws / "cancer.csv", index=False)
    data = {"version": "v0.1.0", "source": "cancer.csv", "target": "target", "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    path = write_space_file(shared_ws, space_for("cancer-int", data, "roc_auc", n_trials=3))
    code, out, err = invoke("run", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["states"] == {"COMPLETE": 3}
    assert load(shared_ws, "cancer-int").user_attrs["data_overview"]["classes"] == [0, 1]

    code, out, err = invoke("analyze", "--study", "cancer-int", "--json")
    assert code == 0, err

    code, out, err = invoke("promote", "best", "--study", "cancer-int", "--allow-dirty", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["model_check"]["max_abs_diff"] <= 1e-12
    assert set(result["test_metrics"]) == {m.name for m in metrics_for("classification")}
    assert all(math.isfinite(v) for v in result["test_metrics"].values())
    code, out, err = invoke("reproduce", result["run_id"])
    assert code == 0, err
    assert "Reproduced: all 8 metrics" in out and "the logged model's predictions on 114 raw test rows" in out


def test_a_real_table_with_string_features_runs_and_its_rare_class_is_refused(shared_ws: Path) -> None:
    import plotly.data

    tips = plotly.data.tips()  # sex, smoker, day and time are strings; `size` has classes of 4 and 5 rows
    tips.to_csv(shared_ws / "tips.csv", index=False)
    data = {"version": "v0.1.0", "source": "tips.csv", "target": "day", "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    path = write_space_file(shared_ws, space_for("tips-day", data, "accuracy"))
    code, out, err = invoke("run", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["states"] == {"COMPLETE": 2}
    assert load(shared_ws, "tips-day").user_attrs["data_overview"]["classes"] == ["Fri", "Sat", "Sun", "Thur"]

    split = {"validation": 0.1, "test": 0.1, "seed": 0}
    rare = write_space_file(shared_ws, space_for("tips-size", {**data, "target": "size", "split": split}, "accuracy"))
    code, out, err = invoke("validate", str(rare))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {rare}")
    assert "class 1 of `data.target` 'size' has 4 rows, too few to reach every split" in err and "only from 10 rows" in err


# --- data checks: what would burn every trial is refused by `hpo validate` ------------------------


def multiclass(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": np.where(x > 0.4, "b", np.where(x < -0.4, "a", "c"))})


def refused(ws: Path, space: dict[str, Any], *needles: str) -> str:
    """`hpo validate` exits 2 with one error line naming the space file and each of ``needles``."""
    path = write_space_file(ws, space)
    code, out, err = invoke("validate", str(path))
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), err
    for needle in needles:
        assert needle in err, err
    return err


def test_a_class_too_rare_to_reach_every_split_is_refused_and_nothing_is_written(workspace: Path) -> None:
    frame = multiclass()
    frame.loc[[3, 50], "y"] = "rare"  # 2 rows: the stratified split leaves it no validation or test row
    frame.to_csv(workspace / "t.csv", index=False)
    data = {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    space = space_for("rare", data, "logloss")
    refused(workspace, space, "class 'rare' of `data.target` 'y' has 2 rows", "for sure only from 5 rows")

    code, out, err = invoke("run", str(workspace / "search_spaces" / "rare.yaml"))
    assert code == 2 and "class 'rare'" in err
    assert not (workspace / "studies" / "hpo.db").exists() and not (workspace / "mlflow.db").exists()


def test_column_split_classes_must_appear_in_every_split(workspace: Path) -> None:
    frame = multiclass().assign(part=lambda f: np.array(["train", "train", "validation", "test"])[np.arange(len(f)) % 4])
    only_val = frame.copy()
    only_val.loc[[2, 6], "y"] = "new"  # rows 2 and 6 are validation rows
    only_val.to_csv(workspace / "a.csv", index=False)
    data = {"version": "v0.1.0", "source": "a.csv", "target": "y", "split": {"column": "part"}}
    refused(workspace, space_for("only-val", data, "accuracy"), "class 'new'", "validation split", "not in the train split")

    no_test = frame.copy()
    no_test.loc[no_test["part"] == "test", "y"] = no_test.loc[no_test["part"] == "test", "y"].replace("c", "a")
    no_test.to_csv(workspace / "b.csv", index=False)
    refused(
        workspace, space_for("no-test", {**data, "source": "b.csv"}, "f1"), "class 'c'", "no row in the test split", "metrics"
    )


@pytest.mark.parametrize("split", ["validation", "test"])
def test_three_files_whose_column_types_differ_are_refused(workspace: Path, split: str) -> None:
    frame = multiclass()
    files = {}
    for i, s in enumerate(("train", "validation", "test")):
        part = frame.iloc[i::3].copy()
        if s == split:
            part["z"] = part["z"].astype(object)
            part.iloc[4, part.columns.get_loc("z")] = "?"
        files[s] = f"{s}.csv"
        part.to_csv(workspace / files[s], index=False)
    data = {"version": "v0.1.0", "source": files, "target": "y"}
    refused(workspace, space_for("types", data, "accuracy"), f"{split}.csv", "column 'z'", "'?'", "numeric in train")


def test_a_non_finite_target_is_refused(workspace: Path) -> None:
    frame = multiclass()
    frame["y"] = frame["x"] * 2.0
    frame.loc[[1, 5, 9], "y"] = -np.inf
    frame.to_csv(workspace / "t.csv", index=False)
    data = {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    refused(workspace, space_for("inf", data, "rmse"), "`data.target` 'y'", "3 non-finite", "-inf", "must be finite")


def test_the_task_is_inferred_from_the_whole_table_so_split_and_task_agree(workspace: Path) -> None:
    # 21 distinct integers in the table, but the train split happens to hold 20 or fewer of them.
    y = np.r_[np.arange(10).repeat(19), np.arange(100, 111)]
    frame = pd.DataFrame({"x": np.arange(len(y)) % 7, "y": y})
    frame.to_csv(workspace / "t.csv", index=False)
    data = {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.25, "test": 0.25, "seed": 0}}
    path = write_space_file(workspace, space_for("ints", data, "rmse"))
    code, out, err = invoke("validate", str(path))
    assert code == 0, err
    assert "regression on 'y'" in out


def test_drop_may_name_the_split_column(workspace: Path) -> None:
    frame = multiclass().assign(part=lambda f: np.array(["train", "train", "validation", "test"])[np.arange(len(f)) % 4])
    frame.to_csv(workspace / "t.csv", index=False)
    data = {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"column": "part"}, "drop": ["part", "z"]}
    path = write_space_file(workspace, space_for("drop", data, "accuracy"))
    code, out, err = invoke("validate", str(path))
    assert code == 0, err
    assert "1 features" in out


# --- the promoted model predicts on raw rows ------------------------------------------------------


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_promoted_model_predicts_raw_rows_of_every_column_kind_exactly_as_hpo_did(shared_ws: Path, task: str) -> None:
    import mlflow
    from mlflow import MlflowClient

    from hpo.data import load_data
    from hpo.space import DataConfig

    frame = raw_features(seed=5)
    s = signal(frame)
    frame["y"] = labels("int", s) if task == "classification" else s
    frame["row"] = np.arange(len(frame))
    frame.to_parquet(shared_ws / f"kinds-{task}.parquet", index=False)
    data = {
        "version": "v0.1.0",
        "source": f"kinds-{task}.parquet",
        "target": "y",
        "split": {"validation": 0.25, "test": 0.25, "seed": 2},
        "drop": ["row"],
    }
    name = f"kinds-{task}"
    path = write_space_file(shared_ws, space_for(name, data, "roc_auc" if task == "classification" else "rmse"))
    assert invoke("run", str(path), "--quiet")[0] == 0
    code, out, err = invoke("promote", "best", "--study", name, "--allow-dirty", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["model_check"]["max_abs_diff"] <= 1e-12 and result["model_check"]["rows"] == 60
    run = MlflowClient().get_run(result["run_id"])

    # hpo's own test predictions: the native CatBoost model on the features as hpo encodes them.
    prepared = load_data(DataConfig.model_validate(data), base=shared_ws)
    native = mlflow.catboost.load_model(run.data.tags["hpo.native_model_uri"])
    ours = native.predict_proba(prepared.test.X) if task == "classification" else native.predict(prepared.test.X)

    # The logged model on raw rows of the original table: target dropped, every column kind as read.
    raw = pd.read_parquet(shared_ws / f"kinds-{task}.parquet")
    test_rows = raw.set_index("row").loc[prepared.test.index].drop(columns="y").reset_index()
    assert str(test_rows["count"].dtype) == "Int64" and str(test_rows["grade"].dtype) == "category"
    model = mlflow.pyfunc.load_model(run.data.tags["hpo.model_uri"])
    if task == "classification":
        theirs = model.predict(test_rows, params={"output": "proba"})
        assert list(theirs.columns) == ["0", "1"]
        assert np.max(np.abs(theirs.to_numpy() - ours)) <= 1e-12
        predicted = np.asarray(model.predict(test_rows))
        assert predicted.dtype.kind == "i" and set(predicted) <= {0, 1}
        assert list(predicted) == list(np.array([0, 1])[ours.argmax(axis=1)])
    else:
        theirs = np.asarray(model.predict(test_rows), dtype=float)
        assert np.max(np.abs(theirs - ours)) <= 1e-12

    # New rows: missing values in every column, an integer column given as floats with NaN, an unseen category.
    new = test_rows.head(3).copy()
    new["x2"] = [np.nan, 3.0, 4.0]
    new["count"] = pd.array([pd.NA, 1, pd.NA], dtype="Int64")
    new["color"] = [None, "purple", "red"]
    new["flag"] = [True, False, True]
    new["grade"] = pd.Categorical([np.nan, "a", "b"])
    new["when"] = pd.to_datetime([None, "2024-03-01", "2024-06-01"])
    assert len(np.asarray(model.predict(new))) == 3

    # A missing feature column is named.
    with pytest.raises(Exception, match="color"):
        model.predict(new.drop(columns="color"))


def test_an_undefined_metric_is_logged_as_nan_and_named_never_left_out(shared_ws: Path) -> None:
    from mlflow import MlflowClient

    # The feature varies in train but is constant in validation and test: every prediction there is the
    # same, so Pearson's and Spearman's r are undefined.
    rng = np.random.default_rng(3)
    part = np.array(["train", "train", "validation", "test"])[np.arange(100) % 4]
    x = np.where(part == "train", rng.normal(size=100), 0.5)
    pd.DataFrame({"x": x, "y": x + rng.normal(size=100), "part": part}).to_csv(shared_ws / "flat.csv", index=False)
    data = {"version": "v0.1.0", "source": "flat.csv", "target": "y", "split": {"column": "part"}}
    path = write_space_file(shared_ws, space_for("flat", data, "rmse"))
    assert invoke("run", str(path), "--quiet")[0] == 0
    code, out, err = invoke("promote", "best", "--study", "flat", "--allow-dirty", "--allow-degenerate")
    assert code == 0, err
    assert "val_pearson_r, val_spearman_r, test_pearson_r, test_spearman_r undefined (NaN" in err, err
    run_id = next(line.split(" is run ")[1].split()[0] for line in out.splitlines() if line.startswith("Promoted:"))
    metrics = MlflowClient().get_run(run_id).data.metrics
    assert {f"{p}_{m.name}" for p in ("val", "test") for m in metrics_for("regression")} <= set(metrics)
    assert math.isnan(metrics["test_pearson_r"]) and math.isfinite(metrics["test_rmse"])
    code, out, err = invoke("reproduce", run_id)
    assert code == 0 and "Reproduced: all 10 metrics" in out, out + err


@pytest.mark.parametrize("drop", [[], ["x", "z"]])
def test_a_table_with_no_feature_column_is_refused(workspace: Path, drop: list[str]) -> None:
    # Only the target, or every other column dropped: validate used to pass and every trial failed.
    frame = multiclass()
    (frame[["y"]] if not drop else frame).to_csv(workspace / "t.csv", index=False)
    data = {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    if drop:
        data["drop"] = drop
    refused(workspace, space_for("nofeatures", data, "accuracy"), "no feature column", "`data.drop`")
    assert not (workspace / "studies").exists()


def test_a_regression_target_beyond_catboosts_32_bit_floats_is_refused(workspace: Path) -> None:
    # 1e308 is finite in float64, but CatBoost's float32 labels make it inf: every trial failed with
    # "Invalid bias nan" and the study name was spent.
    frame = multiclass()
    frame["y"] = frame["x"] * 2.0
    frame.loc[7, "y"] = 1e308
    frame.to_csv(workspace / "t.csv", index=False)
    data = {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    refused(workspace, space_for("huge", data, "rmse"), "`data.target` 'y'", "1e+308 (row 8)", "32-bit floats")
