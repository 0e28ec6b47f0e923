"""Reading a study's trials fast: counts per state, COMPLETE trials, and a study view over them.

Part of ``storage/_optuna*``, where every use of Optuna's private API and all of hpo's SQL against
Optuna's tables live (see ``_optuna``): an Optuna upgrade that moves them breaks these modules only.
Each fast path falls back to Optuna's public (slower) accessors when the storage is not an RDB one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.storage._optuna import rdb_backend, storage_of, study_id, trial_id
from hpo.storage._outage import retry_on

if TYPE_CHECKING:
    import optuna


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state (only states that occur), without loading the trials.

    Optuna's ``get_n_trials`` builds every trial of the study to count them (seconds at 5,000
    trials); for an RDB storage this is one ``GROUP BY`` query.
    """
    try:
        from optuna.storages._rdb.models import TrialModel
        from sqlalchemy import func
        from sqlalchemy.orm import Session

        storage = rdb_backend(storage_of(study))
        if storage is None:
            raise TypeError("not an RDB storage")

        def read(retried: bool) -> list[Any]:
            with Session(storage.engine) as session:
                return (
                    session.query(TrialModel.state, func.count(TrialModel.trial_id))
                    .filter(TrialModel.study_id == study_id(study))
                    .group_by(TrialModel.state)
                    .all()
                )

        counts = {state.name: int(n) for state, n in retry_on(storage, read)}
    except HpoError:
        raise  # the storage is unreachable
    except Exception:
        counts = {}
        for t in study.get_trials(deepcopy=False):
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
    from optuna.trial import TrialState

    return {s.name: counts[s.name] for s in TrialState if counts.get(s.name)}


def complete_trials(study: optuna.Study, attrs: Sequence[str] = ()) -> list[optuna.trial.FrozenTrial]:
    """The study's COMPLETE trials with their number, value, params and distributions only (and
    the user attributes named in ``attrs``).

    Analysis needs nothing else, and Optuna's ``get_trials`` also builds every intermediate value
    and attribute: on a 5,000-trial study with 50 reports per trial that is most of the time
    (see ``benchmarks/analyze_large_study.py``). For an RDB storage this reads the three tables
    it needs in three queries; any other storage (or an unexpected schema) uses ``get_trials``.
    """
    from optuna.trial import TrialState

    try:
        return retry_on(rdb_backend(storage_of(study)), lambda retried: _complete_trials_rdb(study, attrs))
    except HpoError:
        raise  # the storage is unreachable
    except Exception:
        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _complete_trials_rdb(study: optuna.Study, attrs: Sequence[str]) -> list[optuna.trial.FrozenTrial]:
    import json

    from optuna.distributions import json_to_distribution
    from optuna.storages._rdb.models import TrialModel, TrialParamModel, TrialUserAttributeModel, TrialValueModel
    from optuna.trial import FrozenTrial, TrialState
    from sqlalchemy.orm import Session

    storage = rdb_backend(storage_of(study))
    if storage is None:
        raise TypeError("not an RDB storage")
    with Session(storage.engine) as session:
        rows = (
            session.query(TrialModel.trial_id, TrialModel.number)
            .filter(TrialModel.study_id == study_id(study), TrialModel.state == TrialState.COMPLETE)
            .all()
        )
        ids = {trial_id: number for trial_id, number in rows}
        values = {
            trial_id: TrialValueModel.stored_repr_to_value(value, kind)
            for trial_id, value, kind in session.query(
                TrialValueModel.trial_id, TrialValueModel.value, TrialValueModel.value_type
            )
            .join(TrialModel, TrialModel.trial_id == TrialValueModel.trial_id)
            .filter(
                TrialModel.study_id == study_id(study), TrialModel.state == TrialState.COMPLETE, TrialValueModel.objective == 0
            )
        }
        # Keys typed Any: the stubs of SQLAlchemy 2.1 type the id columns Optional, those of 2.0 do not.
        params: dict[Any, list[tuple[str, float, str]]] = {}
        for trial_id, name, value, dist in (
            session.query(
                TrialParamModel.trial_id,
                TrialParamModel.param_name,
                TrialParamModel.param_value,
                TrialParamModel.distribution_json,
            )
            .join(TrialModel, TrialModel.trial_id == TrialParamModel.trial_id)
            .filter(TrialModel.study_id == study_id(study), TrialModel.state == TrialState.COMPLETE)
        ):
            params.setdefault(trial_id, []).append((name, value, dist))
        user: dict[Any, dict[str, Any]] = {}
        if attrs:
            for trial_id, key, value_json in (
                session.query(TrialUserAttributeModel.trial_id, TrialUserAttributeModel.key, TrialUserAttributeModel.value_json)
                .join(TrialModel, TrialModel.trial_id == TrialUserAttributeModel.trial_id)
                .filter(
                    TrialModel.study_id == study_id(study),
                    TrialModel.state == TrialState.COMPLETE,
                    TrialUserAttributeModel.key.in_(list(attrs)),
                )
            ):
                user.setdefault(trial_id, {})[key] = json.loads(value_json)
    parsed: dict[str, object] = {}
    out = []
    for trial_id, number in sorted(ids.items(), key=lambda kv: kv[1]):
        dists, ps = {}, {}
        for name, internal, dist_json in params.get(trial_id, []):
            d = parsed.get(dist_json) or parsed.setdefault(dist_json, json_to_distribution(dist_json))
            dists[name] = d
            ps[name] = d.to_external_repr(internal)  # type: ignore[attr-defined]
        out.append(
            FrozenTrial(
                number=number,
                state=TrialState.COMPLETE,
                value=values.get(trial_id),
                datetime_start=None,
                datetime_complete=None,
                params=ps,
                distributions=dists,  # type: ignore[arg-type]
                user_attrs=user.get(trial_id, {}),
                system_attrs={},
                intermediate_values={},
                trial_id=trial_id,
            )
        )
    return out


def study_view(trials: Sequence[optuna.trial.FrozenTrial], direction: str) -> Any:
    """Trials in memory as the study Optuna's importance evaluators read (see :class:`_TrialsView`)."""
    return _TrialsView(trials, direction)


class _TrialsView:
    """What Optuna's importance evaluators read of a study (``get_trials``, ``directions``), over
    trials already in memory: copying 5,000 trials into an in-memory study took 3.8 s of 4.2."""

    def __init__(self, trials: Sequence[optuna.trial.FrozenTrial], direction: str) -> None:
        from optuna.study import StudyDirection

        self._trials = list(trials)
        if len({trial_id(t) for t in self._trials}) < len(self._trials):
            # Trials not read from a storage (e.g. made with create_trial) share the id -1, and
            # PED-ANOVA tells its top trials apart by id.
            import copy

            self._trials = [copy.copy(t) for t in self._trials]
            for i, t in enumerate(self._trials):
                t._trial_id = i
        self.direction = StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE
        self.directions = [self.direction]

    def _is_multi_objective(self) -> bool:
        return False

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self._trials if states is None or t.state in states]

    _get_trials = get_trials
