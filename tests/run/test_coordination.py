"""What a worker does around its trials, and how often: the claim, stale checks on a timer, the
progress display, budget top-ups. Real `run_study` on a real Optuna SQLite storage and MLflow store;
a Ridge model, so that the trials are the coordination and little else."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from hpo.run import Progress, StudySnapshot, claim_trial, run_study, snapshot
from hpo.run._claims import STALE_ERROR
from hpo.schema import TRIAL_SLOT
from hpo.storage import open_storage
from tests.conftest import write_space

RIDGE = {"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}}


def _space(ws: Path, n_trials: int) -> Path:
    return write_space(ws, model="sklearn.linear_model.Ridge", metric="r2", n_trials=n_trials, params=RIDGE, fixed=None)


def _study(ws: Path) -> optuna.Study:
    return optuna.load_study(study_name="small", storage=open_storage(f"sqlite:///{ws / 'studies' / 'hpo.db'}"))


class Shown(Progress):
    """A progress display that keeps every snapshot it is given (a display that looks, so it gets them)."""

    def __init__(self) -> None:
        self.snapshots: list[StudySnapshot] = []

    def update(self, snapshot: StudySnapshot) -> None:
        self.snapshots.append(snapshot)


@contextlib.contextmanager
def statements(db: Path) -> Iterator[collections.Counter[str]]:
    """Count the statements (by first word) and commits sent to the SQLite file ``db`` meanwhile."""
    counts: collections.Counter[str] = collections.Counter()

    def ours(conn: Any) -> bool:
        return Path(str(conn.engine.url.database or "")).resolve() == db.resolve()

    def on_execute(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if ours(conn):
            counts[statement.lstrip().split(None, 1)[0].upper()] += 1

    def on_commit(conn: Any) -> None:
        if ours(conn):
            counts["COMMIT"] += 1

    event.listen(Engine, "before_cursor_execute", on_execute)
    event.listen(Engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)
        event.remove(Engine, "commit", on_commit)


def test_a_dead_workers_trial_is_failed_and_retried_in_its_slot_when_nothing_else_is_left(
    workspace: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stale checks run on a timer now, not before every claim; a worker that finds nothing to claim
    # still checks at each poll, so a dead trial in the last slot is requeued a grace period after
    # its last heartbeat, as before.
    monkeypatch.setenv("HPO_GRACE_PERIOD", "3")
    monkeypatch.setenv("HPO_HEARTBEAT_INTERVAL", "1")
    space = _space(workspace, n_trials=2)
    run_study(space, n_trials=2)
    study = _study(workspace)
    # What a worker killed in the middle of slot 2 leaves: its trial RUNNING, its last heartbeat now.
    study.enqueue_trial({}, user_attrs={TRIAL_SLOT: 2}, skip_if_exists=False)
    dead = claim_trial(study, budget=3)
    assert dead is not None and dead.started  # its first heartbeat written with the claim, as a worker's is
    study._storage.record_heartbeat(dead.trial_id)  # type: ignore[attr-defined]

    result = run_study(space, n_trials=4)
    trials = _study(workspace).get_trials()
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and failed[0].user_attrs["error"] == STALE_ERROR
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].user_attrs[TRIAL_SLOT] == 2
    assert sorted(t.user_attrs[TRIAL_SLOT] for t in trials if t.state.name == "COMPLETE") == [0, 1, 2, 3]
    assert result.after.states == {"COMPLETE": 4, "FAIL": 1} and result.after.done == 4


def test_the_progress_display_ends_on_the_exact_counts_and_best_trial(workspace: Path, mlflow_store: str) -> None:
    # Snapshots come on a timer and the best is tracked from the trials told; the last one is whole.
    shown = Shown()
    result = run_study(_space(workspace, n_trials=12), progress=shown)
    study = _study(workspace)
    last = shown.snapshots[-1]
    assert last == snapshot(study) == result.after
    assert last.states == {"COMPLETE": 12} and last.done == 12
    assert last.best is not None and (last.best.number, last.best.value) == (study.best_trial.number, study.best_value)
    assert 1 <= len(shown.snapshots) <= 13
    for s in shown.snapshots:  # every one in between is true too: the best never worse than an earlier one
        assert s.best is not None and s.best.value <= study.best_value


def test_two_workers_finish_exactly_the_budget(workspace: Path, mlflow_store: str) -> None:
    # 20 slots: more than two windows of top-ups, each window enqueued in one transaction.
    result = run_study(_space(workspace, n_trials=20), jobs=2)
    trials = _study(workspace).get_trials()
    assert len(trials) == 20 and {t.state.name for t in trials} == {"COMPLETE"}
    assert sorted(t.number for t in trials) == list(range(20))
    assert sorted(t.user_attrs[TRIAL_SLOT] for t in trials) == list(range(20))
    assert all(t.system_attrs.get("fixed_params") == {} for t in trials)  # as Study.enqueue_trial adds them
    assert result.after.states == {"COMPLETE": 20}


def test_a_trial_costs_fewer_storage_reads_and_commits_around_it(workspace: Path, mlflow_store: str) -> None:
    # Per trial a worker used to run a stale check (two queries), read every WAITING trial whole to
    # claim one, take a full progress snapshot (the best trial whole, the study's attributes) and
    # enqueue each budget slot in its own transaction.
    n = 24
    space = _space(workspace, n_trials=n)
    with statements(workspace / "studies" / "hpo.db") as counts:
        run_study(space, progress=Shown())
    per_trial = {k: v / n for k, v in counts.items()}
    print(f"\nstatements per trial: { {k: round(v, 1) for k, v in sorted(per_trial.items())} }")
    assert per_trial["SELECT"] <= SELECTS_PER_TRIAL, per_trial
    assert per_trial["COMMIT"] <= COMMITS_PER_TRIAL, per_trial


# Measured on 24 Ridge trials (SQLite, one worker, a display that looks): 60.4 SELECTs and 22.4
# commits per trial before the claim, stale checks, snapshots and top-ups were made light; 40.8 and
# 16.6 after. Other per-trial writes made fewer (trial attributes in one transaction) only lower them.
SELECTS_PER_TRIAL = 48
COMMITS_PER_TRIAL = 19
