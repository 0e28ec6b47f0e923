"""Optuna's ``RDBStorage`` with every call retried through an outage (see :mod:`hpo.storage._outage`).

Imported only inside the function that opens a PostgreSQL or MySQL storage (``hpo.storage._open``):
importing Optuna is slow, and ``hpo --help`` must not. Optuna's private ``_rdb`` names
used here are those a write needs to find out whether its lost reply went through.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState

from hpo.schema import TRIAL_CREATED_BY
from hpo.storage._optuna import blank_trial
from hpo.storage._outage import _TRANSIENT_TEXT, Outage

T = TypeVar("T")


class _QuietLostConnection(logging.Filter):
    """Drops Optuna's "Caught an error from sqlalchemy ... Falling back" warning when the error was a lost connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith("Caught an error from sqlalchemy") and any(m in text.lower() for m in _TRANSIENT_TEXT))


class RetryingRDBStorage(RDBStorage):
    """``RDBStorage`` whose calls survive a server restart, each through the storage's :class:`Outage`."""

    outage: Outage

    def __init__(self, url: str, *args: Any, outage_seconds: float | None = None, **kwargs: Any) -> None:
        self.outage = Outage(url, outage_seconds)
        super().__init__(url, *args, **kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state.pop("outage", None)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        self.outage = Outage(state["url"])
        super().__setstate__(state)

    def _retry(self, fn: Callable[[bool], T], stop: threading.Event | None = None) -> T:
        return self.outage.call(fn, stop)

    # -- writes a lost reply could make us repeat --------------------------------------------

    def create_new_study(self, directions: Any, study_name: str | None = None) -> int:
        def attempt(retried: bool) -> int:
            try:
                return int(RDBStorage.create_new_study(self, directions, study_name))
            except DuplicatedStudyError:
                if retried and study_name is not None:  # hpo creates studies under their study lock:
                    return self.get_study_id_from_name(study_name)  # so it was our lost reply
                raise

        return self._retry(attempt)

    def delete_study(self, study_id: int) -> None:
        def attempt(retried: bool) -> None:
            try:
                RDBStorage.delete_study(self, study_id)
            except KeyError:
                if not retried:
                    raise

        self._retry(attempt)

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        # A token in the new trial's system attributes: a retry first looks for the trial its lost
        # reply may have created. Optuna's own loop retries blind, so it is replaced, not wrapped.
        token = uuid.uuid4().hex
        if template_trial is None:  # what Optuna creates without a template
            template = blank_trial(0, 0, datetime.datetime.now())
        else:
            template = copy.deepcopy(template_trial)
        template.system_attrs = {**template.system_attrs, TRIAL_CREATED_BY: token}

        def attempt(retried: bool) -> FrozenTrial:
            if retried:
                made = self._trial_created_by(study_id, token)
                if made is not None:
                    return RDBStorage.get_trial(self, made)
            with _create_scoped_session(self.scoped_session) as session:
                # Locks the study row: trial numbers are counted in this transaction.
                models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
                trial = self._get_prepared_new_trial(study_id, template, session)
                frozen = copy.deepcopy(template)
                frozen.number = trial.number
                frozen.datetime_start = trial.datetime_start
                frozen._trial_id = trial.trial_id
            return frozen

        return self._retry(attempt)

    def _trial_created_by(self, study_id: int, token: str) -> int | None:
        attr = models.TrialSystemAttributeModel
        with _create_scoped_session(self.scoped_session) as session:
            row = (
                session.query(attr.trial_id)
                .join(models.TrialModel, models.TrialModel.trial_id == attr.trial_id)
                .filter(models.TrialModel.study_id == study_id)
                .filter(attr.key == TRIAL_CREATED_BY, attr.value_json == json.dumps(token))
                .first()
            )
        return None if row is None or row[0] is None else int(row[0])

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        def attempt(retried: bool) -> bool:
            try:
                return bool(RDBStorage.set_trial_state_values(self, trial_id, state, values))
            except UpdateFinishedTrialError:
                if retried and state.is_finished():
                    # A worker finishes only the trial it runs: finished as asked means our lost reply did it.
                    now = RDBStorage.get_trial(self, trial_id)
                    if now.state == state and (values is None or list(now.values or []) == list(values)):
                        return True
                raise

        return self._retry(attempt)

    def record_heartbeat_until(self, trial_id: int, stop: threading.Event) -> None:
        """``record_heartbeat``, giving up its retries quietly once ``stop`` is set."""
        self._retry(lambda retried: RDBStorage.record_heartbeat(self, trial_id), stop)


# Idempotent calls: retried as they are (an attribute or a parameter written twice is written once).
def _retried(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._retry(lambda _again: method(self, *args, **kwargs))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call


# Optuna reads trials again another way after any OperationalError (meant for SQLite's limit on
# query variables) and warns that it did; a lost connection fails that too, and is retried here.
logging.getLogger(_create_scoped_session.__module__).addFilter(_QuietLostConnection())
for _name in (
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "_set_trial_param",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "_get_trials",
    "_get_best_trial_id",
    "record_heartbeat",
    "_get_stale_trial_ids",
):
    setattr(RetryingRDBStorage, _name, _retried(_name))
