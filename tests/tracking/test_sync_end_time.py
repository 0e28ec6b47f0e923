"""The parent run's times tell the study's, and hpo's experiments open on MLflow's runs table (real MLflow store)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna
from mlflow import MlflowClient

from hpo.schema import EXPERIMENT_KIND, KIND_TRAINING
from tests.conftest import invoke, write_space


def parent_run(uri: str, experiment: str):  # type: ignore[no-untyped-def]
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(experiment)
    (run,) = c.search_runs([exp.experiment_id], filter_string="tags.`hpo.role` = 'study'")
    return run


def last_trial_end_ms(ws: Path) -> int:
    study = optuna.load_study(study_name="small", storage=f"sqlite:///{ws / 'studies' / 'hpo.db'}")
    return max(int(t.datetime_complete.timestamp() * 1000) for t in study.trials if t.datetime_complete)


def test_a_sync_that_finds_nothing_new_leaves_the_parent_run_untouched(workspace: Path, mlflow_store: str) -> None:
    space = write_space(workspace, n_trials=2)
    assert invoke("run", str(space), "--quiet")[0] == 0
    hpo_exp = f"{workspace.name}-HPO-v0.1.0"
    before = parent_run(mlflow_store, hpo_exp)
    assert before.info.status == "FINISHED"

    time.sleep(2)
    code, out, err = invoke("sync", "--json")
    assert code == 0, err
    assert json.loads(out) | {"experiment_id": None} == {
        "study": "small",
        "experiment_id": None,
        "created": 0,
        "completed": 0,
        "unchanged": 2,
    }
    after = parent_run(mlflow_store, hpo_exp)
    assert after.info.end_time == before.info.end_time  # was rewritten to now: ~2 s later here, minutes for users
    assert after.info.end_time == last_trial_end_ms(workspace)  # when the last trial ended, not when hpo closed it
    assert after.info.status == "FINISHED" and after.data.metrics == before.data.metrics
    history = MlflowClient(mlflow_store).get_metric_history(after.info.run_id, "best_val_pearson_r")
    assert len(history) == 1  # the best value was logged again on every sync


def test_a_sync_that_builds_the_projection_later_keeps_the_studys_times(workspace: Path, mlflow_store: str) -> None:
    # MLflow unreachable during the run: nothing logged; the sync a moment later builds every run.
    space = write_space(workspace, n_trials=2)
    code, _, err = invoke("run", str(space), "--quiet")
    assert code == 0, err
    hpo_exp = f"{workspace.name}-HPO-v0.1.0"
    c = MlflowClient(mlflow_store)
    exp = c.get_experiment_by_name(hpo_exp)
    for r in c.search_runs([exp.experiment_id]):
        c.delete_run(r.info.run_id)  # as if MLflow had been down during the run (the sync recreates them)
    time.sleep(2)
    assert invoke("sync")[0] == 0
    parent = parent_run(mlflow_store, hpo_exp)
    assert parent.info.end_time == last_trial_end_ms(workspace)
    assert parent.info.start_time <= parent.info.end_time
    children = c.search_runs([exp.experiment_id], filter_string="tags.`hpo.role` = 'trial'")
    assert len(children) == 2 and all(r.info.start_time <= r.info.end_time for r in children)


def test_hpo_experiments_open_on_mlflows_runs_table(workspace: Path, mlflow_store: str) -> None:
    space = write_space(workspace, n_trials=1)
    assert invoke("run", str(space), "--quiet")[0] == 0
    c = MlflowClient(mlflow_store)
    for name in (f"{workspace.name}-HPO-v0.1.0", f"{workspace.name}-Data-v0.1.0"):
        assert c.get_experiment_by_name(name).tags.get(EXPERIMENT_KIND) == KIND_TRAINING, name

    # Experiments made by an older hpo (no kind) get it at the next sync; a kind chosen by hand stays.
    hpo_exp = c.get_experiment_by_name(f"{workspace.name}-HPO-v0.1.0")
    data_exp = c.get_experiment_by_name(f"{workspace.name}-Data-v0.1.0")
    c.delete_experiment_tag(hpo_exp.experiment_id, EXPERIMENT_KIND)
    c.delete_experiment_tag(data_exp.experiment_id, EXPERIMENT_KIND)
    other = c.create_experiment(f"{workspace.name}-Leaderboard", tags={EXPERIMENT_KIND: "genai_development"})
    assert invoke("sync")[0] == 0
    assert c.get_experiment(hpo_exp.experiment_id).tags.get(EXPERIMENT_KIND) == KIND_TRAINING
    assert c.get_experiment(data_exp.experiment_id).tags.get(EXPERIMENT_KIND) == KIND_TRAINING
    assert c.get_experiment(other).tags[EXPERIMENT_KIND] == "genai_development"
