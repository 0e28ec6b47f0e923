"""The data checks: what would make every trial fail, or its metrics meaningless, refused as one line
naming the file, the column or class, and the rule.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hpo.data._config import DataConfig, RatioSplit
from hpo.data._version import SPLITS, _is_numeric, _py, label_key
from hpo.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def _check_target_present(frames: dict[str, pd.DataFrame], config: DataConfig, where: str, names: dict[str, str]) -> None:
    for name, frame in frames.items():
        if config.target not in frame.columns:
            cols = ", ".join(map(str, frame.columns[:12]))
            raise DataError(f"{where}: `data.target` {config.target!r} is not a column of {names[name]} (columns: {cols})")


def _check_numeric_target(y: pd.Series, target: str, where: str, what: str) -> None:
    if not _is_numeric(y):
        from hpo.features import NUMERIC, first_misfit  # pandas at module level there

        misfit = first_misfit(y, NUMERIC)
        got = f"holds {misfit[1]!r} (row {misfit[0] + 1})" if misfit else f"is {y.dtype}"
        raise DataError(f"{where}: `task` is regression, but `data.target` {target!r} {got} in {what}")
    import numpy as np

    values = y.to_numpy(dtype="float64")
    limit = float(np.finfo(np.float32).max)
    big = np.abs(values) >= limit
    if big.any():
        raise DataError(
            f"{where}: `data.target` {target!r} holds {values[big][0]:g} (row {int(np.argmax(big)) + 1}) in {what}; "
            f"regression targets must lie within +-{limit:.3g} (CatBoost stores them as 32-bit floats)"
        )


def _check_target(y: pd.Series, target: str, where: str, what: str) -> None:
    """A target with no missing and no infinite values, and not dates."""
    import numpy as np
    import pandas as pd

    n_nan = int(y.isna().sum())
    if n_nan:
        raise DataError(f"{where}: `data.target` {target!r} has {n_nan} missing value(s) in {what}; targets must be complete")
    if pd.api.types.is_datetime64_any_dtype(y):
        raise DataError(f"{where}: `data.target` {target!r} holds dates in {what}; a target must be numbers or class labels")
    if _is_numeric(y):
        values = y.to_numpy(dtype="float64")
        bad = ~np.isfinite(values)
        if bad.any():
            shown = ", ".join(sorted({str(v) for v in values[bad]}))
            raise DataError(
                f"{where}: `data.target` {target!r} has {int(bad.sum())} non-finite value(s) ({shown}) in {what}"
                "; targets must be finite numbers"
            )


def _check_kinds(frame: pd.DataFrame, kinds: dict[str, str], where: str, what: str) -> None:
    """Each feature of another split has the kind it has in train (a column wholly missing fits any)."""
    from hpo.features import column_kind, first_misfit  # pandas at module level there

    for column, kind in kinds.items():
        values = frame[column]
        if values.isna().all() or column_kind(values) == kind:
            continue
        misfit = first_misfit(values, kind)
        got = f"holds {misfit[1]!r} (row {misfit[0] + 1})" if misfit else f"is {column_kind(values)} ({values.dtype})"
        raise DataError(
            f"{where}: column {column!r} {got} in {what}, but the column is {kind} in train; "
            "every split must give a column the same type"
        )


def _classes(frames: dict[str, pd.DataFrame], config: DataConfig, where: str, names: dict[str, str]) -> list[Any]:
    """The study's class order, after checking that every class reaches every split.

    A class missing from validation or test leaves its metrics undefined (and CatBoost's
    validation loss NaN); a class missing from train cannot be learned. Both are refused.
    """
    import pandas as pd

    target = config.target
    y_train = frames["train"][target]
    counts = {s: pd.Series([_py(v) for v in f[target]], dtype=object).value_counts() for s, f in frames.items()}
    classes = _class_order(y_train, list(counts["train"].index))
    if len(classes) < 2:
        raise DataError(
            f"{where}: `data.target` {target!r} has a single class in {names['train']}; classification needs two or more"
        )
    text: dict[str, Any] = {}
    for c in classes:  # a model's classes_ are matched to these by label_key: it must tell them apart
        if label_key(c) in text:
            raise DataError(
                f"{where}: `data.target` {target!r} holds classes {text[label_key(c)]!r} and {c!r}, which read the same "
                "as text; write each class one way"
            )
        text[label_key(c)] = c
    for split in ("validation", "test"):
        unknown = [c for c in counts[split].index if c not in counts["train"].index]
        if unknown:
            c = unknown[0]
            raise DataError(
                f"{where}: class {c!r} of `data.target` {target!r} appears in {names[split]} ({_rows(counts[split][c])}) but "
                f"not in the train split; a model cannot learn a class it never sees"
            )
    for split in ("validation", "test"):
        absent = [c for c in classes if c not in counts[split].index]
        if not absent:
            continue
        c = absent[0]
        if isinstance(config.split, RatioSplit):
            total = sum(int(counts[s].get(c, 0)) for s in SPLITS)
            r = config.split
            need = max(math.ceil(1 / f - 1e-9) for f in (r.validation, r.test, 1 - r.validation - r.test))
            need = need if total < need else total + 1
            raise DataError(
                f"{where}: class {c!r} of `data.target` {target!r} has {_rows(total)}, too few to reach every split: "
                f"with validation {r.validation:g} and test {r.test:g}, the stratified split gives a class a row in each "
                f"split for sure only from {need} rows; add rows, merge or drop the class, or split by a column"
            )
        raise DataError(
            f"{where}: class {c!r} of `data.target` {target!r} has no row in {names[split]} "
            f"({_rows(int(counts['train'][c]))} in train); every class must appear in every split, or its metrics are undefined"
        )
    return classes


def _class_order(y: pd.Series, present: list[Any]) -> list[Any]:
    """A category in its declared order; numbers and booleans in numeric order; anything else as text."""
    import pandas as pd

    if isinstance(y.dtype, pd.CategoricalDtype):
        return [_py(c) for c in y.dtype.categories if _py(c) in present]
    if all(isinstance(c, (bool, int, float)) for c in present):
        return sorted(present)
    return sorted(present, key=str)


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"
