"""The table ``hpo export`` writes: a study's trials as a DataFrame, a row per trial, and its encodings.

The columns (see ``docs/export-delete.md``): ``number``, ``state``, ``value``, one ``params_<name>``
per parameter (Optuna's own ``trials_dataframe`` prefix, so code written for one reads the other),
``seed``, ``datetime_start``, ``datetime_complete`` (UTC), ``duration_seconds``,
``n_intermediate_values``, ``inherited_from`` (``study#trial``), ``error`` and ``mlflow_run_id``.
A study with several objectives has ``values_0``, ``values_1``, ... instead of ``value``.
"""

from __future__ import annotations

import datetime
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError, option
from hpo.schema import TRIAL_ERROR, TRIAL_INHERITED_FROM, TRIAL_MLFLOW_RUN, TRIAL_SEED
from hpo.storage import load_named_or_newest
from hpo.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    import optuna
    import pandas as pd

PARAM_PREFIX = "params_"

# The columns after the parameters, in order.
_TAIL = (
    "seed",
    "datetime_start",
    "datetime_complete",
    "duration_seconds",
    "n_intermediate_values",
    "inherited_from",
    "error",
    "mlflow_run_id",
)


def export_trials(study: str | None = None, *, storage: str | None = None, workspace: Workspace | None = None) -> pd.DataFrame:
    """Every trial of ``study`` as a DataFrame, one row per trial in trial-number order.

    Args:
        study: study name; default the most recently created study in the storage.
        storage: Optuna storage URL; default as for ``hpo run`` (``--storage``, ``$HPO_STORAGE``,
            ``[tool.hpo] storage``, then ``studies/hpo.db`` in the workspace).
        workspace: the workspace; default the current folder.

    Returns:
        Columns ``number``, ``state``, ``value`` (``values_<i>`` for several objectives), a
        ``params_<name>`` column per parameter (sorted by name; empty where a trial has none),
        ``seed``, ``datetime_start`` and ``datetime_complete`` (UTC), ``duration_seconds``,
        ``n_intermediate_values``, ``inherited_from`` (``study#trial`` for a warm-started trial),
        ``error`` and ``mlflow_run_id``. ``df.attrs["study"]`` names the study.

    Raises:
        HpoError: the storage cannot be read, or holds no such study (the message lists its studies).
    """
    ws = workspace or load_workspace()
    s = load_named_or_newest(ws.storage_url(storage), study)
    return trials_frame(s)


def trials_frame(s: optuna.Study) -> pd.DataFrame:
    """The table :func:`export_trials` returns, for a study already loaded."""
    import pandas as pd

    trials = s.get_trials(deepcopy=False)
    n_objectives = len(s.directions)
    values = ["value"] if n_objectives == 1 else [f"values_{i}" for i in range(n_objectives)]
    names = sorted({name for t in trials for name in t.params})  # as Optuna's trials_dataframe orders them
    columns: dict[str, list[Any]] = {c: [] for c in ("number", "state", *values, *(PARAM_PREFIX + n for n in names), *_TAIL)}
    for t in trials:
        row = _row(t, values)
        for name in names:
            row[PARAM_PREFIX + name] = t.params.get(name)
        for c, cells in columns.items():
            cells.append(row.get(c))
    df = pd.DataFrame({c: _series(c, cells) for c, cells in columns.items()})
    df.attrs["study"] = s.study_name
    return df


def _row(t: optuna.trial.FrozenTrial, value_columns: list[str]) -> dict[str, Any]:
    attrs = t.user_attrs
    origin = attrs.get(TRIAL_INHERITED_FROM)
    start, end = _utc(t.datetime_start), _utc(t.datetime_complete)
    row: dict[str, Any] = {
        "number": t.number,
        "state": t.state.name,
        "seed": attrs.get(TRIAL_SEED),
        "datetime_start": start,
        "datetime_complete": end,
        "duration_seconds": None if start is None or end is None else (end - start).total_seconds(),
        "n_intermediate_values": len(t.intermediate_values),
        "inherited_from": f"{origin['study']}#{origin['trial']}" if isinstance(origin, dict) else None,
        "error": attrs.get(TRIAL_ERROR),
        "mlflow_run_id": attrs.get(TRIAL_MLFLOW_RUN),
    }
    for i, c in enumerate(value_columns):
        row[c] = None if t.values is None else t.values[i]
    return row


def _utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    # Optuna hands out naive local times (it stores UTC); an export read on another host needs the zone.
    return None if moment is None else moment.astimezone(datetime.UTC)


def _series(column: str, cells: list[Any]) -> Any:
    """A column with the type its values share: whole numbers stay whole next to an empty cell."""
    import pandas as pd

    present = [v for v in cells if v is not None]
    if column in ("datetime_start", "datetime_complete"):
        return pd.Series(pd.to_datetime(cells, utc=True), dtype="datetime64[us, UTC]")
    if present and all(isinstance(v, bool) for v in present):
        return pd.Series(cells, dtype="boolean")
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(cells, dtype="Int64")
    if (
        column in ("value", "duration_seconds")
        or column.startswith("values_")
        or (present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present))
    ):
        return pd.Series([math.nan if v is None else float(v) for v in cells], dtype="float64")
    if all(isinstance(v, str) for v in present):
        return pd.Series(cells, dtype="string")
    return pd.Series(cells, dtype=object)  # a categorical parameter with choices of several types


# --- formats -------------------------------------------------------------------------------------


def _csv(df: pd.DataFrame) -> bytes:
    return str(df.to_csv(index=False)).encode()


def _json(df: pd.DataFrame) -> bytes:
    """One JSON array of objects, a key per column; an empty cell (or a non-finite number) is null."""
    rows = [{c: _jsonable(v) for c, v in row.items()} for row in df.astype(object).to_dict(orient="records")]
    return (json.dumps(rows, allow_nan=False) + "\n").encode()


def _jsonable(v: Any) -> Any:
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if hasattr(v, "item"):  # a numpy scalar
        return _jsonable(v.item())
    return v


def _parquet(df: pd.DataFrame) -> bytes:
    # Parquet wants one type per column: a categorical parameter whose choices mix types (say
    # [null, 3, "a"]) is written as text.
    mixed = [c for c in df.columns if df[c].dtype == object]
    if mixed:
        df = df.assign(**{c: df[c].map(lambda v: None if v is None else str(v)).astype("string") for c in mixed})
    out = io.BytesIO()
    df.to_parquet(out, index=False)
    return out.getvalue()


FORMATS: dict[str, Callable[[pd.DataFrame], bytes]] = {"csv": _csv, "json": _json, "parquet": _parquet}
_SUFFIXES = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def export_format(fmt: str | None, output: Path | None = None) -> str:
    """The format to write: ``fmt`` if given (checked), else the one ``output``'s suffix names, else csv."""
    if fmt is None:
        return _SUFFIXES.get(output.suffix.lower(), "csv") if output is not None else "csv"
    name = fmt.lower()
    if name not in FORMATS:
        raise HpoError(f"{option('fmt')} must be one of {', '.join(FORMATS)}, but got {fmt!r}")
    return name


def encode(df: pd.DataFrame, fmt: str) -> bytes:
    """``df`` in format ``fmt`` (``csv``, ``json`` or ``parquet``)."""
    return FORMATS[export_format(fmt)](df)
