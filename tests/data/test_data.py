"""Data versions: sources, splits, digests, categorical features, and bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hpo.data import load_data
from hpo.errors import DataError, SpaceError
from hpo.prepare import prepare
from hpo.space import DataConfig
from tests.conftest import small_space, write_space


def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "color": rng.choice(["red", "green", "blue"], size=n),
            "y": 2 * x1 - x2 + rng.normal(scale=0.1, size=n),
        }
    )


def ratio_config(source: str, **kw: object) -> DataConfig:
    return DataConfig.model_validate(
        {"version": "v0.1.0", "source": source, "target": "y", "split": {"validation": 0.2, "test": 0.2, "seed": 3}, **kw}
    )


def test_ratio_split_sizes_and_disjoint_rows(tmp_path: Path) -> None:
    t = table().assign(row_id=range(200))
    t.to_csv(tmp_path / "t.csv", index=False)
    d = load_data(ratio_config("t.csv", drop=["row_id"]), base=tmp_path)
    assert (d.train.rows, d.validation.rows, d.test.rows) == (120, 40, 40)
    assert d.task == "regression"
    assert "row_id" not in d.features and "y" not in d.features
    # every row lands in exactly one split
    ids = [set(t.loc[t["x1"].isin(s.X["x1"]), "row_id"]) for s in (d.train, d.validation, d.test)]
    assert sum(map(len, ids)) == 200 and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_same_input_same_digests(tmp_path: Path) -> None:
    table().to_csv(tmp_path / "a.csv", index=False)
    table().to_parquet(tmp_path / "b.parquet", index=False)
    a = load_data(ratio_config("a.csv"), base=tmp_path)
    a2 = load_data(ratio_config("a.csv"), base=tmp_path)
    assert a.digests == a2.digests
    assert len(set(a.digests.values())) == 3


def test_one_changed_test_row_changes_the_test_digest_only(tmp_path: Path) -> None:
    t = table()
    t.to_csv(tmp_path / "t.csv", index=False)
    before = load_data(ratio_config("t.csv"), base=tmp_path)
    row = before.test.X.iloc[0]
    i = t.index[t["x1"] == row["x1"]][0]
    t.loc[i, "x2"] += 1.0
    t.to_csv(tmp_path / "t.csv", index=False)
    after = load_data(ratio_config("t.csv"), base=tmp_path)
    assert after.digests["test"] != before.digests["test"]
    assert after.digests["train"] == before.digests["train"]
    assert after.digests["validation"] == before.digests["validation"]


def test_split_seed_changes_the_split(tmp_path: Path) -> None:
    table().to_csv(tmp_path / "t.csv", index=False)
    a = load_data(ratio_config("t.csv"), base=tmp_path)
    b = load_data(
        DataConfig.model_validate(
            {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.2, "test": 0.2, "seed": 4}}
        ),
        base=tmp_path,
    )
    assert a.digests["test"] != b.digests["test"]


def test_column_split(tmp_path: Path) -> None:
    t = table().assign(fold=["train"] * 100 + ["validation"] * 50 + ["test"] * 50)
    t.to_csv(tmp_path / "t.csv", index=False)
    d = load_data(
        DataConfig.model_validate({"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"column": "fold"}}),
        base=tmp_path,
    )
    assert (d.train.rows, d.validation.rows, d.test.rows) == (100, 50, 50)
    assert "fold" not in d.features


def test_three_files_and_categorical_features(tmp_path: Path) -> None:
    for name, seed in (("tr", 0), ("va", 1), ("te", 2)):
        table(60, seed).to_parquet(tmp_path / f"{name}.parquet", index=False)
    cfg = DataConfig.model_validate(
        {"version": "v2.0.0", "source": {"train": "tr.parquet", "validation": "va.parquet", "test": "te.parquet"}, "target": "y"}
    )
    d = load_data(cfg, base=tmp_path)
    assert d.cat_features == ["color"]
    assert d.train.rows == 60 and d.overview()["rows"] == {"train": 60, "validation": 60, "test": 60}


def test_classification_inferred_from_labels_and_stratified(tmp_path: Path) -> None:
    t = table().assign(y=lambda f: np.where(f["x1"] > 0.8, "yes", "no"))
    t.to_csv(tmp_path / "t.csv", index=False)
    d = load_data(ratio_config("t.csv"), base=tmp_path)
    assert d.task == "classification" and d.classes == ["no", "yes"]
    share = [(s.y == "yes").mean() for s in (d.train, d.validation, d.test)]
    assert max(share) - min(share) < 0.06


@pytest.mark.parametrize(
    ("name", "task", "rows"),
    [("diabetes", "regression", 442), ("breast_cancer", "classification", 569), ("iris", "classification", 150)],
)
def test_sklearn_datasets_load_offline(name: str, task: str, rows: int) -> None:
    cfg = DataConfig.model_validate({"version": "v0.1.0", "source": f"sklearn:{name}", "split": {"validation": 0.2, "test": 0.2}})
    d = load_data(cfg)
    assert d.task == task
    assert d.train.rows + d.validation.rows + d.test.rows == rows


# --- bad data: one line naming the file, the key and the rule ------------------------------


def _prepare(ws: Path, **data: object) -> None:
    base = {"version": "v0.1.0", "source": "t.csv", "target": "y", "split": {"validation": 0.2, "test": 0.2}}
    prepare(write_space(ws, data={**base, **data}))


def test_missing_data_file(workspace: Path) -> None:
    with pytest.raises(DataError, match=r"space.yaml: `data.source` file not found: .*missing.csv"):
        _prepare(workspace, source="missing.csv")


def test_target_absent(workspace: Path) -> None:
    table().to_csv(workspace / "t.csv", index=False)
    with pytest.raises(DataError, match=r"space.yaml: `data.target` 'price' is not a column of t.csv"):
        _prepare(workspace, target="price")


def test_nan_in_target(workspace: Path) -> None:
    t = table()
    t.loc[[3, 50], "y"] = np.nan
    t.to_csv(workspace / "t.csv", index=False)
    with pytest.raises(DataError, match=r"`data.target` 'y' has 2 missing value\(s\) in t\.csv; targets must be complete"):
        _prepare(workspace)


def test_empty_split(workspace: Path) -> None:
    table().assign(fold="train").to_csv(workspace / "t.csv", index=False)
    with pytest.raises(DataError, match=r"space.yaml: the validation split is empty"):
        _prepare(workspace, split={"column": "fold"})


def test_unknown_split_label(workspace: Path) -> None:
    table().assign(fold="holdout").to_csv(workspace / "t.csv", index=False)
    with pytest.raises(DataError, match=r"`data.split.column` 'fold' holds 'holdout'; values must be train, validation, test"):
        _prepare(workspace, split={"column": "fold"})


def test_unknown_sklearn_dataset(workspace: Path) -> None:
    with pytest.raises(DataError, match=r"sklearn dataset must be one of diabetes, .*but got 'boston'"):
        _prepare(workspace, source="sklearn:boston", target="target")


def test_unreadable_file(workspace: Path) -> None:
    (workspace / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"`data.source` must be a .csv, .tsv or .parquet file, but got t.xlsx"):
        _prepare(workspace, source="t.xlsx")


def test_metric_that_does_not_fit_the_target(workspace: Path) -> None:
    path = workspace / "s.yaml"
    path.write_text(yaml.safe_dump(small_space(metric="roc_auc")))
    with pytest.raises(
        SpaceError, match=r"s.yaml: `metric` 'roc_auc' is a classification metric, but the target 'target' is regression"
    ):
        prepare(path)


def test_unknown_catboost_parameter_and_limits(workspace: Path) -> None:
    path = workspace / "s.yaml"
    params = {"depht": {"type": "int", "low": 2, "high": 4}, "depth": {"type": "int", "low": 2, "high": 20}}
    path.write_text(yaml.safe_dump(small_space(params=params, fixed={"iterations": 40, "random_seed": 1})))
    with pytest.raises(SpaceError) as e:
        prepare(path)
    lines = str(e.value).splitlines()
    assert any("`params.depht` is not a catboost parameter" in line for line in lines)
    assert any("`params.depth` must lie within catboost's limits [1, 16], but got low=2, high=20" in line for line in lines)
    assert any("`fixed.random_seed` is set by hpo itself" in line for line in lines)


@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet"])
def test_repeated_column_names_are_refused_not_renamed(workspace: Path, kind: str) -> None:
    # pandas reads a CSV header `x1,x2,x1` as x1, x2, x1.1: the model got a column the file does not name.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.conftest import invoke

    t = table()
    names = ["x1", "x2", "x1", "color", "color", "color", "y"]
    columns = [t["x1"], t["x2"], t["x2"] * 2, t["color"], t["color"], t["color"], t["y"]]
    path = workspace / f"t.{kind}"
    if kind == "parquet":
        pq.write_table(pa.table([pa.array(c) for c in columns], names=names), path)
    else:
        rows = ["\t,"[kind == "csv"].join(names)] + ["\t,"[kind == "csv"].join(map(str, r)) for r in zip(*columns, strict=True)]
        path.write_text("\n".join(rows) + "\n")
    base = {"version": "v0.1.0", "source": path.name, "target": "y", "split": {"validation": 0.2, "test": 0.2}}
    space = write_space(workspace, data=base)
    for verb in ("validate", "run"):
        code, out, err = invoke(verb, str(space))
        assert code == 2 and err.count("\n") == 1, (out, err)
        assert err == (
            f"error: {space}: `data.source` {path} has repeated column names: 'x1' (2 times), 'color' (3 times); "
            "give each column a name of its own\n"
        )
    assert not (workspace / "studies").exists()
