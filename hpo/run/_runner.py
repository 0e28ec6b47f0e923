"""``run_study``: prepare, open the study under its lock, fill the budget, run the workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hpo.errors import HpoError, NoTrialCompleted
from hpo.ledger import record as record_data
from hpo.prepare import prepare
from hpo.run._processes import _run_in_process, _run_processes
from hpo.run._result import Progress, RunResult, _fmt_states, snapshot
from hpo.run._study import open_study, top_up_budget
from hpo.run._worker import HeldWarnings, _no_interrupt, _warner, _WorkerArgs, fail_stale, open_tracking
from hpo.storage import study_lock
from hpo.tracking import read_tracked
from hpo.workspace import Workspace


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

    opened, tracked = read_tracked(prep.workspace, prep.data.version)
    record_data(url, prep.data, prep.space.study, prep.where, tracked)  # one version name, one set of digests
    held = HeldWarnings(_warner(progress))
    with study_lock(url, prep.space.study):  # one process at a time creates the study and fills its budget
        study, created = open_study(prep, url)
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
    if result.after.states.get("COMPLETE", 0) == 0 or (result.ran > 0 and result.completed_now == 0):
        raise NoTrialCompleted(
            f"study {result.study!r}: no trial completed in this run "
            f"({_fmt_states(result.after.states)}); see the `error` attribute of the failed trials"
            + (f", e.g. {failures[0]}" if failures else "")
        )
    return result
