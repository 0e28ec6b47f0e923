"""``load_data``: read, split, check, encode and digest the data a space file names."""

from __future__ import annotations

from pathlib import Path

from hpo.data._checks import _check_kinds, _check_numeric_target, _check_target, _check_target_present, _classes
from hpo.data._sources import _load_source, _read_table, _resolve, _split
from hpo.data._version import SPLITS, DataVersion, Split, Task, digest, infer_task
from hpo.errors import DataError
from hpo.features import column_kind, encode
from hpo.space import ColumnSplit, DataConfig, SplitFiles


def load_data(
    config: DataConfig, *, task: Task | None = None, base: Path | None = None, where: str = "data", cv: bool = False
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
    """
    import pandas as pd

    base = base or Path.cwd()
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
        task = task or infer_task(pd.concat([f[config.target] for f in frames.values()], ignore_index=True))
    else:
        source = config.source
        table = _load_source(config.source, config.target, base, where, config.drop)
        if config.target not in table.columns:
            cols = ", ".join(map(str, table.columns[:12]))
            raise DataError(f"{where}: `data.target` {config.target!r} is not a column of {config.source} (columns: {cols})")
        _check_target(table[config.target], config.target, where, f"{config.source}")
        # One task for the whole table, decided before the split: the split is stratified for classes.
        task = task or infer_task(table[config.target])
        if task == "regression":  # row numbers are the file's here, not a split's
            _check_numeric_target(table[config.target], config.target, where, f"{config.source}")
        frames = _split(table, config, task, where)

    files = isinstance(config.source, SplitFiles)  # one table's target was checked whole, before the split
    split_column = config.split.column if isinstance(config.split, ColumnSplit) else None
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
