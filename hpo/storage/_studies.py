"""Finding a study in a storage: by name, the newest, or the ones hpo created.

Every verb starts here, so it sits with the storage rather than with `hpo studies` (hpo.studies),
which lists and shows studies for the CLI and is a layer above the verbs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.errors import StudyError, option
from hpo.schema import StudyRecord
from hpo.secrets import masked_url
from hpo.storage._open import open_storage
from hpo.storage._optuna import study_id

if TYPE_CHECKING:
    import optuna


def hpo_study_names(url: str) -> list[str]:
    """Names of the studies hpo created in the storage at ``url``, oldest first."""

    storage = open_storage(url, create=False)
    return [s.study_name for s in storage.get_all_studies() if StudyRecord.from_attrs(s.user_attrs).by_hpo]


def newest_study_name(url: str) -> str | None:
    """The most recently created study in the storage at ``url``."""
    studies = open_storage(url, create=False).get_all_studies()
    return max(studies, key=study_id).study_name if studies else None


def load_named_or_newest(url: str, name: str | None) -> optuna.Study:
    """Study ``name``, or the most recently created one when ``name`` is None (the verbs' default)."""
    name = name or newest_study_name(url)
    if name is None:
        raise StudyError(f"no studies in {masked_url(url)}; run `hpo run SPACE.yaml` first, or pass {option('storage')}")
    return load_study(url, name)


def study_names(url: str) -> list[str]:
    import optuna

    return optuna.get_all_study_names(open_storage(url, create=False))


def load_study(url: str, name: str) -> optuna.Study:
    """Load study ``name``, or say which studies the storage holds."""
    import optuna

    storage = open_storage(url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise StudyError(f"no study {name!r} in {masked_url(url)} (studies: {', '.join(names) or 'none'})") from None
