"""Claiming a budget slot's trial, and putting back the trials whose worker died or was aborted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from hpo.schema import TRIAL_ERROR, TRIAL_FAILED_TRIAL, TRIAL_RETRY_HISTORY, TRIAL_SEED, TRIAL_SLOT
from hpo.storage import (
    MAX_RETRY,
    cache_claimed,
    change_state,
    claim_waiting,
    heartbeat_enabled,
    stale_trial_ids,
    storage_of,
    study_id,
    timing,
    trial_counts,
    waiting_slots,
)

if TYPE_CHECKING:
    import optuna

    from hpo.tracking import LiveProjection


STALE_ERROR = "its worker stopped sending heartbeats (killed or lost); retried in the same budget slot"


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
            tracker.finish(frozen)
        failed.append(frozen.number)
    return failed


class StaleChecks:
    """:func:`fail_stale` on a timer: the first call, then at most once per ``interval`` seconds
    (half the storage's grace period), or at once after :meth:`soon`.

    A dead worker's trial is stale only a grace period after its last heartbeat, so checking
    before every claim (a query or two per trial) finds it no sooner than checking every half
    grace period: it is requeued at most that much later while other slots keep the workers busy.
    A worker with nothing to claim calls :meth:`soon`, so a slot that is all the budget has left
    is requeued as fast as before.
    """

    def __init__(self, study: optuna.Study, tracker: LiveProjection | None = None, interval: float | None = None) -> None:
        self.study = study
        self.tracker = tracker
        self.interval = timing("HPO_GRACE_PERIOD") / 2 if interval is None else interval
        self._next = 0.0  # time.monotonic() from which the next check is due: the first call checks

    def __call__(self) -> list[int]:
        """Fail and requeue the stale trials if a check is due; the numbers of those failed here."""
        now = time.monotonic()
        if now < self._next:
            return []
        self._next = now + self.interval
        return fail_stale(self.study, self.tracker)

    def soon(self) -> None:
        """Make the next call check."""
        self._next = 0.0


class Claim(NamedTuple):
    """A claimed trial: its id, and whether its first heartbeat and start attributes were written with the claim."""

    trial_id: int
    started: bool


def claim_trial(study: optuna.Study, budget: int | None, start: Callable[[int], dict[str, Any]] | None = None) -> Claim | None:
    """Atomically take a WAITING trial of the budget (or, without a budget, create one).

    ``start(trial number)``: the attributes a trial gets when it starts (where it has none yet), written
    in the claim's transaction with its first heartbeat where the storage allows (:attr:`Claim.started`).
    """
    storage = storage_of(study)
    for waiting in waiting_slots(study, TRIAL_SLOT):  # ids and slots only, in one query
        if budget is not None and (waiting.slot is None or waiting.slot >= budget):
            continue  # enqueued by someone else, or left over from a larger budget
        won, started = claim_waiting(storage, waiting.trial_id, start(waiting.number) if start else {})
        if won:  # one worker wins
            cache_claimed(study, waiting)
            return Claim(waiting.trial_id, started)
    if budget is None:
        return Claim(storage.create_new_trial(study_id(study)), False)
    return None


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
