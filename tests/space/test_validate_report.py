"""`hpo validate` reports every problem at once, in hpo's words; `--json`; a changed space names its keys; the metric's name."""

from __future__ import annotations

import io
import json
import wsgiref.util
from pathlib import Path

import pytest
import yaml

from tests.conftest import invoke, small_space, write_space, write_space_as


def _text(**overrides: object) -> str:
    return yaml.safe_dump(small_space(**overrides), sort_keys=False)


def _errors(path: Path) -> list[str]:
    code, out, err = invoke("validate", str(path))
    assert code == 2 and out == "", (out, err)
    lines = err.splitlines()
    assert all(line.startswith(f"error: {path}: ") for line in lines), err
    return [line.removeprefix(f"error: {path}: ") for line in lines]


def test_every_problem_is_reported_at_once_with_suggestions(workspace: Path) -> None:
    # A missing `split` hid `params.learning_rte is not a catboost parameter`, and `n_trials: 0` read
    # "Input should be greater than 0".
    params = {"learning_rte": {"type": "float", "low": 0.01, "high": 0.3}, "depth": {"type": "int", "low": 2, "high": 4, "lo": 3}}
    data = {"version": "v0.1.0", "source": "sklearn:diabetes", "target": "target"}
    path = write_space_as(workspace, small_space(data=data, params=params, n_trials=0, n_trails=3))
    assert sorted(_errors(path)) == sorted(
        [
            "`n_trials` must be > 0, but got 0",
            "`params.depth.lo` is not a known key; did you mean `low`? (see `hpo schema`)",
            "`n_trails` is not a known key; did you mean `n_trials`? (see `hpo schema`)",
            "`data.split` is required for a single-table source: {validation: 0.2, test: 0.2, seed: 0} or {column: <name>}",
            "`params.learning_rte` is not a catboost parameter; did you mean `learning_rate`?",
        ]
    )
    assert not (workspace / "studies").exists()


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"seed": 10**23}, "`seed` must be <= 4294967295, but got 100000000000000000000000"),
        ({"timeout": -1}, "`timeout` must be > 0, but got -1"),
        (
            {"params": {"depth": {"type": "int", "low": "two", "high": 3}}},
            "`params.depth.low` must be a whole number, but got 'two'",
        ),
        ({"cv": True}, "`cv` must be a mapping of keys to values, but got true"),
        (
            {"task": "regresion"},
            "`task` must be one of regression, classification, but got 'regresion'; did you mean `regression`?",
        ),
        (
            {"metric": "pearson"},
            "`metric` must be one of pearson_r, spearman_r, r2, rmse, mae, accuracy, f1, roc_auc, logloss, but got 'pearson'; did you mean `pearson_r`?",
        ),
        (
            {"sampler": {"name": "tpee"}},
            "`sampler.name` must be one of tpe, random, cmaes, gp, qmc, grid, but got 'tpee'; did you mean `tpe`?",
        ),
        ({"pruner": {"name": "median", "n_warmup": 1}}, "`pruner.n_warmup` is not a known key; did you mean `n_warmup_steps`?"),
        ({"cv": {"fold": 3}}, "`cv.fold` is not a known key; did you mean `folds`?"),
        (
            {"data": {"version": "v0.1.0", "source": "t.csv", "split": {"column": "fold", "trian": "a"}}},
            "`data.split.trian` is not a known key; did you mean `train`?",
        ),
        (
            {"fixed": {"iteratoins": 30, "thread_count": 1}},
            "`fixed.iteratoins` is not a catboost parameter; did you mean `iterations`?",
        ),
    ],
)
def test_problems_are_in_hpo_words(workspace: Path, change: dict, line: str) -> None:
    lines = _errors(write_space(workspace / "search_spaces", "bad.yaml", **change))
    assert any(x.startswith(line) for x in lines), lines
    assert not any("Input should" in x or "Value error" in x for x in lines), lines


@pytest.mark.parametrize(
    ("before", "after", "line"),
    [
        (
            "target: target",
            "target: YES",
            '`data.target` must be a string, but YAML read YES as the boolean true; quote it: `target: "YES"`',
        ),
        (
            "target: target",
            "target: off",
            '`data.target` must be a string, but YAML read off as the boolean false; quote it: `target: "off"`',
        ),
        (
            "target: target",
            "target: target\n  drop: [age, NO]",
            '`data.drop.1` must be a string, but YAML read NO as the boolean false; quote it: `"NO"`',
        ),
        (
            "split:\n",
            "split:\n    column: On\n",
            '`data.split.column` must be a string, but YAML read On as the boolean true; quote it: `column: "On"`',
        ),
        (
            "thread_count: 1",
            "thread_count: 1\n  yes: 2",
            '`fixed` has the key yes, which YAML read as the boolean true; quote it: `"yes": ...`',
        ),
    ],
)
def test_a_word_yaml_reads_as_a_boolean_is_named_with_how_to_quote_it(
    workspace: Path, before: str, after: str, line: str
) -> None:
    text = _text()
    if before == "split:\n":  # a column split in place of the ratios
        text = text.replace("split:\n    validation: 0.2\n    test: 0.2\n    seed: 0\n", "split:\n")
    assert before in text
    path = workspace / "search_spaces" / "bad.yaml"
    path.write_text(text.replace(before, after, 1))
    lines = _errors(path)
    assert line in lines, lines
    assert not any("not a catboost parameter" in x for x in lines), lines  # `yes:` is reported once


def test_a_categorical_may_choose_booleans(workspace: Path) -> None:
    # Where a string is not required, YAML's booleans may be meant: no hint, the file is valid.
    path = workspace / "search_spaces" / "ok.yaml"
    text = _text().replace("params:\n", "params:\n  use_best_model: {type: categorical, choices: [yes, no]}\n", 1)
    path.write_text(text)
    code, out, err = invoke("validate", str(path))
    assert code == 0 and ": ok: study 'small', 3 tuned params" in out, (out, err)


def test_validate_json_reports_problems_and_summary(workspace: Path) -> None:
    data = {"version": "v0.1.0", "source": "sklearn:diabetes", "target": "target"}
    bad = write_space_as(workspace, small_space(data=data, n_trials=0), "bad.yaml")
    code, out, err = invoke("validate", "--json", str(bad))
    assert code == 2, (out, err)
    report = json.loads(out)
    assert report["ok"] is False and report["summary"] is None and report["file"] == str(bad)
    assert {p["key"]: p["message"] for p in report["problems"]} == {
        "n_trials": "`n_trials` must be > 0, but got 0",
        "data.split": "`data.split` is required for a single-table source: {validation: 0.2, test: 0.2, seed: 0} or {column: <name>}",
    }

    good = write_space(workspace / "search_spaces", "good.yaml")
    code, out, err = invoke("validate", "--json", str(good))
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["ok"] is True and report["problems"] == []
    summary = report["summary"]
    assert summary["study"] == "small" and summary["task"] == "regression" and summary["target"] == "target"
    assert summary["rows"] == {"train": 266, "validation": 88, "test": 88} and summary["features"] == 10
    assert summary["metric"] == "pearson_r" and summary["direction"] == "maximize" and summary["cv"] is None
    assert not (workspace / "studies" / "hpo.db").exists()


def _dashboard_detail(db: Path) -> dict:
    """The study as optuna-dashboard's own API serves it to the browser (its WSGI app, no server)."""
    import optuna_dashboard

    app = optuna_dashboard.wsgi(f"sqlite:///{db}")
    environ: dict = {
        "PATH_INFO": "/api/studies/1",
        "QUERY_STRING": "after=0",
        "REQUEST_METHOD": "GET",
        "wsgi.input": io.BytesIO(),
    }
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
    assert status[0].startswith("200"), (status, body[:300])
    return json.loads(body)


def test_the_study_names_its_metric_for_optuna_and_the_dashboard(workspace: Path) -> None:
    import optuna

    path = write_space(workspace / "search_spaces", n_trials=1)
    code, out, err = invoke("run", str(path))
    assert code == 0, (out, err)
    db = workspace / "studies" / "hpo.db"
    storage = f"sqlite:///{db}"
    study = optuna.load_study(study_name="small", storage=storage)
    assert study.metric_names == ["pearson_r"]
    assert _dashboard_detail(db)["objective_names"] == ["pearson_r"]  # the history axis, not "Objective 0"

    # A study made before hpo named its metric gets the name when resumed.
    optuna.storages.RDBStorage(storage).set_study_system_attr(study._study_id, "study:metric_names", None)
    assert optuna.load_study(study_name="small", storage=storage).metric_names is None
    write_space(workspace / "search_spaces", n_trials=2)
    code, out, err = invoke("run", str(path))
    assert code == 0, (out, err)
    assert optuna.load_study(study_name="small", storage=storage).metric_names == ["pearson_r"]

    # A changed space names the keys that changed, with both values.
    write_space(workspace / "search_spaces", n_trials=2, seed=8, fixed={"iterations": 30, "thread_count": 1})
    code, out, err = invoke("run", str(path))
    assert code == 2 and err.count("\n") == 1, (out, err)
    assert "with a different search space (from search_spaces/space.yaml: `seed` 7 -> 8, `fixed.iterations` 40 -> 30)" in err
