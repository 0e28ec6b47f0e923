"""The MLflow client and the provenance tags of every run."""

from __future__ import annotations

import json
import platform
from typing import TYPE_CHECKING, Any

from hpo.schema import (
    EXPERIMENT_KIND,
    KIND_TRAINING,
    MLFLOW_GIT_COMMIT,
    STUDY_COMMIT,
    STUDY_DATA_DROP,
    STUDY_DATA_VERSION,
    STUDY_DIGESTS,
    STUDY_DIRTY,
    STUDY_SRC_VERSION,
    TAG_DATA_DROP,
    TAG_DATA_VERSION,
    TAG_DIGEST_PREFIX,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_HPO_VERSION,
    TAG_PACKAGE_PREFIX,
    TAG_SRC_VERSION,
)
from hpo.secrets import masked
from hpo.tracking._store import open_client, quiet_and_quick
from hpo.tracking._tags import written
from hpo.version import __version__

if TYPE_CHECKING:
    from mlflow import MlflowClient

_PACKAGES = ("optuna", "catboost", "mlflow", "scikit-learn", "numpy", "pandas")


def client() -> MlflowClient:
    """A client for ``MLFLOW_TRACKING_URI``, else MLflow's own default store in the workspace.

    Its store is created and answers; else ``TrackingUnavailable``, one line naming the URI and why.
    """
    quiet_and_quick()
    return open_client(tracking_uri())


def tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def ensure_experiment(c: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created (or restored) if need be, marked as a training experiment.

    MLflow 3's UI opens an experiment without a kind on its GenAI traces page; the kind tag makes
    it open hpo's runs table. An experiment made by an older hpo gets the tag when hpo next opens
    it; a kind someone chose by hand is kept.
    """
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            return c.create_experiment(name, tags=written({EXPERIMENT_KIND: KIND_TRAINING}))
        except Exception:
            # Another worker created it a moment ago.
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
    if EXPERIMENT_KIND not in exp.tags:
        c.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND, KIND_TRAINING)
    return exp.experiment_id


def mark_training(c: MlflowClient, names: list[str]) -> None:
    """Give the existing experiments among ``names`` the kind tag that :func:`ensure_experiment` gives a new one."""
    for name in names:
        exp = c.get_experiment_by_name(name)
        if exp is not None and exp.lifecycle_stage == "active" and EXPERIMENT_KIND not in exp.tags:
            c.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND, KIND_TRAINING)


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def provenance_tags(study_attrs: dict[str, Any]) -> dict[str, str]:
    """Tags every hpo run carries: data version, digests, source version, versions of things.

    Under their current names only: a write adds the old spellings (``hpo.tracking._tags.written``).
    """
    digests = study_attrs.get(STUDY_DIGESTS) or {}
    dirty = study_attrs.get(STUDY_DIRTY)
    tags = {
        TAG_DATA_VERSION: str(study_attrs.get(STUDY_DATA_VERSION, "unknown")),
        TAG_SRC_VERSION: str(study_attrs.get(STUDY_SRC_VERSION, "unknown")),
        TAG_GIT_COMMIT: str(study_attrs.get(STUDY_COMMIT, "unknown")),
        TAG_GIT_DIRTY: "unknown" if dirty is None else str(dirty).lower(),
        TAG_HPO_VERSION: __version__,
        **{f"{TAG_DIGEST_PREFIX}{split}": str(d) for split, d in digests.items()},
        **{f"{TAG_PACKAGE_PREFIX}{k}": v for k, v in package_versions().items()},
    }
    if study_attrs.get(STUDY_COMMIT) not in (None, "unknown"):
        tags[MLFLOW_GIT_COMMIT] = str(study_attrs[STUDY_COMMIT])
    if isinstance(study_attrs.get(STUDY_DATA_DROP), list):  # the study's feature choice; the digests name the data
        tags[TAG_DATA_DROP] = json.dumps(study_attrs[STUDY_DATA_DROP])
    return tags


def is_reachable(c: MlflowClient) -> str | None:
    """``None`` when the tracking store answers, else why not (one line)."""
    try:
        c.search_experiments(max_results=1)
        return None
    except Exception as e:  # any failure means: keep going, log later with `hpo sync`
        return f"{type(e).__name__}: {masked(str(e)).splitlines()[0][:200] if str(e) else ''}"
