"""A data version: its splits, their digests, the task and the class order."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hpo.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


SPLITS = ("train", "validation", "test")

Task = Literal["regression", "classification"]

# An integer target with at most this many distinct values is read as class labels.
MAX_CLASSES_FOR_INT_TARGET = 20

# The overview key that marks digests of the data as delivered (every column, before `data.drop`).
# Digests recorded without it come from an hpo that digested the columns left after `data.drop`.
DIGEST_BASIS = "digest_basis"
DELIVERED = "delivered"


@dataclass(frozen=True)
class Split:
    """One split: features as read and as the model sees them, the target, and their digest."""

    X: pd.DataFrame  # the model's features (hpo.features.encode of ``raw``)
    y: pd.Series  # the target as read
    digest: str
    raw: pd.DataFrame  # the feature columns as read: what a served model is given
    index: pd.Index  # each row's label in its source table (for one table, its row position)
    dropped: pd.DataFrame | None = None  # the columns of `data.drop`, as read: part of the data as delivered

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
    drop: list[str] = field(default_factory=list)  # the study's `data.drop`: not the data version's, the study's choice
    columns: int = 0  # columns of the data as delivered, target included (the split column excluded)

    @property
    def digests(self) -> dict[str, str]:
        return {s: getattr(self, s).digest for s in SPLITS}

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    @property
    def cat_features(self) -> list[str]:
        from hpo.features import CATEGORICAL  # pandas at module level there

        return [c for c, k in self.kinds.items() if k == CATEGORICAL]

    @property
    def class_names(self) -> list[str]:
        """The classes as the model names them (text; unique, checked when loading)."""
        return [str(c) for c in self.classes]

    def matches(self, recorded: dict[str, str]) -> bool:
        """Whether a study's ``recorded`` digests are of this data: its delivered digests, or those an
        hpo before delivered digests recorded for the same study (its columns after its ``data.drop``).

        For one study (its ``drop`` fixed) either is proof: a delivered digest never equals one taken
        after dropping a column the data has. A version's ledger entry needs more: see hpo.ledger.
        """
        return dict(recorded) == self.digests or dict(recorded) == self.legacy_digests

    @functools.cached_property
    def legacy_digests(self) -> dict[str, str]:
        """The digests as an hpo before delivered digests computed them: of this study's features (the
        columns left after ``data.drop``) and the target. Equal to :attr:`digests` without ``drop``."""
        return self.digests if not self.drop else self.digests_of(self.features) or {}

    def digests_of(self, features: list[str]) -> dict[str, str] | None:
        """The digests of ``features`` and the target only (``None`` if one is not a delivered column):
        what an older hpo recorded for a study whose features they were."""
        import pandas as pd

        out = {}
        for s in SPLITS:
            split: Split = getattr(self, s)
            columns = pd.concat([split.raw, split.dropped], axis=1) if split.dropped is not None else split.raw
            if any(f not in columns.columns for f in features):
                return None
            out[s] = digest(pd.concat([columns[features], split.y], axis=1))
        return out

    def codes(self, y: pd.Series) -> np.ndarray:
        """Each label's position in :attr:`classes`: what every metric is scored on."""
        import pandas as pd

        codes = pd.Index(self.classes, dtype=object).get_indexer(pd.Index(y.astype(object)))
        if (codes < 0).any():
            unknown = y.iloc[int((codes < 0).argmax())]
            raise DataError(f"label {unknown!r} of {self.target!r} is not one of the study's classes {self.classes}")
        out: np.ndarray = codes
        return out

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
            "columns": self.columns,
            "digests": self.digests,
            DIGEST_BASIS: DELIVERED,
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
    try:
        hashed = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:
        # A column pandas cannot hash (lists, structs: a Parquet column the study drops) is hashed
        # as stable text; every other column as before, so their digests do not change.
        hashed = pd.util.hash_pandas_object(frame.apply(_hashable), index=False)
    h.update(hashed.to_numpy().tobytes())
    return h.hexdigest()


def _hashable(column: pd.Series) -> pd.Series:
    import pandas as pd

    try:
        pd.util.hash_pandas_object(column, index=False)
    except TypeError:
        return column.map(_stable_text)
    return column


def _stable_text(value: Any) -> str:
    import json

    def plain(v: Any) -> Any:
        if hasattr(v, "tolist"):
            return v.tolist()
        return str(v)

    return json.dumps(value, default=plain, sort_keys=True)


def is_delivered(overview: dict[str, Any] | None) -> bool:
    """Whether an overview's digests name the data as delivered (see :data:`DIGEST_BASIS`)."""
    return bool(overview) and overview.get(DIGEST_BASIS) == DELIVERED  # type: ignore[union-attr]


def label_key(value: Any) -> str:
    """A class label as text, the same for every representation of one label: 0, 0.0, ``np.int64(0)``
    and '0' read '0'; True and 'True' read 'True'; '01' and 'a' stay themselves.

    A model's ``classes_`` is matched to the study's classes by it: a training function may hand its
    library integers as floats, or labels as text, and still mean the same classes.
    """
    v = _py(value)
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    if isinstance(v, (int, float)):
        return repr(v)
    text = str(v)
    # Text that is an integral float as Python writes one ('2.0'): the label 2 written as text.
    if _INTEGRAL_FLOAT.match(text):
        return str(int(text.split(".")[0]))
    return text


_INTEGRAL_FLOAT = re.compile(r"^[+-]?\d+\.0+\Z")


def _py(value: Any) -> Any:
    """A plain Python value (labels are compared, ordered and recorded as JSON)."""
    return value.item() if hasattr(value, "item") else value


def _is_numeric(s: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(s)) and not pd.api.types.is_bool_dtype(s)
