"""Data versions: load a dataset, split it into train/validation/test, and digest each split.

The version name (``v0.4.0``) is a hint; the proof is the content digest of each split, recorded
with every study and run. Two results are comparable only when their test digests are equal.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hpo.errors import DataError
from hpo.features import CATEGORICAL, NUMERIC, column_kind, encode, first_misfit
from hpo.space import ColumnSplit, DataConfig, RatioSplit, SplitFiles

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SPLITS = ("train", "validation", "test")
Task = Literal["regression", "classification"]

# Datasets scikit-learn ships inside its wheel, so the demo and the tests run offline.
SKLEARN_DATASETS = {
    "diabetes": "load_diabetes",
    "breast_cancer": "load_breast_cancer",
    "iris": "load_iris",
    "wine": "load_wine",
    "digits": "load_digits",
}

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


def load_data(config: DataConfig, *, task: Task | None = None, base: Path | None = None, where: str = "data") -> DataVersion:
    """Load, split, check and digest the data a space file names.

    Everything that would make every trial fail is refused here, as one :class:`DataError` line
    naming the file, the column or class, and the rule.

    Args:
        config: the ``data`` section of a space file.
        task: the task the space states; inferred from the whole target when ``None``.
        base: folder that relative paths are resolved against (the workspace).
        where: how messages name the space file.
    """
    import pandas as pd

    base = base or Path.cwd()
    names = {s: f"the {s} split" for s in SPLITS}
    if isinstance(config.source, SplitFiles):
        frames = {}
        for s in SPLITS:
            path = _resolve(getattr(config.source, s), base, where, f"data.source.{s}")
            frames[s] = _read_table(path, where, f"data.source.{s}")
            names[s] = f"the {s} file ({getattr(config.source, s)})"
        source = ", ".join(f"{s}={getattr(config.source, s)}" for s in SPLITS)
        _check_target_present(frames, config, where, names)
        target_kind = {config.target: column_kind(frames["train"][config.target])}
        for s in ("validation", "test"):
            _check_kinds(frames[s], target_kind, where, names[s])
        task = task or infer_task(pd.concat([f[config.target] for f in frames.values()], ignore_index=True))
    else:
        source = config.source
        table = _load_source(config.source, config.target, base, where)
        if config.target not in table.columns:
            cols = ", ".join(map(str, table.columns[:12]))
            raise DataError(f"{where}: `data.target` {config.target!r} is not a column of {config.source} (columns: {cols})")
        _check_target(table[config.target], config.target, where, f"{config.source}")
        # One task for the whole table, decided before the split: the split is stratified for classes.
        task = task or infer_task(table[config.target])
        if task == "regression":  # row numbers are the file's here, not a split's
            _check_numeric_target(table[config.target], config.target, where, f"{config.source}")
        frames = _split(table, config, task, where)

    _check_target_present(frames, config, where, names)
    split_column = config.split.column if isinstance(config.split, ColumnSplit) else None
    for name, frame in frames.items():
        missing = [c for c in config.drop if c not in frame.columns and c != split_column]
        if missing:
            raise DataError(f"{where}: `data.drop` names {missing[0]!r}, which is not a column of {names[name]}")
        if len(frame) == 0:
            raise DataError(f"{where}: {names[name]} is empty; check `data.split` or the {name} file")
        _check_target(frame[config.target], config.target, where, names[name])
        if task == "regression":
            _check_numeric_target(frame[config.target], config.target, where, names[name])

    columns = [c for c in frames["train"].columns if c != config.target and c not in config.drop]
    for name in ("validation", "test"):
        other = [c for c in frames[name].columns if c != config.target and c not in config.drop]
        if other != columns:
            raise DataError(
                f"{where}: {names[name]} has columns {other}, but train has {columns}; splits must share their columns"
            )
    if not columns:
        raise DataError(f"{where}: no feature column is left besides the target and `data.drop`; the model needs one")
    kinds = {c: column_kind(frames["train"][c]) for c in columns}
    for name in ("validation", "test"):
        _check_kinds(frames[name], kinds, where, names[name])

    classes = _classes(frames, config, where, names) if task == "classification" else []

    if all(frames["train"][c].nunique(dropna=False) <= 1 for c in columns):
        raise DataError(
            f"{where}: every feature column of {names['train']} is constant ({', '.join(map(repr, columns[:5]))}); "
            "the model has nothing to learn from"
        )

    splits = {}
    for name, frame in frames.items():
        raw = frame[columns].reset_index(drop=True)
        y = frame[config.target].reset_index(drop=True)
        digest_of = digest(frame[columns + [config.target]])
        splits[name] = Split(X=encode(raw, kinds), y=y, digest=digest_of, raw=raw, index=frame.index)

    return DataVersion(
        version=config.version,
        source=source,
        target=config.target,
        task=task,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        kinds=kinds,
        classes=classes,
    )


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


def _check_target_present(frames: dict[str, pd.DataFrame], config: DataConfig, where: str, names: dict[str, str]) -> None:
    for name, frame in frames.items():
        if config.target not in frame.columns:
            cols = ", ".join(map(str, frame.columns[:12]))
            raise DataError(f"{where}: `data.target` {config.target!r} is not a column of {names[name]} (columns: {cols})")


def _check_numeric_target(y: pd.Series, target: str, where: str, what: str) -> None:
    if not _is_numeric(y):
        misfit = first_misfit(y, NUMERIC)
        got = f"holds {misfit[1]!r} (row {misfit[0] + 1})" if misfit else f"is {y.dtype}"
        raise DataError(f"{where}: `task` is regression, but `data.target` {target!r} {got} in {what}")


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
    for c in classes:
        if str(c) in text:
            raise DataError(
                f"{where}: `data.target` {target!r} holds classes {text[str(c)]!r} and {c!r}, which read the same as text; "
                "write each class one way"
            )
        text[str(c)] = c
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


def _py(value: Any) -> Any:
    """A plain Python value (labels are compared, ordered and recorded as JSON)."""
    return value.item() if hasattr(value, "item") else value


def _is_numeric(s: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(s)) and not pd.api.types.is_bool_dtype(s)


def _resolve(path: str, base: Path, where: str, key: str) -> Path:
    p = Path(path).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise DataError(f"{where}: `{key}` file not found: {p}")
    return p


def _read_table(path: Path, where: str, key: str) -> pd.DataFrame:
    import pandas as pd

    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if suffix.endswith((".csv", ".csv.gz", ".tsv")):
            return pd.read_csv(path, sep="\t" if ".tsv" in suffix else ",")
    except Exception as e:  # a parse error is the user's file, not our bug
        raise DataError(f"{where}: `{key}` could not be read as a table ({path}): {e}") from None
    raise DataError(f"{where}: `{key}` must be a .csv, .tsv or .parquet file, but got {path.name}")


def _load_source(source: str, target: str, base: Path, where: str) -> pd.DataFrame:
    if source.startswith("sklearn:"):
        name = source.removeprefix("sklearn:")
        if name not in SKLEARN_DATASETS:
            raise DataError(
                f"{where}: `data.source` sklearn dataset must be one of {', '.join(SKLEARN_DATASETS)}, but got {name!r}"
            )
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, SKLEARN_DATASETS[name])(as_frame=True)
        frame = bunch.frame
        if "target" in frame.columns and bunch.get("target_names") is not None and name != "diabetes":
            # Class datasets: name the classes, so that the target reads as labels, not numbers.
            names = list(bunch.target_names)
            frame = frame.assign(target=frame["target"].map(lambda i: str(names[int(i)])))
        return frame
    return _read_table(_resolve(source, base, where, "data.source"), where, "data.source")


def _split(table: pd.DataFrame, config: DataConfig, task: Task | None, where: str) -> dict[str, pd.DataFrame]:
    split = config.split
    if isinstance(split, ColumnSplit):
        if split.column not in table.columns:
            raise DataError(f"{where}: `data.split.column` {split.column!r} is not a column of {config.source}")
        names = {split.train: "train", split.validation: "validation", split.test: "test"}
        unknown = sorted(set(table[split.column].astype(str)) - set(names), key=str)
        if unknown:
            raise DataError(
                f"{where}: `data.split.column` {split.column!r} holds {unknown[0]!r}; values must be {', '.join(names)}"
            )
        labels = table[split.column].astype(str)
        rest = table.drop(columns=[split.column])
        return {names[k]: rest[labels == k] for k in names}

    assert isinstance(split, RatioSplit)
    import numpy as np

    if config.target not in table.columns:
        cols = ", ".join(map(str, table.columns[:12]))
        raise DataError(f"{where}: `data.target` {config.target!r} is not a column of {config.source} (columns: {cols})")
    n = len(table)
    n_test = int(round(n * split.test))
    n_val = int(round(n * split.validation))
    if n_test == 0 or n_val == 0 or n - n_test - n_val == 0:
        raise DataError(
            f"{where}: `data.split` leaves an empty split for {n} rows (validation={split.validation}, test={split.test})"
        )
    # Split by row position, never by content: changing one row's values moves no row to
    # another split, so only the digest of the split that holds it changes.
    order = np.random.default_rng(split.seed).permutation(n)
    y = table[config.target]
    if (task or infer_task(y.dropna())) == "classification" and y.notna().all():
        order = _stratified_order(y.to_numpy(), order)
    test_idx, val_idx, train_idx = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return {
        "train": table.iloc[np.sort(train_idx)],
        "validation": table.iloc[np.sort(val_idx)],
        "test": table.iloc[np.sort(test_idx)],
    }


def _stratified_order(y: object, order: object) -> object:
    """Reorder a permutation so every prefix holds the classes in proportion (round-robin by rank)."""
    import numpy as np

    y = np.asarray(y)[order]  # type: ignore[index]
    keys = np.empty(len(y))
    for label in np.unique(y.astype(str)):
        idx = np.flatnonzero(y.astype(str) == label)
        keys[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
    return np.asarray(order)[np.argsort(keys, kind="stable")]
