"""What a run reports: where the study stands, and the outcome of one ``hpo run``."""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.schema import STUDY_INHERITED, TRIAL_SEED, TRIAL_SLOT
from hpo.storage import budget_slots, trial_counts

if TYPE_CHECKING:
    import optuna

    from hpo.prepare import Prepared

_FINISHED = ("COMPLETE", "PRUNED", "FAIL")
PROGRESS_SECONDS = 0.5  # at most this often a progress display gets a new snapshot
FULL_SECONDS = 5.0  # ... and a full one (the best trial read from the storage) at least this often


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
    slots_done: int | None = None  # budget slots whose trial ended for good; None: as `finished`

    @property
    def finished(self) -> int:
        """Finished trials of this study's own budget (inherited ones are not)."""
        return sum(self.states.get(s, 0) for s in _FINISHED) - self.inherited

    @property
    def done(self) -> int:
        """Budget slots done, as the progress bar counts them: a trial that failed and is retried
        in its slot (its worker died, or a second Ctrl-C) is one slot with the retry, not two."""
        return self.finished if self.slots_done is None else self.slots_done


@dataclass
class Tally:
    """Trials this run's workers finished, and how many of them completed."""

    finished: int = 0
    completed: int = 0

    def count(self, t: optuna.trial.FrozenTrial) -> None:
        self.finished += 1
        self.completed += t.state.name == "COMPLETE"


@dataclass(frozen=True)
class WorkersOutcome:
    """How this run's workers ended: stopped by a signal, the failures they reported, what they finished."""

    interrupted: bool
    failures: list[str]
    tally: Tally
    signal: int | None = None  # the stop signal that came first


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
    stop_signal: int | None = None  # the signal that stopped the run early, if one did

    @classmethod
    def of(
        cls,
        prep: Prepared,
        storage: str,
        *,
        created: bool,
        before: StudySnapshot,
        after: StudySnapshot,
        outcome: WorkersOutcome,
        elapsed_seconds: float,
    ) -> RunResult:
        """The outcome of one run of the study ``prep`` describes, in the storage at ``storage``."""
        return cls(
            study=prep.space.study,
            storage=storage,
            direction=prep.space.direction,
            metric=prep.space.metric,
            budget=prep.budget,
            created=created,
            before=before,
            after=after,
            elapsed_seconds=elapsed_seconds,
            interrupted=outcome.interrupted,
            failures=outcome.failures,
            finished_here=outcome.tally.finished,
            completed_here=outcome.tally.completed,
            stop_signal=outcome.signal,
        )

    @property
    def ran(self) -> int:
        return self.finished_here

    @property
    def completed_now(self) -> int:
        return self.completed_here

    @property
    def failed_here(self) -> int:
        """Trials that failed in this run (each one said why in its `error` attribute)."""
        return len(self.failures)

    @property
    def pruned_here(self) -> int:
        return max(0, self.finished_here - self.completed_here - self.failed_here)

    @property
    def note(self) -> str | None:
        """One line when this run completed no trial although nothing went wrong: its trials were all pruned."""
        if self.completed_here or not self.finished_here or self.failed_here:
            return None
        best = self.after.best
        still = "the study has no COMPLETE trial yet" if best is None else f"the best is still trial #{best.number}"
        return (
            f"no trial completed in this run: all {self.finished_here} were pruned (the pruner judged each worse than "
            f"earlier trials part-way through its fit); {still}"
        )

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
            "stop_signal": None if self.stop_signal is None else signal.Signals(self.stop_signal).name,
            "this_run": {
                "finished": self.finished_here,
                "completed": self.completed_here,
                "pruned": self.pruned_here,
                "failed": self.failed_here,
            },
            "note": self.note,
        }


class Progress:
    """What the runner tells a terminal; the default tells nothing."""

    def start(self, study: str, budget: int | None, snapshot: StudySnapshot, resumed: bool) -> None: ...
    def update(self, snapshot: StudySnapshot) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


def snapshot(study: optuna.Study) -> StudySnapshot:
    """Where ``study`` stands now, read whole from the storage."""
    states = trial_counts(study)
    best = None
    if states.get("COMPLETE"):
        t = study.best_trial
        best = BestTrial(t.number, float(t.value), dict(t.params), t.user_attrs.get(TRIAL_SEED))  # type: ignore[arg-type]
    inherited = len((study.user_attrs.get(STUDY_INHERITED) or {}).get("trials", []))
    return StudySnapshot(states, best, inherited, _slots_done(study) if states.get("FAIL") else None)


def _slots_done(study: optuna.Study) -> int | None:
    """Budget slots with a finished trial and none still to run (a retry WAITING or RUNNING), or
    None for a study without slots (a budget of time only). Only FAILs can be retried, so this
    one query is needed only when the study has some."""
    taken = budget_slots(study, TRIAL_SLOT)
    if not taken:
        return None
    ended = {slot for slot, state in taken if state in _FINISHED}
    pending = {slot for slot, state in taken if state in ("WAITING", "RUNNING")}
    return len(ended - pending)


class LiveSnapshots:
    """Snapshots for a progress display while trials end: at most one per ``interval`` seconds,
    with the best trial tracked from the trials this worker reports.

    A full :func:`snapshot` reads the best trial whole (``study.best_trial``: params, attributes,
    every per-step value) and the study's attributes, which cost more per trial than the claim.
    In between full ones (every ``full_every`` seconds, which also bring in better trials of other
    workers), the counts are one query and the best is the better of the last full snapshot's and
    the trials reported since. :meth:`full` is the exact snapshot for the last line.
    """

    def __init__(self, study: optuna.Study, interval: float = PROGRESS_SECONDS, full_every: float = FULL_SECONDS) -> None:
        self.study = study
        self.interval = interval
        self.full_every = full_every
        self._shown = -math.inf  # time.monotonic() of the last snapshot given
        self._base: StudySnapshot | None = None  # the last full snapshot
        self._based_at = -math.inf
        self._best: BestTrial | None = None
        self._maximize: bool | None = None

    def seen(self, t: optuna.trial.FrozenTrial) -> None:
        """Note a trial that ended: a COMPLETE one better than the best so far becomes the best."""
        if self._base is None or t.state.name != "COMPLETE" or t.value is None:
            return  # before the first full snapshot, which reads the best itself
        if self._maximize is None:
            self._maximize = self.study.direction.name == "MAXIMIZE"
        value = float(t.value)
        if self._best is None or (value > self._best.value if self._maximize else value < self._best.value):
            self._best = BestTrial(t.number, value, dict(t.params), t.user_attrs.get(TRIAL_SEED))

    def due(self) -> StudySnapshot | None:
        """A snapshot if ``interval`` has passed since the last one, else None."""
        now = time.monotonic()
        if now - self._shown < self.interval:
            return None
        self._shown = now
        if self._base is None or now - self._based_at >= self.full_every:
            return self.full()
        states = trial_counts(self.study)
        return StudySnapshot(states, self._best, self._base.inherited, _slots_done(self.study) if states.get("FAIL") else None)

    def full(self) -> StudySnapshot:
        """A full snapshot, read whole from the storage; the best from now on starts from its best."""
        s = snapshot(self.study)
        self._base, self._best, self._based_at = s, s.best, time.monotonic()
        return s
