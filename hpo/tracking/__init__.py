"""MLflow experiment spaces: the projection of Optuna studies for people.

Optuna's storage is the truth; MLflow is rebuilt from it (``hpo sync``). Each study has one
parent run in its HPO space and one child run per finished trial. A child run is created when
its trial starts, so that the RUNNING trial can store the run id (Optuna freezes a trial's
attributes once it finishes); when the trial ends, everything else goes in one ``log_batch``.

Nothing in this module writes to the data-version space except its description.

- :mod:`._store`: opening the tracking store (under a lock, failing fast) and repairing it;
- :mod:`._client`: the client and provenance tags (experiment names are the workspace's);
- :mod:`._projection`: a study's runs in its HPO space;
- :mod:`._data_space`: the data-version experiment's description;
- :mod:`._sync`: ``hpo sync``.
"""

from typing import TYPE_CHECKING

from hpo.tracking._client import client, ensure_experiment, is_reachable, package_versions, provenance_tags, tracking_uri
from hpo.tracking._data_space import Tracked, data_description, describe_data_experiment, read_tracked, recorded_digests
from hpo.tracking._live import LiveProjection
from hpo.tracking._projection import StudyProjection
from hpo.tracking._store import TrackingUnavailable, repair_store, unavailable
from hpo.tracking._sync import SyncResult, sync_study
from hpo.workspace import DEFAULT_TEMPLATES, experiment_names  # [tool.hpo] settings, named here too

__all__ = [
    "DEFAULT_TEMPLATES",
    "LiveProjection",
    "StudyProjection",
    "SyncResult",
    "Tracked",
    "TrackingUnavailable",
    "client",
    "data_description",
    "describe_data_experiment",
    "recorded_digests",
    "ensure_experiment",
    "experiment_names",
    "is_reachable",
    "package_versions",
    "provenance_tags",
    "read_tracked",
    "repair_store",
    "sync_study",
    "tracking_uri",
    "unavailable",
]

if TYPE_CHECKING:
    # The client's and a run's types, for code outside tracking that passes them on (only tracking imports
    # mlflow). Exported to the type checker alone: they do not exist at run time.
    from mlflow import MlflowClient as Client
    from mlflow.entities import Run

    __all__ += ["Client", "Run"]
