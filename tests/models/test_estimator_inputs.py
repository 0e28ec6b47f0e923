"""What an estimator is given: text and gaps encoded for the estimators that take neither (inside the
promoted model too), the others unchanged, and native threads limited to a worker's share (real fits)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import invoke, run_cli, small_space, trials_of, write_space_as

ESTIMATORS = {
    "forest": (
        "sklearn.ensemble.RandomForestClassifier",
        {"max_depth": {"type": "int", "low": 2, "high": 4}},
        {"n_estimators": 5},
    ),
    "logistic": ("sklearn.linear_model.LogisticRegression", {"C": {"type": "float", "low": 0.1, "high": 10, "log": True}}, {}),
    "histgb": (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        {"max_depth": {"type": "int", "low": 2, "high": 4}},
        {"max_iter": 10},
    ),
}

# Records the native thread pools (OpenMP, BLAS) each fit runs with, one JSON line per fit.
RECORDING = """
import json
from pathlib import Path

import threadpoolctl
from sklearn.ensemble import HistGradientBoostingRegressor  # loads scikit-learn's OpenMP runtime


class Recording(HistGradientBoostingRegressor):
    '''HistGradientBoosting that writes the thread pools it is fitted with.'''

    def fit(self, X, y, **kwargs):
        pools = [{"api": p["internal_api"], "threads": p["num_threads"]} for p in threadpoolctl.threadpool_info()]
        with open(Path(__file__).with_name("threads.jsonl"), "a") as f:
            f.write(json.dumps(pools) + "\\n")
        return super().fit(X, y, **kwargs)
"""


def _table(ws: Path) -> None:
    """Text with gaps (a missing color) and numbers with gaps: what users bring."""
    rng = np.random.default_rng(0)
    n = 240
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue", None], size=n)
    y = np.where((x > 0.3) | (color == "red"), "yes", "no")
    noisy = np.where(rng.random(n) < 0.15, np.nan, x + rng.normal(scale=0.5, size=n))
    pd.DataFrame({"x": x, "noisy": noisy, "color": color, "y": y}).to_csv(ws / "t.csv", index=False)


def _space(ws: Path, kind: str) -> Path:
    model, params, fixed = ESTIMATORS[kind]
    space = small_space(study=kind, model=model, metric="accuracy", n_trials=2, params=params, fixed=fixed)
    space["data"] = {
        "version": "v0.1.0",
        "source": "t.csv",
        "target": "y",
        "split": {"validation": 0.25, "test": 0.25, "seed": 0},
    }
    return write_space_as(ws, space, f"{kind}.yaml")


@pytest.mark.parametrize("kind", ["forest", "logistic"])
def test_an_estimator_without_text_or_gaps_gets_them_encoded_in_its_model(workspace: Path, mlflow_store: str, kind: str) -> None:
    import mlflow

    _table(workspace)
    path = _space(workspace, kind)
    code, out, err = invoke("run", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["states"] == {"COMPLETE": 2}
    assert all(t.value > 0.7 for t in trials_of(workspace, kind))

    code, out, err = invoke("validate", str(path))
    assert code == 0, err
    # The choice is visible: which columns are encoded for this estimator, in one line.
    inputs = [line.strip() for line in out.splitlines() if line.strip().startswith("inputs:")]
    assert len(inputs) == 1 and "one-hot 'color'" in inputs[0], out
    assert ("'noisy' with gaps in train, plus a missing flag" in inputs[0]) == (kind == "logistic"), inputs

    code, out, err = invoke("promote", "best", "--study", kind, "--allow-dirty", "--json")
    assert code == 0, err
    r: dict[str, Any] = json.loads(out)
    assert r["model_flavor"] == "sklearn" and r["model_check"]["max_abs_diff"] <= 1e-6, r
    # Raw rows with a gap in each column and a color train never had: the encoding is in the logged models.
    rows = pd.DataFrame(
        {"x": [1.5, -1.5, np.nan, 0.0], "noisy": [np.nan, -1.0, 0.2, np.nan], "color": ["red", None, "purple", "blue"]}
    )
    served = mlflow.pyfunc.load_model(r["model_uri"])
    labels = served.predict(rows).tolist()
    assert set(labels) <= {"yes", "no"} and labels[0] == "yes" and labels[1] == "no", labels
    proba = served.predict(rows, params={"output": "proba"})
    assert list(proba.columns) == ["no", "yes"] and np.allclose(proba.sum(axis=1), 1)
    native = mlflow.sklearn.load_model(r["native_model_uri"])
    assert type(native).__name__ == "Pipeline" and type(native[-1]).__name__ == ESTIMATORS[kind][0].rsplit(".", 1)[1]


def test_an_estimator_that_takes_text_and_gaps_gets_the_table_unchanged(workspace: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score

    from hpo.features import as_categories
    from hpo.prepare import prepare

    _table(workspace)
    path = _space(workspace, "histgb")
    code, out, err = invoke("validate", str(path))
    assert code == 0 and "inputs:" not in out, out + err
    code, _, err = invoke("run", str(path), "--quiet")
    assert code == 0, err
    # Each trial's value is that of the bare estimator on hpo's frame (text as category, gaps as NaN).
    data = prepare(path).data
    categories = {c: sorted(data.train.X[c].astype(str).unique()) for c in data.cat_features}
    for t in trials_of(workspace, "histgb"):
        model = HistGradientBoostingClassifier(max_iter=10, max_depth=t.params["max_depth"], random_state=t.user_attrs["seed"])
        model.fit(as_categories(data.train.X, categories), data.train.y.astype(str))
        assert t.value == accuracy_score(
            data.validation.y.astype(str), model.predict(as_categories(data.validation.X, categories))
        )


def test_an_estimator_that_cannot_take_a_column_is_refused_at_validate(workspace: Path) -> None:
    # MultinomialNB takes only non-negative features: no encoding makes x's negative values fit.
    _table(workspace)
    space = small_space(study="nb", model="sklearn.naive_bayes.MultinomialNB", metric="accuracy", n_trials=2, fixed=None)
    space["params"] = {"alpha": {"type": "float", "low": 0.1, "high": 1.0}}
    space["data"] = {
        "version": "v0.1.0",
        "source": "t.csv",
        "target": "y",
        "split": {"validation": 0.25, "test": 0.25, "seed": 0},
    }
    path = write_space_as(workspace, space, "nb.yaml")
    for verb in ("validate", "run"):
        code, out, err = invoke(verb, str(path))
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (code, out, err)
        assert "MultinomialNB takes only non-negative features, but column 'x' holds -" in lines[0]
        assert lines[0].startswith("error: ") and "drop it (`data.drop`) or choose another model" in lines[0]
    assert not (workspace / "studies" / "hpo.db").exists() or not trials_of(workspace, "nb")


def test_a_workers_fit_runs_with_its_share_of_the_native_threads(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two workers: each gets half the cores. Unlimited, OpenMP and BLAS would each take every core
    # in each worker (one HistGradientBoosting trial took 44 s instead of 0.2 s).
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    (workspace / "threadrec.py").write_text(RECORDING)
    space = small_space(study="threads", model="threadrec.Recording", metric="r2", n_trials=2, fixed={"max_iter": 5})
    space["params"] = {"max_depth": {"type": "int", "low": 2, "high": 3}}
    path = write_space_as(workspace, space)
    r = run_cli(
        "run", str(path), "--jobs", "2", "--quiet", cwd=workspace, env={"MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'm.db'}"}
    )
    assert r.returncode == 0, r.stderr
    share = max(1, (os.cpu_count() or 1) // 2)
    fits = [json.loads(line) for line in (workspace / "threads.jsonl").read_text().splitlines()]
    assert len(fits) == 2 and all(pools for pools in fits), fits
    assert {"openmp"} <= {p["api"] for pools in fits for p in pools}, fits
    assert all(p["threads"] <= share for pools in fits for p in pools), fits


def test_a_warning_every_fit_raises_is_shown_once_per_run_not_once_per_trial(workspace: Path, mlflow_store: str) -> None:
    # max_iter=1: LogisticRegression's lbfgs warns "failed to converge" on every fit; 4 trials used to print it 4 times.
    _table(workspace)
    model, params, _ = ESTIMATORS["logistic"]
    space = small_space(study="warns", model=model, metric="accuracy", n_trials=4, params=params, fixed={"max_iter": 1})
    space["data"] = {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.25, "test": 0.25}}
    path = write_space_as(workspace, space, "warns.yaml")
    result = run_cli("run", str(path), "--quiet", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("ConvergenceWarning") == 1, result.stderr
    assert sum(t.state.name == "COMPLETE" for t in trials_of(workspace, "warns")) == 4
