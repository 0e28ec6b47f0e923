"""Finding studies in a storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.errors import StudyError

if TYPE_CHECKING:
    import optuna


def hpo_study_names(url: str) -> list[str]:
    """Names of the studies hpo created in the storage at ``url``, oldest first."""
    import optuna

    from hpo.storage import open_storage

    storage = open_storage(url, create=False)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    return [s.study_name for s in summaries if "search_hash" in s.user_attrs]


def load_study(url: str, name: str) -> optuna.Study:
    """Load study ``name``, or say which studies the storage holds."""
    import optuna

    from hpo.storage import open_storage

    storage = open_storage(url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        raise StudyError(f"no study {name!r} in {url} (studies: {', '.join(names) or 'none'})") from None
