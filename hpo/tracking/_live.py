"""A run's live projection: the study's MLflow runs kept up to date while its trials run.

A writer thread does all of it, so that MLflow never holds up a trial: it creates a trial's run
while the trial fits and links the run's id to the trial, and logs and ends the run after it.
Both were about 40 ms of each trial's loop. ``flush`` waits for it: a run's end, each worker's
end, a Ctrl-C or SIGTERM (which end the loop normally), and a fork (the child must not inherit a
write half done). Items are handled in order, so a trial's run exists before its end is logged.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from hpo.schema import TRIAL_MLFLOW_RUN
from hpo.storage import link_trial, storage_of, trial_id
from hpo.tracking._client import client, tracking_uri
from hpo.tracking._data_space import describe_data_experiment
from hpo.tracking._projection import StudyProjection
from hpo.tracking._store import unavailable

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient

    from hpo.workspace import Workspace

# Runs to create or end before ``start`` and ``finish`` wait (two per trial): MLflow slower than the
# trials holds the loop back there, rather than a SIGKILL losing a long queue (``hpo sync`` would log
# it, but later).
PENDING_MAX = 64


class _Start(NamedTuple):
    """A trial's run to create, and where to link its id."""

    number: int
    started: Any  # datetime of the trial's start
    storage: optuna.storages.BaseStorage
    trial_id: int


class _Finish(NamedTuple):
    """A finished trial to log into its run (``run_id``: known from its link, else this writer's)."""

    run_id: str | None
    trial: optuna.trial.FrozenTrial


class LiveProjection:
    """Logs trials as they run; on the first MLflow failure it warns once and stops trying.

    Trials are never failed because of MLflow: what was not logged is left for ``hpo sync``. A
    failure in the writer thread is warned about by the caller's thread, at its next call.
    """

    def __init__(self, open_projection: Any, warn: Any) -> None:
        self._warn = warn
        self._projection: StudyProjection | None = None
        self._pending: queue.Queue[_Start | _Finish | None] = queue.Queue(PENDING_MAX)
        self._runs: dict[int, str] = {}  # trial number -> the run the writer created, until the trial's end is logged
        self._writer: threading.Thread | None = None
        self._failed: Exception | None = None
        try:
            self._projection = open_projection()
        except Exception as e:
            self._disable(e)
        _LIVE.add(self)

    @property
    def active(self) -> bool:
        return self._projection is not None

    def start(self, trial: optuna.Trial) -> None:
        """Hand a started trial to the writer thread, which creates its run and links the run's id to it."""
        self._check()
        if self._projection is None:
            return
        self._put(_Start(trial.number, trial.datetime_start, storage_of(trial.study), trial_id(trial)))

    def finish(self, trial: optuna.trial.FrozenTrial) -> None:
        """Hand a finished trial to the writer thread, which logs it into its run and ends the run.

        The run is the one its link names (a trial another worker started), else the one this
        writer created for it; a trial with neither is left to ``hpo sync``.
        """
        self._check()
        if self._projection is None:
            return
        self._put(_Finish(trial.user_attrs.get(TRIAL_MLFLOW_RUN), trial))

    def _put(self, item: _Start | _Finish) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._write, name="hpo-mlflow-writer", daemon=True)
            self._writer.start()
        self._pending.put(item)

    def flush(self) -> None:
        """Wait until every trial handed to ``finish`` is logged (warning once if MLflow failed).

        The writer thread ends too (the next ``finish`` starts another): a process that forks
        with a thread running may deadlock in the child, and Python warns of it.
        """
        self._drain()
        self._check()

    def close(self, study: optuna.Study) -> None:
        """Log what is pending, then close the study's parent run."""
        self.flush()
        if self._projection is None:
            return
        try:
            self._projection.finish_study(study)
        except Exception as e:
            self._disable(e)

    def _drain(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None and writer.is_alive():
            self._pending.put(None)  # after every trial handed over: the writer ends once they are logged
            writer.join()

    def _write(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            projection = self._projection
            if projection is None or self._failed is not None:
                continue  # MLflow failed: `hpo sync` logs the rest
            try:
                if isinstance(item, _Start):
                    run_id = projection.start_trial(item.number, item.started)
                    self._runs[item.number] = run_id
                    # On the trial at once, so that whoever fails it as stale (its worker killed) ends this run too.
                    _link(item.storage, item.trial_id, run_id)
                    continue
                run = item.run_id or self._runs.get(item.trial.number)
                self._runs.pop(item.trial.number, None)
                if run is not None:
                    projection.finish_trial(run, item.trial)
            except Exception as e:
                self._failed = e  # the caller's thread warns: a warning printed from here could cut into its lines

    def _check(self) -> None:
        if self._failed is not None and self._projection is not None:
            self._disable(self._failed)

    def _disable(self, e: Exception) -> None:
        self._projection = None
        self._warn(f"warning: {unavailable(tracking_uri(), e)}; trials go on in Optuna and `hpo sync` will log them later")


def _link(storage: optuna.storages.BaseStorage, tid: int, run_id: str) -> None:
    """The run's id on its trial (running, or finished already). A storage that does not answer leaves the
    trial without it (``hpo sync`` finds a trial's run by its tags) rather than stop logging runs."""
    try:
        link_trial(storage, tid, {TRIAL_MLFLOW_RUN: run_id})
    except Exception:
        pass


_LIVE: weakref.WeakSet[LiveProjection] = weakref.WeakSet()


def _drain_all() -> None:
    for live in list(_LIVE):
        live._drain()


# A forked worker must not inherit MLflow's connections in the middle of the writer's write.
os.register_at_fork(before=_drain_all)


def open_live(
    ws: Workspace,
    study: optuna.Study,
    overview: dict[str, Any],
    warn: Callable[[str], None],
    *,
    describe: bool = True,
    opened: MlflowClient | Exception | None = None,
) -> LiveProjection:
    """The study's MLflow projection for a run, which warns through ``warn`` once if MLflow fails.

    ``opened`` is a client already opened, or why there is none (the store did not answer a moment
    ago: warn once, do not wait for it again). With ``describe`` (the main process, not each worker),
    the data-version space is also described from ``overview`` (the data version's ``overview()``).
    """

    def open_projection() -> StudyProjection:
        if isinstance(opened, Exception):
            raise opened
        c = opened or client()
        projection = StudyProjection.open(ws, study, c)
        if describe:
            describe_data_experiment(c, ws, overview)
        return projection

    return LiveProjection(open_projection, warn)
