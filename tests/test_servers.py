"""The real-server fixtures work: Optuna shares trials through PostgreSQL, MLflow's REST client round-trips a run."""

from __future__ import annotations

import uuid
from pathlib import Path

# Registers the fixtures as a plugin: importing their names here would give this module its own copies, i.e.
# a second PostgreSQL and MLflow server once tests/conftest.py provides them too.
pytest_plugins = ["tests.servers"]


def test_optuna_handles_share_trials_through_postgres(postgres_url: str) -> None:
    import optuna
    from sqlalchemy.engine import make_url

    assert make_url(postgres_url).database.startswith("t_")
    storages = [optuna.storages.RDBStorage(postgres_url) for _ in range(3)]  # separate engines, separate connections
    try:
        optuna.create_study(study_name="shared", storage=storages[0], direction="minimize")
        a = optuna.load_study(study_name="shared", storage=storages[1])
        b = optuna.load_study(study_name="shared", storage=storages[2])
        for x in (3.0, 1.0):
            trial = a.ask()
            trial.suggest_float("x", -10, 10)
            a.tell(trial, x * x)
        trial = b.ask()
        b.tell(trial, 0.5)

        assert [t.value for t in b.get_trials()] == [9.0, 1.0, 0.5]
        assert [t.number for t in a.get_trials()] == [0, 1, 2]
        assert a.best_value == b.best_value == 0.5
        assert storages[0].engine.dialect.name == "postgresql"
    finally:
        for s in storages:
            s.engine.dispose()


def test_mlflow_client_round_trips_a_run(mlflow_server: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=mlflow_server)
    exp_id = c.create_experiment(f"servers-selftest-{uuid.uuid4().hex[:8]}")
    run = c.create_run(exp_id, run_name="probe")
    run_id = run.info.run_id
    c.log_metric(run_id, "loss", 0.25, step=3)
    c.log_text(run_id, "hello from the test", "notes/hello.txt")
    c.set_terminated(run_id)

    got = c.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.data.metrics == {"loss": 0.25}
    assert [(m.value, m.step) for m in c.get_metric_history(run_id, "loss")] == [(0.25, 3)]
    assert got.info.artifact_uri.startswith("mlflow-artifacts:")  # stored through the server's artifact proxy
    assert [f.path for f in c.list_artifacts(run_id, "notes")] == ["notes/hello.txt"]
    local = c.download_artifacts(run_id, "notes/hello.txt", dst_path=str(tmp_path))
    assert Path(local).read_text() == "hello from the test"
