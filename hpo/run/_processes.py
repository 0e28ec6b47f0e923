"""Workers in this process or in several, and stop signals: Ctrl-C, SIGTERM or SIGHUP once finishes the
running trials, twice aborts them; forked workers end with ``hpo run`` however it ends."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import CLI_FLAGS, HpoError
from hpo.prepare import Prepared, prepare_loaded
from hpo.run._result import LiveSnapshots, Progress, Tally, WorkersOutcome, snapshot
from hpo.run._signals import STOP_SIGNALS, _Stop, aborting_message, stopping_message
from hpo.run._worker import HeldWarnings, StudyDeleted, _worker_loop, _WorkerArgs, check_study
from hpo.schema import TRIAL_ERROR
from hpo.storage import ready_to_fork, sqlite_path
from hpo.tracking import LiveProjection, tracking_uri

if TYPE_CHECKING:
    import optuna

POLL_SECONDS = 0.5
PARENT_POLL_SECONDS = 1.0  # how often a worker checks that `hpo run` is still there
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_STUDY_DELETED = 3  # a worker's exit code when the study was deleted under it


@contextlib.contextmanager
def _stop_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` for every stop signal while open, in the main thread (where Python runs handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _run_in_process(
    args: _WorkerArgs,
    prep: Prepared,
    study: optuna.Study,
    progress: Progress,
    tracker: LiveProjection,
    held: HeldWarnings,
    abort_on: frozenset[int] = frozenset(),
) -> WorkersOutcome:
    """Run the one worker in this process (with the run's tracker): a stop signal finishes its trial,
    one of ``abort_on`` fails and requeues it at once."""
    failures: list[str] = []
    tally = Tally()

    def said(signum: int) -> None:
        progress.message(aborting_message(signum) if signum in abort_on else stopping_message(signum))

    stop = _Stop(said, abort_on)

    shows = type(progress) is not Progress  # a snapshot costs a few queries: skip it when nobody looks
    live = LiveSnapshots(study)  # not one per trial: trials of a fast model end many times a second

    def on_trial(t: optuna.trial.FrozenTrial) -> None:
        tally.count(t)
        _note_failure(t, progress, failures)
        if shows:
            live.seen(t)
            due = live.due()
            if due is not None:
                progress.update(due)

    with _stop_signals(stop.handle):
        try:
            _worker_loop(args, prep, stop, on_trial, tracker, held)
        except KeyboardInterrupt:
            if stop.signal not in abort_on:  # the message came with the signal
                progress.message("Aborted: the running trial was failed and put back in the queue")
            stop.requested = True
    if shows:
        progress.update(live.full())  # the last line is exact, whenever the last timed one was
    return WorkersOutcome(stop.requested, failures, tally, stop.signal)


def _note_failure(t: optuna.trial.FrozenTrial, progress: Progress, failures: list[str]) -> None:
    if t.state.name == "FAIL":
        line = f"trial {t.number} failed: {t.user_attrs.get(TRIAL_ERROR, 'no value')}"
        failures.append(line)
        progress.message(line)


class SharedTally:
    """The :class:`Tally` of several worker processes: two numbers in memory they share."""

    def __init__(self, ctx: Any) -> None:
        self._counts = ctx.Array("i", 2)  # finished, completed

    def count(self, t: optuna.trial.FrozenTrial) -> None:
        with self._counts.get_lock():
            self._counts[0] += 1
            self._counts[1] += t.state.name == "COMPLETE"

    def read(self) -> Tally:
        with self._counts.get_lock():
            finished, completed = self._counts[:]
        return Tally(finished, completed)


def _worker_main(
    args: _WorkerArgs,
    tally: SharedTally,
    prep: Prepared | None = None,
    parent: int | None = None,
    flags: Mapping[str, str] | None = None,
) -> None:
    # Own process group: a terminal's Ctrl-C reaches only the parent, which forwards it once
    # per press, so the two-step stop works the same as with one process.
    os.setpgrp()
    if parent is not None:
        _die_with_parent(parent)
    stop = _Stop()
    for s in STOP_SIGNALS:  # sent to a worker itself (a scheduler signals every process): as from the parent
        signal.signal(s, stop.handle)
    if flags is not None:  # a spawned interpreter starts without the verb's flags: its errors name them as the verb's do
        CLI_FLAGS.set(flags)
    if prep is None:  # a spawned interpreter: read and check the data again
        prep = prepare_loaded(args.loaded, args.workspace)
    else:  # forked: the parent's streams may have been locked by its progress thread mid-write
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115

    try:
        _worker_loop(args, prep, stop, tally.count)
    except KeyboardInterrupt:
        pass
    except StudyDeleted:
        sys.exit(EXIT_STUDY_DELETED)  # the parent says so, once for all workers
    except HpoError as e:  # e.g. the storage unreachable past HPO_OUTAGE_SECONDS: one line, as the CLI says it
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)


def _die_with_parent(parent: int) -> None:
    """End this worker as soon as ``hpo run`` (``parent``) ends, whatever ended it.

    A parent that stops on a signal it can handle first stops its workers; one killed outright
    (SIGKILL, the OOM killer, a crash) cannot, and its workers would go on with the whole budget
    as orphans. They are killed too: their trials stay RUNNING until their heartbeats go stale,
    and the next run fails and requeues them in their slots. Linux kills a worker with its
    parent (``PR_SET_PDEATHSIG``); a thread watching the parent id covers other systems and a
    parent that died before that was set.
    """
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="hpo-parent-watch", daemon=True).start()


def _run_processes(
    args: _WorkerArgs, prep: Prepared, jobs: int, study: optuna.Study, progress: Progress, devices: list[str] | None = None
) -> WorkersOutcome:
    """Run ``jobs`` worker processes and show the study's progress until they end; stop signals are forwarded."""
    # Forked workers inherit the imported libraries and the loaded data: a spawned one spent about
    # 5 s re-importing and re-reading them (benchmarks/parallel.py). Fork is Linux only here, and
    # only once this process holds no connection to the SQLite files the workers will open.
    forked = sys.platform == "linux" and ready_to_fork(_sqlite_files(args.storage))
    ctx = mp.get_context("fork") if forked else mp.get_context("spawn")
    tally = SharedTally(ctx)
    inherited = prep if forked else None
    parent = os.getpid()
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(replace(args, index=i, devices=devices[i] if devices else None), tally, inherited, parent, CLI_FLAGS.get()),
            daemon=False,
        )
        for i in range(jobs)
    ]
    for p in procs:
        p.start()

    def forward(signum: int, count: int) -> None:
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGINT)  # each worker counts them as it counts Ctrl-C

    watched = watch_workers(study, progress, lambda: any(p.is_alive() for p in procs), forward)
    if watched.deleted or any(p.exitcode == EXIT_STUDY_DELETED for p in procs):
        check_study(study)
    crashed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if crashed:
        progress.message(f"{len(crashed)} worker(s) exited with an error (exit codes {crashed})")
    return WorkersOutcome(watched.signals > 0, watched.failures, tally.read(), watched.first)


@dataclass
class Watched:
    """What :func:`watch_workers` saw: the failed trials it reported, the stop signals, a deleted study."""

    failures: list[str] = field(default_factory=list)
    signals: int = 0
    first: int | None = None  # the first stop signal
    deleted: bool = False


def watch_workers(
    study: optuna.Study, progress: Progress, alive: Callable[[], bool], forward: Callable[[int, int], None]
) -> Watched:
    """Show the study's progress and its failed trials while ``alive()``, whoever runs the workers
    (this host's processes, a cluster's tasks); each stop signal is passed on as ``forward(signum, count)``."""
    from optuna.trial import TrialState

    watched = Watched()

    def on_signal(signum: int, frame: object) -> None:
        watched.signals += 1
        watched.first = signum if watched.first is None else watched.first
        progress.message(stopping_message(signum, "trials") if watched.signals == 1 else "Aborting")
        forward(signum, watched.signals)

    seen = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    with _stop_signals(on_signal):
        while alive():
            time.sleep(POLL_SECONDS)
            watched.deleted = watched.deleted or _poll_or_deleted(study, progress, watched.failures, seen)
        if not watched.deleted:
            watched.deleted = _poll_or_deleted(study, progress, watched.failures, seen)
    return watched


def _poll_or_deleted(study: optuna.Study, progress: Progress, failures: list[str], seen: set[int]) -> bool:
    """Show the study's progress; True when the study is gone (its workers then stop by themselves)."""
    try:
        _poll(study, progress, failures, seen)
    except Exception:
        try:
            check_study(study)
        except StudyDeleted:
            return True
        raise
    return False


def _sqlite_files(storage: str) -> list[Path]:
    """The Optuna storage's and MLflow's SQLite files, where they are SQLite."""
    paths = (sqlite_path(storage), sqlite_path(tracking_uri()))
    return [p for p in paths if p is not None]


def _poll(study: optuna.Study, progress: Progress, failures: list[str], seen: set[int]) -> None:
    from optuna.trial import TrialState

    now = snapshot(study)
    if now.states.get("FAIL", 0) > len(seen):  # the failed trials are read only when there is a new one
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if t.number not in seen:
                seen.add(t.number)
                _note_failure(t, progress, failures)
    progress.update(now)
