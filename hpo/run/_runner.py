"""``run_study``: prepare, open the study under its lock, fill the budget, run the workers."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpo.errors import HpoError, NoTrialCompleted, option
from hpo.ledger import record as record_data
from hpo.prepare import Prepared, prepare_loaded
from hpo.run._claims import fail_stale
from hpo.run._devices import device_groups
from hpo.run._engine import Engine
from hpo.run._processes import _run_in_process, _run_processes
from hpo.run._result import Progress, RunResult, StudySnapshot, Tally, WorkersOutcome, snapshot
from hpo.run._signals import _no_interrupt
from hpo.run._study import open_study, top_up_budget
from hpo.run._worker import HeldWarnings, _warner, _WorkerArgs
from hpo.schema import STUDY_BUDGET
from hpo.space import GridSamplerConfig, LoadedSpace, SpaceFile, load_space
from hpo.storage import study_lock
from hpo.tracking import read_tracked
from hpo.tracking._live import open_live
from hpo.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    import optuna

    from hpo.tracking import LiveProjection


def run_study(
    space_path: str | Path,
    *,
    storage: str | None = None,
    jobs: int = 1,
    workspace: Workspace | None = None,
    progress: Progress | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    gpus: Sequence[str] | None = None,
    create_only: bool = False,
    engine: Engine | None = None,
) -> RunResult:
    """Create or resume the study of ``space_path`` and run it to its budget.

    Args:
        storage: Optuna storage URL; default ``$HPO_STORAGE``, ``[tool.hpo] storage`` or
            SQLite under ``studies/``.
        jobs: worker processes on this host.
        n_trials, timeout: the budget instead of the space file's (as if its ``n_trials`` or
            ``timeout`` were edited: a resume may raise or lower them).
        gpus: devices the workers share (``CUDA_VISIBLE_DEVICES``; see :func:`device_groups`).
        create_only: create or resume the study, fill its budget and open its MLflow parent run,
            then return without running a trial (workers join it: :func:`join_study`).
        engine: a cluster engine that runs the workers instead of this host (``hpo.launch``); it
            is reached before anything is written.

    Returns:
        The outcome; ``RunResult.note`` says so when every trial of the run was pruned.

    Raises:
        HpoError: bad input (nothing is written), a changed space under an existing study
            name, or a run in which trials failed and none completed.
    """
    if jobs < 1:
        raise HpoError(f"{option('jobs')} must be >= 1, but got {jobs}")
    check_budget(n_trials, timeout)
    ws = workspace or load_workspace()
    prep = prepare_loaded(_with_budget(load_space(space_path, workspace=ws), n_trials, timeout), ws)
    workers = None if create_only else Workers(jobs, gpus, engine=engine)
    if engine is None or create_only:
        return run_prepared(prep, prep.workspace.storage_url(storage), workers, progress)
    engine.connect()
    try:
        return run_prepared(prep, prep.workspace.storage_url(storage), workers, progress)
    finally:
        engine.close()


@dataclass(frozen=True)
class Workers:
    """The workers a run starts on this host: how many, the devices they share, the signals that
    abort a running trial at once (not only after it)."""

    jobs: int = 1
    gpus: Sequence[str] | None = None
    abort_on: frozenset[int] = frozenset()
    engine: Engine | None = None  # workers a cluster engine runs instead (jobs and gpus are then its own)


def run_prepared(
    prep: Prepared, url: str, workers: Workers | None, progress: Progress | None = None, *, create: bool = True
) -> RunResult:
    """Open the study of ``prep`` (creating it only with ``create``) and run ``workers`` on it (none: return once it is open)."""
    progress = progress or Progress()

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    held = HeldWarnings(_warner(progress))
    opened = _open(prep, url, held, create=create)
    before = snapshot(opened.study)
    progress.start(prep.space.study, prep.budget, before, resumed=not opened.created)
    start = time.perf_counter()
    try:
        if workers is None:
            outcome = WorkersOutcome(False, [], Tally())
        else:
            outcome = _run_workers(prep, url, workers, opened, progress, held, before)
    finally:
        progress.stop()  # also when the study was deleted under the run: the terminal is left clean
    with _no_interrupt():  # a stop signal now waits until the parent run is closed (it would stay RUNNING)
        opened.tracker.close(opened.study)
    held.release()

    after = snapshot(opened.study)
    elapsed = time.perf_counter() - start
    result = RunResult.of(prep, url, created=opened.created, before=before, after=after, outcome=outcome, elapsed_seconds=elapsed)
    if workers is None or result.stop_signal is None or not workers.abort_on:
        _check_outcome(result)  # a worker a signal stopped says so in its exit code instead
    return result


def _with_budget(loaded: LoadedSpace, n_trials: int | None, timeout: float | None) -> LoadedSpace:
    """``loaded`` with the budget given instead of its file's, as if the file had been edited."""
    if n_trials is None and timeout is None:
        return loaded
    override = {k: v for k, v in (("n_trials", n_trials), ("timeout", timeout)) if v is not None}
    loaded = loaded.model_copy(update={"space": loaded.space.model_copy(update=override)})
    _check_grid(loaded.space, n_trials)
    return loaded


@dataclass(frozen=True)
class Opened:
    """The study a run works on, whether this run created it, and its live MLflow projection."""

    study: optuna.Study
    created: bool
    tracker: LiveProjection


def _open(prep: Prepared, url: str, held: HeldWarnings, *, create: bool = True) -> Opened:
    """Record the data version, then create or resume the study, fill its budget and open its projection.

    Without ``create`` (a worker joining the study) the study must exist, and its data version and
    budget stay as its creator recorded them."""
    reached, tracked = read_tracked(prep.workspace, prep.data.version)  # a client, why there is none, or None
    if create:
        record_data(url, prep.data, prep.space.study, prep.where, tracked)  # one version name, one set of digests
    with study_lock(url, prep.space.study):  # one process at a time creates the study and fills its budget
        study, created = open_study(prep, url, create=create)
        budget = {"n_trials": prep.budget, "timeout": prep.space.timeout}
        if create and study.user_attrs.get(STUDY_BUDGET) != budget:  # what `hpo show` reports: the budget it now runs to
            study.set_user_attr(STUDY_BUDGET, budget)
        top_up_budget(study, prep)
        # ... and finds or creates its MLflow parent run: a tracking server has no lock of its own, and
        # workers on several hosts that each searched for it at the same moment created one each.
        tracker = open_live(prep.workspace, study, prep.data.overview(), held, opened=reached)
    fail_stale(study, tracker)
    held.release()
    return Opened(study, created, tracker)


def _run_workers(
    prep: Prepared, url: str, workers: Workers, opened: Opened, progress: Progress, held: HeldWarnings, before: StudySnapshot
) -> WorkersOutcome:
    """Run the workers (this process alone for one) until the budget is spent, the deadline passes or a stop."""
    if workers.engine is not None:
        return workers.engine.run(opened.study, url, progress)
    jobs = workers.jobs
    devices = device_groups(workers.gpus or [], jobs)
    worker = _WorkerArgs(
        loaded=prep.loaded,
        workspace=prep.workspace,
        storage=url,
        index=0,
        deadline=time.time() + prep.space.timeout if prep.space.timeout else None,
        threads=max(1, (os.cpu_count() or 1) // jobs),
        budget=prep.budget,
        trials_at_start=before.finished,
        track=opened.tracker.active,
        devices=devices[0] if devices else None,
    )
    if jobs == 1:
        return _run_in_process(worker, prep, opened.study, progress, opened.tracker, held, workers.abort_on)
    return _run_processes(worker, prep, jobs, opened.study, progress, devices)


MAX_TRIALS = 10**9
MAX_TIMEOUT = 366 * 24 * 3600  # a year: a larger --timeout is a typo (milliseconds?), not a plan


def check_budget(n_trials: int | None, timeout: float | None) -> None:
    """Refuse a budget override that cannot be meant: zero, negative, not a number, absurdly large."""
    import math

    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or not 1 <= n_trials <= MAX_TRIALS):
        raise HpoError(f"{option('n_trials')} must be a whole number from 1 to {MAX_TRIALS}, but got {n_trials!r}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise HpoError(f"{option('timeout')} must be seconds above 0 and at most {MAX_TIMEOUT} (366 days), but got {timeout!r}")


def _check_grid(space: SpaceFile, n_trials: int | None) -> None:
    if n_trials is not None and isinstance(space.sampler, GridSamplerConfig) and n_trials > space.grid_size():
        raise HpoError(f"{option('n_trials')} must be <= the grid size {space.grid_size()} of sampler `grid`, but got {n_trials}")


def _check_outcome(r: RunResult) -> None:
    """Raise when trials failed and none completed; trials that were only pruned are a normal outcome
    (the pruner judged them worse), which ``RunResult.note`` states."""
    failed_before = r.after.states.get("FAIL", 0)
    if r.completed_here == 0 and r.failed_here > 0:
        what = f"{r.failed_here} failed" + (f", {r.pruned_here} pruned" if r.pruned_here else "")
        where = "in this run"
    elif r.finished_here == 0 and r.after.states.get("COMPLETE", 0) == 0 and failed_before > 0:
        # Nothing ran (an aborted run, or a budget used up) and no trial of the study ever completed.
        what, where = f"{failed_before} failed", "in this study"
    else:
        return
    raise NoTrialCompleted(
        f"study {r.study!r}: no trial completed {where} ({what}); "
        f"see the `error` attribute of the failed trials (`hpo export --study {r.study}`)"
        + (f", e.g. {r.failures[0]}" if r.failures else "")
    )
