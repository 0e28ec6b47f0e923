"""scikit-learn estimators named by import path, through `hpo validate`, `run` and `analyze` (real fits)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, invoke, trials_of, write_space_as

EXAMPLE = ROOT / "search_spaces" / "diabetes-histgb.yaml"


def test_the_shipped_estimator_example_runs_and_analyzes(workspace: Path, mlflow_store: str) -> None:
    space = yaml.safe_load(EXAMPLE.read_text())
    space.update(n_trials=10, fixed={"max_iter": 20})
    path = write_space_as(workspace, space)
    code, out, err = invoke("run", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["states"] == {"COMPLETE": 10}
    done = trials_of(workspace, "diabetes-histgb")
    assert {t.params["max_depth"] for t in done} <= set(range(2, 11))
    assert all(0.2 < t.value < 1 for t in done)  # a real fit of diabetes, scored on validation
    study = optuna.load_study(study_name="diabetes-histgb", storage=f"sqlite:///{workspace / 'studies' / 'hpo.db'}")
    assert study.user_attrs["model"] == "sklearn.ensemble.HistGradientBoostingRegressor"
    # Each trial has its own seed, which is the estimator's random_state.
    assert len({t.user_attrs["seed"] for t in done}) == 10
    # analyze re-fits the best trial with other seeds for its noise floor: the estimator, by its path.
    code, out, err = invoke("analyze", "--study", "diabetes-histgb", "--noise-refits", "2", "--json")
    assert code == 0, err
    analysis = json.loads(out)
    assert set(analysis["params"]) == {"max_depth", "learning_rate", "l2_regularization", "min_samples_leaf"}
    assert analysis["noise"] is not None and len(analysis["noise"]["values"]) == 2, analysis["noise"]
    # Promotion and reproduction of estimator studies: tests/promote/test_own_models.py.


def test_a_classifier_gets_text_missing_values_and_labels_in_the_studys_order(workspace: Path) -> None:
    # Labels 1, 2, 10: scikit-learn sorts its classes as text ("1", "10", "2"); the scores must
    # still be per class in the study's order, or roc_auc and accuracy would be of the wrong class.
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue", None], size=n)
    y = np.where(x > 0.5, 10, np.where(x < -0.5, 1, 2)) + 0
    y = np.where((color == "red") & (x > 0), 10, y)
    pd.DataFrame({"x": np.where(rng.random(n) < 0.1, np.nan, x), "color": color, "y": y}).to_csv(workspace / "t.csv", index=False)
    space = {
        "study": "three",
        "data": {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.25, "test": 0.25, "seed": 0}},
        "model": "sklearn.ensemble.HistGradientBoostingClassifier",
        "metric": "accuracy",
        "n_trials": 2,
        "seed": 3,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {"max_depth": {"type": "int", "low": 2, "high": 4}},
        "fixed": {"max_iter": 30},
    }
    code, _, err = invoke("run", str(write_space_as(workspace, space)), "--quiet")
    assert code == 0, err
    for t in trials_of(workspace, "three"):
        metrics = t.user_attrs["validation_metrics"]
        assert metrics["accuracy"] > 0.8 and metrics["roc_auc"] > 0.9, metrics
        assert np.isfinite(metrics["logloss"])


def test_an_estimator_class_of_the_workspaces_own_package(workspace: Path) -> None:
    (workspace / "mymodels").mkdir()
    (workspace / "mymodels" / "__init__.py").write_text("")
    (workspace / "mymodels" / "ridge.py").write_text(
        "from sklearn.linear_model import Ridge\n\n\nclass MyRidge(Ridge):\n    '''The team's own estimator.'''\n"
    )
    space = {
        "study": "own",
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2},
        },
        "model": "mymodels.ridge.MyRidge",
        "metric": "r2",
        "n_trials": 3,
        "seed": 0,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {"alpha": {"type": "float", "low": 0.001, "high": 10, "log": True}},
    }
    code, _, err = invoke("run", str(write_space_as(workspace, space)), "--quiet")
    assert code == 0, err
    assert all(t.state.name == "COMPLETE" for t in trials_of(workspace, "own"))


LOOSE = '''
from sklearn.linear_model import Ridge


class LooseRidge(Ridge):
    """Takes **kwargs for its library, as LightGBM's and XGBoost's estimators do."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(alpha=alpha)
        self.kwargs = kwargs
'''


def test_an_estimator_that_takes_any_keyword_accepts_names_beyond_get_params(workspace: Path) -> None:
    (workspace / "loose.py").write_text(LOOSE)
    space = {
        "study": "loose",
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2},
        },
        "model": "loose.LooseRidge",
        "metric": "r2",
        "n_trials": 2,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        "fixed": {"verbose": -1},  # not in get_params(): passed on, as LightGBM takes `verbose`
    }
    code, _, err = invoke("run", str(write_space_as(workspace, space)), "--quiet")
    assert code == 0, err
    assert [t.state.name for t in trials_of(workspace, "loose")] == ["COMPLETE", "COMPLETE"]


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        ("nope.Thing", {}, "`model` cannot import module 'nope' (ModuleNotFoundError: No module named 'nope')"),
        ("sklearn.ensemble.Nope", {}, "`model` module 'sklearn.ensemble' has no attribute 'Nope'"),
        ("collections.OrderedDict", {}, "`model` collections.OrderedDict is not a scikit-learn estimator class"),
        ("sklearn.linear_model.RidgeClassifier", {}, "is a classification estimator, but the target 'target' is regression"),
        ("sklearn", {}, "`model` must be one of catboost, an estimator class's import path (e.g. sklearn.ensemble.HistGradientBoostingRegressor) or module:function"),
        ("sklearn.linear_model.Ridge", {"params": {"depth": {"type": "int", "low": 1, "high": 3}}}, "`params.depth` is not a sklearn.linear_model.Ridge parameter"),
        ("sklearn.linear_model.Ridge", {"fixed": {"random_state": 1}}, "`fixed.random_state` is set by hpo itself"),
        ("sklearn.ensemble.HistGradientBoostingRegressor", {"params": {"max_depth": {"type": "int", "low": 0, "high": 4}}}, "`params.max_depth` must lie within sklearn.ensemble.HistGradientBoostingRegressor's limits [1, inf], but got low=0, high=4"),
        ("sklearn.ensemble.HistGradientBoostingRegressor", {"params": {"max_bins": {"type": "int", "low": 16, "high": 512}}}, "`params.max_bins` must lie within sklearn.ensemble.HistGradientBoostingRegressor's limits [2, 255], but got low=16, high=512"),
    ],
)  # fmt: skip
def test_bad_estimator_input_is_one_line_and_writes_nothing(workspace: Path, model: str, extra: dict, message: str) -> None:
    space = {
        "study": "bad",
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2},
        },
        "model": model,
        "metric": "r2",
        "n_trials": 2,
        "params": {"alpha": {"type": "float", "low": 0.1, "high": 1}},
        **extra,
    }
    path = write_space_as(workspace, space)
    for verb in ("validate", "run"):
        code, _, err = invoke(verb, str(path))
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and message in lines[0], err
    assert not (workspace / "studies").exists()
