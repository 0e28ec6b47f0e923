"""`hpo sync` over every study goes on past one MLflow cannot hold, says why in one line, and fails at the end."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from hpo.schema import ROLE_TRIAL, STUDY_SEARCH_HASH, TAG_ROLE
from tests.conftest import invoke, write_space


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sync_goes_on_past_a_study_with_a_name_mlflow_refuses(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A study made before validate refused such names: first in the storage, so the others come after it.
    (workspace / "studies").mkdir()
    storage = f"sqlite:///{workspace / 'studies' / 'hpo.db'}"
    legacy = optuna.create_study(study_name="legacy", storage=storage)
    legacy.set_user_attr(STUDY_SEARCH_HASH, "0" * 64)  # made by hpo
    dist = optuna.distributions.IntDistribution(1, 2)
    legacy.add_trial(optuna.trial.create_trial(params={"../../x": 1}, distributions={"../../x": dist}, value=0.5))

    # The good study runs while MLflow is down, so only `hpo sync` can log it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    code, out, err = invoke("run", str(write_space(workspace, n_trials=2)), "--json")
    assert code == 0 and json.loads(out)["states"] == {"COMPLETE": 2}, err

    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, out, err = invoke("sync")
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert lines[0].startswith(
        "error: study 'legacy' cannot be logged to MLflow: its parameter '../../x' starts with '..' (a path out of its "
        "folder), which MLflow refuses as a param key"
    ), err
    assert lines[-1] == "error: 1 of 2 studies were not synced: legacy", err
    assert out.startswith("small: 2 run(s) created"), out
    trials = MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_experiment_by_name(f"{workspace.name}-HPO-v0.1.0").experiment_id],
        filter_string=f"tags.`{TAG_ROLE}` = '{ROLE_TRIAL}'",
    )
    assert len(trials) == 2

    # Named, the study that cannot be synced is the one line, as before.
    code, out, err = invoke("sync", "--study", "legacy")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: study 'legacy' cannot be logged"), err
