"""k-fold cross-validation (`cv:`): the folds, the fold mean, pruning between folds, the records, and bad input.

The known-structure study uses a training function that predicts train's mean plus a tuned shift
and writes down which rows it was given, so every fold's value can be computed here by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, invoke, shared_workspace, small_space, trials_of, write_space_as

FOLDS = 5

TRAIN_FUNCTION = """
import json


class Shifted:
    def __init__(self, level):
        self.level = level

    def predict(self, X):
        return [self.level] * len(X)


def fit(params, train, seed):
    with open("fits.jsonl", "a") as f:
        f.write(json.dumps({"ids": [int(i) for i in train.X["id"]], "shift": params["shift"]}) + "\\n")
    return Shifted(float(train.y.mean()) + params["shift"])
"""


def table(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    part = np.array(["train"] * (rows - 20) + ["validation"] * 10 + ["test"] * 10)
    return pd.DataFrame({"id": np.arange(rows), "x": rng.normal(size=rows), "y": rng.normal(size=rows) * 3, "part": part})


def cv_space(**extra: Any) -> dict[str, Any]:
    space: dict[str, Any] = {
        "study": "folds",
        "data": {"version": "v0.1.0", "source": "table.csv", "target": "y", "split": {"column": "part"}},
        "model": "shifted_mean:fit",
        "task": "regression",
        "metric": "rmse",
        "n_trials": 12,
        "seed": 0,
        "cv": {"folds": FOLDS, "seed": 4},
        "sampler": {"name": "random"},
        "pruner": {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 0},
        "params": {"shift": {"type": "float", "low": -2.0, "high": 2.0}},
    }
    space.update(extra)
    return space


@pytest.fixture(scope="module")
def folded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cross-validated study of the shifted-mean function (fast: no real fit)."""
    with shared_workspace(tmp_path_factory, "cv") as ws:
        table().to_csv(ws / "table.csv", index=False)
        (ws / "shifted_mean.py").write_text(TRAIN_FUNCTION)
        code, _, err = invoke("run", str(write_space_as(ws, cv_space())))
        assert code == 0, err
        yield ws


def fits_of(ws: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (ws / "fits.jsonl").read_text().splitlines()]


def test_every_trial_is_scored_on_the_same_folds_of_train_and_validation_and_never_on_test(folded: Path) -> None:
    t = table()
    train_val = set(t.id[t.part != "test"])
    folds_seen = set()
    for fit in fits_of(folded):
        trained = frozenset(fit["ids"])
        assert trained <= train_val  # test rows are never fitted on
        folds_seen.add(frozenset(train_val - trained))
    held_out = sorted(folds_seen, key=min)
    assert len(held_out) == FOLDS  # the same five folds, whichever trial
    assert sorted(i for fold in held_out for i in fold) == sorted(train_val)  # a partition: each row held out once
    assert {len(f) for f in held_out} == {len(train_val) // FOLDS}


def test_a_trials_value_is_the_mean_of_its_folds_computed_by_hand(folded: Path) -> None:
    t = table().set_index("id")
    train_val = set(t.index[t.part != "test"])
    by_shift: dict[float, list[float]] = {}
    for fit in fits_of(folded):
        held = sorted(train_val - set(fit["ids"]))
        level = t.y[fit["ids"]].mean() + fit["shift"]
        by_shift.setdefault(fit["shift"], []).append(math.sqrt(((t.y[held] - level) ** 2).mean()))
    complete = [x for x in trials_of(folded, "folds") if x.state.name == "COMPLETE"]
    assert len(complete) >= 3
    for trial in complete:
        expected = by_shift[trial.params["shift"]]
        assert trial.user_attrs["fold_values"] == pytest.approx(expected, rel=1e-9)
        assert trial.value == pytest.approx(np.mean(expected), rel=1e-9)
        assert trial.user_attrs["fold_sd"] == pytest.approx(np.std(expected, ddof=1), rel=1e-9)
        # The curve is the running mean after each fold.
        assert list(trial.intermediate_values.values()) == pytest.approx(np.cumsum(expected) / np.arange(1, FOLDS + 1))


def test_the_pruner_stops_a_trial_between_folds_on_the_running_mean(folded: Path) -> None:
    trials = trials_of(folded, "folds")
    pruned = [x for x in trials if x.state.name == "PRUNED"]
    assert pruned, [(x.state.name, x.params) for x in trials]
    fits = fits_of(folded)
    for trial in pruned:
        steps = len(trial.intermediate_values)
        assert 1 <= steps < FOLDS
        # It fitted only the folds it reported: the rest of its folds never ran.
        assert sum(f["shift"] == trial.params["shift"] for f in fits) == steps


def test_the_fold_values_are_in_the_trials_mlflow_run_and_analyze_uses_their_spread_without_refitting(folded: Path) -> None:
    import mlflow

    c = mlflow.MlflowClient()
    trial = next(x for x in trials_of(folded, "folds") if x.state.name == "COMPLETE")
    run = trial.user_attrs["mlflow_run_id"]
    history = c.get_metric_history(run, "val_rmse_by_fold")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(trial.user_attrs["fold_values"])
    assert c.get_run(run).data.metrics["val_rmse_fold_sd"] == pytest.approx(trial.user_attrs["fold_sd"])

    code, out, _ = invoke("show", "folds")
    assert "scoring      5-fold cross-validation, 1 repeat(s), seed 4: the fold mean" in out
    assert "  folds      " in out

    fits = len(fits_of(folded))
    code, out, err = invoke("analyze", "--study", "folds", "--min-trials", "3", "--json", "--dry-run")
    assert code == 0, err
    noise = json.loads(out)["noise"]
    assert "folds" in noise["source"] and noise["sd"] > 0
    assert len(fits_of(folded)) == fits  # no re-fit


def test_repeats_draw_the_folds_again(workspace: Path) -> None:
    table().to_csv(workspace / "table.csv", index=False)
    (workspace / "shifted_mean_r.py").write_text(TRAIN_FUNCTION)
    space = cv_space(model="shifted_mean_r:fit", n_trials=1, pruner={"name": "none"}, cv={"folds": 2, "repeats": 3})
    code, out, _ = invoke("validate", str(write_space_as(workspace, space)))
    assert code == 0 and "2-fold cv x 3 repeat(s) (6 fits per trial, 25 held-out rows each)" in out, out
    code, _, err = invoke("run", str(write_space_as(workspace, space)))
    assert code == 0, err
    (trial,) = trials_of(workspace, "folds")
    assert len(trial.user_attrs["fold_values"]) == 6
    train_val = set(table().query("part != 'test'").id)
    fits = [set(f["ids"]) for f in fits_of(workspace)]
    for r in range(3):  # within a repeat, the two halves partition train + validation
        a, b = fits[2 * r], fits[2 * r + 1]
        assert a | b == train_val and not a & b
    assert len({frozenset(f) for f in fits}) == 6  # each repeat shuffles anew


def test_classification_folds_are_stratified(workspace: Path) -> None:
    rows = 90
    rng = np.random.default_rng(0)
    labels = np.array(["common"] * 70 + ["rare"] * 20)
    rng.shuffle(labels)
    part = np.where(np.arange(rows) < 70, "train", np.where(np.arange(rows) < 80, "validation", "test"))
    labels[70:72], labels[80:82] = "rare", "rare"  # every class in every split
    pd.DataFrame({"id": np.arange(rows), "x": rng.normal(size=rows), "y": labels, "part": part}).to_csv(
        workspace / "classes.csv", index=False
    )
    space = cv_space(
        model="sklearn.linear_model.LogisticRegression",
        task="classification",
        metric="accuracy",
        n_trials=1,
        pruner={"name": "none"},
        params={"C": {"type": "float", "low": 0.1, "high": 1.0}},
        data={"version": "v0.1.0", "source": "classes.csv", "target": "y", "split": {"column": "part"}, "drop": []},
    )
    code, _, err = invoke("run", str(write_space_as(workspace, space)))
    assert code == 0, err
    (trial,) = trials_of(workspace, "folds")
    assert trial.state.name == "COMPLETE" and len(trial.user_attrs["fold_values"]) == FOLDS

    from hpo.data import folds, load_data
    from hpo.space import CVConfig, DataConfig

    data = load_data(DataConfig.model_validate(space["data"]), base=workspace)
    rare = int((data.train.y == "rare").sum() + (data.validation.y == "rare").sum())
    for fold in folds(data, CVConfig(folds=FOLDS)):
        assert int((fold.validation.y == "rare").sum()) in (rare // FOLDS, -(-rare // FOLDS))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cv": {"folds": 1}}, "`cv.folds` must be >= 2, but got 1"),
        ({"cv": {"folds": 51}}, "`cv.folds` is 51, more than the 50 rows of train + validation"),
        ({"cv": {"folds": 5, "repeats": 1000}}, "`cv.repeats`"),
        ({"cv": {"folds": 5, "folds_": 2}}, "`cv.folds_`"),
        ({"cv": True}, "`cv` must be a mapping of keys to values, but got true"),
        ({"pruner": {"name": "median", "n_warmup_steps": 5}}, "with `cv` a pruner's step is a fold and there are 5"),
        ({"model": "shifted_mean:nope"}, "module 'shifted_mean' has no attribute 'nope'"),
    ],
)
def test_bad_cv_input_is_one_line_and_writes_nothing(workspace: Path, change: dict[str, Any], expected: str) -> None:
    table().to_csv(workspace / "table.csv", index=False)
    (workspace / "shifted_mean.py").write_text(TRAIN_FUNCTION)
    path = write_space_as(workspace, cv_space(**change))
    for verb in ("validate", "run"):
        code, out, err = invoke(verb, str(path))
        assert code == 2, (out, err)
        assert expected in err and len(err.strip().splitlines()) == 1, err
    assert not (workspace / "studies").exists() and not (workspace / "fits.jsonl").exists()


def test_cv_with_a_column_split_that_leaves_validation_empty_is_refused(workspace: Path) -> None:
    t = table()
    t.loc[t.part == "validation", "part"] = "train"
    t.to_csv(workspace / "table.csv", index=False)
    (workspace / "shifted_mean.py").write_text(TRAIN_FUNCTION)
    code, _, err = invoke("run", str(write_space_as(workspace, cv_space())))
    assert code == 2
    assert "the validation split is empty; `cv` folds train and validation together" in err, err
    assert len(err.strip().splitlines()) == 1 and not (workspace / "studies").exists()


def test_stratified_folds_need_a_row_of_every_class_in_each_fold(workspace: Path) -> None:
    space = yaml.safe_load((ROOT / "search_spaces" / "breast-cancer-pipeline.yaml").read_text())
    shutil_copy(ROOT / "search_spaces" / "pipeline.py", workspace / "search_spaces" / "pipeline.py")
    space["cv"] = {"folds": 400}
    code, _, err = invoke("validate", str(write_space_as(workspace, space)))
    assert code == 2
    assert "`cv.folds` is 400, but class" in err and "stratified folds need at least one row of every class" in err, err
    assert not (workspace / "studies").exists()


def shutil_copy(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes())


def test_a_cv_trial_of_a_training_function_promotes_and_reproduces(folded: Path) -> None:
    # A shifted mean predicts one value for every row: degenerate, promoted as asked.
    code, out, err = invoke("promote", "best", "--study", "folds", "--allow-dirty", "--allow-degenerate", "--json")
    assert code == 0, err
    promoted = json.loads(out)
    # The folds ran again and their mean matched the trial (one fit per fold), then one final fit.
    assert promoted["check"]["ok"] and promoted["check"]["recorded"] == promoted["check"]["reproduced"]
    t = table().set_index("id")
    last = fits_of(folded)[-1]
    assert sorted(last["ids"]) == sorted(t.index[t.part != "test"])  # the final model saw train + validation
    code, out, err = invoke("reproduce", promoted["run_id"], "--json")
    assert code == 0, err
    assert json.loads(out)["ok"]
    # The promoted run can be named by its study and trial, as the README's commands do.
    code, out, err = invoke("reproduce", "--study", "folds", "--json")
    assert code == 0 and json.loads(out)["run_id"] == promoted["run_id"], err
    other = next(x.number for x in trials_of(folded, "folds") if x.state.name == "COMPLETE" and x.number != promoted["trial"])
    code, _, err = invoke("reproduce", "--study", "folds", "--trial", str(other))
    assert code == 2 and f"trial #{other} of study 'folds' has no promoted run" in err, err
    code, _, err = invoke("reproduce", promoted["run_id"], "--study", "folds")
    assert code == 2 and "give a promoted run's id, or --study" in err


def test_a_cv_catboost_trial_promotes_with_the_folds_mean_best_iterations_and_reproduces(
    workspace: Path, mlflow_store: str
) -> None:
    import mlflow

    space = small_space(study="cv-catboost", n_trials=2, cv={"folds": 3})
    code, _, err = invoke("run", str(write_space_as(workspace, space)))
    assert code == 0, err
    code, out, err = invoke("promote", "best", "--study", "cv-catboost", "--allow-dirty")
    assert code == 0, err
    assert "re-train  3-fold mean pearson_r" in err, err
    assert "final     the model to keep, fit on train + validation (354 rows)" in err
    c = mlflow.MlflowClient()
    run = c.search_runs([c.get_experiment_by_name(f"{workspace.name}-Data-v0.1.0").experiment_id])[0]
    best = next(t for t in trials_of(workspace, "cv-catboost") if t.number == int(run.data.tags["hpo.trial_number"]))
    assert run.data.metrics["val_pearson_r"] == pytest.approx(best.value, abs=1e-9)
    assert json.loads(run.data.tags["hpo.cv"]) == {"folds": 3, "repeats": 1, "seed": 0}
    folds_logged = sorted(c.get_metric_history(run.info.run_id, "val_pearson_r_by_fold"), key=lambda m: m.step)
    assert [m.value for m in folds_logged] == pytest.approx(best.user_attrs["fold_values"])
    native = mlflow.catboost.load_model(run.data.tags["hpo.native_model_uri"])
    assert native.tree_count_ == best.user_attrs["best_iteration"] + 1  # no eval set to pick it: the folds' mean best
    code, out, err = invoke("reproduce", run.info.run_id)
    assert code == 0 and "Reproduced: all 10 metrics" in out, (out, err)


def test_a_derived_study_inherits_fold_values_only_when_it_scores_on_the_same_folds(folded: Path) -> None:
    # Runs last in this module: it adds studies to the shared workspace.
    space = cv_space(study="folds-gen1", derived_from={"study": "folds", "warm_start": True})
    space["n_trials"] = 1
    code, _, err = invoke("run", str(write_space_as(folded, space, "folds-gen1.yaml")))
    assert code == 0, err
    child = trials_of(folded, "folds-gen1")
    parent = {t.number: t for t in trials_of(folded, "folds") if t.state.name == "COMPLETE"}
    inherited = [t for t in child if "inherited_from" in t.user_attrs]
    assert len(inherited) == len(parent)
    for t in inherited:  # the same folds: values and fold values carry over as they are
        assert t.user_attrs["fold_values"] == parent[t.user_attrs["inherited_from"]["trial"]].user_attrs["fold_values"]

    space.update(study="folds-2", cv={"folds": 2, "seed": 4})  # other folds: values are not comparable
    code, _, err = invoke("run", str(write_space_as(folded, space, "folds-2.yaml")))
    assert code == 0, err
    import optuna

    study = optuna.load_study(study_name="folds-2", storage=f"sqlite:///{folded / 'studies' / 'hpo.db'}")
    assert study.user_attrs["inherited_trials"]["mode"] == "transfer"
    assert not any("inherited_from" in t.user_attrs for t in study.trials)
