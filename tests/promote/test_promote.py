"""`hpo promote` and `hpo reproduce`: real studies, real CatBoost re-training, a real MLflow store and registry."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities import ViewType

from hpo.metrics import metrics_for
from hpo.promote import NATIVE_NAME, PYFUNC_NAME
from hpo.storage import trial_id
from tests.conftest import ROOT, commit_all, git, invoke, write_space

PROJECT_DATA = "{project}-Data-v0.1.0"


def load(ws: Path, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{ws / 'studies' / 'hpo.db'}")


def data_runs(ws: Path, view: int = ViewType.ACTIVE_ONLY) -> list[Any]:
    exp = MlflowClient().get_experiment_by_name(PROJECT_DATA.format(project=ws.name))
    return [] if exp is None else MlflowClient().search_runs([exp.experiment_id], run_view_type=view)


def run_study(space: Path) -> None:
    code, out, err = invoke("run", str(space), "--quiet")
    assert code == 0, err


@pytest.fixture
def git_study(workspace: Path, mlflow_store: str) -> Path:
    """A finished 6-trial study in a committed, tagged git workspace."""
    space = write_space(workspace / "search_spaces", "small.yaml", n_trials=6)
    commit_all(workspace, tag="v1.2.0")
    run_study(space)
    return space


def test_promote_best_of_the_example_logs_one_reproducible_run_whose_model_predicts_raw_rows(
    workspace: Path, mlflow_store: str
) -> None:
    # The shipped example, with a smaller budget.
    example = yaml.safe_load((ROOT / "search_spaces" / "diabetes-catboost.yaml").read_text())
    example["n_trials"] = 6
    space = workspace / "search_spaces" / "diabetes-catboost.yaml"
    space.write_text(yaml.safe_dump(example, sort_keys=False))
    commit_all(workspace, tag="v0.3.0")
    run_study(space)
    study = load(workspace, "diabetes-catboost")
    best = study.best_trial

    code, out, err = invoke("promote", "best")
    assert code == 0, err
    assert "tolerance 1e-06" in err  # the tolerance used is printed
    runs = data_runs(workspace)
    assert len(runs) == 1
    run = runs[0]
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.run_id in out

    # Provenance: source, data, seed, and the links back to the study, the trial and its HPO run.
    assert tags["src_version"] == "v0.3.0" and tags["git_commit"] == git(workspace, "rev-parse", "HEAD")
    assert tags["git_dirty"] == "false" and "hpo.allow_dirty" not in tags
    assert tags["data_version"] == "v0.1.0"
    assert {s: tags[f"digest.{s}"] for s in ("train", "validation", "test")} == study.user_attrs["data_digests"]
    assert tags["seed"] == str(best.user_attrs["seed"])
    assert tags["hpo.study"] == "diabetes-catboost" and tags["hpo.trial_number"] == str(best.number)
    assert tags["hpo.hpo_run_id"] == best.user_attrs["mlflow_run_id"]
    hpo_run = MlflowClient().get_run(tags["hpo.hpo_run_id"])
    assert hpo_run.data.tags["hpo.promoted_run_id"] == run.info.run_id
    assert run.info.run_name == f"diabetes-catboost-{best.number}"
    assert f"Trial #{best.number} of hpo study `diabetes-catboost`" in tags["mlflow.note.content"]

    # Params are the trial's whole configuration; every regression metric on validation and test.
    assert run.data.params == {**{k: str(v) for k, v in example["fixed"].items()}, **{k: str(v) for k, v in best.params.items()}}
    assert metrics["val_pearson_r"] == pytest.approx(best.value, abs=1e-6)
    for m in metrics_for("regression"):
        assert f"val_{m.name}" in metrics and f"test_{m.name}" in metrics

    # The three splits are dataset inputs with their digests.
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"v0.1.0-train", "v0.1.0-validation", "v0.1.0-test"}
    for split in ("train", "validation", "test"):
        d = inputs[f"v0.1.0-{split}"]
        full = study.user_attrs["data_digests"][split]
        assert full.startswith(d.dataset.digest) and {t.key: t.value for t in d.tags}["hpo.digest"] == full

    # The model loads through both flavors and predicts on raw rows of the data (target column included).
    import mlflow
    from sklearn.datasets import load_diabetes

    raw = load_diabetes(as_frame=True).frame
    native = mlflow.catboost.load_model(tags["hpo.native_model_uri"])
    pyfunc = mlflow.pyfunc.load_model(tags["hpo.model_uri"])
    assert pyfunc.metadata.signature is not None
    assert pyfunc.metadata.saved_input_example_info is not None
    from_pyfunc = np.asarray(pyfunc.predict(raw.head(50)))
    assert np.allclose(from_pyfunc, native.predict(raw.drop(columns="target").head(50)))

    # `hpo reproduce` re-trains from the run alone and matches every metric.
    code, out, err = invoke("reproduce", run.info.run_id)
    assert code == 0, err
    assert f"Reproduced: all {len(metrics_for('regression')) * 2} metrics" in out

    # Promoting it again reports the run instead of logging a second one; --again logs one more.
    code, out, err = invoke("promote", str(best.number), "--study", "diabetes-catboost")
    assert code == 0 and "promoted before" in err and run.info.run_id in out
    assert len(data_runs(workspace)) == 1
    assert invoke("promote", "best", "--again")[0] == 0
    assert len(data_runs(workspace)) == 2


def test_a_categorical_csv_dataset_promotes_and_a_changed_file_refuses(workspace: Path, mlflow_store: str) -> None:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 30]].rename(columns=lambda c: c.replace(" ", "_"))
    frame["site"] = np.where(np.arange(len(frame)) % 3 == 0, "north", "south")
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    csv = workspace / "cancer.csv"
    frame.to_csv(csv, index=False)
    space = write_space(
        workspace / "search_spaces",
        "cancer.yaml",
        study="cancer",
        data={
            "version": "v0.1.0",
            "source": "cancer.csv",
            "target": "target",
            "split": {"validation": 0.25, "test": 0.25, "seed": 1},
        },
        metric="roc_auc",
        n_trials=4,
        params={
            "depth": {"type": "int", "low": 2, "high": 4},
            "grow_policy": {"type": "categorical", "choices": ["SymmetricTree", "Depthwise"]},
        },
    )
    commit_all(workspace)
    run_study(space)

    code, out, err = invoke("promote", "best", "--json")
    assert code == 0, err
    run = MlflowClient().get_run(yaml.safe_load(out)["run_id"])
    for m in metrics_for("classification"):
        assert f"test_{m.name}" in run.data.metrics
    assert run.data.tags["hpo.string_params"] == '["grow_policy"]'
    assert {d.dataset.source_type for d in run.inputs.dataset_inputs} == {"local"}

    # Raw CSV rows, string categories and all, give class labels through pyfunc.
    import mlflow

    labels = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(pd.read_csv(csv).head(20))
    assert set(np.asarray(labels).ravel()) <= {"benign", "malignant"}

    # One changed value in the file changes a split digest: promotion and reproduction refuse.
    changed = pd.read_csv(csv)
    changed.loc[5, "mean_radius"] += 1.0
    changed.to_csv(csv, index=False)
    code, out, err = invoke("promote", "best", "--again")
    assert code == 2 and "data changed" in err and "digest differs" in err
    assert "bump MINOR when the test split changes, PATCH when only train or validation change" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert len(data_runs(workspace)) == 1
    code, out, err = invoke("reproduce", run.info.run_id)
    assert code == 2 and "digest differs" in err


def test_a_dirty_tree_refuses_unless_allowed_and_the_run_says_so(workspace: Path, mlflow_store: str, git_study: Path) -> None:
    git_study.write_text(git_study.read_text() + "# an uncommitted edit\n")
    code, out, err = invoke("promote", "best")
    assert code == 2 and "uncommitted changes" in err and "--allow-dirty" in err
    assert data_runs(workspace) == []

    code, out, err = invoke("promote", "best", "--allow-dirty")
    assert code == 0, err
    tags = data_runs(workspace)[0].data.tags
    assert tags["git_dirty"] == "true" and tags["hpo.allow_dirty"] == "true"
    assert "dirty tree" in tags["mlflow.note.content"]


def test_outside_git_promotion_needs_the_same_flag(workspace: Path, mlflow_store: str) -> None:
    space = write_space(workspace / "search_spaces", "small.yaml", n_trials=3)
    run_study(space)
    code, out, err = invoke("promote", "best")
    assert code == 2 and "not inside a git repository" in err
    assert invoke("promote", "best", "--allow-dirty")[0] == 0
    tags = data_runs(workspace)[0].data.tags
    assert tags["src_version"] == "unknown" and tags["hpo.allow_dirty"] == "true"


def test_pruned_and_failed_trials_are_refused(workspace: Path, mlflow_store: str, git_study: Path) -> None:
    study = load(workspace, "small")
    dists = study.trials[0].distributions
    for state in (optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL):
        study.add_trial(
            optuna.trial.create_trial(state=state, params=study.trials[0].params, distributions=dists, user_attrs={"seed": 1})
        )
    for number, state in ((6, "PRUNED"), (7, "FAIL")):
        code, out, err = invoke("promote", str(number))
        assert code == 2 and f"trial #{number} of study 'small' is {state}" in err and "only COMPLETE" in err
    code, out, err = invoke("promote", "99")
    assert code == 2 and "no trial #99" in err
    code, out, err = invoke("promote", "first")
    assert code == 2 and "a trial number or `best`" in err
    code, out, err = invoke("promote", "best", "--register", "model", "--alias", "latest")
    assert code == 2 and "--alias 'latest'" in err
    assert data_runs(workspace) == []


def test_a_tampered_trial_value_fails_the_check_and_logs_nothing(workspace: Path, mlflow_store: str, git_study: Path) -> None:
    best = load(workspace, "small").best_trial
    with sqlite3.connect(workspace / "studies" / "hpo.db") as db:
        db.execute("UPDATE trial_values SET value = value + 0.01 WHERE trial_id = ?", (trial_id(best),))
    code, out, err = invoke("promote", str(best.number))
    assert code == 1
    assert f"trial #{best.number} of study 'small' did not reproduce" in err and "nothing was logged" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert data_runs(workspace) == []
    assert "hpo.promoted_run_id" not in MlflowClient().get_run(best.user_attrs["mlflow_run_id"]).data.tags


def test_a_promotion_cut_short_while_logging_deletes_its_logged_models_with_its_run(
    workspace: Path, mlflow_store: str, git_study: Path
) -> None:
    # MLflow creates each logged model PENDING before it writes its files; a Ctrl-C then soft-deleted
    # the promoted run but left its model PENDING for good. The signal is sent as soon as a PENDING
    # model shows in the store; a promotion that got past it first is simply tried again.
    store = workspace / "mlflow.db"
    for _ in range(8):
        promote = [sys.executable, "-m", "hpo", "promote", "best", "--again"]
        proc = subprocess.Popen(promote, cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        caught = _until_a_model_is_pending(store, proc)
        if caught:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        if caught and proc.returncode != 0:
            break
        assert proc.returncode == 0, err  # it finished before the signal came: try again
    else:
        pytest.fail("no promotion was caught while its model was PENDING")
    assert _pending_models(store) == [], err
    assert proc.returncode == 130 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "interrupted (Ctrl-C)" in errors[0] and "nothing was promoted" in errors[0], err
    assert "finishing the MLflow write under way" in err and "database is locked" not in err, err
    assert _models_of_deleted_runs(workspace) == []

    # An error half-way (here the experiment's model folder cannot be made) discards the model too:
    # MLflow marks it FAILED, and it was left beside the deleted run.
    c = MlflowClient()
    location = c.get_experiment_by_name(PROJECT_DATA.format(project=workspace.name)).artifact_location
    models = Path(location.removeprefix("file://")) / "models"
    shutil.rmtree(models, ignore_errors=True)
    models.parent.mkdir(parents=True, exist_ok=True)
    models.write_text("not a folder")
    finished = len(data_runs(workspace))
    code, _, err = invoke("promote", "best", "--again")
    assert code == 2 and "Traceback" not in err, err  # one line, not a traceback
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1, err
    assert "MLflow could not log the promoted run" in err and "nothing was promoted" in err, err
    assert len(data_runs(workspace)) == finished
    assert _pending_models(store) == []
    assert _models_of_deleted_runs(workspace) == []


def _models_of_deleted_runs(ws: Path) -> list[str]:
    c = MlflowClient()
    exp = c.get_experiment_by_name(PROJECT_DATA.format(project=ws.name))
    deleted = {r.info.run_id for r in data_runs(ws, ViewType.DELETED_ONLY)}
    assert deleted  # the promotions cut short, soft-deleted as before
    return [m.model_id for m in c.search_logged_models([exp.experiment_id]) if m.source_run_id in deleted]


def _until_a_model_is_pending(store: Path, proc: subprocess.Popen[str]) -> bool:
    """Poll the MLflow store until a logged model is PENDING (True) or the process has ended (False)."""
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):  # locked by the writer: look again
            if _pending_models(store):
                return True
        time.sleep(0.005)
    return False


def _pending_models(store: Path) -> list[str]:
    """Logged models in PENDING state, read from the store's table (deleted ones included)."""
    from mlflow.entities import LoggedModelStatus

    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)) as db:
        rows = db.execute("SELECT model_id FROM logged_models WHERE status = ?", (LoggedModelStatus.PENDING.to_int(),))
        return [r[0] for r in rows]


def test_reproduce_reports_a_metric_that_does_not_match(workspace: Path, mlflow_store: str, git_study: Path) -> None:
    code, out, err = invoke("promote", "best", "--json")
    run_id = yaml.safe_load(out)["run_id"]
    c = MlflowClient()
    c.log_metric(run_id, "test_rmse", c.get_run(run_id).data.metrics["test_rmse"] + 1.0)
    code, out, err = invoke("reproduce", run_id)
    assert code == 1 and "NOT reproduced: 1 of 11 checks" in out and "test_rmse" in out

    code, out, err = invoke("reproduce", c.get_run(run_id).data.tags["hpo.hpo_run_id"])
    assert code == 2 and "only runs made by `hpo promote` can be reproduced" in err


def test_register_and_leaderboard_keep_the_best_promoted_run(workspace: Path, mlflow_store: str, git_study: Path) -> None:
    ranked = sorted(load(workspace, "small").get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.value)
    worst, middle, best = ranked[0], ranked[len(ranked) // 2], ranked[-1]
    c = MlflowClient()
    leaderboard = f"{workspace.name}-Leaderboard"

    def promote(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        code, out, err = invoke("promote", str(trial.number), "--register", "diabetes", "--leaderboard", "--json")
        assert code == 0, err
        return yaml.safe_load(out)

    first = promote(middle)
    assert first["registered"] == {"name": "diabetes", "version": 1, "alias": "champion", "existing": False}
    assert first["leaderboard"]["updated"]
    second = promote(best)
    assert second["registered"]["version"] == 2 and second["leaderboard"]["updated"]
    third = promote(worst)
    assert not third["leaderboard"]["updated"]

    assert int(c.get_model_version_by_alias("diabetes", "champion").version) == 3
    rows = c.search_runs([c.get_experiment_by_name(leaderboard).experiment_id])
    assert len(rows) == 1
    row = rows[0]
    assert row.data.tags["hpo.promoted_run_id"] == second["run_id"]
    assert row.data.metrics["val_pearson_r"] == pytest.approx(best.value)
    assert [m.value for m in c.get_metric_history(row.info.run_id, "val_pearson_r")] == pytest.approx([middle.value, best.value])

    # Promoting an already registered run again reuses its model version.
    again = promote(best)
    assert again["existing"] and again["registered"] == {"name": "diabetes", "version": 2, "alias": "champion", "existing": True}
    assert int(c.get_model_version_by_alias("diabetes", "champion").version) == 2


def test_an_inherited_trial_promotes_the_trial_it_came_from(workspace: Path, mlflow_store: str, git_study: Path) -> None:
    text = yaml.safe_load(git_study.read_text())
    text.update(study="small-gen2", n_trials=2, derived_from={"study": "small", "warm_start": True})
    child = workspace / "search_spaces" / "small-gen2.yaml"
    child.write_text(yaml.safe_dump(text, sort_keys=False))
    commit_all(workspace)
    run_study(child)
    inherited = next(t for t in load(workspace, "small-gen2").trials if "inherited_from" in t.user_attrs)
    origin = inherited.user_attrs["inherited_from"]

    code, out, err = invoke("promote", str(inherited.number), "--study", "small-gen2", "--json")
    assert code == 0, err
    result = yaml.safe_load(out)
    assert (result["study"], result["trial"], result["via"]) == ("small", origin["trial"], f"small-gen2#{inherited.number}")
    tags = MlflowClient().get_run(result["run_id"]).data.tags
    assert tags["hpo.study"] == "small" and tags["hpo.requested_as"] == f"small-gen2#{inherited.number}"
    # Promoting the origin directly is the same promotion.
    code, out, err = invoke("promote", str(origin["trial"]), "--study", "small")
    assert code == 0 and "promoted before" in err


def test_promote_needs_an_hpo_study(workspace: Path, mlflow_store: str) -> None:
    shutil.rmtree(workspace / "studies", ignore_errors=True)
    (workspace / "studies").mkdir()
    study = optuna.create_study(study_name="plain", storage=f"sqlite:///{workspace / 'studies' / 'hpo.db'}")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    code, out, err = invoke("promote", "best", "--allow-dirty")
    assert code == 2 and "was not created by hpo" in err


def test_a_trial_run_while_mlflow_was_down_gets_its_hpo_run_before_it_is_linked(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = write_space(workspace / "search_spaces", "small.yaml", n_trials=3)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    run_study(space)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace / 'mlflow.db'}")
    code, out, err = invoke("promote", "best", "--allow-dirty", "--json")
    assert code == 0, err
    result = yaml.safe_load(out)
    hpo_run = MlflowClient().get_run(result["hpo_run_id"])
    assert hpo_run.data.tags["hpo.trial_number"] == str(result["trial"])
    assert hpo_run.data.tags["hpo.promoted_run_id"] == result["run_id"]


def test_a_class_order_too_long_for_an_mlflow_tag_points_to_the_model_instead() -> None:
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    from hpo.promote._writer import MAX_TAG_LENGTH, classes_tag

    assert MAX_TAG_LENGTH == MAX_TAG_VAL_LENGTH  # MLflow's own limit, which a longer tag would break
    few = [0, 1, 10]
    assert json.loads(classes_tag(few)) == few
    many = [f"category-{i:04d}" for i in range(1000)]
    tag = classes_tag(many)
    assert len(tag) <= MAX_TAG_VAL_LENGTH and "1000 classes" in tag and "encoding.json" in tag


def test_two_promotions_of_one_trial_started_together_log_one_run(workspace: Path, mlflow_store: str, git_study: Path) -> None:
    # Both used to find the trial unpromoted, re-train it and log a run each (two runs, four models).
    number = load(workspace, "small").best_trial.number
    promote = [sys.executable, "-m", "hpo", "promote", str(number), "--study", "small"]
    procs = [
        subprocess.Popen(promote, cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = data_runs(workspace)
    assert len(runs) == 1, outs
    run_id = runs[0].info.run_id
    exp = runs[0].info.experiment_id
    assert sorted(m.name for m in MlflowClient().search_logged_models([exp])) == sorted([PYFUNC_NAME, NATIVE_NAME])
    promoted = [(out, err) for out, err in outs if out.startswith("Promoted:")]
    already = [(out, err) for out, err in outs if out.startswith("Already promoted:")]
    assert len(promoted) == 1 and len(already) == 1, outs
    out, err = already[0]
    assert run_id in out and f"trial #{number} of study 'small' was promoted before, as run {run_id}" in err, err
    assert "waiting for another `hpo promote` of it to finish" in err, err  # it came second, and said why it waited
    assert "Traceback" not in err + promoted[0][1]
