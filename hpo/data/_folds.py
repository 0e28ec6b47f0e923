"""k-fold cross-validation: train and validation merged, split into folds; test is never touched.

Each fold is a :class:`DataVersion` whose train and validation are the fold's rows, so every model
family fits a fold exactly as it fits the study's own split. The folds depend on the data and the
``cv`` seed only, so every trial of a study is scored on the same folds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, overload

from hpo.data._version import DataVersion, Split
from hpo.errors import DataError

if TYPE_CHECKING:
    import numpy as np

    from hpo.data._config import CVConfig


def merged(data: DataVersion) -> DataVersion:
    """The data version with train and validation as one split: the final model's training rows.

    Its validation is the same rows (a family's fit may want an eval set; with the final model's
    iterations fixed from the folds, it decides nothing)."""
    rows = _concat(data.train, data.validation, "train+validation")
    return dataclasses.replace(data, train=rows, validation=rows)


def check_folds(data: DataVersion, cv: CVConfig, where: str) -> None:
    """Refuse a ``cv`` the rows cannot carry: more folds than rows, or (stratified) than a class's rows."""
    n = data.train.rows + data.validation.rows
    if cv.folds > n:
        raise DataError(f"{where}: `cv.folds` is {cv.folds}, more than the {n} rows of train + validation")
    if data.task == "classification":
        import pandas as pd

        counts = pd.Series(data.codes(pd.concat([data.train.y, data.validation.y]))).value_counts()
        code = int(counts.idxmin())
        if int(counts.min()) < cv.folds:
            raise DataError(
                f"{where}: `cv.folds` is {cv.folds}, but class {data.classes[code]!r} has {int(counts.min())} rows in "
                f"train + validation; stratified folds need at least one row of every class in each fold"
            )


class Folds(Sequence[DataVersion]):
    """The folds of a data version, made one at a time when asked for: the rows are held once (train
    and validation merged) with each fold's row positions, not copied once per fold."""

    def __init__(self, data: DataVersion, cv: CVConfig) -> None:
        import numpy as np
        from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

        self._data = data
        self._rows = _concat(data.train, data.validation, "train+validation")
        if data.task == "classification":
            splitter: RepeatedKFold | RepeatedStratifiedKFold = RepeatedStratifiedKFold(
                n_splits=cv.folds, n_repeats=cv.repeats, random_state=cv.seed
            )
            labels = data.codes(self._rows.y)
        else:
            splitter = RepeatedKFold(n_splits=cv.folds, n_repeats=cv.repeats, random_state=cv.seed)
            labels = np.zeros(self._rows.rows)
        self._positions = list(splitter.split(np.zeros(self._rows.rows), labels))

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, k: int) -> DataVersion: ...

    @overload
    def __getitem__(self, k: slice) -> list[DataVersion]: ...

    def __getitem__(self, k: int | slice) -> DataVersion | list[DataVersion]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        fit, held = self._positions[k]
        name = f"fold {k % len(self) if k < 0 else k}"
        return dataclasses.replace(
            self._data, train=_take(self._rows, fit, f"{name} train"), validation=_take(self._rows, held, name)
        )


def folds(data: DataVersion, cv: CVConfig) -> Folds:
    """The ``cv.folds * cv.repeats`` folds, in order: repeat by repeat, fold by fold."""
    return Folds(data, cv)


def _concat(a: Split, b: Split, name: str) -> Split:
    import pandas as pd

    return Split(
        X=pd.concat([a.X, b.X]),
        y=pd.concat([a.y, b.y]),
        digest=name,
        raw=pd.concat([a.raw, b.raw]),
        index=a.index.append(b.index),
    )


def _take(split: Split, positions: np.ndarray, name: str) -> Split:
    return Split(
        X=split.X.iloc[positions],
        y=split.y.iloc[positions],
        digest=name,
        raw=split.raw.iloc[positions],
        index=split.index[positions],
    )
