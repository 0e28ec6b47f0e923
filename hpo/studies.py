"""What `hpo studies` and `hpo show` report of the studies in a storage.

Finding a study (by name, the newest: ``load_study``, ``load_named_or_newest``) lives in
:mod:`hpo.storage`, below the verbs that all start there; older code and tests still import
``load_study``, ``complete_trials`` and ``trial_counts`` from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.schema import STUDY_BUDGET, TRIAL_FOLD_VALUES, TRIAL_INHERITED_FROM, TRIAL_MLFLOW_RUN, TRIAL_SEED, StudyRecord
from hpo.storage import complete_trials, load_study, open_storage, study_id, trial_by_number, trial_counts

if TYPE_CHECKING:
    import optuna


# --- `hpo studies` and `hpo show` ----------------------------------------------------------------


@dataclass
class StudyInfo:
    """One study as `hpo studies` lists it."""

    name: str
    direction: str
    metric: str | None
    data_version: str | None
    states: dict[str, int]
    best_value: float | None
    best_trial: int | None
    derived_from: str | None
    created_at: str | None
    by_hpo: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def study_infos(url: str) -> list[StudyInfo]:
    """Every study in the storage at ``url``, oldest first, without loading their trials."""
    import optuna

    storage = open_storage(url, create=False)
    out = []
    for frozen in sorted(storage.get_all_studies(), key=study_id):
        study = optuna.load_study(study_name=frozen.study_name, storage=storage)
        out.append(_info(study))
    return out


def _info(study: optuna.Study) -> StudyInfo:
    record = StudyRecord.from_study(study)
    direction = "/".join(d.name.lower() for d in study.directions)
    best = None
    if len(study.directions) == 1:
        complete = [t for t in complete_trials(study) if t.value is not None]
        if complete:
            pick = max if direction == "maximize" else min
            best = pick(complete, key=lambda t: t.value)  # type: ignore[arg-type, return-value]
    return StudyInfo(
        name=study.study_name,
        direction=direction,
        metric=record.metric,
        data_version=record.data_version,
        states=trial_counts(study),
        best_value=None if best is None else best.value,
        best_trial=None if best is None else best.number,
        derived_from=record.parent,
        created_at=record.created_at,
        by_hpo=record.by_hpo,
    )


@dataclass(frozen=True)
class BestTrialDetail:
    number: int
    value: float | None
    params: dict[str, Any]
    seed: int | None
    mlflow_run_id: str | None
    inherited_from: dict[str, Any] | None
    duration_seconds: float | None
    fold_values: list[float] | None = None  # with cv


@dataclass(frozen=True)
class StudyDetail:
    """`hpo show`: what `hpo studies` says of a study, plus provenance, budget, lineage and its best trial."""

    info: StudyInfo
    record: StudyRecord
    n_trials: int | None
    ancestors: list[str]  # the chain this study descends from, nearest first
    children: list[str]
    best: BestTrialDetail | None
    cv: dict[str, Any] | None = None  # the space's `cv`, if it cross-validates

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            **self.info.as_dict(),
            "n_trials": self.n_trials,
            "space_path": r.space_path,
            "model": r.model,
            "data_digests": r.digests,
            "src_version": r.src_version,
            "commit": r.commit,
            "dirty": r.dirty,
            "inherited": len(r.inherited_numbers),
            "warm_start": r.inherited,  # {study, mode, trials, run_first}, or None
            "lineage": {
                "ancestors": self.ancestors,
                "children": self.children,
                "reasons": (r.derived_from or {}).get("reasons", []),
            },
            "mlflow_parent_run_id": r.mlflow_parent_run_id,
            "cv": self.cv,
            "best": None if self.best is None else dict(self.best.__dict__),
        }


def show_study(url: str, name: str) -> StudyDetail:
    """One study in full: provenance, budget, lineage and the best trial."""
    import yaml

    study = load_study(url, name)
    record = StudyRecord.from_study(study)
    infos = {i.name: i for i in study_infos(url)}
    info = infos[name]
    ancestors, seen = [], {name}
    parent = info.derived_from
    while parent and parent not in seen:
        seen.add(parent)
        ancestors.append(parent)
        parent = infos[parent].derived_from if parent in infos else None
    space = yaml.safe_load(record.space_yaml or "{}") or {}
    best = None
    if info.best_trial is not None:
        t = trial_by_number(study, info.best_trial)
        best = BestTrialDetail(
            number=t.number,
            value=t.value,
            params=t.params,
            seed=t.user_attrs.get(TRIAL_SEED),
            mlflow_run_id=t.user_attrs.get(TRIAL_MLFLOW_RUN),
            inherited_from=t.user_attrs.get(TRIAL_INHERITED_FROM),
            duration_seconds=None if not t.duration else round(t.duration.total_seconds(), 3),
            fold_values=t.user_attrs.get(TRIAL_FOLD_VALUES),
        )
    children = [i.name for i in infos.values() if i.derived_from == name]
    # The budget of the latest run: a resume may have raised the space file's (or set it with --n-trials).
    budget = study.user_attrs.get(STUDY_BUDGET) or {}
    n_trials = budget["n_trials"] if "n_trials" in budget else space.get("n_trials")
    return StudyDetail(info, record, n_trials, ancestors, children, best, space.get("cv"))
