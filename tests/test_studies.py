"""Reading studies fast: the RDB shortcuts must agree with Optuna's own accessors."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from hpo.studies import complete_trials, trial_counts

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(t: optuna.Trial) -> float:
    x = t.suggest_float("x", 1e-3, 1.0, log=True)
    n = t.suggest_int("n", 1, 9, step=2)
    c = t.suggest_categorical("c", ["a", None, 3])
    t.report(x, 0)
    if t.number % 5 == 1:
        raise optuna.TrialPruned()
    if t.number % 5 == 2:
        raise RuntimeError("boom")
    return math.inf if t.number == 3 else x * n + (c == "a")


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_complete_trials_and_counts_match_optuna(tmp_path: Path, kind: str) -> None:
    storage = f"sqlite:///{tmp_path / 'o.db'}" if kind == "sqlite" else None
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=20, catch=(RuntimeError,))
    study.enqueue_trial({"x": 0.5})  # one WAITING trial

    expected = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    got = complete_trials(study)
    assert [t.number for t in got] == [t.number for t in expected]
    for a, b in zip(got, expected, strict=True):
        assert (a.value, a.params, a.distributions) == (b.value, b.params, b.distributions)
    assert any(t.value == math.inf for t in got)

    states: dict[str, int] = {}
    for t in study.get_trials():
        states[t.state.name] = states.get(t.state.name, 0) + 1
    assert trial_counts(study) == states == {"COMPLETE": 12, "PRUNED": 4, "FAIL": 4, "WAITING": 1}
