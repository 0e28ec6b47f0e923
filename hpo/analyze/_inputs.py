"""What ``hpo analyze`` is asked and what it reads: its options, checked whole, and the study, read once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

from hpo.analyze._noise import MAX_NOISE_REFITS
from hpo.analyze._results import AnalysisSettings, ImportanceMethod
from hpo.errors import HpoError, StudyError, option
from hpo.models import ModelSpec, model_spec
from hpo.schema import TRIAL_FOLD_VALUES, StudyRecord
from hpo.space import NAME_RE
from hpo.storage import complete_trials, load_named_or_newest, trial_counts

if TYPE_CHECKING:
    import optuna

IMPORTANCE_METHODS = ("ped-anova", "fanova", "mdi")


@dataclass(frozen=True)
class AnalyzeOptions:
    """What :func:`analyze_study` was asked for, checked whole before anything is read or written."""

    params: tuple[str, ...] | None
    top: float
    min_trials: int
    importance: str | None
    write: bool
    name: str | None
    warm_start: bool
    noise_refits: int | None
    storage: str | None
    data_version: str | None
    data_source: str | None

    def settings(self, model: ModelSpec | None) -> AnalysisSettings:
        """The analysis' thresholds, within the hard limits of the study's ``model`` (None: unknown here)."""
        return AnalysisSettings(
            top=self.top,
            min_trials=self.min_trials,
            hard_limits=dict(model.hard_limits) if model else None,
            importance=cast("ImportanceMethod | None", self.importance),  # checked by check()
        )

    def check(self) -> None:
        """Raise an ``HpoError`` naming the first option out of its range."""
        if not 0 < self.top < 1:
            raise HpoError(f"{option('top')} must lie strictly between 0 and 1 (a fraction of trials), but got {self.top}")
        if self.min_trials < 3:
            raise HpoError(f"{option('min_trials')} must be >= 3, but got {self.min_trials}")
        refits = self.noise_refits
        if refits is not None and (refits < 0 or refits == 1 or refits > MAX_NOISE_REFITS):
            raise HpoError(
                f"{option('noise_refits')} must be 0 (no noise floor) or 2 to {MAX_NOISE_REFITS} (each is one more fit), "
                f"but got {refits}"
            )
        if self.importance is not None and self.importance not in IMPORTANCE_METHODS:
            raise HpoError(
                f"{option('importance')} must be one of {', '.join(IMPORTANCE_METHODS)} or none, but got {self.importance!r}"
            )
        if self.name is not None and not NAME_RE.match(self.name):
            raise HpoError(
                f"{option('name')} must start with a letter or digit and hold only letters, digits, '.', '_', '-', "
                f"but got {self.name!r}"
            )
        if self.data_source is not None and self.data_version is None:
            raise HpoError(f"{option('data_source')} needs {option('data_version')}: a new source is a new data version")


@dataclass(frozen=True)
class StudyInput:
    """The study to analyse, read once: its COMPLETE trials, trial counts by state, and what hpo recorded."""

    study: optuna.Study
    trials: list[optuna.trial.FrozenTrial]
    counts: dict[str, int]
    record: StudyRecord
    model: ModelSpec | None  # None where the model family cannot be imported here
    metric: str
    direction: Literal["maximize", "minimize"]

    @property
    def n_trials(self) -> int:
        """Trials in every state."""
        return sum(self.counts.values())

    @property
    def hpo_study(self) -> bool:
        """Whether hpo ran the study (it recorded the space): only then can it be re-fitted or derived from."""
        return bool(self.record.space_yaml)


def open_study(url: str, name: str | None, params: Sequence[str] | None) -> StudyInput:
    """The study ``name`` (default: the newest) with at least one COMPLETE trial and every one of ``params``."""
    s = _load(url, name)
    if len(s.directions) != 1:
        raise StudyError(
            f"study {s.study_name!r} has {len(s.directions)} objectives; hpo analyze handles single-objective studies"
        )
    trials = complete_trials(s, attrs=(TRIAL_FOLD_VALUES,))
    counts = trial_counts(s)
    if not trials:  # nothing to analyse: an empty table and a report would read as a finding
        states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
        raise StudyError(f"study {s.study_name!r} has no COMPLETE trial: {sum(counts.values())} trials, states {states}")
    known = {n for t in trials for n in t.distributions}
    for p in params or ():
        if p not in known:
            raise HpoError(
                f"{option('params', p)}: study {s.study_name!r} has no parameter {p!r} "
                f"(it has: {', '.join(sorted(known)) or 'none'})"
            )
    record = StudyRecord.from_study(s)
    return StudyInput(
        study=s,
        trials=trials,
        counts=counts,
        record=record,
        model=_family(str(record.model)),
        metric=str(record.metric or "objective"),
        direction="maximize" if s.direction.name == "MAXIMIZE" else "minimize",
    )


def _load(url: str, name: str | None) -> optuna.Study:
    return load_named_or_newest(url, name)


def _family(model: str) -> ModelSpec | None:
    """The study's model family (for its hard limits), or None where it cannot be imported here."""
    try:
        return model_spec(model)
    except ValueError:
        return None
