"""Creating or resuming a study: its attributes (written once), the same-study check, the budget slots."""

from __future__ import annotations

import datetime
import json
import time
from typing import TYPE_CHECKING, Any

from hpo.errors import SpaceError, StudyError
from hpo.prepare import Prepared
from hpo.provenance import source_version
from hpo.samplers import make_pruner, make_sampler
from hpo.schema import (
    STUDY_COMMIT,
    STUDY_CREATED_AT,
    STUDY_DATA_DROP,
    STUDY_DATA_VERSION,
    STUDY_DERIVED_FROM,
    STUDY_DIGESTS,
    STUDY_DIRTY,
    STUDY_HPO_VERSION,
    STUDY_INHERITED,
    STUDY_METRIC,
    STUDY_MODEL,
    STUDY_OVERVIEW,
    STUDY_READY,
    STUDY_SEARCH_HASH,
    STUDY_SEED,
    STUDY_SPACE_PATH,
    STUDY_SPACE_SHA256,
    STUDY_SPACE_YAML,
    STUDY_SRC_VERSION,
    STUDY_TASK,
    TRIAL_SLOT,
)
from hpo.secrets import masked, masked_url
from hpo.space import BUDGET_KEYS, GridSamplerConfig, parse_space
from hpo.storage import add_waiting_trials, budget_slots, open_storage
from hpo.version import __version__
from hpo.warm_start import inherited_trials, source_trials
from hpo.workspace import relative_path

if TYPE_CHECKING:
    from collections.abc import Sequence

    import optuna

READY_WAIT_SECONDS = 60
BUDGET_WINDOW = 8  # budget slots kept enqueued ahead of the workers


def open_study(prep: Prepared, url: str, *, create: bool = True) -> tuple[optuna.Study, bool]:
    """Create the study (and write its attributes once) or load it and check it is the same.

    Without ``create`` the study must exist (a worker joins it): :class:`StudyError` otherwise."""
    import optuna

    space = prep.space
    storage = open_storage(url, create=create)
    sampler = make_sampler(space.sampler, space.seed)
    pruner = make_pruner(space.pruner, prep.max_iterations)
    if not create:
        try:
            study = optuna.load_study(study_name=space.study, storage=storage, sampler=sampler, pruner=pruner)
        except KeyError:
            raise StudyError(f"study {space.study!r} is no longer in {masked_url(url)} (deleted?)") from None
        _check_same_study(study, prep, url)
        return study, False
    inheritance = None
    if warm_started(prep) and not _exists(storage, space.study):
        inheritance = inherited_trials(prep, url)  # checked before anything is written
    try:
        study = optuna.create_study(
            storage=storage, study_name=space.study, direction=space.direction, sampler=sampler, pruner=pruner
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=space.study, storage=storage, sampler=sampler, pruner=pruner)
        _check_same_study(study, prep, url)
        if study.metric_names is None:  # a study made before hpo named its metric
            _name_metric(study, space.metric)
        return study, False
    _name_metric(study, space.metric)
    for key, value in study_attributes(prep).items():
        study.set_user_attr(key, value)
    if inheritance is not None:
        study.add_trials(inheritance.trials)
        # The parent's best configurations take the first budget slots (a grid enqueues its own points).
        first = [] if isinstance(space.sampler, GridSamplerConfig) else inheritance.first[: prep.budget]
        for slot, params in enumerate(first):
            study.enqueue_trial(params, user_attrs={TRIAL_SLOT: slot}, skip_if_exists=False)
        study.set_user_attr(STUDY_INHERITED, inheritance.record(ran_first=len(first)))
    # Written last: workers that found the study already created wait for it.
    study.set_user_attr(STUDY_READY, True)
    return study, True


def _name_metric(study: optuna.Study, metric: str) -> None:
    """Name the objective after the metric: optuna-dashboard's axes and Optuna's plots show it, not "Objective 0"."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # experimental since Optuna 3.2, stable in use
        study.set_metric_names([metric])


def warm_started(prep: Prepared) -> bool:
    d = prep.space.derived_from
    return d is not None and d.warm_start


def sampler_for(prep: Prepared, url: str, seed: int) -> optuna.samplers.BaseSampler:
    """The space's sampler; a warm-started ``cmaes`` one gets the parent's trials as its source."""
    source = source_trials(prep, url) if warm_started(prep) and prep.space.sampler.name == "cmaes" else None
    return make_sampler(prep.space.sampler, seed, source)


def _exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def study_attributes(prep: Prepared) -> dict[str, Any]:
    """What a study records of where it came from: space, data version, source version."""

    space, data = prep.space, prep.data
    src = source_version(prep.workspace.root)
    return {
        STUDY_SPACE_YAML: prep.loaded.text,
        STUDY_SPACE_SHA256: prep.loaded.text_sha256,
        STUDY_SPACE_PATH: relative_path(prep.loaded.path, prep.workspace.root),
        STUDY_SEARCH_HASH: space.search_hash(),
        STUDY_DATA_VERSION: data.version,
        STUDY_DIGESTS: data.digests,
        STUDY_OVERVIEW: data.overview(),
        STUDY_DATA_DROP: list(data.drop),
        STUDY_MODEL: space.model,
        STUDY_TASK: data.task,
        STUDY_METRIC: space.metric,
        STUDY_SEED: space.seed,
        STUDY_SRC_VERSION: src.src_version,
        STUDY_COMMIT: src.commit,
        STUDY_DIRTY: src.dirty,
        STUDY_DERIVED_FROM: None if space.derived_from is None else space.derived_from.model_dump(mode="json"),
        STUDY_HPO_VERSION: __version__,
        STUDY_CREATED_AT: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _check_same_study(study: optuna.Study, prep: Prepared, url: str) -> None:
    deadline = time.time() + READY_WAIT_SECONDS
    while not study.user_attrs.get(STUDY_READY):
        # Another worker is creating this study right now; its attributes follow in a moment.
        if time.time() > deadline:
            raise StudyError(
                f"study {study.study_name!r} exists in {masked_url(url)} but was not created by hpo (or its first run "
                "died while creating it); choose another `study` name in "
                f"{prep.where}, or delete it with "
                f"`optuna delete-study --study-name {study.study_name} --storage {masked_url(url)}`"
            )
        time.sleep(0.5)
    attrs = study.user_attrs
    if attrs.get(STUDY_SEARCH_HASH) != prep.space.search_hash():
        differs = _changed_keys(attrs.get(STUDY_SPACE_YAML), prep)
        raise StudyError(
            f"{prep.where}: study {study.study_name!r} already exists in {masked_url(url)} with a different search space "
            f"(from {attrs.get(STUDY_SPACE_PATH, '?')}{differs}); to search the new space, give it a new `study` name "
            "(only `n_trials` and `timeout` may change when resuming)"
        )
    if not prep.data.matches(attrs.get(STUDY_DIGESTS) or {}):  # or as an older hpo digested it
        changed = [s for s, d in prep.data.digests.items() if attrs.get(STUDY_DIGESTS, {}).get(s) != d]
        raise StudyError(
            f"{prep.where}: the data of study {study.study_name!r} changed since it was created "
            f"({', '.join(changed)} split digest differs); a new data version needs a new `data.version` and `study` name"
        )


def _changed_keys(recorded: Any, prep: Prepared, shown: int = 5) -> str:
    """``: `seed` 7 -> 8, ...``: the keys whose values differ from the space the study recorded, or ``""``.

    Compared as the search hash sees them (defaults filled in, budget and lineage left out); values are
    masked of passwords, as a data source may be a URL."""
    if not isinstance(recorded, str):
        return ""
    try:
        old = parse_space(recorded, "<recorded>", strict=False)
    except SpaceError:  # a space an older hpo recorded under rules since changed: say no more than before
        return ""
    exclude = set(BUDGET_KEYS) | {"derived_from"}
    changed = _diff(old.model_dump(mode="json", exclude=exclude), prep.space.model_dump(mode="json", exclude=exclude))
    if not changed:
        return ""
    parts = [f"`{key}` {_shown(a)} -> {_shown(b)}" for key, a, b in changed[:shown]]
    more = f" and {len(changed) - shown} more" if len(changed) > shown else ""
    return masked(": " + ", ".join(parts) + more)


_ABSENT = object()


def _diff(before: Any, after: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """The dotted keys whose values differ; a key on one side only is named where it is missing (`params.rsm`)."""
    # A variant that changed (a sampler's `name`, a param's `type`) is one change, not one per option.
    both = isinstance(before, dict) and isinstance(after, dict)
    if both and all(before.get(tag) == after.get(tag) for tag in ("name", "type")):
        out = []
        for k in dict.fromkeys([*before, *after]):
            out += _diff(before.get(k, _ABSENT), after.get(k, _ABSENT), f"{prefix}{k}.")
        return out
    return [] if before == after else [(prefix.rstrip("."), before, after)]


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = masked(json.dumps(value))  # before it is cut short, so that no part of a password is left
    return text if len(text) <= 60 else text[:57] + "..."


def top_up_budget(study: optuna.Study, prep: Prepared, window: int = BUDGET_WINDOW) -> int:
    """Enqueue WAITING trials for the next free budget slots, up to ``window`` waiting; returns how many.

    The budget is enqueued a few slots ahead of the workers, not all at once: memory and time
    stay independent of ``n_trials`` (a budget of 10**9 with a timeout is a valid study). Call it
    under :func:`hpo.storage.study_lock`, so two workers never enqueue the same slot. The window's
    trials are written in one transaction, each as ``Study.enqueue_trial`` makes it.
    """
    budget = prep.budget
    if budget is None:
        return 0
    from optuna.trial import TrialState, create_trial

    taken = budget_slots(study, TRIAL_SLOT)
    used = {slot for slot, _ in taken}
    waiting = sum(1 for slot, state in taken if state == "WAITING" and slot < budget)
    grid = _grid_order(prep) if isinstance(prep.space.sampler, GridSamplerConfig) else None
    added: list[optuna.trial.FrozenTrial] = []
    slot = 0
    while waiting + len(added) < window and slot < budget:
        if slot not in used:
            params = grid[slot] if grid is not None else {}
            # What Study.enqueue_trial adds ("fixed_params" is Optuna's key, which its Trial reads).
            added.append(
                create_trial(state=TrialState.WAITING, system_attrs={"fixed_params": params}, user_attrs={TRIAL_SLOT: slot})
            )
        slot += 1
    add_waiting_trials(study, added)
    return len(added)


def _grid_order(prep: Prepared) -> Sequence[dict[str, Any]]:
    return prep.space.grid_order()  # each point built when its slot is enqueued, never the whole grid
