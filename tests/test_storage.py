"""hpo.storage's accessors of Optuna's private API, pinned to Optuna's public API on a real SQLite storage.

If an Optuna upgrade moves what these read, this file fails first, and ``hpo/storage/_optuna.py``
is the one place to fix.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

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


def test_a_link_reaches_a_finished_trial_as_optuna_reads_it_and_elsewhere_is_dropped(study: optuna.Study, tmp_path: Path) -> None:
    # The MLflow writer thread links a trial to its run after the trial may have finished.
    done = study.get_trials()[0]
    hs.link_trial(hs.storage_of(study), hs.trial_id(done), {"mlflow_run_id": "abc", "n": 3})
    again = optuna.load_study(study_name="pinned", storage=f"sqlite:///{tmp_path / 'hpo.db'}").trials[0]
    assert (again.state, again.value, again.user_attrs) == (done.state, done.value, {"mlflow_run_id": "abc", "n": 3})
    journal = optuna.create_study(
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log")))
    )
    journal.optimize(lambda t: 1.0, n_trials=1)
    running = journal.ask()
    for t in (journal.trials[0], running):
        hs.link_trial(hs.storage_of(journal), hs.trial_id(t), {"mlflow_run_id": "abc"})
    assert [t.user_attrs for t in journal.trials] == [
        {},
        {"mlflow_run_id": "abc"},
    ]  # Optuna's rule there: none on a finished trial


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


# --- a damaged or read-only SQLite file: one line, nothing written -------------------------------


def _real_store(workspace: Path) -> Path:
    """A real study of 30 trials in the workspace's default storage (about 200 kB)."""
    db = workspace / "studies" / "hpo.db"
    storage = hs.open_storage(f"sqlite:///{db}")
    s = optuna.create_study(study_name="plain", storage=storage)
    s.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 1, 9), n_trials=30)
    # Closed now: a connection closed later would write its WAL back over the damage a test does.
    hs.rdb_backend(storage).engine.dispose()
    assert sorted(p.name for p in db.parent.iterdir()) == ["hpo.db"]
    return db


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("damage", ["random bytes", "truncated to half"])
def test_a_corrupt_or_truncated_storage_is_one_line_on_every_verb(workspace: Path, damage: str) -> None:
    import os

    from tests.conftest import invoke, write_space

    db = _real_store(workspace)
    if damage == "random bytes":
        db.write_bytes(os.urandom(8192))
        why = "file is not a database"
    else:
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
        why = "database disk image is malformed"  # SQLite's word for pages its header counts but the file lacks
    before = _files(db.parent)
    space = write_space(workspace / "search_spaces")
    message = (
        f"error: studies/hpo.db is not a readable SQLite database ({why}); "
        "restore it from a backup, or move it aside to start a new one"
    )
    for verb in (["studies"], ["show", "plain"], ["validate", str(space)], ["run", str(space)], ["analyze"], ["sync"]):
        code, out, err = invoke(*verb)
        assert code == 2 and err.startswith(message) and err.count("\n") == 1, (verb, out, err)
    assert _files(db.parent) == before  # nothing written beside it either (no -wal, no -shm)
    assert not (workspace / "mlflow.db").exists() and not (workspace / "mlruns").exists()


def _unprivileged() -> list[str]:
    """A command prefix under which chmod binds this process's children.

    Root ignores file modes (CAP_DAC_OVERRIDE), as in a CI container; `setpriv` drops that
    capability (and its relatives) for the child, which stays root and so can still run the
    Python that root installed. Skips when neither is possible here.
    """
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search,-fowner,-linux_immutable"
    prefix = [shutil.which("setpriv") or "setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]
    try:
        probe = subprocess.run([*prefix, "cat", "/proc/self/status"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        pytest.skip(f"running as root, which file modes do not bind, and setpriv cannot run here ({e})")
    effective = next((line.split()[1] for line in probe.stdout.splitlines() if line.startswith("CapEff:")), None)
    if (
        probe.returncode != 0 or effective is None or int(effective, 16) & 0b1110
    ):  # bits 1-3: dac_override, dac_read_search, fowner
        pytest.skip(f"running as root, which file modes do not bind, and setpriv cannot drop CAP_DAC_OVERRIDE: {probe.stderr!r}")
    return prefix


def _hpo(prefix: list[str], *args: str, cwd: Path) -> tuple[int, str, str]:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd / 'mlflow.db'}"
    r = subprocess.run(
        [*prefix, sys.executable, "-m", "hpo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return r.returncode, r.stdout, r.stderr


def test_a_read_only_studies_folder_is_read_but_never_written(workspace: Path) -> None:
    from tests.conftest import write_space

    prefix = _unprivileged()
    db = _real_store(workspace)
    space = write_space(workspace / "search_spaces")
    before = _files(db.parent)
    db.chmod(0o444)
    db.parent.chmod(0o555)
    try:
        code, out, err = _hpo(prefix, "studies", "--json", cwd=workspace)
        assert code == 0 and [s["name"] for s in json.loads(out)] == ["plain"], err
        code, out, err = _hpo(prefix, "show", "plain", cwd=workspace)
        assert code == 0 and "study        plain (not created by hpo)" in out, err
        message = "error: cannot write to studies/hpo.db: permission denied"
        for verb in (["run", str(space)], ["validate", str(space)], ["analyze"]):
            code, out, err = _hpo(prefix, *verb, cwd=workspace)
            assert code == 2 and err.startswith(message) and err.count("\n") == 1, (verb, out, err)
        assert err.rstrip().endswith("; --dry-run writes nothing")
    finally:
        db.parent.chmod(0o755)
        db.chmod(0o644)
    assert _files(db.parent) == before
    assert not (workspace / "mlflow.db").exists()


def test_an_unwritable_workspace_is_one_line_and_nothing_is_written(workspace: Path) -> None:
    from tests.conftest import write_space

    prefix = _unprivileged()
    space = write_space(workspace / "search_spaces")
    workspace.chmod(0o555)
    try:
        for verb in (["run", str(space)], ["validate", str(space)]):
            code, out, err = _hpo(prefix, *verb, cwd=workspace)
            assert code == 2 and err == "error: cannot create studies/: permission denied\n", (verb, out, err)
        code, out, err = _hpo(prefix, "studies", cwd=workspace)
        assert code == 2 and "no such database (run `hpo run` first, or pass --storage)" in err, err
    finally:
        workspace.chmod(0o755)
    assert sorted(p.name for p in workspace.iterdir()) == ["search_spaces"]


def test_a_fork_waits_until_no_connection_to_the_sqlite_files_is_open(tmp_path: Path) -> None:
    # SQLite's per-process lock records are inherited by a forked child without the locks
    # themselves, so a child's connection can skip a lock: hpo forks workers only when the
    # process holds no connection to the files they open, and spawns them otherwise.
    import sqlite3

    from hpo.storage import open_storage, ready_to_fork

    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    storage = open_storage(url)
    storage.get_all_studies()  # a pooled connection is open now
    assert ready_to_fork([tmp_path / "hpo.db"])  # ... and closed by ready_to_fork
    held = sqlite3.connect(tmp_path / "hpo.db")
    held.execute("select count(*) from studies").fetchone()
    try:
        assert not ready_to_fork([tmp_path / "hpo.db"])  # one it cannot close: spawn instead
    finally:
        held.close()
    assert ready_to_fork([tmp_path / "hpo.db"])
    storage.get_all_studies()  # the storage opens a new connection when it needs one


def _claim_all(url: str, ids: list[int], start: float, queue: Any) -> None:
    from hpo.storage import change_state, open_storage

    storage = open_storage(url, create=False)
    while time.time() < start:
        time.sleep(0.001)
    queue.put([tid for tid in ids if change_state(storage, tid, "WAITING", "RUNNING")])


def claims(url: str, ids: list[int], workers: int) -> list[int]:
    """Every trial id each of ``workers`` processes believed it claimed, all starting together."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = time.time() + 8  # after every process has imported and connected
    procs = [ctx.Process(target=_claim_all, args=(url, ids, start, queue)) for _ in range(workers)]
    for p in procs:
        p.start()
    won = [tid for _ in procs for tid in queue.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
    return won


def test_of_workers_racing_for_waiting_trials_on_sqlite_each_trial_goes_to_one(tmp_path: Path) -> None:
    # Optuna's set_trial_state_values reads, then writes; SQLite's driver begins the transaction
    # only at the write, so two workers could both take one WAITING trial and run it twice (with
    # set_trial_state_values here, each of the 4 processes took every one of the 60 trials).
    from hpo.storage import open_storage, trial_id

    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    study = optuna.create_study(storage=open_storage(url), study_name="race")
    for i in range(60):
        study.enqueue_trial({"x": i}, skip_if_exists=False)
    ids = [trial_id(t) for t in study.get_trials(deepcopy=False)]
    won = claims(url, ids, workers=4)
    assert sorted(won) == sorted(ids)  # each trial claimed exactly once
    assert {t.state.name for t in study.get_trials(deepcopy=False)} == {"RUNNING"}
    assert all(t.datetime_start is not None for t in study.get_trials(deepcopy=False))


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e3", "100000"])
def test_a_bad_wait_setting_is_one_line_before_anything_is_written(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from tests.conftest import invoke, write_space

    space = write_space(workspace / "search_spaces")
    monkeypatch.setenv("HPO_GRACE_PERIOD", value)
    code, _, err = invoke("run", str(space))
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: environment variable HPO_GRACE_PERIOD must be a whole number of seconds from 1 to 86400, but got {value!r}"
    ]
    assert not (workspace / "studies").exists()  # no storage, no lock file
