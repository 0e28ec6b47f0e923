"""A study's trials in bulk: counts per state, COMPLETE trials, a study view over them, the WAITING
trials a claim picks from, and WAITING trials added in one transaction.

Part of ``storage/_optuna*``, where every use of Optuna's private API and all of hpo's SQL against
Optuna's tables live (see ``_optuna``): an Optuna upgrade that moves them breaks these modules only.
Each fast path falls back to Optuna's public (slower) accessors when the storage is not an RDB one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from hpo.errors import HpoError
from hpo.schema import TRIAL_CREATED_BY
from hpo.storage._optuna import blank_trial, rdb_backend, rdb_read, storage_of, study_id, trial_id
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


class Waiting(NamedTuple):
    """A WAITING trial as a claim sees it: its id and number, and its budget slot (None: it has none)."""

    trial_id: int
    number: int
    slot: int | None


def waiting_slots(study: optuna.Study, key: str) -> list[Waiting]:
    """The study's WAITING trials with their budget slot (the user attribute ``key``), oldest first.

    Optuna's ``get_all_trials(states=WAITING)`` builds each waiting trial whole (params, attributes,
    and the cache's other unfinished trials too) before every claim; a claim needs only the ids and
    slots, one query on an RDB storage. A claimed trial goes through :func:`cache_claimed`.
    """
    rows = rdb_read(study, lambda backend, sid: _waiting_slots_rdb(backend, sid, key))
    if rows is not None:
        return rows
    from optuna.trial import TrialState

    waiting = storage_of(study).get_all_trials(study_id(study), deepcopy=False, states=(TrialState.WAITING,))
    return [Waiting(trial_id(t), t.number, _slot(t.user_attrs.get(key))) for t in waiting]


def _waiting_slots_rdb(backend: Any, sid: int, key: str) -> list[Waiting]:
    import json

    from optuna.storages._rdb.models import TrialModel, TrialUserAttributeModel
    from optuna.trial import TrialState
    from sqlalchemy import and_
    from sqlalchemy.orm import Session

    attr = TrialUserAttributeModel
    with Session(backend.engine) as session:
        rows = (
            session.query(TrialModel.trial_id, TrialModel.number, attr.value_json)
            .outerjoin(attr, and_(attr.trial_id == TrialModel.trial_id, attr.key == key))
            .filter(TrialModel.study_id == sid, TrialModel.state == TrialState.WAITING)
            .order_by(TrialModel.trial_id)  # trial numbers follow ids: the order get_all_trials gives
            .all()
        )
    return [Waiting(int(tid), int(number), _slot(None if value is None else json.loads(value))) for tid, number, value in rows]


def _slot(value: Any) -> int | None:
    return None if value is None else int(value)


def cache_claimed(study: optuna.Study, claimed: Waiting) -> None:
    """Make Optuna's trial cache know a trial claimed from :func:`waiting_slots`.

    ``get_all_trials`` used to put it there; the cache's ``set_trial_param`` (every suggested
    parameter) looks a trial up in it. It goes in as an unfinished placeholder, which the cache
    never serves (it reads unfinished trials from the storage, and reads them again at its next
    refresh): the same state as after ``get_all_trials``, without reading the trials.
    """
    from optuna.storages import _CachedStorage
    from optuna.storages._cached_storage import _StudyInfo

    storage = storage_of(study)
    if not isinstance(storage, _CachedStorage):
        return
    sid = study_id(study)
    with storage._lock:
        info = storage._studies.setdefault(sid, _StudyInfo())
        if claimed.number in info.trials:
            return  # read as WAITING earlier: it is among the unfinished ones the cache reads again
        placeholder = blank_trial(claimed.number, claimed.trial_id)
        storage._add_trials_to_cache(sid, [placeholder])
        info.unfinished_trial_ids.add(claimed.trial_id)


def add_waiting_trials(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
    """Add ``trials`` (WAITING templates, as ``enqueue_trial`` makes them) to the study in one transaction.

    ``Study.add_trials`` commits each trial on its own (a study-row lock, a flush and a count each);
    a budget top-up adds several at once. On a storage that retries through an outage, the trials
    carry one creation token, so a retry whose lost reply had committed them adds none again.
    Any other storage adds them one by one through Optuna's public API.
    """
    backend = rdb_backend(storage_of(study))
    if backend is None or len(trials) < 2:
        study.add_trials(trials)
        return
    import copy
    import uuid

    from optuna.storages._rdb.models import StudyModel
    from optuna.storages._rdb.storage import _create_scoped_session

    for t in trials:
        t._validate()  # what Study.add_trial checks before it writes
    created_by = getattr(backend, "_trial_created_by", None)  # RetryingRDBStorage's lost-reply check
    token = uuid.uuid4().hex
    templates = [copy.deepcopy(t) for t in trials]
    if created_by is not None:
        for t in templates:
            t.system_attrs = {**t.system_attrs, TRIAL_CREATED_BY: token}
    sid = study_id(study)

    def write(retried: bool) -> None:
        if retried and created_by is not None and created_by(sid, token) is not None:
            return  # one transaction: finding one of them means all were committed
        with _create_scoped_session(backend.scoped_session) as session:
            StudyModel.find_or_raise_by_id(sid, session, for_update=True)  # trial numbers are counted here
            for t in templates:
                backend._get_prepared_new_trial(sid, t, session)

    if created_by is not None:
        retry_on(backend, write)
        return
    import random
    import time

    from optuna.exceptions import StorageInternalError

    for attempt in range(5):  # as Optuna's own _create_new_trial: a lock timeout or deadlock rolled it back
        try:
            write(False)
            return
        except StorageInternalError:
            if attempt == 4:
                raise
            time.sleep(random.random() * 2.0)
