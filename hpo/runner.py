"""The study runner: create or resume a study, and run its trials in one or more workers.

The trial budget is the study's, not a worker's: ``n_trials`` WAITING trials ("budget slots")
are enqueued in Optuna's storage, and a worker starts a trial only by claiming one, which the
storage does atomically. N workers, on one host or many, therefore finish exactly ``n_trials``
trials between them. A trial whose worker died or was aborted is retried in its own slot.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError, NoTrialCompleted, StudyError
from hpo.prepare import Prepared, prepare, prepare_loaded
from hpo.space import CategoricalParam, FloatParam, GridSamplerConfig, IntParam, LoadedSpace
from hpo.workspace import Workspace, relative_path

if TYPE_CHECKING:
    import optuna

    from hpo.tracking import LiveProjection

# Study user attributes written by hpo.
ATTR_READY = "hpo_ready"
ATTR_SEARCH_HASH = "search_hash"
ATTR_DIGESTS = "data_digests"
# Trial user attributes written by hpo.
ATTR_SLOT = "budget_slot"
ATTR_SEED = "seed"
ATTR_ERROR = "error"
ATTR_RUN_ID = "mlflow_run_id"

READY_WAIT_SECONDS = 60
POLL_SECONDS = 0.5
IDLE_POLL_SECONDS = 2  # how often a worker with nothing to claim checks the trials still running


@dataclass(frozen=True)
class BestTrial:
    number: int
    value: float
    params: dict[str, Any]
    seed: int | None


@dataclass(frozen=True)
class StudySnapshot:
    """Where a study stands: trials per state and the best trial so far."""

    states: dict[str, int]
    best: BestTrial | None
    inherited: int = 0  # COMPLETE trials taken over from a parent study (warm start)

    @property
    def finished(self) -> int:
        """Finished trials of this study's own budget (inherited ones are not)."""
        return sum(self.states.get(s, 0) for s in ("COMPLETE", "PRUNED", "FAIL")) - self.inherited


@dataclass
class RunResult:
    study: str
    storage: str
    direction: str
    metric: str
    budget: int | None
    created: bool
    before: StudySnapshot
    after: StudySnapshot
    elapsed_seconds: float
    interrupted: bool = False
    failures: list[str] = field(default_factory=list)
    # Trials this run's workers finished and completed; other hosts' workers may add more to the study.
    finished_here: int = 0
    completed_here: int = 0

    @property
    def ran(self) -> int:
        return self.finished_here

    @property
    def completed_now(self) -> int:
        return self.completed_here

    def as_dict(self) -> dict[str, Any]:
        best = self.after.best
        return {
            "study": self.study,
            "storage": self.storage,
            "metric": self.metric,
            "direction": self.direction,
            "n_trials": self.budget,
            "created": self.created,
            "ran": self.ran,
            "states": self.after.states,
            "inherited": self.after.inherited,
            "best": None if best is None else best.__dict__,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "interrupted": self.interrupted,
        }


class Progress:
    """What the runner tells a terminal; the default tells nothing."""

    def start(self, study: str, budget: int | None, snapshot: StudySnapshot, resumed: bool) -> None: ...
    def update(self, snapshot: StudySnapshot) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


def run_study(
    space_path: str | Path,
    *,
    storage: str | None = None,
    jobs: int = 1,
    workspace: Workspace | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Create or resume the study of ``space_path`` and run it to its budget.

    Args:
        storage: Optuna storage URL; default ``$HPO_STORAGE``, ``[tool.hpo] storage`` or
            SQLite under ``studies/``.
        jobs: worker processes on this host.

    Raises:
        HpoError: bad input (nothing is written), a changed space under an existing study
            name, or a run in which no trial completed.
    """
    if jobs < 1:
        raise HpoError(f"--jobs must be >= 1, but got {jobs}")
    prep = prepare(space_path, workspace)
    progress = progress or Progress()
    url = prep.workspace.storage_url(storage)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from hpo.storage import study_lock

    with study_lock(url, prep.space.study):  # one process at a time creates the study and fills its budget
        study, created = open_study(prep, url)
        top_up_budget(study, prep)
    tracker = open_tracking(prep, study, _warner(progress))
    fail_stale(study, tracker)

    before = snapshot(study)
    progress.start(prep.space.study, prep.budget, before, resumed=not created)
    deadline = time.time() + prep.space.timeout if prep.space.timeout else None
    threads = max(1, (os.cpu_count() or 1) // jobs)
    worker = _WorkerArgs(prep.loaded, prep.workspace, url, 0, deadline, threads, prep.budget, before.finished, tracker.active)

    start = time.perf_counter()
    failures: list[str] = []
    tally = [0, 0]  # finished, completed by this run
    if jobs == 1:
        interrupted = _run_in_process(worker, prep, study, progress, failures, tracker, tally)
    else:
        interrupted = _run_processes(worker, jobs, study, progress, failures, tally)
    progress.stop()
    tracker.close(study)

    result = RunResult(
        study=prep.space.study,
        storage=url,
        direction=prep.space.direction,
        metric=prep.space.metric,
        budget=prep.budget,
        created=created,
        before=before,
        after=snapshot(study),
        elapsed_seconds=time.perf_counter() - start,
        interrupted=interrupted,
        failures=failures,
        finished_here=tally[0],
        completed_here=tally[1],
    )
    if result.after.states.get("COMPLETE", 0) == 0 or (result.ran > 0 and result.completed_now == 0):
        raise NoTrialCompleted(
            f"study {result.study!r}: no trial completed in this run "
            f"({_fmt_states(result.after.states)}); see the `error` attribute of the failed trials"
            + (f", e.g. {failures[0]}" if failures else "")
        )
    return result


# --- the study and its attributes -------------------------------------------------------------


def open_study(prep: Prepared, url: str) -> tuple[optuna.Study, bool]:
    """Create the study (and write its attributes once) or load it and check it is the same."""
    import optuna

    from hpo.samplers import make_pruner, make_sampler
    from hpo.storage import open_storage

    space = prep.space
    storage = open_storage(url)
    sampler = make_sampler(space.sampler, space.seed)
    pruner = make_pruner(space.pruner, prep.max_iterations)
    inheritance = None
    if space.derived_from is not None and space.derived_from.warm_start and not _exists(storage, space.study):
        from hpo.derive import inherited_trials

        inheritance = inherited_trials(prep, url)  # checked before anything is written
    try:
        study = optuna.create_study(
            storage=storage, study_name=space.study, direction=space.direction, sampler=sampler, pruner=pruner
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=space.study, storage=storage, sampler=sampler, pruner=pruner)
        _check_same_study(study, prep, url)
        return study, False
    for key, value in study_attributes(prep).items():
        study.set_user_attr(key, value)
    if inheritance is not None:
        from hpo.derive import ATTR_INHERITED

        study.add_trials(inheritance.trials)
        study.set_user_attr(ATTR_INHERITED, {"study": inheritance.parent, "trials": inheritance.numbers})
    # Written last: workers that found the study already created wait for it.
    study.set_user_attr(ATTR_READY, True)
    return study, True


def _exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def study_attributes(prep: Prepared) -> dict[str, Any]:
    """What a study records of where it came from: space, data version, source version."""
    import datetime

    from hpo import __version__
    from hpo.provenance import source_version

    space, data = prep.space, prep.data
    src = source_version(prep.workspace.root)
    return {
        "space_yaml": prep.loaded.text,
        "space_sha256": prep.loaded.text_sha256,
        "space_path": relative_path(prep.loaded.path, prep.workspace.root),
        ATTR_SEARCH_HASH: space.search_hash(),
        "data_version": data.version,
        ATTR_DIGESTS: data.digests,
        "data_overview": data.overview(),
        "model": space.model,
        "task": data.task,
        "metric": space.metric,
        "seed": space.seed,
        "src_version": src.src_version,
        "commit": src.commit,
        "dirty": src.dirty,
        "derived_from": None if space.derived_from is None else space.derived_from.model_dump(mode="json"),
        "hpo_version": __version__,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _check_same_study(study: optuna.Study, prep: Prepared, url: str) -> None:
    deadline = time.time() + READY_WAIT_SECONDS
    while not study.user_attrs.get(ATTR_READY):
        # Another worker is creating this study right now; its attributes follow in a moment.
        if time.time() > deadline:
            raise StudyError(
                f"study {study.study_name!r} exists in {url} but was not created by hpo (or its first run "
                "died while creating it); choose another `study` name in "
                f"{prep.where}, or delete it with `optuna delete-study --study-name {study.study_name} --storage {url}`"
            )
        time.sleep(0.5)
    attrs = study.user_attrs
    if attrs.get(ATTR_SEARCH_HASH) != prep.space.search_hash():
        raise StudyError(
            f"{prep.where}: study {study.study_name!r} already exists in {url} with a different search space "
            f"(from {attrs.get('space_path', '?')}); to search the new space, give it a new `study` name "
            "(only `n_trials` and `timeout` may change when resuming)"
        )
    if attrs.get(ATTR_DIGESTS) != prep.data.digests:
        changed = [s for s, d in prep.data.digests.items() if attrs.get(ATTR_DIGESTS, {}).get(s) != d]
        raise StudyError(
            f"{prep.where}: the data of study {study.study_name!r} changed since it was created "
            f"({', '.join(changed)} split digest differs); a new data version needs a new `data.version` and `study` name"
        )


def top_up_budget(study: optuna.Study, prep: Prepared) -> int:
    """Enqueue a WAITING trial for every budget slot not yet taken; returns how many."""
    budget = prep.budget
    if budget is None:
        return 0
    used = {t.user_attrs.get(ATTR_SLOT) for t in study.get_trials(deepcopy=False)}
    missing = [i for i in range(budget) if i not in used]
    grid = _grid_order(prep) if isinstance(prep.space.sampler, GridSamplerConfig) else None
    for slot in missing:
        params = grid[slot] if grid is not None else {}
        study.enqueue_trial(params, user_attrs={ATTR_SLOT: slot}, skip_if_exists=False)
    return len(missing)


def _grid_order(prep: Prepared) -> list[dict[str, Any]]:
    import numpy as np

    grid = prep.space.grid()
    order = np.random.default_rng(prep.space.seed).permutation(len(grid))
    return [grid[i] for i in order]


def snapshot(study: optuna.Study) -> StudySnapshot:
    from hpo.studies import trial_counts

    states = trial_counts(study)
    best = None
    if states.get("COMPLETE"):
        t = study.best_trial
        best = BestTrial(t.number, float(t.value), dict(t.params), t.user_attrs.get(ATTR_SEED))  # type: ignore[arg-type]
    inherited = len((study.user_attrs.get("inherited_trials") or {}).get("trials", []))
    return StudySnapshot(states, best, inherited)


def _fmt_states(states: dict[str, int]) -> str:
    return ", ".join(f"{n} {s.lower()}" for s, n in states.items()) or "no trials"


def fail_stale(study: optuna.Study, tracker: LiveProjection | None = None) -> list[int]:
    """Fail the RUNNING trials whose worker died, put each back in the queue, close its MLflow run.

    A trial is stale when its last heartbeat is older than the storage's grace period, or when
    it never sent one and started longer ago than that (its worker died between claiming it and
    the first heartbeat, which Optuna's own ``fail_stale_trials`` would leave RUNNING forever).
    Returns the numbers of the trials failed here; another worker may fail the same ones first.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    from hpo.storage import stale_trial_ids

    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return []
    failed = []
    for trial_id in stale_trial_ids(storage, study._study_id):
        try:
            # Only one process wins this transition, so each dead trial is requeued once.
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue
        frozen = storage.get_trial(trial_id)
        requeue(study, frozen)
        if tracker is not None:
            tracker.finish(frozen.user_attrs.get(ATTR_RUN_ID), frozen)
        failed.append(frozen.number)
    return failed


def open_tracking(prep: Prepared, study: optuna.Study, warn: Callable[[str], None], main: bool = True) -> LiveProjection:
    """The study's MLflow projection; the main process also describes the data-version space."""
    from hpo.tracking import LiveProjection, StudyProjection, client, describe_data_experiment

    def open_projection() -> StudyProjection:
        c = client()
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


# --- one worker -------------------------------------------------------------------------------


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
    """Ctrl-C once: finish the running trial, start no other. Twice: abort it (it is retried)."""

    def __init__(self, on_first: Callable[[], None] | None = None) -> None:
        self.requested = False
        self._on_first = on_first

    def handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._on_first:
            self._on_first()


def _worker_loop(
    args: _WorkerArgs,
    prep: Prepared,
    stop: _Stop,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    tracker: LiveProjection | None = None,
) -> None:
    import numpy as np
    import optuna

    from hpo.objective import Objective
    from hpo.samplers import make_pruner, make_sampler
    from hpo.storage import open_storage

    space = prep.space
    # A sampler seed per worker and per resume: a resumed or parallel study must not replay
    # the random start-up points it already tried.
    seed = int(np.random.SeedSequence([space.seed, args.trials_at_start, args.index]).generate_state(1)[0])
    study = optuna.load_study(
        study_name=space.study,
        storage=open_storage(args.storage, create=False),
        sampler=make_sampler(space.sampler, seed),
        pruner=make_pruner(space.pruner, prep.max_iterations),
    )
    objective = Objective(prep, thread_count=args.threads)
    if tracker is None and args.track:
        tracker = open_tracking(prep, study, _warner(None), main=False)
    while not stop.requested:
        if args.deadline is not None and time.time() >= args.deadline:
            break
        fail_stale(study, tracker)
        trial_id = claim_trial(study, args.budget)
        if trial_id is None:
            if args.budget is not None and running_trials(study):
                # Another worker's trial may yet die: stay until it ends or is requeued as stale.
                time.sleep(IDLE_POLL_SECONDS)
                continue
            break
        frozen = run_trial(study, trial_id, objective, tracker)
        if on_trial:
            on_trial(frozen)


def claim_trial(study: optuna.Study, budget: int | None) -> int | None:
    """Atomically take a WAITING trial of the budget (or, without a budget, create one)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage
    for t in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,)):
        slot = t.user_attrs.get(ATTR_SLOT)
        if budget is not None and (slot is None or slot >= budget):
            continue  # enqueued by someone else, or left over from a larger budget
        try:
            # The storage sets RUNNING only if the trial is still WAITING: one worker wins.
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return t._trial_id
        except UpdateFinishedTrialError:
            continue
    if budget is None:
        return storage.create_new_trial(study._study_id)
    return None


def run_trial(
    study: optuna.Study, trial_id: int, objective: Callable[[Any], float], tracker: LiveProjection | None = None
) -> optuna.trial.FrozenTrial:
    """Run one claimed trial with heartbeats, tell the storage how it ended, then project it."""
    frozen = _run_trial(study, trial_id, objective, tracker)
    if tracker is not None:
        tracker.finish(frozen.user_attrs.get(ATTR_RUN_ID), frozen)
    return frozen


def _run_trial(
    study: optuna.Study, trial_id: int, objective: Callable[[Any], float], tracker: LiveProjection | None
) -> optuna.trial.FrozenTrial:
    import optuna
    from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
    from optuna.trial import TrialState

    storage = study._storage
    if is_heartbeat_enabled(storage):
        storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
    trial = optuna.Trial(study, trial_id)
    if tracker is not None:
        tracker.start(trial)
    with get_heartbeat_thread(trial_id, storage):
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            return study.tell(trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            _record_error(trial, "interrupted (Ctrl-C); retried in the same budget slot")
            frozen = study.tell(trial, state=TrialState.FAIL)
            requeue(study, frozen)
            raise
        except Exception as e:
            _record_error(trial, f"{type(e).__name__}: {e}", traceback.format_exc())
            return study.tell(trial, state=TrialState.FAIL)
    return study.tell(trial, value)


def _record_error(trial: optuna.Trial, error: str, tb: str | None = None) -> None:
    trial.set_user_attr(ATTR_ERROR, error[:2000])
    if tb:
        trial.set_user_attr("traceback", tb[-4000:])


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Enqueue a trial again with its parameters, seed and budget slot (at most ``MAX_RETRY`` times).

    Returns whether it was requeued. Like Optuna's retry callback, but it carries over only the
    slot and the seed: the MLflow run id, worker and error belong to the attempt that failed.
    """
    import optuna

    from hpo.storage import MAX_RETRY

    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRY:
        return False
    keep = {k: v for k, v in trial.user_attrs.items() if k in (ATTR_SLOT, ATTR_SEED)}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=keep,
            system_attrs={"failed_trial": history[0], "retry_history": history},
        )
    )
    return True


def running_trials(study: optuna.Study) -> int:
    from hpo.studies import trial_counts

    return trial_counts(study).get("RUNNING", 0)


# --- in this process, or in several -----------------------------------------------------------


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
        line = f"trial {t.number} failed: {t.user_attrs.get(ATTR_ERROR, 'no value')}"
        failures.append(line)
        progress.message(line)


def _count(tally: Any, t: optuna.trial.FrozenTrial) -> None:
    tally[0] += 1
    tally[1] += t.state.name == "COMPLETE"


def _worker_main(args: _WorkerArgs, tally: Any) -> None:
    # Own process group: a terminal's Ctrl-C reaches only the parent, which forwards it once
    # per press, so the two-step stop works the same as with one process.
    os.setpgrp()
    stop = _Stop()
    signal.signal(signal.SIGINT, stop.handle)
    prep = prepare_loaded(args.loaded, args.workspace)

    def on_trial(t: optuna.trial.FrozenTrial) -> None:
        with tally.get_lock():
            _count(tally, t)

    try:
        _worker_loop(args, prep, stop, on_trial)
    except KeyboardInterrupt:
        pass


def _run_processes(
    args: _WorkerArgs, jobs: int, study: optuna.Study, progress: Progress, failures: list[str], tally: list[int]
) -> bool:
    import multiprocessing as mp
    from dataclasses import replace

    ctx = mp.get_context("spawn")
    shared = ctx.Array("i", 2)
    procs = [ctx.Process(target=_worker_main, args=(replace(args, index=i), shared), daemon=False) for i in range(jobs)]
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


def _poll(study: optuna.Study, progress: Progress, failures: list[str], seen: set[int]) -> None:
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.number not in seen:
            seen.add(t.number)
            _note_failure(t, progress, failures)
    progress.update(snapshot(study))


def suggest(trial: optuna.Trial, params: dict[str, IntParam | FloatParam | CategoricalParam]) -> dict[str, Any]:
    """Ask the trial for every parameter of the space."""
    out: dict[str, Any] = {}
    for name, p in params.items():
        if isinstance(p, IntParam):
            out[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
        elif isinstance(p, FloatParam):
            out[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
        else:
            out[name] = trial.suggest_categorical(name, p.choices)  # type: ignore[arg-type]
    return out
