"""Data versions: load a dataset, split it into train/validation/test, and digest each split.

The version name (``v0.4.0``) is a hint; the proof is the content digest of each split, recorded
with every study and run. Two results are comparable only when their test digests are equal.

- :mod:`._config`: the typed `data` and `cv` sections of a space file (:class:`DataConfig`, :class:`CVConfig`);
- :mod:`._version`: :class:`DataVersion`, its splits and digests, the task;
- :mod:`._sources`: reading a source, splitting one table;
- :mod:`._checks`: the data checks;
- :mod:`._load`: :func:`load_data`, all of the above in order;
- :mod:`._folds`: k-fold cross-validation over train and validation merged.
"""

from hpo.data._config import VERSION_RE, ColumnSplit, CVConfig, DataConfig, RatioSplit, SplitFiles, data_rules
from hpo.data._folds import check_folds, folds, merged
from hpo.data._load import load_data
from hpo.data._sources import SKLEARN_DATASETS
from hpo.data._version import (
    DELIVERED,
    DIGEST_BASIS,
    MAX_CLASSES_FOR_INT_TARGET,
    SPLITS,
    DataVersion,
    Split,
    Task,
    digest,
    infer_task,
    is_delivered,
    label_key,
)

__all__ = [
    "CVConfig",
    "ColumnSplit",
    "DELIVERED",
    "DIGEST_BASIS",
    "DataConfig",
    "DataVersion",
    "MAX_CLASSES_FOR_INT_TARGET",
    "RatioSplit",
    "SKLEARN_DATASETS",
    "SPLITS",
    "Split",
    "SplitFiles",
    "Task",
    "VERSION_RE",
    "check_folds",
    "data_rules",
    "digest",
    "folds",
    "infer_task",
    "is_delivered",
    "label_key",
    "load_data",
    "merged",
]
