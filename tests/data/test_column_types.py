"""Parquet column types end to end: nested ones refused in one line, the other Arrow types validate and run."""

from __future__ import annotations

import datetime
import decimal
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import invoke, small_space, write_space_as

N = 60


def write_table(path: Path, **columns: Any) -> Path:
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"x": rng.normal(size=N), "target": rng.normal(size=N), **columns}), path)
    return path


def table_space(source: str, **data: Any) -> dict[str, Any]:
    return small_space(
        data={"version": "v0.1.0", "source": source, "target": "target", "split": {"validation": 0.2, "test": 0.2}, **data},
        metric="r2",
        n_trials=1,
        params={"depth": {"type": "int", "low": 2, "high": 3}},
        fixed={"iterations": 5, "thread_count": 1},
    )


NESTED = {
    "list": (pa.array([[i, i + 1] for i in range(N)]), "list<element: int64>"),
    "struct": (pa.array([{"a": i, "b": str(i)} for i in range(N)]), "struct<a: int64, b: string>"),
    "map": (pa.array([[("k", i)] for i in range(N)], type=pa.map_(pa.string(), pa.int64())), "map<string, int64"),
}


@pytest.mark.parametrize("kind", list(NESTED))
def test_a_nested_column_is_refused_in_one_line_naming_file_column_and_type(workspace: Path, kind: str) -> None:
    # It was a pandas traceback from the digest ("unhashable type: 'numpy.ndarray'").
    column, dtype = NESTED[kind]
    table = write_table(workspace / "t.parquet", **{kind: column})
    path = write_space_as(workspace, table_space("t.parquet"))
    for verb in ("validate", "run"):
        code, out, err = invoke(verb, str(path))
        assert code == 2 and err.count("\n") == 1, (out, err)
        assert err.startswith(f"error: {path}: `data.source` {table} has nested column(s) '{kind}' ({dtype}"), err
        assert "flatten them into plain columns, or list them in `data.drop`" in err
    assert not (workspace / "studies").exists()


def test_a_nested_column_the_space_drops_is_no_problem(workspace: Path) -> None:
    write_table(workspace / "t.parquet", nested=NESTED["list"][0])
    code, out, err = invoke("validate", str(write_space_as(workspace, table_space("t.parquet", drop=["nested"]))))
    assert code == 0, err
    assert "1 features" in out


def test_the_other_arrow_types_validate_and_run(workspace: Path) -> None:
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    write_table(
        workspace / "t.parquet",
        binary=pa.array([bytes([i % 3]) for i in range(N)], type=pa.binary()),
        dictionary=pa.array([["a", "b", "c"][i % 3] for i in range(N)]).dictionary_encode(),
        decimal=pa.array([decimal.Decimal(i) / 10 for i in range(N)], type=pa.decimal128(10, 2)),
        timestamp_tz=pa.array([start + datetime.timedelta(hours=i) for i in range(N)], type=pa.timestamp("us", tz="UTC")),
        date=pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(N)], type=pa.date32()),
        duration=pa.array([datetime.timedelta(seconds=i) for i in range(N)], type=pa.duration("s")),
    )
    path = write_space_as(workspace, table_space("t.parquet"))
    code, out, err = invoke("validate", str(path))
    assert code == 0 and "7 features" in out, err
    code, out, err = invoke("run", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["states"] == {"COMPLETE": 1}
