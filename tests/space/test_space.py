"""The space file: a table of good and bad files, each bad one with its one-line message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hpo.cli import app
from hpo.errors import SpaceError
from hpo.space import SpaceFile, load_space, parse_space
from tests.conftest import small_space

GOOD = {
    "minimal": small_space(),
    "all param types": small_space(
        params={
            "depth": {"type": "int", "low": 2, "high": 12, "step": 2},
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
            "l2_leaf_reg": {"type": "float", "low": 1, "high": 10, "step": 0.5},
            "grow_policy": {"type": "categorical", "choices": ["SymmetricTree", "Depthwise"]},
        }
    ),
    "timeout only": small_space(n_trials=None, timeout=30),
    "tpe with options": small_space(sampler={"name": "tpe", "n_startup_trials": 3, "multivariate": True}),
    "hyperband": small_space(pruner={"name": "hyperband", "min_resource": 5, "reduction_factor": 3}),
    "grid": small_space(
        sampler={"name": "grid"},
        params={
            "depth": {"type": "int", "low": 2, "high": 3},
            "l2_leaf_reg": {"type": "float", "low": 1, "high": 2, "step": 0.5},
        },
    ),
    "column split": small_space(data={"version": "v1.2.3", "source": "t.csv", "target": "y", "split": {"column": "fold"}}),
    "three files": small_space(
        data={"version": "v1.0.0", "source": {"train": "a.csv", "validation": "b.csv", "test": "c.csv"}, "target": "y"}
    ),
    "stated task": small_space(task="classification", metric="roc_auc"),
}


@pytest.mark.parametrize("raw", GOOD.values(), ids=GOOD.keys())
def test_good_files_parse(raw: dict) -> None:
    space = parse_space(yaml.safe_dump(raw), "s.yaml")
    assert isinstance(space, SpaceFile)
    assert space.direction in ("maximize", "minimize")


def _with(**changes: object) -> dict:
    return small_space(**changes)


def _param(**p: object) -> dict:
    return small_space(params={"depth": p})


BAD = {
    "unknown top-level key": (_with(n_trails=5), "`n_trails` is not a known key"),
    "unknown nested key": (_param(type="int", low=1, high=3, lo=2), "`params.depth.lo` is not a known key"),
    "low > high": (_param(type="int", low=12, high=2), "`params.depth.low` must be <= `high`, but got low=12, high=2"),
    "log with low <= 0": (
        small_space(params={"lr": {"type": "float", "low": 0, "high": 1, "log": True}}),
        "`params.lr.low` must be > 0 when `log` is true, but got low=0.0",
    ),
    "unknown param type": (
        _param(type="integer", low=1, high=3),
        "`params.depth.type` must be one of int, float, categorical, but got 'integer'",
    ),
    "param without type": (_param(low=1, high=3), "`params.depth` needs a `type` key"),
    "unknown sampler": (
        _with(sampler={"name": "bayes"}),
        "`sampler.name` must be one of tpe, random, cmaes, gp, qmc, grid, but got 'bayes'",
    ),
    "unknown pruner": (
        _with(pruner={"name": "asha"}),
        "`pruner.name` must be one of none, median, hyperband, successive_halving, but got 'asha'",
    ),
    "unknown model": (
        _with(model="xgboost"),
        "`model` must be one of catboost, an estimator class's import path (e.g. sklearn.ensemble.HistGradientBoostingRegressor) or module:function (e.g. train:fit), but got 'xgboost'",
    ),
    "unknown metric": (
        _with(metric="auc"),
        "`metric` must be one of pearson_r, spearman_r, r2, rmse, mae, accuracy, f1, roc_auc, logloss, but got 'auc'",
    ),
    "metric does not fit stated task": (
        _with(task="regression", metric="roc_auc"),
        "`metric` 'roc_auc' is a classification metric, but `task` is 'regression'",
    ),
    "categorical with no choices": (
        small_space(params={"gp": {"type": "categorical", "choices": []}}),
        "`params.gp.choices` must list at least one value, but got []",
    ),
    "repeated choice": (small_space(params={"gp": {"type": "categorical", "choices": ["a", "a"]}}), "must not repeat a value"),
    "n_trials zero": (_with(n_trials=0), "`n_trials` must be > 0, but got 0"),
    "n_trials negative": (_with(n_trials=-3), "`n_trials` must be > 0, but got -3"),
    "no budget": (_with(n_trials=None), "set `n_trials`, `timeout` or both"),
    "no params": (_with(params={}), "`params` must define at least one parameter"),
    "param also fixed": (_with(fixed={"depth": 3}), "'depth' is in both `params` and `fixed`"),
    "step with log": (
        small_space(params={"lr": {"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1}}),
        "`params.lr.step` and `log: true` cannot be combined",
    ),
    "grid needs float step": (
        _with(sampler={"name": "grid"}, params={"lr": {"type": "float", "low": 0.1, "high": 1}}),
        "sampler `grid` needs `step` on float param `params.lr`",
    ),
    "bad version": (
        _with(data={"version": "0.1", "source": "sklearn:diabetes", "split": {"validation": 0.2, "test": 0.2}}),
        "`data.version` must look like vMAJOR.MINOR.PATCH",
    ),
    "ratios leave no train rows": (
        _with(data={"version": "v0.1.0", "source": "sklearn:diabetes", "split": {"validation": 0.5, "test": 0.5}}),
        "`data.split.validation` + `test` must be < 1",
    ),
    "ratio out of range": (
        _with(data={"version": "v0.1.0", "source": "sklearn:diabetes", "split": {"validation": 1.5, "test": 0.2}}),
        "`data.split.validation` must be < 1, but got 1.5",
    ),
    "single table without split": (
        _with(data={"version": "v0.1.0", "source": "sklearn:diabetes"}),
        "`data.split` is required for a single-table source",
    ),
    "three files with split": (
        _with(data={"version": "v0.1.0", "source": {"train": "a", "validation": "b", "test": "c"}, "split": {"column": "f"}}),
        "`data.split` must be omitted when `source` names three files",
    ),
    "three files missing one": (
        _with(data={"version": "v0.1.0", "source": {"train": "a", "validation": "b"}}),
        "`data.source.test` is required",
    ),
    "bad study name": (_with(study="my study/1"), "`study` must start with a letter or digit"),
    "wrong value type": (_param(type="int", low="two", high=3), "`params.depth.low` must be a whole number, but got 'two'"),
}


@pytest.mark.parametrize(("raw", "message"), BAD.values(), ids=BAD.keys())
def test_bad_files_name_file_key_and_rule(raw: dict, message: str) -> None:
    with pytest.raises(SpaceError) as e:
        parse_space(yaml.safe_dump(raw), "search_spaces/bad.yaml")
    text = str(e.value)
    assert message in text
    assert all(line.startswith("search_spaces/bad.yaml: ") for line in text.splitlines())


def test_every_problem_is_reported_at_once() -> None:
    raw = small_space(n_trials=0, metric="auc", sampler={"name": "bayes"})
    with pytest.raises(SpaceError) as e:
        parse_space(yaml.safe_dump(raw), "x.yaml")
    lines = str(e.value).splitlines()
    assert len(lines) == 3
    assert {"`n_trials`", "`metric`", "`sampler.name`"} == {line.split()[1] for line in lines}


def test_invalid_yaml_names_its_line() -> None:
    with pytest.raises(SpaceError, match=r"^x.yaml: invalid YAML \(line 4, column 1\): .*flow mapping at line 3"):
        parse_space("study: a\nparams:\n  depth: {type: int, low: 2\n", "x.yaml")


def test_not_a_mapping() -> None:
    with pytest.raises(SpaceError, match="must be a YAML mapping"):
        parse_space("- a\n- b\n", "x.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match=r"nope.yaml: file not found"):
        load_space(tmp_path / "nope.yaml")


def test_budget_change_keeps_search_hash_but_a_range_change_does_not() -> None:
    base = parse_space(yaml.safe_dump(small_space()))
    more = parse_space(yaml.safe_dump(small_space(n_trials=50, timeout=10)))
    other = parse_space(yaml.safe_dump(small_space(params={"depth": {"type": "int", "low": 2, "high": 5}})))
    assert base.search_hash() == more.search_hash()
    assert base.search_hash() != other.search_hash()


def test_comments_and_formatting_do_not_change_the_search_hash() -> None:
    text = yaml.safe_dump(small_space())
    assert parse_space(text).search_hash() == parse_space("# a comment\n" + text + "\n\n").search_hash()


def test_grid_enumerates_every_combination() -> None:
    space = parse_space(yaml.safe_dump(GOOD["grid"]))
    assert space.grid_size() == 6
    assert {(g["depth"], g["l2_leaf_reg"]) for g in space.grid()} == {(d, r) for d in (2, 3) for r in (1.0, 1.5, 2.0)}


def test_schema_command_prints_a_json_schema() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"study", "data", "params", "metric"} <= set(schema["properties"])
    assert set(schema["required"]) >= {"study", "data", "metric", "params"}


# Anchors nested 9 deep: a few hundred bytes that expand to 9**9 (387 million) strings when read.
ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
)


@pytest.mark.parametrize("where", ["choices", "fixed"])
def test_a_yaml_alias_bomb_is_refused_before_it_expands(workspace: Path, where: str) -> None:
    import optuna

    from tests.conftest import invoke

    body = yaml.safe_dump(small_space(), sort_keys=False)
    if where == "choices":
        body = body.replace("params:\n", "params:\n  grow_policy: {type: categorical, choices: *a8}\n")
    else:
        body += "fixed:\n  bomb: *a8\n"
    path = workspace / "search_spaces" / "bomb.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(ALIAS_BOMB + "\n" + body)
    for verb in ("validate", "run"):
        code, out, err = invoke(verb, str(path))
        assert code == 2, (out, err)
        assert err.strip().count("\n") == 0 and "aliases (*a0) are not allowed in a space file" in err
        assert err.startswith(f"error: {path}: invalid YAML (line 2,")
    db = workspace / "studies" / "hpo.db"
    assert not db.exists() or optuna.get_all_study_summaries(f"sqlite:///{db}") == []


def test_a_key_given_twice_is_refused_not_silently_overwritten() -> None:
    text = yaml.safe_dump(small_space(), sort_keys=False) + "metric: rmse\n"
    with pytest.raises(SpaceError, match=r"^x.yaml: invalid YAML \(line \d+, column 1\): key 'metric' appears twice"):
        parse_space(text, "x.yaml")


def test_a_space_recorded_with_aliases_by_an_earlier_version_still_reads() -> None:
    text = yaml.safe_dump(small_space(), sort_keys=False).replace(
        "params:\n", "params:\n  l2_leaf_reg: &p {type: float, low: 1, high: 10}\n  random_strength: *p\n", 1
    )
    with pytest.raises(SpaceError, match=r"aliases \(\*p\) are not allowed"):
        parse_space(text, "x.yaml")
    recorded = parse_space(text, "x.yaml", strict=False)  # promote re-reads what a study recorded
    assert recorded.params["l2_leaf_reg"] == recorded.params["random_strength"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fixed": {"iterations": "abc"}}, "`fixed.iterations` must be a whole number, but got 'abc'"),
        ({"fixed": {"iterations": 20.7}}, "`fixed.iterations` must be a whole number, but got 20.7"),
        ({"fixed": {"iterations": 10**14}}, "`fixed.iterations` must lie within catboost's limits"),
        ({"fixed": {"subsample": "most"}}, "`fixed.subsample` must be a number, but got 'most'"),
        ({"seed": 10**23}, "`seed` must be <= 4294967295"),
    ],
)
def test_values_a_fit_would_reject_are_refused_by_validate(workspace: Path, change: dict, message: str) -> None:
    from tests.conftest import invoke, write_space

    path = write_space(workspace / "search_spaces", "bad.yaml", **change)
    code, out, err = invoke("validate", str(path))
    assert code == 2 and err.count("\n") == 1 and message in err, (out, err)


def test_a_space_file_that_is_a_folder_or_not_utf8_gets_one_line(workspace: Path) -> None:
    from tests.conftest import invoke

    latin = workspace / "search_spaces" / "latin.yaml"
    latin.write_bytes("study: caf\xe9\n".encode("latin-1"))
    for arg, message in ((latin, "is not UTF-8 text (byte 10: b'\\xe9'); save it as UTF-8"), (latin.parent, "is a folder")):
        for verb in ("validate", "run"):
            code, out, err = invoke(verb, str(arg))
            assert code == 2 and err.startswith(f"error: {arg}: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        (
            [1, True],
            "`params.boost_from_average.choices` cannot hold both true and 1: Optuna, like Python, takes true as 1, "
            "so it could not tell them apart; quote one ('true') to make it a string",
        ),
        (
            [False, 2, 0],
            "`params.boost_from_average.choices` cannot hold both false and 0: Optuna, like Python, takes false as 0",
        ),
        ([1, 1.0], "`params.boost_from_average.choices` must not repeat a value, but 1 and 1.0 are the same number"),
        ([True, True], "`params.boost_from_average.choices` must not repeat a value, but true appears twice"),
    ],
)
def test_choices_that_python_takes_as_equal_are_named_as_written(workspace: Path, choices: list, message: str) -> None:
    # `choices: [1, true]` was refused as "True appears twice": neither how the file spells it, nor why.
    from tests.conftest import invoke, write_space

    params = {"depth": {"type": "int", "low": 2, "high": 4}, "boost_from_average": {"type": "categorical", "choices": choices}}
    path = write_space(workspace / "search_spaces", "bad.yaml", params=params)
    code, out, err = invoke("validate", str(path))
    assert code == 2 and err.startswith(f"error: {path}: {message}") and err.count("\n") == 1, (out, err)


def test_true_and_a_number_it_does_not_equal_are_two_choices() -> None:
    space = parse_space(yaml.safe_dump(small_space(params={"flag": {"type": "categorical", "choices": [2, True, "1"]}})))
    assert space.params["flag"].choices == [2, True, "1"]  # type: ignore[union-attr]
