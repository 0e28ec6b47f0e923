"""`hpo promote` and `hpo reproduce` for the team's own models: an estimator class, a pipeline from a
factory function, and a training function (the shipped examples), with real fits and a real MLflow store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import ROOT, git, invoke, run_cli, shared_workspace, small_space, write_space_as

# kind -> (the shipped example's study, overrides that keep it small)
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "estimator": ("diabetes-histgb", {"n_trials": 3, "fixed": {"max_iter": 20}}),
    "pipeline": ("breast-cancer-pipeline", {"n_trials": 3}),
    "entry": ("diabetes-sgd", {"n_trials": 3, "fixed": {"epochs": 10}}),
}
FLAVORS = {"estimator": "sklearn", "pipeline": "sklearn", "entry": "pyfunc"}

# A training function whose model holds a lock: it trains and scores, but cannot be pickled.
LOCKED = """
import threading

from sklearn.linear_model import Ridge


def fit(params, train, seed):
    model = Ridge(**params).fit(train.X, train.y)
    model.lock = threading.Lock()
    return model
"""


def data_runs(ws: Path) -> list[Any]:
    c = MlflowClient()
    exp = c.get_experiment_by_name(f"{ws.name}-Data-v0.1.0")
    return [] if exp is None else c.search_runs([exp.experiment_id])


def logged_models(ws: Path) -> list[str]:
    c = MlflowClient()
    exp = c.get_experiment_by_name(f"{ws.name}-Data-v0.1.0")
    return [] if exp is None else [m.model_id for m in c.search_logged_models([exp.experiment_id])]


def raw_rows(kind: str) -> Any:
    """Rows of the example's table as read, the target column included (the models ignore it)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    return (load_breast_cancer if kind == "pipeline" else load_diabetes)(as_frame=True).frame.head(40)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One committed workspace (tag v0.2.0) with a small study of each example, each promoted once;
    and two studies for the tests that follow (CatBoost; a model that cannot be pickled)."""
    with shared_workspace(tmp_path_factory, "own") as ws:
        # The example modules sit where the README puts them, beside their space files.
        for module in ("diabetes_sgd.py", "pipeline.py"):
            shutil.copy(ROOT / "search_spaces" / module, ws / "search_spaces")
        (ws / "hpo_test_locked.py").write_text(LOCKED)
        spaces = [write_space_as(ws, _text_table(ws / "colors.csv"), "colors.yaml")]
        for study, overrides in EXAMPLES.values():
            space = yaml.safe_load((ROOT / "search_spaces" / f"{study}.yaml").read_text())
            spaces.append(write_space_as(ws, {**space, **overrides}, f"{study}.yaml"))
        spaces.append(write_space_as(ws, small_space(n_trials=2), "small.yaml"))
        locked = small_space(study="locked", model="hpo_test_locked:fit", metric="r2", n_trials=1, fixed=None)
        locked["params"] = {"alpha": {"type": "float", "low": 0.1, "high": 1.0}}
        spaces.append(write_space_as(ws, locked, "locked.yaml"))
        (ws / ".gitignore").write_text("studies/\nmlflow.db\nmlruns/\n*.csv\n")
        git(ws, "init", "-q")
        git(ws, "add", "-A")
        git(ws, "commit", "-q", "-m", "workspace")
        git(ws, "tag", "v0.2.0")
        for space in spaces:
            code, _, err = invoke("run", str(space), "--quiet")
            assert code == 0, err
        ws.joinpath("promoted.json").write_text(json.dumps({kind: _promote(study) for kind, (study, _) in EXAMPLES.items()}))
        yield ws


def _text_table(csv: Path) -> dict[str, Any]:
    """A classifier's space on a table with a text column (gaps included) and labels 1, 2, 10, which
    scikit-learn orders as text (1, 10, 2)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue", None], size=n)
    y = np.where((x > 0.5) | (color == "red"), 10, np.where(x < -0.5, 1, 2))
    pd.DataFrame({"x": x, "color": color, "y": y}).to_csv(csv, index=False)
    space = small_space(study="colors", model="sklearn.ensemble.HistGradientBoostingClassifier", metric="accuracy", n_trials=1)
    space.update(
        data={"version": "v2.0.0", "source": csv.name, "target": "y", "split": {"validation": 0.25, "test": 0.25, "seed": 0}},
        params={"max_depth": {"type": "int", "low": 2, "high": 4}},
        fixed={"max_iter": 20},
    )
    return space


def _promote(study: str, *extra: str) -> dict[str, Any]:
    code, out, err = invoke("promote", "best", "--study", study, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def promoted(ws: Path, kind: str) -> dict[str, Any]:
    return json.loads((ws / "promoted.json").read_text())[kind]


@pytest.mark.parametrize("kind", list(EXAMPLES))
def test_each_kind_is_logged_with_its_flavor_and_reproduces(ws: Path, kind: str) -> None:
    import mlflow

    r = promoted(ws, kind)
    assert r["check"]["ok"] and r["model_check"]["max_abs_diff"] <= 1e-6, r
    assert r["source"]["hpo.source_differs"] is None  # promoted at the study's own commit
    tags = MlflowClient().get_run(r["run_id"]).data.tags
    assert tags["hpo.model_flavor"] == r["model_flavor"] == FLAVORS[kind]
    study = EXAMPLES[kind][0]
    assert tags["hpo.model"] == yaml.safe_load((ROOT / "search_spaces" / f"{study}.yaml").read_text())["model"]

    # The raw-rows pyfunc, with signature and input example, for every kind.
    rows = raw_rows(kind)
    served = mlflow.pyfunc.load_model(r["model_uri"])
    assert served.metadata.signature is not None and served.metadata.saved_input_example_info is not None
    labels = np.asarray(served.predict(rows)).ravel()

    if FLAVORS[kind] == "sklearn":
        # The estimator or pipeline itself (hpo's wrapper taken off), on hpo's encoded features.
        native = mlflow.sklearn.load_model(r["native_model_uri"])
        assert type(native).__module__.startswith("sklearn.")
        info = mlflow.models.get_model_info(r["native_model_uri"])
        assert info.signature is not None and info.saved_input_example_info is not None
        features = rows.drop(columns="target").astype(float)
        assert [str(v) for v in native.predict(features)] == [str(v) for v in labels]
    else:
        # No flavor of its own: the pyfunc carries the function's model, of the workspace's class.
        assert r["native_model_uri"] is None
        assert type(served.unwrap_python_model()._model).__name__ == "Model"

    code, out, err = invoke("reproduce", r["run_id"])
    assert code == 0, out + err
    assert "Reproduced: all" in out and "logged model's predictions on" in out


def test_an_estimators_text_columns_are_cast_by_the_served_model_itself(ws: Path) -> None:
    # hpo gives an estimator its text columns as category with train's categories; the raw-rows pyfunc
    # does the same from the categories it records, without hpo, unseen colors and gaps included.
    import mlflow
    import pandas as pd

    r = _promote("colors")
    assert r["model_flavor"] == "sklearn" and r["model_check"]["max_abs_diff"] <= 1e-6, r
    rows = pd.DataFrame({"x": [0.0, 1.0, -1.0, 0.2], "color": ["red", "purple", None, "blue"]})
    served = mlflow.pyfunc.load_model(r["model_uri"])
    assert list(served.unwrap_python_model()._categories) == ["color"]
    proba = served.predict(rows, params={"output": "proba"})
    assert list(proba.columns) == ["1", "2", "10"]  # the study's class order, not scikit-learn's
    labels = served.predict(rows).tolist()
    assert labels == [[1, 2, 10][i] for i in proba.to_numpy().argmax(axis=1)] and labels[0] == 10
    code, out, err = invoke("reproduce", r["run_id"])
    assert code == 0 and "Reproduced: all" in out, out + err


def test_the_logged_models_load_in_a_fresh_process_outside_the_workspace(
    ws: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The entry point's model is of a class in the workspace (search_spaces/diabetes_sgd.py): it loads
    # elsewhere only because its module travels with it (code_paths).
    import mlflow

    uris = {kind: promoted(ws, kind)["model_uri"] for kind in EXAMPLES}
    natives = {kind: promoted(ws, kind)["native_model_uri"] for kind in EXAMPLES if FLAVORS[kind] == "sklearn"}
    script = """
import json, sys
import mlflow
from sklearn.datasets import load_breast_cancer, load_diabetes

uris, natives = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {}
for kind, uri in uris.items():
    rows = (load_breast_cancer if kind == "pipeline" else load_diabetes)(as_frame=True).frame.head(40)
    out[kind] = [str(v) for v in mlflow.pyfunc.load_model(uri).predict(rows)]
for kind, uri in natives.items():
    mlflow.sklearn.load_model(uri)
out["module"] = sys.modules["search_spaces.diabetes_sgd"].__file__
print(json.dumps(out))
"""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(uris), json.dumps(natives)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    module = Path(there["module"])  # the model's copy (under its artifacts' code/), not the workspace's file
    assert module.parent.parent.name == "code" and not module.is_relative_to(ws / "search_spaces"), module
    for kind, uri in uris.items():
        here = [str(v) for v in mlflow.pyfunc.load_model(uri).predict(raw_rows(kind))]
        assert there[kind] == here, kind


def test_a_model_that_cannot_be_pickled_or_imported_is_refused_in_one_line(ws: Path) -> None:
    before, models = len(data_runs(ws)), logged_models(ws)
    code, _, err = invoke("promote", "best", "--study", "locked")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "cannot be pickled" in lines[-1] and "nothing was logged" in lines[-1], err
    assert sum(line.startswith("error:") for line in lines) == 1 and "Traceback" not in err
    assert len(data_runs(ws)) == before and logged_models(ws) == models

    # The study's module is gone from the workspace: promote and reproduce say so (a fresh process, as a
    # module imported once stays imported).
    module = ws / "hpo_test_locked.py"
    module.rename(ws / "moved.py")
    try:
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{ws / 'mlflow.db'}"}
        proc = run_cli("promote", "best", "--study", "locked", "--allow-dirty", cwd=ws, env=env)
        assert proc.returncode == 2, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "its model hpo_test_locked:fit cannot be loaded here: cannot import module 'hpo_test_locked'" in errors[0]
    finally:
        (ws / "moved.py").rename(module)
    assert len(data_runs(ws)) == before and logged_models(ws) == models


@pytest.mark.parametrize("study", ["small", "diabetes-sgd"])
def test_a_promotion_from_another_commit_than_the_studys_says_so(ws: Path, study: str) -> None:
    # CatBoost and the team's own function alike: the model is re-trained by the code here.
    if git(ws, "describe", "--tags") == "v0.2.0":
        (ws / "NOTES.md").write_text("a later commit\n")
        git(ws, "add", "NOTES.md")
        git(ws, "commit", "-q", "-m", "later")
    code, out, err = invoke("promote", "best", "--study", study, "--again")
    assert code == 0, err
    study_commit = promoted(ws, "entry")["source"]["git_commit"]
    note = next(line for line in err.splitlines() if "note:" in line)
    assert f"the study ran at v0.2.0 (commit {study_commit[:12]}); this workspace is at v0.2.0-1-g" in note
    run_id = next(r.info.run_id for r in data_runs(ws) if r.info.run_id in out)
    tags = MlflowClient().get_run(run_id).data.tags
    assert tags["hpo.source_differs"] in note and tags["hpo.study_commit"] == study_commit
    assert tags["git_commit"] == git(ws, "rev-parse", "HEAD") != study_commit


@pytest.mark.parametrize(
    ("study", "here", "says"),
    [
        (("v1", "a" * 40, False), ("v1", "a" * 40, False), None),
        (("v1", "a" * 40, False), ("v1-2-gb", "b" * 40, False), "the study ran at v1 (commit aaaaaaaaaaaa); this workspace is at v1-2-gb (commit bbbbbbbbbbbb)"),
        (("v1", "a" * 40, True), ("v1", "a" * 40, False), "the study ran at v1 (commit aaaaaaaaaaaa) with uncommitted changes"),
        (("unknown", "unknown", None), ("v1", "a" * 40, False), "the study records no source commit (it ran outside git)"),
        (("v1", "a" * 40, False), ("unknown", "unknown", None), "this workspace is not in git"),
        (("unknown", "unknown", None), ("unknown", "unknown", None), None),
    ],
)  # fmt: skip
def test_what_the_source_note_says(
    study: tuple[str, str, bool | None], here: tuple[str, str, bool | None], says: str | None
) -> None:
    from hpo.promote._checks import source_differs
    from hpo.provenance import SourceVersion
    from hpo.schema import StudyRecord

    got = source_differs(StudyRecord(src_version=study[0], commit=study[1], dirty=study[2]), SourceVersion(*here))
    assert got is None if says is None else got is not None and says in got, got
