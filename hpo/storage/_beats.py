"""Heartbeats: a running trial's proof of life, and the trials whose worker is gone (Optuna's private API).

Part of ``storage/_optuna*``'s contract: every use of Optuna's heartbeat internals is here, and
``tests/test_storage.py`` pins it.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.storage._optuna import rdb_backend
from hpo.storage._outage import recovered_within, retry_on
from hpo.storage._timing import GRACE_PERIOD

if TYPE_CHECKING:
    import optuna


def heartbeat_enabled(storage: optuna.storages.BaseStorage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return bool(is_heartbeat_enabled(storage))


def heartbeat(trial: int, storage: optuna.storages.BaseStorage, *, first: bool = True) -> Any:
    """Record one heartbeat for ``trial`` now (unless not ``first``: its claim recorded it); the returned
    context manager keeps beating while open."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    if not heartbeat_enabled(storage):
        return get_heartbeat_thread(trial, storage)
    if first:
        storage.record_heartbeat(trial)  # type: ignore[attr-defined]
    backend = rdb_backend(storage)
    if backend is None or not hasattr(backend, "record_heartbeat_until"):
        return get_heartbeat_thread(trial, storage)
    return _Beating(trial, backend)


class _Beating:
    """Optuna's heartbeat thread, but one a storage outage does not kill.

    Optuna's thread dies on the first failed beat (with a traceback), and the trial then looks dead
    to every other worker. This one keeps trying through an outage, quietly past its window too:
    the main thread reports the outage at its next storage call, and stops this one at once.
    """

    def __init__(self, trial: int, backend: Any) -> None:
        import threading

        self._trial = trial
        self._backend = backend
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"hpo-heartbeat-{trial}", daemon=True)

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        from hpo.storage._outage import StorageUnreachable, transient_cause

        interval = self._backend.get_heartbeat_interval()
        while not self._stop.wait(interval):
            try:
                self._backend.record_heartbeat_until(self._trial, self._stop)
            except StorageUnreachable:
                continue
            except Exception as e:
                if transient_cause(e) is None:
                    raise


def stale_trial_ids(storage: Any, sid: int) -> list[int]:
    """RUNNING trials whose worker is gone: Optuna's stale trials, plus those that never beat.

    Optuna only looks at trials with a heartbeat row. A worker killed between claiming a trial
    and its first heartbeat leaves one without, which would otherwise stay RUNNING forever.
    """
    backend = rdb_backend(storage)
    grace = (backend.grace_period if backend is not None else None) or GRACE_PERIOD
    if backend is not None and recovered_within(backend.url, grace):
        # Just after a storage outage every heartbeat is old, the live workers' too: wait until
        # they have beaten again (a grace period), or their trials would be failed under them.
        return []
    ids = list(storage._get_stale_trial_ids(sid))
    if backend is None:
        return ids
    try:
        from optuna.storages._rdb import models
        from optuna.trial import TrialState
        from sqlalchemy.orm import Session

        # Optuna 5 stores the start as naive UTC in `_datetime_start_utc` (`datetime_start` became a
        # Python property); older versions kept naive local time in the `datetime_start` column.
        # Any: SQLAlchemy's stubs type the column differently from one release to the next.
        started: Any = getattr(models.TrialModel, "_datetime_start_utc", None)
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        if started is None:
            started, now = models.TrialModel.datetime_start, datetime.datetime.now()
        cutoff = now - datetime.timedelta(seconds=grace)

        def read(retried: bool) -> list[Any]:
            with Session(backend.engine) as session:
                beating = session.query(models.TrialHeartbeatModel.trial_id)
                return (
                    session.query(models.TrialModel.trial_id)
                    .filter(models.TrialModel.study_id == sid)
                    .filter(models.TrialModel.state == TrialState.RUNNING)
                    .filter(started < cutoff)
                    .filter(models.TrialModel.trial_id.not_in(beating))
                    .all()
                )

        ids += [r[0] for r in retry_on(backend, read) if r[0] not in ids]
    except HpoError:
        raise  # the storage is unreachable
    except Exception:
        pass  # an unexpected schema: Optuna's own rule still applies
    return ids
