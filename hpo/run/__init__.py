"""Running a study: create or resume it, and run its trials in one or more workers.

The trial budget is the study's, not a worker's: ``n_trials`` numbered "budget slots", each a
WAITING trial in Optuna's storage, enqueued a few ahead of the workers under the study's lock.
A worker starts a trial only by claiming one, which the storage does atomically. N workers,
on one host or many, therefore finish exactly ``n_trials`` trials between them.
A trial whose worker died or was aborted is retried in its own slot.

- :mod:`._runner`: :func:`run_study`, the whole of ``hpo run``;
- :mod:`._join`: :func:`join_study`, a worker joining a study another process created (``hpo worker``);
- :mod:`._devices`: which GPUs each worker sees;
- :mod:`._study`: creating or resuming the study, its attributes, the budget slots;
- :mod:`._worker`: one worker's loop: run a claimed trial with heartbeats, abandon it on a stop;
- :mod:`._claims`: claiming a budget slot, requeueing it, failing stale trials;
- :mod:`._signals`: Ctrl-C, SIGTERM and SIGHUP: the graceful stop and the second signal that aborts;
- :mod:`._processes`: workers in this process or in several;
- :mod:`._objective` and :mod:`._suggest`: one trial is one training with suggested parameters;
- :mod:`._result`: what a run reports.
"""

from hpo.run._claims import claim_trial, fail_stale, requeue, running_trials
from hpo.run._join import join_study
from hpo.run._objective import Objective
from hpo.run._processes import watch_workers
from hpo.run._result import BestTrial, Progress, RunResult, StudySnapshot, snapshot
from hpo.run._runner import run_study
from hpo.run._study import open_study, study_attributes, top_up_budget
from hpo.run._suggest import suggest
from hpo.run._worker import run_trial

__all__ = [
    "BestTrial",
    "Objective",
    "Progress",
    "RunResult",
    "StudySnapshot",
    "claim_trial",
    "join_study",
    "fail_stale",
    "open_study",
    "requeue",
    "run_study",
    "run_trial",
    "running_trials",
    "snapshot",
    "study_attributes",
    "suggest",
    "top_up_budget",
    "watch_workers",
]
