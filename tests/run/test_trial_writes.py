"""A trial's writes: its attributes and per-step values go to the storage together, one transaction per
trial event, and Optuna reads back exactly what its own one-at-a-time writes would have stored
(SQLite, a journal file, PostgreSQL). Real storages, a real `hpo run` on SQLite with real CatBoost fits."""

from __future__ import annotations

import json
import math
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo import storage as hs
from hpo.schema import (
    TRIAL_BEST_ITERATION,
    TRIAL_ERROR,
    TRIAL_FIT_SECONDS,
    TRIAL_MLFLOW_RUN,
    TRIAL_SEED,
    TRIAL_SLOT,
    TRIAL_VALIDATION_METRICS,
    TRIAL_WORKER,
)
from tests.conftest import trials_of, write_space

# Every kind of value a trial attribute holds, and some JSON turns into another type (a tuple).
FIRST = {"seed": 1234567, "worker": "host-ü:42", "none": None, "flag": True, "tuple": (1, 2.5, "x")}
SECOND = {
    "fit_seconds": 0.1 + 0.2,
    "best_iteration": 0,
    "validation_metrics": {"rmse": 51.25, "r2": -1e-300, "nested": {"list": [1, None, "a"]}},
    "huge": 2**62 + 1,
    "infinite": math.inf,
    "worker": "overwritten",  # a key written before: upserted, not added twice
}
CURVE = {0: 1.0, 1: 0.1 + 0.2, 2: -1e-300, 3: 1e300, 7: math.inf, 8: -math.inf}
# hpo's storages beat for the trials its workers run; these trials are asked for by hand.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used:UserWarning")


def _journal(tmp_path: Path) -> optuna.storages.BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))


def _as_stored(trial: optuna.trial.FrozenTrial) -> tuple[str, dict[str, type], str, dict[int, type]]:
    """A trial's attributes and per-step values as JSON text and types, so that inf and type changes compare."""
    attrs, steps = trial.user_attrs, trial.intermediate_values
    return (
        json.dumps(attrs, sort_keys=True),
        {k: type(v) for k, v in attrs.items()},
        json.dumps(sorted(steps.items())),
        {k: type(v) for k, v in steps.items()},
    )


def _check_written_as_optuna_writes(storage: optuna.storages.BaseStorage, name: str) -> None:
    study = optuna.create_study(study_name=name, storage=storage)
    by_optuna, by_hpo = study.ask(), study.ask()
    for key, value in {**FIRST, **SECOND}.items():
        by_optuna.set_user_attr(key, value)
    for step, value in CURVE.items():
        by_optuna.report(value, step)

    hs.set_user_attrs(by_hpo, FIRST)
    hs.record_fit(by_hpo, CURVE, SECOND)
    hs.record_fit(by_hpo, CURVE, SECOND)  # done again (a retry after a lost reply): nothing is written twice

    assert by_hpo.user_attrs == by_optuna.user_attrs  # what the running trial itself holds
    again = optuna.load_study(study_name=name, storage=storage).trials
    assert _as_stored(again[by_hpo.number]) == _as_stored(again[by_optuna.number])
    assert again[by_hpo.number].user_attrs["tuple"] == [1, 2.5, "x"]
    assert list(again[by_hpo.number].intermediate_values) == sorted(CURVE)

    study.tell(by_hpo, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        hs.set_user_attrs(by_hpo, {"late": 1})
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        hs.record_fit(by_hpo, {99: 1.0}, {})


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_attributes_and_steps_written_together_read_back_as_optuna_writes_them(tmp_path: Path, kind: str) -> None:
    storage = hs.open_storage(f"sqlite:///{tmp_path / 'hpo.db'}") if kind == "sqlite" else _journal(tmp_path)
    _check_written_as_optuna_writes(storage, kind)


def test_attributes_and_steps_written_together_read_back_as_optuna_writes_them_on_postgresql(postgres_url: str) -> None:
    _check_written_as_optuna_writes(hs.open_storage(postgres_url), "postgresql")


@pytest.fixture
def trial_commits() -> Iterator[Callable[[], int]]:
    """Commits to the Optuna storage (``hpo.db``) of a transaction that wrote a trial's attributes or
    per-step values, made from inside the objective (neither the claim, nor tracking, nor a heartbeat)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    tables = ("trial_user_attributes", "trial_intermediate_values")
    objective = os.path.join("hpo", "run", "_objective.py")
    wrote: set[int] = set()
    counted = [0]

    def ours(conn: Any) -> bool:
        return str(conn.engine.url.database or "").endswith("hpo.db")

    def execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip().upper()
        if ours(conn) and head.startswith(("INSERT", "UPDATE")) and any(t in statement for t in tables):
            wrote.add(id(conn))

    def commit(conn: Any) -> None:
        if id(conn) not in wrote:
            return
        wrote.discard(id(conn))
        frame = sys._getframe()
        while frame is not None and not frame.f_code.co_filename.endswith(objective):
            frame = frame.f_back  # type: ignore[assignment]
        counted[0] += frame is not None

    def rollback(conn: Any) -> None:
        wrote.discard(id(conn))

    hooks = [("before_cursor_execute", execute), ("commit", commit), ("rollback", rollback)]
    for name, fn in hooks:
        event.listen(Engine, name, fn)
    try:
        yield lambda: counted[0]
    finally:
        for name, fn in hooks:
            event.remove(Engine, name, fn)


def test_a_trial_writes_its_attributes_and_curve_in_two_commits(
    workspace: Path, mlflow_store: str, trial_commits: Callable[[], int]
) -> None:
    # It was six: seed, worker, the curve, fit_seconds, best_iteration, validation_metrics, each alone.
    # Then two; the seed and worker now go with the claim, in its transaction.
    from hpo.run import run_study

    run_study(write_space(workspace / "search_spaces", n_trials=4))

    assert trial_commits() == 4  # one as its fit ends
    trials = trials_of(workspace, "small")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    for t in trials:
        kinds = {k: type(v) for k, v in t.user_attrs.items()}
        assert kinds == {
            TRIAL_SLOT: int,
            TRIAL_SEED: int,
            TRIAL_WORKER: str,
            TRIAL_MLFLOW_RUN: str,
            TRIAL_FIT_SECONDS: float,
            TRIAL_BEST_ITERATION: int,
            TRIAL_VALIDATION_METRICS: dict,
        }
        assert t.user_attrs[TRIAL_WORKER] == f"{socket.gethostname()}:{os.getpid()}"
        assert set(t.user_attrs[TRIAL_VALIDATION_METRICS]) >= {"pearson_r", "rmse"}
        assert 0 < len(t.intermediate_values) <= 40 and list(t.intermediate_values) == sorted(t.intermediate_values)


# A training function that presses Ctrl-C twice (an abort) while its second trial fits.
CUT_SHORT = """\
import os
import signal

from sklearn.linear_model import Ridge

CALLS = []


def fit(params, train, report):
    CALLS.append(1)
    for step in range(5):
        report(step, 1.0 - step / 10)
    if len(CALLS) == 2:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: finish the running trial ...
        os.kill(os.getpid(), signal.SIGINT)  # ... and again: abort it
    return Ridge(alpha=params["alpha"]).fit(train.X, train.y)
"""


def test_a_trial_aborted_by_ctrl_c_keeps_what_it_had_written(workspace: Path, mlflow_store: str) -> None:
    from hpo.run import run_study

    (workspace / "cut_short_fit.py").write_text(CUT_SHORT)
    space = write_space(
        workspace / "search_spaces",
        model="cut_short_fit:fit",
        metric="r2",
        n_trials=3,
        params={"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        fixed=None,
    )
    try:
        result = run_study(space)
    finally:
        sys.modules.pop("cut_short_fit", None)

    assert result.interrupted
    done, cut, *waiting = trials_of(workspace, "small")
    assert (done.state.name, cut.state.name) == ("COMPLETE", "FAIL")
    assert {TRIAL_SEED, TRIAL_WORKER, TRIAL_FIT_SECONDS, TRIAL_VALIDATION_METRICS} <= set(done.user_attrs)
    assert len(done.intermediate_values) == 5
    # The aborted trial keeps what was written before its fit (its seed and worker), and says why it failed.
    assert {TRIAL_SEED, TRIAL_WORKER, TRIAL_SLOT, TRIAL_ERROR} <= set(cut.user_attrs)
    assert cut.user_attrs[TRIAL_ERROR].startswith("interrupted")
    assert TRIAL_FIT_SECONDS not in cut.user_attrs and cut.intermediate_values == {}
    assert cut.params and "alpha" in cut.params
    # ... and its slot waits, with its seed, to be run again.
    retry = [t for t in waiting if t.user_attrs.get(TRIAL_SLOT) == cut.user_attrs[TRIAL_SLOT]]
    assert [t.state.name for t in retry] == ["WAITING"]
    assert retry[0].user_attrs[TRIAL_SEED] == cut.user_attrs[TRIAL_SEED]
