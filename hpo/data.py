"""Data versions: load a dataset, split it into train/validation/test, and digest each split.

The version name (``v0.4.0``) is a hint; the proof is the content digest of each split, recorded
with every study and run. Two results are comparable only when their test digests are equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hpo.errors import DataError
from hpo.space import ColumnSplit, DataConfig, RatioSplit, SplitFiles

if TYPE_CHECKING:
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
    """One split: features, target and the digest of both."""

    X: pd.DataFrame
    y: pd.Series
    digest: str

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
    cat_features: list[str] = field(default_factory=list)
    classes: list[object] = field(default_factory=list)

    @property
    def digests(self) -> dict[str, str]:
        return {s: getattr(self, s).digest for s in SPLITS}

    @property
    def features(self) -> list[str]:
        return list(self.train.X.columns)

    def overview(self) -> dict[str, object]:
        """Rows, columns, target and digests: the facts that describe this data version."""
        return {
            "version": self.version,
            "source": self.source,
            "target": self.target,
            "task": self.task,
            "features": len(self.features),
            "cat_features": self.cat_features,
            "rows": {s: getattr(self, s).rows for s in SPLITS},
            "digests": self.digests,
        }


def load_data(config: DataConfig, *, task: Task | None = None, base: Path | None = None, where: str = "data") -> DataVersion:
    """Load, split and digest the data a space file names.

    Args:
        config: the ``data`` section of a space file.
        task: the task the space states; inferred from the target when ``None``.
        base: folder that relative paths are resolved against (the workspace).
        where: how messages name the space file.
    """
    base = base or Path.cwd()
    if isinstance(config.source, SplitFiles):
        frames = {
            s: _read_table(_resolve(getattr(config.source, s), base, where, f"data.source.{s}"), where, f"data.source.{s}")
            for s in SPLITS
        }
        source = ", ".join(f"{s}={getattr(config.source, s)}" for s in SPLITS)
    else:
        source = config.source
        table = _load_source(config.source, config.target, base, where)
        frames = _split(table, config, task, where)

    for name, frame in frames.items():
        if config.target not in frame.columns:
            cols = ", ".join(map(str, frame.columns[:12]))
            raise DataError(f"{where}: `data.target` {config.target!r} is not a column of the {name} split (columns: {cols})")
        missing = [c for c in config.drop if c not in frame.columns]
        if missing:
            raise DataError(f"{where}: `data.drop` names {missing[0]!r}, which is not a column of the {name} split")
        if len(frame) == 0:
            raise DataError(f"{where}: the {name} split is empty; check `data.split` or the {name} file")
        n_nan = int(frame[config.target].isna().sum())
        if n_nan:
            raise DataError(
                f"{where}: `data.target` {config.target!r} has {n_nan} missing value(s) in the {name} split"
                "; targets must be complete"
            )

    columns = [c for c in frames["train"].columns if c != config.target and c not in config.drop]
    for name in ("validation", "test"):
        other = [c for c in frames[name].columns if c != config.target and c not in config.drop]
        if other != columns:
            raise DataError(
                f"{where}: the {name} split has columns {other}, but train has {columns}; splits must share their columns"
            )

    y_all = frames["train"][config.target]
    inferred = infer_task(y_all)
    if task is None:
        task = inferred
    elif task == "regression" and not _is_numeric(y_all):
        raise DataError(f"{where}: `task` is regression, but `data.target` {config.target!r} is not numeric")

    splits = {}
    for name, frame in frames.items():
        X = frame[columns].reset_index(drop=True)
        y = frame[config.target].reset_index(drop=True)
        splits[name] = Split(X=X, y=y, digest=digest(frame[columns + [config.target]]))

    cat_features = [c for c in columns if not _is_numeric(splits["train"].X[c])]
    classes: list[object] = []
    if task == "classification":
        classes = sorted(set(y_all.tolist()), key=str)
        if len(classes) < 2:
            raise DataError(
                f"{where}: `data.target` {config.target!r} has a single class in the train split"
                "; classification needs two or more"
            )
    for c in cat_features:
        for s in splits.values():
            # CatBoost wants categorical columns as strings or ints; missing values as a category.
            s.X[c] = s.X[c].astype("string").fillna("<NA>").astype(str)

    return DataVersion(
        version=config.version,
        source=source,
        target=config.target,
        task=task,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        cat_features=cat_features,
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
