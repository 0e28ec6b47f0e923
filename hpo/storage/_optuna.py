"""Optuna's private API and hpo's SQL against Optuna's tables (with ``_optuna_trials``, all of it).

Optuna keeps a study's storage and ids, a trial's id, heartbeats and its table models private; hpo
needs them to claim budget slots atomically, fail trials whose worker died, and read large studies
fast. An Optuna upgrade that moves them breaks ``storage/_optuna*`` only, and
``tests/test_storage.py`` pins each accessor here to Optuna's public API, so it breaks loudly.
Each fast path falls back to Optuna's public (slower) accessors when the storage is not an RDB one.
This module holds the accessors, writes and claims; ``_beats`` the heartbeats, ``_optuna_trials`` reads trials in bulk.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from hpo.errors import HpoError
from hpo.storage._outage import retry_on

if TYPE_CHECKING:
    import optuna


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study lives in."""
    return study._storage


def study_id(study: Any) -> int:
    """The storage id of a ``Study`` or ``FrozenStudy`` (``storage.get_study_id_from_name`` without the query)."""
    return int(study._study_id)


def trial_id(trial: optuna.trial.FrozenTrial | optuna.Trial) -> int:
    """A trial's id in its storage (``get_trial_id_from_study_id_trial_number`` without the query)."""
    return trial._trial_id


def rdb_backend(storage: optuna.storages.BaseStorage) -> Any:
    """The ``RDBStorage`` behind ``storage`` (Optuna wraps it in a cache), or None for another kind."""
    from optuna.storages import RDBStorage

    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, RDBStorage) else None


def set_intermediate_values(trial: optuna.Trial, values: Mapping[int, float]) -> None:
    """A trial's per-step values in one transaction: ``trial.report`` commits each one (about
    10 ms apiece on SQLite, 0.5 s for a fit's 50), which only pays when a pruner reads them live."""
    record_fit(trial, values, {})


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Several user attributes of a trial in one transaction, as ``trial.set_user_attr`` would write each."""
    record_fit(trial, {}, attrs)


def record_fit(trial: optuna.Trial, curve: Mapping[int, float], attrs: Mapping[str, Any]) -> None:
    """A fit's per-step values and the trial's user attributes, in one transaction on an RDB storage.

    Each ``set_user_attr`` or ``report`` is a commit of its own (a few ms on SQLite, a round trip
    on a server): a trial's end wrote six. The attributes are upserted and JSON-encoded as Optuna's
    ``set_trial_user_attr`` does, so Optuna reads them back the same. Other storages (journal, in
    memory) get one call per value. A step already stored is kept, so a retry after a lost reply
    (:mod:`hpo.storage._outage`) writes nothing twice; the attributes' upsert is idempotent.

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial is finished (as ``set_user_attr`` would).
    """
    if not curve and not attrs:
        return
    cached = trial._cached_frozen_trial  # what ``trial.user_attrs`` and ``trial.report`` go by
    backend = rdb_backend(storage_of(trial.study))
    if backend is None:
        for step, value in curve.items():
            if step not in cached.intermediate_values:
                trial.report(value, step)
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    tid = trial_id(trial)
    encoded = {key: json.dumps(attr) for key, attr in attrs.items()}  # a value JSON cannot hold fails here, before any write

    def write(retried: bool) -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            row = models.TrialModel.find_or_raise_by_id(tid, session)
            backend.check_trial_is_updatable(tid, row.state)
            if encoded:
                _upsert_user_attrs(backend, session, tid, encoded)
            known = {v.step for v in row.intermediate_values} if curve else set()
            for step, value in sorted(curve.items()):
                if step in known:
                    continue
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
                session.add(
                    models.TrialIntermediateValueModel(
                        trial_id=tid, step=step, intermediate_value=stored, intermediate_value_type=kind
                    )
                )

    retry_on(backend, write)
    for step, value in curve.items():
        cached.intermediate_values.setdefault(step, float(value))
    cached.user_attrs.update(attrs)  # as ``set_user_attr`` keeps them: the values given, not their JSON


def link_trial(storage: optuna.storages.BaseStorage, tid: int, attrs: Mapping[str, Any]) -> None:
    """User attributes of trial ``tid``, finished or not: links made after the fact, such as the id of its
    MLflow run, which a writer thread creates while (or after) the trial runs.

    Only hpo's own links are written this way; Optuna's rule that a finished trial does not change
    holds for everything else. A storage that is not an RDB one keeps its rule: a link to a finished
    trial is dropped there (``hpo sync`` finds a trial's run by its tags, not by this link).
    """
    from optuna.exceptions import UpdateFinishedTrialError

    backend = rdb_backend(storage)
    if backend is None:
        try:
            for key, value in attrs.items():
                storage.set_trial_user_attr(tid, key, value)
        except UpdateFinishedTrialError:
            pass
        return
    from optuna.storages._rdb.storage import _create_scoped_session

    encoded = {key: json.dumps(value) for key, value in attrs.items()}

    def write(retried: bool) -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            _upsert_user_attrs(backend, session, tid, encoded)

    retry_on(backend, write)


def _upsert_user_attrs(backend: Any, session: Any, tid: int, encoded: Mapping[str, str]) -> None:
    """One INSERT ... ON CONFLICT UPDATE for all of ``encoded`` (key -> JSON), Optuna's statement for one key, made multi-row."""
    from optuna.storages._rdb import models

    model = models.TrialUserAttributeModel
    rows = [{"trial_id": tid, "key": key, "value_json": value} for key, value in encoded.items()]
    insert = _conflict_insert(backend)
    if insert is not None:
        stmt = insert(model).values(rows)
        session.execute(
            stmt.on_conflict_do_update(index_elements=[model.trial_id, model.key], set_={"value_json": stmt.excluded.value_json})
        )
    elif backend.engine.name == "mysql":
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        mstmt = mysql_insert(model).values(rows)
        session.execute(mstmt.on_duplicate_key_update(value_json=mstmt.inserted.value_json))
    else:  # Optuna's own way for other databases, one key at a time (still in this transaction)
        for key, value in encoded.items():
            backend._set_trial_attr_without_commit(session, model, tid, key, json.loads(value))


def _conflict_insert(backend: Any) -> Any:
    """SQLAlchemy's ``insert`` of the backend's dialect where it has ``INSERT ... ON CONFLICT`` (PostgreSQL,
    SQLite from 3.24), else None."""
    import sqlite3

    from sqlalchemy.dialects import postgresql, sqlite

    name = backend.engine.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0):
        return sqlite.insert
    return None


def blank_trial(number: int, tid: int, started: datetime.datetime | None = None) -> optuna.trial.FrozenTrial:
    """A RUNNING trial with nothing in it yet: what Optuna creates without a template, and a claimed trial
    as a cache holds it before it is read."""
    from optuna.trial import FrozenTrial, TrialState

    return FrozenTrial(
        number=number,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=started,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=tid,
    )


def budget_slots(study: optuna.Study, key: str) -> list[tuple[int, str]]:
    """``(slot, state name)`` of every trial with the user attribute ``key`` (its budget slot).

    One query for an RDB storage: the budget is topped up a few slots at a time, and building
    every trial to read one attribute would make that quadratic in the study's size.
    """
    rows = rdb_read(study, lambda backend, sid: _budget_slots_rdb(backend, sid, key))
    if rows is not None:
        return rows
    return [(int(t.user_attrs[key]), t.state.name) for t in study.get_trials(deepcopy=False) if t.user_attrs.get(key) is not None]


T = TypeVar("T")


def rdb_read(study: optuna.Study, read: Callable[[Any, int], T]) -> T | None:
    """``read(backend, study id)`` on the study's RDB storage, retried through an outage like any call.

    None on another storage, or when the query meets a schema it does not expect: the caller then
    reads the trials through Optuna. An unreachable storage raises, as reading the trials would.
    """
    backend = rdb_backend(storage_of(study))
    if backend is None:
        return None
    try:
        return retry_on(backend, lambda retried: read(backend, study_id(study)))
    except HpoError:
        raise
    except Exception:
        return None


def _budget_slots_rdb(backend: Any, sid: int, key: str) -> list[tuple[int, str]]:
    import json

    from optuna.storages._rdb.models import TrialModel, TrialUserAttributeModel
    from sqlalchemy.orm import Session

    with Session(backend.engine) as session:
        rows = (
            session.query(TrialUserAttributeModel.value_json, TrialModel.state)
            .join(TrialModel, TrialModel.trial_id == TrialUserAttributeModel.trial_id)
            .filter(TrialModel.study_id == sid, TrialUserAttributeModel.key == key)
            .all()
        )
    slots = [(json.loads(value), state.name) for value, state in rows]
    return [(int(slot), state) for slot, state in slots if slot is not None]


def change_state(
    storage: optuna.storages.BaseStorage, tid: int, before: str, after: str, then: Callable[[Any], None] | None = None
) -> bool:
    """Move trial ``tid`` from state ``before`` to ``after`` in one conditional UPDATE; True if this
    call moved it, so that of processes racing for one trial exactly one wins.

    Optuna's ``set_trial_state_values`` reads the state, then writes it: atomic where ``SELECT ...
    FOR UPDATE`` locks the row (PostgreSQL, MySQL), but SQLite's driver starts the transaction
    only at the write, so two workers both read WAITING and both claimed the trial (seen with two
    workers started together: one trial run twice), or both failed one stale trial and requeued
    it twice. ``UPDATE ... WHERE state = before`` is atomic in every database.

    Retried through a storage outage. A retry whose first UPDATE was committed but whose reply was
    lost finds the row already moved: it was this call's if it carries this call's exact timestamp.
    ``then(connection)`` writes more in the same transaction, once the row moved (RDB storages only).
    """
    from optuna.trial import TrialState

    backend = rdb_backend(storage)
    if backend is None:
        return bool(storage.set_trial_state_values(tid, state=TrialState[after]))
    from optuna.storages._rdb import models
    from sqlalchemy import select, update

    table = models.TrialModel.__table__
    # Optuna 5 stores trial times as naive UTC; older versions as naive local time.
    utc = hasattr(models.TrialModel, "_datetime_start_utc")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) if utc else datetime.datetime.now()
    values: dict[str, Any] = {"state": TrialState[after]}
    if after == "RUNNING":
        values["datetime_start"] = now
    elif TrialState[after].is_finished():
        values["datetime_complete"] = now
    stamp = next((table.c[k] for k in ("datetime_start", "datetime_complete") if k in values), None)

    def move(retried: bool) -> bool:
        with backend.engine.begin() as conn:
            moved = conn.execute(update(table).where(table.c.trial_id == tid, table.c.state == before_state).values(**values))
            if moved.rowcount == 1:
                if then is not None:
                    then(conn)
                return True
            if not retried or stamp is None:
                return False
            row = conn.execute(select(table.c.state, stamp).where(table.c.trial_id == tid)).first()
            return row is not None and row[0] == TrialState[after] and row[1] == now

    before_state = TrialState[before]
    return retry_on(backend, move)


def trial_by_number(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """One trial, read alone (``study.trials[number]`` reads them all). Raises KeyError if absent."""
    storage = storage_of(study)
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id(study), number))


def claim_waiting(storage: optuna.storages.BaseStorage, tid: int, attrs: Mapping[str, Any]) -> tuple[bool, bool]:
    """Claim WAITING trial ``tid`` (see :func:`change_state`): whether this call won it, and whether its
    first heartbeat and ``attrs`` (each where the trial has none: a retry keeps its seed) went into
    the claim's transaction. They do on SQLite and PostgreSQL, three commits made one; elsewhere the
    caller writes them as before.
    """
    backend = rdb_backend(storage)
    insert = None if backend is None else _conflict_insert(backend)
    if insert is None:
        return change_state(storage, tid, "WAITING", "RUNNING"), False  # no INSERT ... ON CONFLICT there
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.storages._rdb import models
    from sqlalchemy import func

    beats = is_heartbeat_enabled(storage)
    user = models.TrialUserAttributeModel
    rows = [{"trial_id": tid, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]

    def started(conn: Any) -> None:
        if rows:
            conn.execute(insert(user).values(rows).on_conflict_do_nothing(index_elements=[user.trial_id, user.key]))
        if beats:
            beat = models.TrialHeartbeatModel
            stmt = insert(beat).values(trial_id=tid)
            conn.execute(stmt.on_conflict_do_update(index_elements=[beat.trial_id], set_={"heartbeat": func.current_timestamp()}))

    return change_state(storage, tid, "WAITING", "RUNNING", then=started), True


def in_distribution(dist: Any, value: Any) -> bool:
    """Whether ``value`` (external form) lies in the Optuna distribution ``dist``."""
    try:
        internal = dist.to_internal_repr(value)
    except ValueError:  # a categorical value that is not a choice
        return False
    return bool(dist._contains(internal))
