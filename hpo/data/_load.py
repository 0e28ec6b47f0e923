"""``load_data``: read, split, check, encode and digest the data a space file names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.data._checks import _check_kinds, _check_numeric_target, _check_target, _check_target_present, _classes
from hpo.data._config import ColumnSplit, DataConfig, SplitFiles
from hpo.data._sources import _load_source, _read_table, _resolve, _split
from hpo.data._version import MAX_CLASSES_FOR_INT_TARGET, SPLITS, DataVersion, Split, Task, _is_numeric, digest, infer_task
from hpo.errors import DataError, SpaceError

if TYPE_CHECKING:
    import pandas as pd


def load_data(
    config: DataConfig,
    *,
    task: Task | None = None,
    base: Path | None = None,
    where: str = "data",
    cv: bool = False,
    metric: str | None = None,
) -> DataVersion:
    """Load, split, check and digest the data a space file names.

    Everything that would make every trial fail is refused here, as one :class:`DataError` line
    naming the file, the column or class, and the rule.

    Args:
        config: the ``data`` section of a space file.
        task: the task the space states; inferred from the whole target when ``None``.
        base: folder that relative paths are resolved against (the workspace).
        where: how messages name the space file.
        cv: the space cross-validates (only to say, of an empty split, that ``cv`` needs it too).
        metric: the space's metric; a task inferred from the target must be the metric's, and that is
            checked before the class checks, which would otherwise speak of classes nobody meant.
    """
    read = _read_frames(config, task, base or Path.cwd(), where, metric)
    split_column = config.split.column if isinstance(config.split, ColumnSplit) else None
    columns, kinds, classes = _check_columns(read, config, where, cv, split_column)
    splits = _splits(read.frames, config.target, columns, kinds, split_column)
    return DataVersion(
        version=config.version,
        source=read.source,
        target=config.target,
        task=read.task,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        kinds=kinds,
        classes=classes,
        drop=list(config.drop),
        columns=len([c for c in read.frames["train"].columns if c != split_column]),
    )


@dataclass(frozen=True)
class _Read:
    """The three splits as read, how messages name each, the source as the version states it, and the task."""

    frames: dict[str, pd.DataFrame]
    names: dict[str, str]
    source: str
    task: Task


def _read_frames(config: DataConfig, task: Task | None, base: Path, where: str, metric: str | None) -> _Read:
    """Read the three split files, or one table split as ``data.split`` says, with the target checked
    and the task decided (from the whole target: a table's split is stratified for classes)."""
    import pandas as pd

    from hpo.features import column_kind  # pandas at module level there

    names = {s: f"the {s} split" for s in SPLITS}
    if isinstance(config.source, SplitFiles):
        frames = {}
        for s in SPLITS:
            path = _resolve(getattr(config.source, s), base, where, f"data.source.{s}")
            frames[s] = _read_table(path, where, f"data.source.{s}", config.drop)
            names[s] = f"the {s} file ({getattr(config.source, s)})"
        source = ", ".join(f"{s}={getattr(config.source, s)}" for s in SPLITS)
        _check_target_present(frames, config, where, names)
        target_kind = {config.target: column_kind(frames["train"][config.target])}
        for s in ("validation", "test"):
            _check_kinds(frames[s], target_kind, where, names[s])
        whole = pd.concat([f[config.target] for f in frames.values()], ignore_index=True)
        if task is None:
            task = infer_task(whole)
            _check_metric_task(metric, task, whole, config.target, where)
        return _Read(frames, names, source, task)
    table = _load_source(config.source, config.target, base, where, config.drop)
    if config.target not in table.columns:
        cols = ", ".join(map(str, table.columns[:12]))
        raise DataError(f"{where}: `data.target` {config.target!r} is not a column of {config.source} (columns: {cols})")
    _check_target(table[config.target], config.target, where, f"{config.source}")
    # One task for the whole table, decided before the split: the split is stratified for classes.
    if task is None:
        task = infer_task(table[config.target])
        _check_metric_task(metric, task, table[config.target], config.target, where)
    if task == "regression":  # row numbers are the file's here, not a split's
        _check_numeric_target(table[config.target], config.target, where, f"{config.source}")
    return _Read(_split(table, config, task, where), names, config.source, task)


def _check_columns(
    read: _Read, config: DataConfig, where: str, cv: bool, split_column: str | None
) -> tuple[list[str], dict[str, str], list[Any]]:
    """The feature columns, their kinds and the class order, once every split is non-empty, shares the
    train split's columns and kinds, and something is left to learn from."""
    from hpo.features import column_kind  # pandas at module level there

    frames, names, task = read.frames, read.names, read.task
    files = isinstance(config.source, SplitFiles)  # one table's target was checked whole, before the split
    for name, frame in frames.items():
        missing = [c for c in config.drop if c not in frame.columns and c != split_column]
        if missing:
            raise DataError(f"{where}: `data.drop` names {missing[0]!r}, which is not a column of {names[name]}")
        if len(frame) == 0:
            why = (
                "; `cv` folds train and validation together, but a data version still has three non-empty splits "
                "(their digests name it)"
                if cv and name == "validation"
                else ""
            )
            raise DataError(f"{where}: {names[name]} is empty{why}; check `data.split` or the {name} file")
        if files:
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
    return columns, kinds, classes


def _splits(
    frames: dict[str, pd.DataFrame], target: str, columns: list[str], kinds: dict[str, str], split_column: str | None
) -> dict[str, Split]:
    """Each split encoded for the model, with the digest that names it as delivered."""
    from hpo.features import encode  # pandas at module level there

    splits = {}
    for name, frame in frames.items():
        raw = frame[columns].reset_index(drop=True)
        y = frame[target].reset_index(drop=True)
        # The digest names the data as delivered: every column (the target last), `data.drop` included,
        # so a feature ablation and its baseline share one version. The split column is not data: it
        # names the split. Without `data.drop` this is the digest hpo always computed.
        delivered = [c for c in frame.columns if c != target and c != split_column]
        digest_of = digest(frame[delivered + [target]])
        # Kept so that the digests an hpo that digested after `data.drop` recorded can be recomputed.
        dropped = frame[[c for c in delivered if c not in columns]].reset_index(drop=True)
        splits[name] = Split(X=encode(raw, kinds), y=y, digest=digest_of, raw=raw, index=frame.index, dropped=dropped)
    return splits


def _check_metric_task(metric: str | None, task: Task, y: pd.Series, target: str, where: str) -> None:
    """A task inferred from the target that is not the metric's: say so, and what to state, before any
    check of the inferred task's own (a count read as classes would be refused for a rare class)."""
    from hpo.metrics import METRICS

    wanted = METRICS[metric].task if metric in METRICS else None
    if wanted is None or wanted == task:
        return
    head = f"{where}: `metric` {metric!r} is a {wanted} metric, but the target {target!r} is {task}"
    if task == "regression":
        raise SpaceError(
            f"{head} (inferred: numbers, not a few distinct integers); state `task: classification` to read its "
            "values as class labels, or choose a regression metric"
        )
    if _is_numeric(y):
        raise SpaceError(
            f"{head} (inferred: integers with at most {MAX_CLASSES_FOR_INT_TARGET} distinct values read as class labels, "
            f"and it has {y.nunique()}); state `task: regression` to treat them as numbers"
        )
    import pandas as pd

    kind = "booleans" if pd.api.types.is_bool_dtype(y) else "text"
    raise SpaceError(f"{head} (it holds {kind}: class labels); choose a classification metric")
