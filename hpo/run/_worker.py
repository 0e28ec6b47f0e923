"""One worker: claim a budget slot, run its trial with heartbeats, record how it ended; fail and
requeue the trials of workers that died."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.errors import StudyError
from hpo.prepare import Prepared
from hpo.run._objective import Objective
from hpo.run._result import Progress
from hpo.run._study import sampler_for, top_up_budget
from hpo.samplers import make_pruner
from hpo.schema import (
    TRIAL_ERROR,
    TRIAL_FAILED_TRIAL,
    TRIAL_MLFLOW_RUN,
    TRIAL_RETRY_HISTORY,
    TRIAL_SEED,
    TRIAL_SLOT,
    TRIAL_TRACEBACK,
)
from hpo.space import LoadedSpace
from hpo.storage import (
    MAX_RETRY,
    change_state,
    heartbeat,
    heartbeat_enabled,
    open_storage,
    rdb_backend,
    stale_trial_ids,
    storage_of,
    study_id,
    study_lock,
    trial_id,
)
from hpo.studies import trial_counts
from hpo.tracking import LiveProjection, StudyProjection, client, describe_data_experiment
from hpo.workspace import Workspace

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient

INTERRUPTED = "interrupted (Ctrl-C); retried in the same budget slot"
# Each asks a run to stop as Ctrl-C does: once finishes the running trials, twice aborts them. SIGTERM
# is how `timeout`, schedulers and CI cancel a job; SIGHUP comes when the terminal goes away.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STALE_ERROR = "its worker stopped sending heartbeats (killed or lost); retried in the same budget slot"
SAME_STOP_SECONDS = 0.5  # a stop signal of another kind this soon after the first is the same stop
IDLE_POLL_SECONDS = 0.5  # how often a worker with nothing to claim checks the trials still running


def fail_stale(study: optuna.Study, tracker: LiveProjection | None = None) -> list[int]:
    """Fail the RUNNING trials whose worker died, put each back in the queue, close its MLflow run.

    A trial is stale when its last heartbeat is older than the storage's grace period, or when
    it never sent one and started longer ago than that (its worker died between claiming it and
    the first heartbeat, which Optuna's own ``fail_stale_trials`` would leave RUNNING forever).
    Returns the numbers of the trials failed here; another worker may fail the same ones first.
    """
    from optuna.exceptions import UpdateFinishedTrialError

    storage = storage_of(study)
    if not heartbeat_enabled(storage):
        return []
    failed = []
    for stale in stale_trial_ids(storage, study_id(study)):
        try:
            # Said while it is still RUNNING (a finished trial's attributes are frozen). Only one
            # process wins the transition below, so each dead trial is requeued once.
            storage.set_trial_user_attr(stale, TRIAL_ERROR, STALE_ERROR)
            if not change_state(storage, stale, "RUNNING", "FAIL"):
                continue
        except UpdateFinishedTrialError:
            continue
        frozen = storage.get_trial(stale)
        requeue(study, frozen)
        if tracker is not None:
            tracker.finish(frozen.user_attrs.get(TRIAL_MLFLOW_RUN), frozen)
        failed.append(frozen.number)
    return failed


class StudyDeleted(StudyError):
    """The study was deleted from the storage (``hpo delete --force``) while the run was at work on it."""


def check_study(study: optuna.Study) -> None:
    """Raise :class:`StudyDeleted` when ``study`` is no longer in its storage (a study created again
    under the same name is another study)."""
    try:
        same = storage_of(study).get_study_id_from_name(study.study_name) == study_id(study)
    except KeyError:
        same = False
    if not same:
        raise StudyDeleted(f"study {study.study_name!r} was deleted from the storage during the run; the run stopped") from None


class TrialTakenAway(Exception):
    """The claimed trial is no longer this worker's: another process failed it as stale and requeued
    its slot while this worker was paused (SIGSTOP, a suspended laptop or VM) past the grace period."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.number = number


def open_tracking(
    prep: Prepared,
    study: optuna.Study,
    warn: Callable[[str], None],
    main: bool = True,
    opened: MlflowClient | Exception | None = None,
) -> LiveProjection:
    """The study's MLflow projection (through ``opened``, a client or why there is none, when
    given); the main process also describes the data-version space."""

    def open_projection() -> StudyProjection:
        if isinstance(opened, Exception):
            raise opened  # why the store did not answer a moment ago: warn once, do not wait for it again
        c = opened or client()
        projection = StudyProjection.open(prep.workspace, study, c)
        if main:
            describe_data_experiment(c, prep.workspace, prep.data.overview())
        return projection

    return LiveProjection(open_projection, warn)


def _warner(progress: Progress | None) -> Callable[[str], None]:
    def warn(text: str) -> None:
        if progress is not None and type(progress) is not Progress:
            progress.message(text)
        else:
            print(text, file=sys.stderr, flush=True)

    return warn


class HeldWarnings:
    """Warnings shown once the trial that follows them has ended, not at once.

    ``hpo delete`` removes a study's MLflow runs a moment before the study itself: a trial that
    ends in between finds its run deleted, and its warning would only come before the one line
    that says the study was deleted. Held, it is dropped with the study.
    """

    def __init__(self, show: Callable[[str], None]) -> None:
        self.show = show
        self._held: list[str] = []

    def __call__(self, text: str) -> None:
        self._held.append(text)

    def mark(self) -> int:
        return len(self._held)

    def release(self, upto: int | None = None) -> None:
        """Show the warnings held (those before ``mark()`` returned ``upto``, when given)."""
        upto = len(self._held) if upto is None else upto
        shown, self._held = self._held[:upto], self._held[upto:]
        for text in shown:
            self.show(text)


@dataclass(frozen=True)
class _WorkerArgs:
    loaded: LoadedSpace
    workspace: Workspace
    storage: str
    index: int
    deadline: float | None
    threads: int
    budget: int | None
    trials_at_start: int
    track: bool = True


class _Stop:
    """Ctrl-C (or another of ``STOP_SIGNALS``) once: finish the running trial, start no other.
    Twice: abort it (it is retried)."""

    def __init__(self, on_first: Callable[[int], None] | None = None) -> None:
        self.requested = False
        self.aborted = False
        self._on_first = on_first
        self._first: tuple[int, float] | None = None  # the first signal and when it came

    def handle(self, signum: int, frame: object) -> None:
        first = self._first
        if first is not None and first[0] != signum and time.monotonic() - first[1] < SAME_STOP_SECONDS:
            # One stop delivered twice: a scheduler that signals every process (systemd's control group,
            # `kill -TERM` of each pid) reaches a worker directly and through its parent's SIGINT.
            return
        if self.requested:
            # Raised inside a model's callback (CatBoost calls back every iteration), this comes
            # back wrapped in the library's own error: `aborted` says what it was.
            self.aborted = True
            # Cut short mid-query, SQLAlchemy's pool logs a traceback as it throws the
            # connection away: expected after an abort, so not shown.
            logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
            # A C extension that cannot pass it on (CatBoost's Cython callback) prints it through
            # sys.excepthook, then as "Exception ignored in ..."; the trial is failed all the same.
            sys.excepthook = _quiet_excepthook(sys.excepthook)
            sys.unraisablehook = _quiet_unraisablehook(sys.unraisablehook)
            raise KeyboardInterrupt
        self.requested = True
        self._first = (signum, time.monotonic())
        if self._on_first:
            self._on_first(signum)


def stopping_message(signum: int, trials: str = "trial") -> str:
    """What the run says when the first stop signal arrives."""
    if signum == signal.SIGINT:
        return f"Stopping after the running {trials} (Ctrl-C again to abort {'them' if trials.endswith('s') else 'it'})"
    return f"{signal.Signals(signum).name} received: stopping after the running {trials} (a second signal aborts)"


def _quiet_excepthook(hook: Callable[..., object]) -> Callable[..., object]:
    def quiet(kind: type[BaseException], value: BaseException, tb: object) -> object:
        return None if isinstance(value, KeyboardInterrupt) else hook(kind, value, tb)

    return quiet


def _quiet_unraisablehook(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    def quiet(unraisable: Any) -> object:
        return None if isinstance(unraisable.exc_value, KeyboardInterrupt) else hook(unraisable)

    return quiet


def _worker_loop(
    args: _WorkerArgs,
    prep: Prepared,
    stop: _Stop,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    tracker: LiveProjection | None = None,
    held: HeldWarnings | None = None,
) -> None:
    """Run trials until the budget is spent, the deadline passes or ``stop`` is requested.

    ``held`` holds the warnings of ``tracker`` (a new tracker's when None).

    Raises:
        StudyDeleted: the study was deleted meanwhile (whatever error the storage gave for it).
    """
    import numpy as np
    import optuna

    space = prep.space
    # A sampler seed per worker and per resume: a resumed or parallel study must not replay
    # the random start-up points it already tried.
    seed = int(np.random.SeedSequence([space.seed, args.trials_at_start, args.index]).generate_state(1)[0])
    storage = open_storage(args.storage, create=False)
    try:
        study = optuna.load_study(
            study_name=space.study,
            storage=storage,
            sampler=sampler_for(prep, args.storage, seed),
            pruner=make_pruner(space.pruner, prep.max_iterations),
        )
    except KeyError:
        raise StudyDeleted(f"study {space.study!r} was deleted from the storage during the run; the run stopped") from None
    objective = Objective(prep, thread_count=args.threads)
    held = held or HeldWarnings(_warner(None))
    if tracker is None and args.track:
        tracker = open_tracking(prep, study, held, main=False)
        held.release()
    try:
        _claim_and_run(args, prep, study, objective, stop, on_trial, tracker, held)
    except Exception:
        check_study(study)  # a deleted study shows as a KeyError from wherever the worker was: say what happened
        raise
    check_study(study)  # ... or as no trial left to claim
    held.release()


def _claim_and_run(
    args: _WorkerArgs,
    prep: Prepared,
    study: optuna.Study,
    objective: Objective,
    stop: _Stop,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None,
    tracker: LiveProjection | None,
    held: HeldWarnings,
) -> None:
    while not stop.requested:
        if args.deadline is not None and time.time() >= args.deadline:
            break
        fail_stale(study, tracker)
        with _no_interrupt():  # a claimed trial's id is never lost to a Ctrl-C
            claimed = claim_trial(study, args.budget)
            if claimed is None and args.budget is not None:
                with study_lock(args.storage, prep.space.study):  # the next budget slots, enqueued once
                    top_up_budget(study, prep)
                claimed = claim_trial(study, args.budget)
        if claimed is None:
            if args.budget is not None and running_trials(study):
                # Another worker's trial may yet die: stay until it ends or is requeued as stale.
                time.sleep(IDLE_POLL_SECONDS)
                continue
            break
        before = held.mark()
        try:
            frozen = run_trial(study, claimed, objective, tracker, aborted=lambda: stop.aborted)
        except KeyboardInterrupt:
            _abandon(study, claimed, tracker)  # aborted before (or while) its end was recorded
            raise
        except TrialTakenAway as e:
            # Its retry runs (or ran) in the same slot: counting this result too would spend the slot twice.
            held.release(before)
            held.show(
                f"trial {e.number} was failed as stale and requeued while its worker (pid {os.getpid()}) was paused "
                f"past the grace period{_grace_period(study)}; its result is dropped and the worker goes on"
            )
            continue
        held.release(before)
        if on_trial:
            on_trial(frozen)


def _grace_period(study: optuna.Study) -> str:
    seconds = getattr(rdb_backend(storage_of(study)), "grace_period", None)
    return f" ({seconds} s)" if seconds else ""


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold the stop signals back (they are delivered on exit), in the main thread of a process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _abandon(study: optuna.Study, claimed: int, tracker: LiveProjection | None) -> None:
    """Fail a claimed trial a Ctrl-C cut short and requeue its slot, unless its end was recorded."""
    from optuna.exceptions import UpdateFinishedTrialError

    storage = storage_of(study)
    try:
        storage.set_trial_user_attr(claimed, TRIAL_ERROR, INTERRUPTED)
        if not change_state(storage, claimed, "RUNNING", "FAIL"):
            return
    except UpdateFinishedTrialError:
        return  # failed and requeued by run_trial, or finished just before the Ctrl-C
    frozen = storage.get_trial(claimed)
    requeue(study, frozen)
    if tracker is not None:
        tracker.finish(frozen.user_attrs.get(TRIAL_MLFLOW_RUN), frozen)


def claim_trial(study: optuna.Study, budget: int | None) -> int | None:
    """Atomically take a WAITING trial of the budget (or, without a budget, create one)."""
    from optuna.trial import TrialState

    storage = storage_of(study)
    for t in storage.get_all_trials(study_id(study), deepcopy=False, states=(TrialState.WAITING,)):
        slot = t.user_attrs.get(TRIAL_SLOT)
        if budget is not None and (slot is None or slot >= budget):
            continue  # enqueued by someone else, or left over from a larger budget
        if change_state(storage, trial_id(t), "WAITING", "RUNNING"):  # one worker wins
            return trial_id(t)
    if budget is None:
        return storage.create_new_trial(study_id(study))
    return None


def run_trial(
    study: optuna.Study,
    claimed: int,
    objective: Callable[[Any], float],
    tracker: LiveProjection | None = None,
    aborted: Callable[[], bool] = lambda: False,
) -> optuna.trial.FrozenTrial:
    """Run one claimed trial with heartbeats, tell the storage how it ended, then project it.

    ``aborted`` says whether a second Ctrl-C came, for an interrupt the model library wrapped.

    Raises:
        TrialTakenAway: another process failed the trial as stale meanwhile (this worker was paused).
    """
    try:
        frozen = _run_trial(study, claimed, objective, tracker, aborted)
    except Exception:
        # A trial failed by someone else is frozen: whatever this worker wrote last (an attribute,
        # its value) was refused, as UpdateFinishedTrialError or Optuna's "Cannot tell a FAIL trial".
        if aborted() or _still_running(study, claimed):
            raise
        raise TrialTakenAway(storage_of(study).get_trial(claimed).number) from None
    if tracker is not None:
        tracker.finish(frozen.user_attrs.get(TRIAL_MLFLOW_RUN), frozen)
    return frozen


def _still_running(study: optuna.Study, claimed: int) -> bool:
    from optuna.trial import TrialState

    return bool(storage_of(study).get_trial(claimed).state == TrialState.RUNNING)


def _run_trial(
    study: optuna.Study,
    claimed: int,
    objective: Callable[[Any], float],
    tracker: LiveProjection | None,
    aborted: Callable[[], bool],
) -> optuna.trial.FrozenTrial:
    import optuna
    from optuna.trial import TrialState

    beating = heartbeat(claimed, storage_of(study))  # the first beat now, before MLflow is asked anything
    trial = optuna.Trial(study, claimed)
    if tracker is not None:
        tracker.start(trial)
    with beating:
        try:
            value = objective(trial)
            if aborted():
                # The second Ctrl-C, swallowed: CatBoost's Cython callback wrapper prints an interrupt
                # raised in it ("Exception ignored in _CallbackAfterIteration") and ends the fit early,
                # which would record a cut-short model as COMPLETE.
                raise KeyboardInterrupt
        except optuna.TrialPruned:
            if aborted():
                _interrupted(study, trial)
                raise KeyboardInterrupt from None
            return study.tell(trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            _interrupted(study, trial)
            raise
        except Exception as e:
            if aborted():  # the second Ctrl-C, wrapped by the library (e.g. a CatBoostError)
                _interrupted(study, trial)
                raise KeyboardInterrupt from None
            _record_error(trial, f"{type(e).__name__}: {e}", traceback.format_exc())
            return study.tell(trial, state=TrialState.FAIL)
    return study.tell(trial, value)


def _interrupted(study: optuna.Study, trial: optuna.Trial) -> None:
    from optuna.trial import TrialState

    _record_error(trial, INTERRUPTED)
    requeue(study, study.tell(trial, state=TrialState.FAIL))


def _record_error(trial: optuna.Trial, error: str, tb: str | None = None) -> None:
    trial.set_user_attr(TRIAL_ERROR, error[:2000])
    if tb:
        trial.set_user_attr(TRIAL_TRACEBACK, tb[-4000:])


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Enqueue a trial again with its parameters, seed and budget slot (at most ``MAX_RETRY`` times).

    Returns whether it was requeued. Like Optuna's retry callback, but it carries over only the
    slot and the seed: the MLflow run id, worker and error belong to the attempt that failed.
    """
    import optuna

    history = [*trial.system_attrs.get(TRIAL_RETRY_HISTORY, []), trial.number]
    if len(history) > MAX_RETRY:
        return False
    keep = {k: v for k, v in trial.user_attrs.items() if k in (TRIAL_SLOT, TRIAL_SEED)}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=keep,
            system_attrs={TRIAL_FAILED_TRIAL: history[0], TRIAL_RETRY_HISTORY: history},
        )
    )
    return True


def running_trials(study: optuna.Study) -> int:

    return trial_counts(study).get("RUNNING", 0)
