"""hpo.storage's accessors of Optuna's private API, pinned to Optuna's public API on a real SQLite storage.

If an Optuna upgrade moves what these read, this file fails first, and ``hpo/storage/_optuna.py``
is the one place to fix.
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

from hpo import storage as hs


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    s = optuna.create_study(study_name="pinned", storage=hs.open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    s.optimize(
        lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 1, 3) + (t.suggest_categorical("c", ["a", "b"]) == "a"),
        n_trials=6,
    )

    def prune(t: optuna.Trial) -> float:
        t.suggest_float("x", 0, 1)
        raise optuna.TrialPruned

    s.optimize(prune, n_trials=2)
    return s


def test_ids_and_lookups_agree_with_the_public_api(study: optuna.Study) -> None:
    storage = hs.storage_of(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert hs.study_id(study) == storage.get_study_id_from_name("pinned")
    frozen_study = next(s for s in storage.get_all_studies() if s.study_name == "pinned")
    assert hs.study_id(frozen_study) == hs.study_id(study)
    for t in study.get_trials():
        assert hs.trial_id(t) == storage.get_trial_id_from_study_id_trial_number(hs.study_id(study), t.number)
        again = hs.trial_by_number(study, t.number)
        assert (again.number, again.state, again.params, again.value) == (t.number, t.state, t.params, t.value)
    with pytest.raises(KeyError):
        hs.trial_by_number(study, 99)


def test_the_fast_readers_agree_with_get_trials(study: optuna.Study) -> None:
    trials = study.get_trials()
    states = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    assert hs.trial_counts(study) == {k: v for k, v in states.items() if v}
    fast = hs.complete_trials(study)
    slow = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert [(t.number, t.value, t.params, t.distributions) for t in fast] == [
        (t.number, t.value, t.params, t.distributions) for t in slow
    ]


def test_distribution_membership_matches_optuna(study: optuna.Study) -> None:
    dists = study.trials[0].distributions
    assert hs.in_distribution(dists["x"], 0.5) and not hs.in_distribution(dists["x"], 1.5)
    assert hs.in_distribution(dists["n"], 3) and not hs.in_distribution(dists["n"], 4)
    assert hs.in_distribution(dists["c"], "b") and not hs.in_distribution(dists["c"], "z")


def test_stale_trials_are_found_whether_or_not_they_ever_sent_a_heartbeat(study: optuna.Study) -> None:
    storage = hs.storage_of(study)
    assert hs.heartbeat_enabled(storage)
    backend = hs.rdb_backend(storage)
    assert isinstance(backend, optuna.storages.RDBStorage) and hs.rdb_backend(optuna.storages.InMemoryStorage()) is None
    backend.grace_period = 3  # SQLite keeps heartbeat times to the second: leave room around it
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna's note that heartbeats come with optimize()
        beat, silent = study.ask(), study.ask()  # both RUNNING; only the first ever beats
    with hs.heartbeat(hs.trial_id(beat), storage):
        pass
    assert hs.stale_trial_ids(storage, hs.study_id(study)) == []  # both younger than the grace period
    time.sleep(4.5)
    # Optuna's own rule finds the one whose heartbeat stopped; hpo adds the one that never beat.
    assert sorted(hs.stale_trial_ids(storage, hs.study_id(study))) == sorted([hs.trial_id(beat), hs.trial_id(silent)])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://bar", "error: storage foo://bar: no database kind 'foo' (sqlite, postgresql, mysql)"),
        ("foo", "error: storage 'foo': not a storage URL"),
        (
            "mysql://u@127.0.0.1/x",
            "error: storage mysql://u@127.0.0.1/x: its database driver is not installed (MySQLdb is missing",
        ),
        (
            "postgresql://u:secret@127.0.0.1:1/x",
            "error: storage postgresql://u:***@127.0.0.1:1/x: cannot be opened",
        ),
    ],
)
def test_a_storage_url_that_cannot_work_is_one_line_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    from tests.conftest import invoke

    monkeypatch.chdir(tmp_path)
    for args, env in ((["studies", "--storage", url], None), (["studies"], url)):
        if env:
            monkeypatch.setenv("HPO_STORAGE", env)
        code, out, err = invoke(*args)
        assert code == 2 and err.startswith(message) and err.count("\n") == 1 and "secret" not in err, err


def test_a_folder_given_as_the_sqlite_file_is_one_line(tmp_path: Path) -> None:
    from tests.conftest import invoke

    code, out, err = invoke("studies", "--storage", f"sqlite:///{tmp_path}")
    assert (
        code == 2
        and err
        == f"error: storage sqlite:///{tmp_path}: {tmp_path} is a folder, not an SQLite file (e.g. sqlite:///{tmp_path}/hpo.db)\n"
    )
