"""``run_study``: prepare, open the study under its lock, fill the budget, run the workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hpo.errors import HpoError, NoTrialCompleted
from hpo.ledger import record as record_data
from hpo.prepare import prepare_loaded
from hpo.run._claims import fail_stale
from hpo.run._processes import _run_in_process, _run_processes
from hpo.run._result import Progress, RunResult, snapshot
from hpo.run._signals import _no_interrupt
from hpo.run._study import open_study, top_up_budget
from hpo.run._worker import HeldWarnings, _warner, _WorkerArgs, open_tracking
from hpo.schema import STUDY_BUDGET
from hpo.space import GridSamplerConfig, SpaceFile, load_space
from hpo.storage import study_lock
from hpo.tracking import read_tracked
from hpo.workspace import Workspace, load_workspace


def run_study(
    space_path: str | Path,
    *,
    storage: str | None = None,
    jobs: int = 1,
    workspace: Workspace | None = None,
    progress: Progress | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
) -> RunResult:
    """Create or resume the study of ``space_path`` and run it to its budget.

    Args:
        storage: Optuna storage URL; default ``$HPO_STORAGE``, ``[tool.hpo] storage`` or
            SQLite under ``studies/``.
        jobs: worker processes on this host.
        n_trials, timeout: the budget instead of the space file's (as if its ``n_trials`` or
            ``timeout`` were edited: a resume may raise or lower them).

    Returns:
        The outcome; ``RunResult.note`` says so when every trial of the run was pruned.

    Raises:
        HpoError: bad input (nothing is written), a changed space under an existing study
            name, or a run in which trials failed and none completed.
    """
    if jobs < 1:
        raise HpoError(f"--jobs must be >= 1, but got {jobs}")
    check_budget(n_trials, timeout)
    ws = workspace or load_workspace()
    loaded = load_space(space_path, workspace=ws)
    if n_trials is not None or timeout is not None:
        override = {k: v for k, v in (("n_trials", n_trials), ("timeout", timeout)) if v is not None}
        loaded = loaded.model_copy(update={"space": loaded.space.model_copy(update=override)})
        _check_grid(loaded.space, n_trials)
    prep = prepare_loaded(loaded, ws)
    progress = progress or Progress()
    url = prep.workspace.storage_url(storage)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    opened, tracked = read_tracked(prep.workspace, prep.data.version)
    record_data(url, prep.data, prep.space.study, prep.where, tracked)  # one version name, one set of digests
    held = HeldWarnings(_warner(progress))
    with study_lock(url, prep.space.study):  # one process at a time creates the study and fills its budget
        study, created = open_study(prep, url)
        budget = {"n_trials": prep.budget, "timeout": prep.space.timeout}
        if study.user_attrs.get(STUDY_BUDGET) != budget:  # what `hpo show` reports: the budget it now runs to
            study.set_user_attr(STUDY_BUDGET, budget)
        top_up_budget(study, prep)
        # ... and finds or creates its MLflow parent run: a tracking server has no lock of its own, and
        # workers on several hosts that each searched for it at the same moment created one each.
        tracker = open_tracking(prep, study, held, opened=opened)
    fail_stale(study, tracker)
    held.release()

    before = snapshot(study)
    progress.start(prep.space.study, prep.budget, before, resumed=not created)
    deadline = time.time() + prep.space.timeout if prep.space.timeout else None
    threads = max(1, (os.cpu_count() or 1) // jobs)
    worker = _WorkerArgs(prep.loaded, prep.workspace, url, 0, deadline, threads, prep.budget, before.finished, tracker.active)

    start = time.perf_counter()
    failures: list[str] = []
    tally = [0, 0]  # finished, completed by this run
    try:
        if jobs == 1:
            interrupted = _run_in_process(worker, prep, study, progress, failures, tracker, held, tally)
        else:
            interrupted = _run_processes(worker, prep, jobs, study, progress, failures, tally)
    finally:
        progress.stop()  # also when the study was deleted under the run: the terminal is left clean
    with _no_interrupt():  # a stop signal now waits until the parent run is closed (it would stay RUNNING)
        tracker.close(study)
    held.release()

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
    _check_outcome(result)
    return result


MAX_TRIALS = 10**9
MAX_TIMEOUT = 366 * 24 * 3600  # a year: a larger --timeout is a typo (milliseconds?), not a plan


def check_budget(n_trials: int | None, timeout: float | None) -> None:
    """Refuse a budget override that cannot be meant: zero, negative, not a number, absurdly large."""
    import math

    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or not 1 <= n_trials <= MAX_TRIALS):
        raise HpoError(f"--n-trials must be a whole number from 1 to {MAX_TRIALS}, but got {n_trials!r}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise HpoError(f"--timeout must be seconds above 0 and at most {MAX_TIMEOUT} (366 days), but got {timeout!r}")


def _check_grid(space: SpaceFile, n_trials: int | None) -> None:
    if n_trials is not None and isinstance(space.sampler, GridSamplerConfig) and n_trials > space.grid_size():
        raise HpoError(f"--n-trials must be <= the grid size {space.grid_size()} of sampler `grid`, but got {n_trials}")


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
