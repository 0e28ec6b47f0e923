"""A data version: its splits, their digests, the task and the class order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hpo.errors import DataError
from hpo.features import CATEGORICAL

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


SPLITS = ("train", "validation", "test")

Task = Literal["regression", "classification"]

# An integer target with at most this many distinct values is read as class labels.
MAX_CLASSES_FOR_INT_TARGET = 20


@dataclass(frozen=True)
class Split:
    """One split: features as read and as the model sees them, the target, and their digest."""

    X: pd.DataFrame  # the model's features (hpo.features.encode of ``raw``)
    y: pd.Series  # the target as read
    digest: str
    raw: pd.DataFrame  # the feature columns as read: what a served model is given
    index: pd.Index  # each row's label in its source table (for one table, its row position)

    @property
    def rows(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class DataVersion:
    """A loaded, split and digested data version."""

    version: str
    source: str
    target: str
    task: Task
    train: Split
    validation: Split
    test: Split
    kinds: dict[str, str] = field(default_factory=dict)  # feature name -> hpo.features kind, in column order
    classes: list[Any] = field(default_factory=list)  # the study's class order (classification)

    @property
    def digests(self) -> dict[str, str]:
        return {s: getattr(self, s).digest for s in SPLITS}

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    @property
    def cat_features(self) -> list[str]:
        return [c for c, k in self.kinds.items() if k == CATEGORICAL]

    @property
    def class_names(self) -> list[str]:
        """The classes as the model names them (text; unique, checked when loading)."""
        return [str(c) for c in self.classes]

    def codes(self, y: pd.Series) -> np.ndarray:
        """Each label's position in :attr:`classes`: what every metric is scored on."""
        import pandas as pd

        codes = pd.Index(self.classes, dtype=object).get_indexer(pd.Index(y.astype(object)))
        if (codes < 0).any():
            unknown = y.iloc[int((codes < 0).argmax())]
            raise DataError(f"label {unknown!r} of {self.target!r} is not one of the study's classes {self.classes}")
        return codes

    def overview(self) -> dict[str, object]:
        """Rows, columns, target, classes and digests: the facts that describe this data version."""
        return {
            "version": self.version,
            "source": self.source,
            "target": self.target,
            "task": self.task,
            "features": len(self.features),
            "cat_features": self.cat_features,
            "kinds": self.kinds,
            "classes": self.classes,
            "rows": {s: getattr(self, s).rows for s in SPLITS},
            "digests": self.digests,
        }


def infer_task(y: pd.Series) -> Task:
    """Classification for text, boolean or few-valued integer targets; regression otherwise.

    Integral floats (counts, diabetes' target) stay regression; state ``task`` to override.
    """
    import pandas as pd

    if not _is_numeric(y):
        return "classification"
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= MAX_CLASSES_FOR_INT_TARGET:
        return "classification"
    return "regression"


def digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a split's content: column names, dtypes and every value, in row order."""
    import pandas as pd

    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _py(value: Any) -> Any:
    """A plain Python value (labels are compared, ordered and recorded as JSON)."""
    return value.item() if hasattr(value, "item") else value


def _is_numeric(s: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(s)) and not pd.api.types.is_bool_dtype(s)
