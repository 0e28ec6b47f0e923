"""The recipe of a trained model: everything that determines it, and nothing else.

``hpo promote`` builds it from a study and a trial; ``hpo reproduce`` from a promoted run alone
(its tags and params), so a run can be re-trained without the study.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hpo.data import DataVersion, folds, load_data
from hpo.errors import DataError, HpoError, StudyError
from hpo.ledger import RULE
from hpo.models import FitResult, cross_validate, fit_final, train
from hpo.schema import (
    STUDY_DIGESTS,
    STUDY_SPACE_YAML,
    STUDY_TASK,
    TAG_CV,
    TAG_DATA,
    TAG_DATA_VERSION,
    TAG_DIGEST_PREFIX,
    TAG_METRIC,
    TAG_MODEL,
    TAG_SEED,
    TAG_STRING_PARAMS,
    TAG_TASK,
    TRIAL_SEED,
)
from hpo.space import CVConfig, DataConfig, parse_space
from hpo.tracking._tags import normalized
from hpo.workspace import Workspace

if TYPE_CHECKING:
    import optuna

    from hpo.tracking import Run


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained model, and nothing else."""

    model: str
    metric: str
    task: str
    data: DataConfig
    data_version: str
    digests: dict[str, str]
    params: dict[str, Any]
    seed: int
    cv: CVConfig | None = None  # scored by k-fold cross-validation, not on the validation split

    @classmethod
    def from_trial(cls, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> Recipe:
        attrs = study.user_attrs
        if not attrs.get(STUDY_SPACE_YAML) or not attrs.get(STUDY_DIGESTS):
            raise StudyError(
                f"study {study.study_name!r} was not created by hpo: it records no space or data digests to re-train from"
            )
        space = parse_space(attrs[STUDY_SPACE_YAML], f"study {study.study_name!r} (recorded space)", strict=False)
        seed = trial.user_attrs.get(TRIAL_SEED)
        if seed is None:
            raise StudyError(
                f"trial #{trial.number} of study {study.study_name!r} records no `seed` attribute; it cannot be re-run exactly"
            )
        return cls(
            model=space.model,
            metric=space.metric,
            task=str(attrs.get(STUDY_TASK) or space.task),
            data=space.data,
            data_version=space.data.version,
            digests=dict(attrs[STUDY_DIGESTS]),
            params={**space.fixed, **trial.params},
            seed=int(seed),
            cv=space.cv,
        )

    @classmethod
    def from_run(cls, run: Run) -> Recipe:
        """Read a promoted run's recipe from its tags and params alone."""

        tags, rid = normalized(run.data.tags), run.info.run_id
        missing = [t for t in (TAG_DATA, TAG_MODEL, TAG_METRIC, TAG_TASK, TAG_SEED, TAG_DATA_VERSION) if t not in tags]
        if missing:
            raise HpoError(f"run {rid}: tag `{missing[0]}` is missing; only runs made by `hpo promote` can be reproduced")
        try:
            data = DataConfig.model_validate(json.loads(tags[TAG_DATA]))
        except (ValueError, ValidationError) as e:
            raise HpoError(f"run {rid}: tag `{TAG_DATA}` is not a valid data section: {str(e).splitlines()[0]}") from None
        try:
            cv = CVConfig.model_validate(json.loads(tags[TAG_CV])) if tags.get(TAG_CV) else None
        except (ValueError, ValidationError) as e:
            raise HpoError(f"run {rid}: tag `{TAG_CV}` is not a valid cv section: {str(e).splitlines()[0]}") from None
        strings = set(json.loads(tags.get(TAG_STRING_PARAMS) or "[]"))
        params = {k: (v if k in strings else decode_param(v)) for k, v in run.data.params.items()}
        return cls(
            model=tags[TAG_MODEL],
            metric=tags[TAG_METRIC],
            task=tags[TAG_TASK],
            data=data,
            data_version=tags[TAG_DATA_VERSION],
            digests={k.removeprefix(TAG_DIGEST_PREFIX): v for k, v in tags.items() if k.startswith(TAG_DIGEST_PREFIX)},
            params=params,
            seed=int(tags[TAG_SEED]),
            cv=cv,
        )

    def tags(self) -> dict[str, str]:
        cv = {TAG_CV: json.dumps(self.cv.model_dump(mode="json"), sort_keys=True)} if self.cv else {}
        return {
            **cv,
            TAG_DATA: json.dumps(self.data.model_dump(mode="json"), sort_keys=True),
            TAG_MODEL: self.model,
            TAG_METRIC: self.metric,
            TAG_TASK: self.task,
            TAG_SEED: str(self.seed),
            TAG_STRING_PARAMS: json.dumps(sorted(k for k, v in self.params.items() if isinstance(v, str))),
        }

    def load_data(self, ws: Workspace, what: str) -> DataVersion:
        """Load the data and check it is the data the recipe was made on (split digests)."""
        data = load_data(self.data, task=self.task, base=ws.root, where=what)  # type: ignore[arg-type]
        changed = [] if data.matches(self.digests) else [s for s, d in data.digests.items() if self.digests.get(s) != d]
        if changed:
            first = changed[0]
            raise DataError(
                f"{what}: the data changed since it was recorded: the {', '.join(changed)} split digest differs "
                f"(recorded {self.digests.get(first, '?')[:12]}, now {data.digests[first][:12]} for {first}); "
                f"re-training on other data proves nothing: restore {self.data_version}'s data, or name this data a new "
                f"version and run a study on it ({RULE})"
            )
        return data

    def train(self, data: DataVersion, final: bool = True) -> FitResult:
        """Re-train as the trial did. With ``cv``: the folds again (``objective`` and ``metrics`` are
        their means), then, if ``final``, the model to keep, fit on train + validation."""
        if self.cv is None:
            return train(model=self.model, metric=self.metric, data=data, params=self.params, seed=self.seed)
        scored = cross_validate(
            model=self.model, metric=self.metric, folds=folds(data, self.cv), params=self.params, seed=self.seed
        )
        model, seconds = None, scored.fit_seconds
        if final:
            kept = fit_final(
                model=self.model,
                metric=self.metric,
                data=data,
                params=self.params,
                seed=self.seed,
                best_iterations=scored.best_iterations,
            )
            model, seconds = kept.model, seconds + kept.fit_seconds
        return FitResult(
            model=model,
            objective=scored.objective,
            metrics=scored.metrics,
            best_iteration=scored.best_iteration,  # as the trial records it
            fit_seconds=seconds,
            stopped_at=None,
            fold_values=scored.fold_values,
        )


def encode_param(value: Any) -> str:
    """An MLflow param value that :func:`decode_param` turns back into ``value``."""
    return value if isinstance(value, str) else json.dumps(value)


def decode_param(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
