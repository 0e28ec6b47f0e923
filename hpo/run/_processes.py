"""Workers in this process or in several, and Ctrl-C: once finishes the running trials, twice aborts them."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.prepare import Prepared, prepare_loaded
from hpo.run._result import Progress, snapshot
from hpo.run._worker import _Stop, _worker_loop, _WorkerArgs
from hpo.schema import TRIAL_ERROR
from hpo.storage import ready_to_fork, sqlite_path
from hpo.tracking import LiveProjection, tracking_uri

if TYPE_CHECKING:
    import optuna

POLL_SECONDS = 0.5


def _run_in_process(
    args: _WorkerArgs,
    prep: Prepared,
    study: optuna.Study,
    progress: Progress,
    failures: list[str],
    tracker: LiveProjection,
    tally: list[int],
) -> bool:
    stop = _Stop(lambda: progress.message("Stopping after the running trial (Ctrl-C again to abort it)"))

    shows = type(progress) is not Progress  # a snapshot costs a few queries: skip it when nobody looks

    def on_trial(t: optuna.trial.FrozenTrial) -> None:
        _count(tally, t)
        _note_failure(t, progress, failures)
        if shows:
            progress.update(snapshot(study))

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, stop.handle) if in_main else None
    try:
        _worker_loop(args, prep, stop, on_trial, tracker)
    except KeyboardInterrupt:
        progress.message("Aborted: the running trial was failed and put back in the queue")
        stop.requested = True
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    return stop.requested


def _note_failure(t: optuna.trial.FrozenTrial, progress: Progress, failures: list[str]) -> None:
    if t.state.name == "FAIL":
        line = f"trial {t.number} failed: {t.user_attrs.get(TRIAL_ERROR, 'no value')}"
        failures.append(line)
        progress.message(line)


def _count(tally: Any, t: optuna.trial.FrozenTrial) -> None:
    tally[0] += 1
    tally[1] += t.state.name == "COMPLETE"


def _worker_main(args: _WorkerArgs, tally: Any, prep: Prepared | None = None) -> None:
    # Own process group: a terminal's Ctrl-C reaches only the parent, which forwards it once
    # per press, so the two-step stop works the same as with one process.
    os.setpgrp()
    stop = _Stop()
    signal.signal(signal.SIGINT, stop.handle)
    if prep is None:  # a spawned interpreter: read and check the data again
        prep = prepare_loaded(args.loaded, args.workspace)
    else:  # forked: the parent's streams may have been locked by its progress thread mid-write
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115

    def on_trial(t: optuna.trial.FrozenTrial) -> None:
        with tally.get_lock():
            _count(tally, t)

    try:
        _worker_loop(args, prep, stop, on_trial)
    except KeyboardInterrupt:
        pass


def _run_processes(
    args: _WorkerArgs,
    prep: Prepared,
    jobs: int,
    study: optuna.Study,
    progress: Progress,
    failures: list[str],
    tally: list[int],
) -> bool:
    # Forked workers inherit the imported libraries and the loaded data: a spawned one spent about
    # 5 s re-importing and re-reading them (benchmarks/parallel.py). Fork is Linux only here, and
    # only once this process holds no connection to the SQLite files the workers will open.
    forked = sys.platform == "linux" and ready_to_fork(_sqlite_files(args.storage))
    ctx = mp.get_context("fork") if forked else mp.get_context("spawn")
    shared = ctx.Array("i", 2)
    inherited = prep if forked else None
    procs = [
        ctx.Process(target=_worker_main, args=(replace(args, index=i), shared, inherited), daemon=False) for i in range(jobs)
    ]
    for p in procs:
        p.start()

    presses = 0

    def forward(signum: int, frame: object) -> None:
        nonlocal presses
        presses += 1
        progress.message("Stopping after the running trials (Ctrl-C again to abort them)" if presses == 1 else "Aborting")
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGINT)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, forward) if in_main else None
    from optuna.trial import TrialState

    seen = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(POLL_SECONDS)
            _poll(study, progress, failures, seen)
        _poll(study, progress, failures, seen)
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    tally[:] = shared[:]
    crashed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if crashed:
        progress.message(f"{len(crashed)} worker(s) exited with an error (exit codes {crashed})")
    return presses > 0


def _sqlite_files(storage: str) -> list[Path]:
    """The Optuna storage's and MLflow's SQLite files, where they are SQLite."""
    paths = (sqlite_path(storage), sqlite_path(tracking_uri()))
    return [p for p in paths if p is not None]


def _poll(study: optuna.Study, progress: Progress, failures: list[str], seen: set[int]) -> None:
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.number not in seen:
            seen.add(t.number)
            _note_failure(t, progress, failures)
    progress.update(snapshot(study))
