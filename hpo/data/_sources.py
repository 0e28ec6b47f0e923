"""Reading a data source (a table file or a dataset scikit-learn ships) and splitting one table."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.data._config import ColumnSplit, DataConfig, RatioSplit
from hpo.data._version import Task
from hpo.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Datasets scikit-learn ships inside its wheel, so the demo and the tests run offline.
SKLEARN_DATASETS = {
    "diabetes": "load_diabetes",
    "breast_cancer": "load_breast_cancer",
    "iris": "load_iris",
    "wine": "load_wine",
    "digits": "load_digits",
}


def _resolve(path: str, base: Path, where: str, key: str) -> Path:
    p = Path(path).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise DataError(f"{where}: `{key}` file not found: {p}")
    return p


def _read_table(path: Path, where: str, key: str, drop: Collection[str] = ()) -> pd.DataFrame:
    """A table file as a frame; ``drop`` names the columns the space does not use (they may hold anything)."""
    import pandas as pd

    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            schema = pq.read_schema(path)
            _refuse_repeated_names(schema.names, path, where, key)
            _refuse_nested(schema, drop, path, where, key)
            return pd.read_parquet(path)
        if suffix.endswith((".csv", ".csv.gz", ".tsv")):
            sep = "\t" if ".tsv" in suffix else ","
            # pandas renames a repeated header name ('a', 'a.1'); the header as written is its first row.
            header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
            _refuse_repeated_names(list(header.iloc[0]) if len(header) else [], path, where, key)
            return pd.read_csv(path, sep=sep)
    except DataError:
        raise
    except Exception as e:  # a parse error is the user's file, not our bug
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"{where}: `{key}` could not be read as a table ({path}): {first}") from None
    raise DataError(f"{where}: `{key}` must be a .csv, .tsv or .parquet file, but got {path.name}")


def _refuse_nested(schema: Any, drop: Collection[str], path: Path, where: str, key: str) -> None:
    """Lists, structs, maps and unions: no model takes one as a feature or a target, and pandas cannot hash them."""
    import pyarrow as pa

    nested = [f for f in schema if f.name not in drop and _is_nested(f.type, pa)]
    if nested:
        shown = ", ".join(f"{f.name!r} ({f.type})" for f in nested[:5]) + (", ..." if len(nested) > 5 else "")
        raise DataError(
            f"{where}: `{key}` {path} has nested column(s) {shown}; a feature or target must hold one number, text, "
            "category or date per row: flatten them into plain columns, or list them in `data.drop`"
        )


def _is_nested(t: Any, pa: Any) -> bool:
    if pa.types.is_dictionary(t):
        return bool(_is_nested(t.value_type, pa))
    return bool(pa.types.is_nested(t))


def _refuse_repeated_names(names: list[Any], path: Path, where: str, key: str) -> None:
    counts: dict[str, int] = {}
    for name in names:
        if str(name).strip():  # pandas names empty header cells itself ('Unnamed: 3')
            counts[str(name)] = counts.get(str(name), 0) + 1
    repeated = [f"{n!r} ({c} times)" for n, c in counts.items() if c > 1]
    if repeated:
        raise DataError(
            f"{where}: `{key}` {path} has repeated column names: {', '.join(repeated)}; give each column a name of its own"
        )


def _load_source(source: str, target: str, base: Path, where: str, drop: Collection[str] = ()) -> pd.DataFrame:
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
    return _read_table(_resolve(source, base, where, "data.source"), where, "data.source", drop)


def _split(table: pd.DataFrame, config: DataConfig, task: Task, where: str) -> dict[str, pd.DataFrame]:
    """The three splits of one table, whose target the caller has checked (present and complete)."""
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
    if task == "classification":
        order = _stratified_order(table[config.target].to_numpy(), order)
    test_idx, val_idx, train_idx = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return {
        "train": table.iloc[np.sort(train_idx)],
        "validation": table.iloc[np.sort(val_idx)],
        "test": table.iloc[np.sort(test_idx)],
    }


def _stratified_order(y: Any, order: np.ndarray) -> np.ndarray:
    """Reorder a permutation so every prefix holds the classes in proportion (round-robin by rank)."""
    import numpy as np

    labels = np.asarray(y)[order].astype(str)
    keys = np.empty(len(labels))
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        keys[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
    return np.asarray(order)[np.argsort(keys, kind="stable")]
