"""One worker: claim a budget slot, run its trial with heartbeats, record how it ended; fail and
requeue the trials of workers that died."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.errors import StudyError
from hpo.prepare import Prepared
from hpo.run._claims import StaleChecks, claim_trial, requeue, running_trials
from hpo.run._objective import Objective
from hpo.run._result import Progress
from hpo.run._signals import _no_interrupt, _Stop
from hpo.run._study import sampler_for, top_up_budget
from hpo.samplers import make_pruner
from hpo.schema import TRIAL_ERROR, TRIAL_TRACEBACK
from hpo.space import LoadedSpace
from hpo.storage import change_state, heartbeat, open_storage, rdb_backend, storage_of, study_id, study_lock
from hpo.tracking._live import open_live
from hpo.workspace import Workspace

if TYPE_CHECKING:
    import optuna

    from hpo.tracking import LiveProjection

INTERRUPTED = "interrupted (Ctrl-C); retried in the same budget slot"


def interrupted_text(signum: int | None) -> str:
    """The `error` of a trial a stop signal cut short: Ctrl-C's, or the signal's name (SIGTERM)."""
    import signal

    if signum in (None, signal.SIGINT):
        return INTERRUPTED
    return f"interrupted ({signal.Signals(signum).name}); retried in the same budget slot"


IDLE_POLL_SECONDS = 0.5  # how often a worker with nothing to claim checks the trials still running


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
    devices: str | None = None  # CUDA_VISIBLE_DEVICES for this worker's fits, when pinned


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
    if args.devices is not None:  # before any fit initialises CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = args.devices
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
        tracker = open_live(prep.workspace, study, prep.data.overview(), held, describe=False)
        held.release()
    try:
        _claim_and_run(args, prep, study, objective=objective, stop=stop, on_trial=on_trial, tracker=tracker, held=held)
    except Exception:
        check_study(study)  # a deleted study shows as a KeyError from wherever the worker was: say what happened
        raise
    finally:
        if tracker is not None:
            with _no_interrupt():  # the runs of the trials that ended are logged before the worker ends, Ctrl-C or not
                tracker.flush()
    check_study(study)  # ... or as no trial left to claim
    held.release()


def _claim_and_run(
    args: _WorkerArgs,
    prep: Prepared,
    study: optuna.Study,
    *,
    objective: Objective,
    stop: _Stop,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None,
    tracker: LiveProjection | None,
    held: HeldWarnings,
) -> None:
    stale = StaleChecks(study, tracker)
    while not stop.requested:
        if args.deadline is not None and time.time() >= args.deadline:
            break
        stale()  # at the start, then on a timer: not a query or two before every claim
        with _no_interrupt():  # a claimed trial's id is never lost to a Ctrl-C
            claimed = claim_trial(study, args.budget, objective.started)
            if claimed is None and args.budget is not None:
                with study_lock(args.storage, prep.space.study):  # the next budget slots, enqueued once
                    top_up_budget(study, prep)
                claimed = claim_trial(study, args.budget, objective.started)
        if claimed is None:
            if args.budget is not None and running_trials(study):
                # Another worker's trial may yet die: stay until it ends or is requeued as stale,
                # checking for stale trials at each poll (its slot may be all the budget has left).
                time.sleep(IDLE_POLL_SECONDS)
                stale.soon()
                continue
            break
        before = held.mark()
        try:
            frozen = run_trial(
                study,
                claimed.trial_id,
                objective,
                tracker,
                aborted=lambda: stop.aborted,
                beaten=claimed.started,
                why=lambda: interrupted_text(stop.signal),
            )
        except KeyboardInterrupt:
            _abandon(
                study, claimed.trial_id, tracker, interrupted_text(stop.signal)
            )  # aborted before (or while) its end was recorded
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


def _abandon(study: optuna.Study, claimed: int, tracker: LiveProjection | None, why: str = INTERRUPTED) -> None:
    """Fail a claimed trial a Ctrl-C cut short and requeue its slot, unless its end was recorded."""
    from optuna.exceptions import UpdateFinishedTrialError

    storage = storage_of(study)
    try:
        storage.set_trial_user_attr(claimed, TRIAL_ERROR, why)
        if not change_state(storage, claimed, "RUNNING", "FAIL"):
            return
    except UpdateFinishedTrialError:
        return  # failed and requeued by run_trial, or finished just before the Ctrl-C
    frozen = storage.get_trial(claimed)
    requeue(study, frozen)
    if tracker is not None:
        tracker.finish(frozen)


def run_trial(
    study: optuna.Study,
    claimed: int,
    objective: Callable[[Any], float],
    tracker: LiveProjection | None = None,
    aborted: Callable[[], bool] = lambda: False,
    beaten: bool = False,
    why: Callable[[], str] = lambda: INTERRUPTED,
) -> optuna.trial.FrozenTrial:
    """Run one claimed trial with heartbeats, tell the storage how it ended, then project it.

    ``aborted`` says whether a second Ctrl-C came, for an interrupt the model library wrapped;
    ``beaten`` whether the claim recorded the trial's first heartbeat; ``why`` is the `error` of a
    trial a stop signal cut short.

    Raises:
        TrialTakenAway: another process failed the trial as stale meanwhile (this worker was paused).
    """
    try:
        frozen = _run_trial(study, claimed, objective, tracker, aborted, beaten, why)
    except Exception:
        # A trial failed by someone else is frozen: whatever this worker wrote last (an attribute,
        # its value) was refused, as UpdateFinishedTrialError or Optuna's "Cannot tell a FAIL trial".
        if aborted() or _still_running(study, claimed):
            raise
        raise TrialTakenAway(storage_of(study).get_trial(claimed).number) from None
    if tracker is not None:
        tracker.finish(frozen)
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
    beaten: bool,
    why: Callable[[], str],
) -> optuna.trial.FrozenTrial:
    import optuna
    from optuna.trial import TrialState

    beating = heartbeat(claimed, storage_of(study), first=not beaten)  # the first beat now, unless the claim made it
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
                _interrupted(study, trial, why())
                raise KeyboardInterrupt from None
            return study.tell(trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            _interrupted(study, trial, why())
            raise
        except Exception as e:
            if aborted():  # the second Ctrl-C, wrapped by the library (e.g. a CatBoostError)
                _interrupted(study, trial, why())
                raise KeyboardInterrupt from None
            _record_error(trial, f"{type(e).__name__}: {e}", traceback.format_exc())
            return study.tell(trial, state=TrialState.FAIL)
    return study.tell(trial, value)


def _interrupted(study: optuna.Study, trial: optuna.Trial, why: str) -> None:
    from optuna.trial import TrialState

    _record_error(trial, why)
    requeue(study, study.tell(trial, state=TrialState.FAIL))


def _record_error(trial: optuna.Trial, error: str, tb: str | None = None) -> None:
    trial.set_user_attr(TRIAL_ERROR, error[:2000])
    if tb:
        trial.set_user_attr(TRIAL_TRACEBACK, tb[-4000:])
