"""What `hpo validate` accepts must run, and validate stays fast: MLflow keys, anchored names, grids, choices."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpo.space import key_problem, parse_space
from tests.conftest import invoke, run_cli, small_space, trials_of, write_space_as


def own_model_space(**extra: Any) -> dict[str, Any]:
    """A space whose model is a training function, which takes any parameter name (catboost knows its own)."""
    space = small_space(
        model="train_keys:fit", metric="r2", n_trials=1, params={"alpha": {"type": "float", "low": 0.1, "high": 1.0}}
    )
    space["fixed"] = {}
    space.update(extra)
    return space


@pytest.fixture
def own_model(workspace: Path) -> Path:
    (workspace / "train_keys.py").write_text(
        "from sklearn.linear_model import Ridge\n\n\ndef fit(params, train):\n    return Ridge(alpha=params['alpha']).fit(train.X, train.y)\n"
    )
    return workspace


# -- item 5: names MLflow refuses as keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "name", "rule"),
    [
        ("params", "alpha'; DROP TABLE trials;--", "holds \"'\", ';', which MLflow refuses as a param key"),
        ("params", "../../x", "starts with '..' (a path out of its folder), which MLflow refuses"),
        ("fixed", "/etc", "starts with '/' (an absolute path)"),
        ("fixed", "a//b", "reads as the path 'a/b' once normalised"),
        ("params", "x" * 251, "is 251 characters long"),
    ],
)
def test_a_name_mlflow_refuses_is_refused_in_one_line_before_anything_runs(
    own_model: Path, section: str, name: str, rule: str
) -> None:
    space = own_model_space()
    if section == "params":
        space["params"][name] = {"type": "int", "low": 1, "high": 2}
    else:
        space["fixed"][name] = 1
    path = write_space_as(own_model, space)
    for verb in ("validate", "run"):
        code, out, err = invoke(verb, str(path))
        assert code == 2 and err.count("\n") == 1, (out, err)
        assert err.startswith(f"error: {path}: `{section}.{name}` {rule}"), err
        assert "letters, digits, '_', '-', '.', ':', '/' and spaces, at most 250 characters" in err
    assert not (own_model / "studies").exists()  # nothing half-written


def test_names_mlflow_takes_pass_validate(own_model: Path) -> None:
    space = own_model_space(fixed={"opt/beta 1:x": 1, "a.b-c_d": 2})
    code, out, err = invoke("validate", str(write_space_as(own_model, space)))
    assert code == 0, err


def test_the_key_rule_is_mlflows_own() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_param_name

    names = ["a", "a b", "a/b", "a:b", "é", ".a", "a.", "a/", "/a", "..a", "a/../b", "./a", ".", "a//b", "a;b", "a'b", "a\tb", ""]
    for name in names:
        try:
            _validate_param_name(name)
            mlflow_ok = True
        except MlflowException:
            mlflow_ok = False
        assert (key_problem(name) is None) == mlflow_ok, name


# -- item 13: names that end in a newline -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"study": "nl\n"}, "study"),
        ({"data": {**small_space()["data"], "version": "v0.1.0\n"}}, "data.version"),
        ({"data": {**small_space()["data"], "version": "v\u0661.0.0"}}, "data.version"),  # an Arabic-Indic digit
    ],
)
def test_a_name_with_a_trailing_newline_is_refused_in_one_line(workspace: Path, override: dict[str, Any], key: str) -> None:
    path = write_space_as(workspace, small_space(**override))
    code, out, err = invoke("validate", str(path))
    assert code == 2 and err.startswith(f"error: {path}: `{key}` must ") and err.count("\n") == 1, (out, err)


# -- item 14: many categorical choices ----------------------------------------------------------------------------------


def test_ten_thousand_choices_validate_and_more_are_refused_in_one_line(own_model: Path) -> None:
    many = own_model_space(params={"alpha": {"type": "float", "low": 0.1, "high": 1.0}})
    many["params"]["c"] = {"type": "categorical", "choices": [f"c{i}" for i in range(10_000)]}
    code, _, err = invoke("validate", str(write_space_as(own_model, many)))
    assert code == 0, err

    many["params"]["c"]["choices"].append("one more")
    path = write_space_as(own_model, many)
    code, _, err = invoke("validate", str(path))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {path}: `params.c.choices` may list at most 10000 values, but got 10001"), err


def test_a_repeat_far_down_a_long_list_is_found_and_named() -> None:
    choices: list[Any] = [f"c{i}" for i in range(9_000)] + [7, "x", 7.0]
    with pytest.raises(Exception, match="7 and 7.0 are the same number"):
        parse_space(yaml.safe_dump(small_space(params={"c": {"type": "categorical", "choices": choices}})))
    # Values Python (and Optuna's lookup) takes as equal are one choice; values it does not are two.
    ok = parse_space(yaml.safe_dump(small_space(params={"c": {"type": "categorical", "choices": [2, True, "1", 0.5, None]}})))
    assert ok.params["c"].choices == [2, True, "1", 0.5, None]  # type: ignore[union-attr]


# -- item 8: grids are counted, not built -------------------------------------------------------------------------------


def grid_space(step: float, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"sampler": {"name": "grid"}, "n_trials": 3, "fixed": {"iterations": 10, "thread_count": 1}}
    params = {
        "depth": {"type": "int", "low": 2, "high": 3},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "step": step},
    }
    return small_space(params=params, **{**settings, **extra})


def test_a_grid_of_ten_million_points_validates_and_runs_in_little_memory(workspace: Path) -> None:
    # 2 depths x 5,000,001 learning rates. Built whole, the grid took 2.6 GB and 160 s for 3 trials.
    path = write_space_as(workspace, grid_space(0.000000058))
    assert parse_space(path.read_text()).grid_size() == 10_000_002
    validate = run_cli("validate", str(path), cwd=workspace, timeout=300)
    assert validate.returncode == 0, validate.stderr
    ran = run_cli("run", str(path), "--json", cwd=workspace, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["states"] == {"COMPLETE": 3}
    # The largest child process so far (KB on Linux): the interpreter with its libraries is ~0.4 GB.
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 1_500_000
    points = {(t.params["depth"], t.params["learning_rate"]) for t in trials_of(workspace, "small")}
    assert len(points) == 3
    assert all(d in (2, 3) and 0.01 <= lr <= 0.3 for d, lr in points)


@pytest.mark.parametrize(
    ("step", "shown"),
    [
        (1e-12, "sampler `grid` would enumerate 5.8e+11 points (params.learning_rate: 2.9e+11, params.depth: 2)"),
        (1e-320, "sampler `grid` would enumerate about 1e308 points (params.learning_rate: about 1e308, params.depth: 2)"),
    ],
)
def test_a_grid_too_large_to_run_is_refused_in_one_line_at_once(workspace: Path, step: float, shown: str) -> None:
    path = write_space_as(workspace, grid_space(step, n_trials=None))
    code, out, err = invoke("validate", str(path))
    assert code == 2 and err.count("\n") == 1, (out, err)
    assert err.startswith(f"error: {path}: {shown}, more than the 1e+09 hpo allows; use a larger `step`"), err


def test_the_run_order_of_a_small_grid_is_the_one_hpo_always_used() -> None:
    # A grid study made before must enqueue the same points when resumed: numpy's permutation of
    # itertools.product's order, as before.
    import itertools

    import numpy as np

    space = parse_space(yaml.safe_dump(grid_space(0.01, seed=11)))
    depths, rates = [2, 3], [round(0.01 + i * 0.01, 12) for i in range(30)]
    every = [{"depth": d, "learning_rate": r} for d, r in itertools.product(depths, rates)]
    assert list(space.grid()) == every
    order = np.random.default_rng(11).permutation(len(every))
    assert list(space.grid_order()) == [every[i] for i in order]


def test_a_large_grid_is_shuffled_lazily_and_each_point_comes_once() -> None:
    from hpo.space import GridOrder, GridPoints

    space = parse_space(yaml.safe_dump(grid_space(0.0000001)))  # 2 x 2,900,001 points
    order = space.grid_order()
    assert isinstance(order, GridOrder) and len(order) == 5_800_002
    slots = range(0, len(order), 997)
    indices = [order.grid_index(k) for k in slots]
    assert len(set(indices)) == len(indices) and all(0 <= i < len(order) for i in indices)
    assert indices != sorted(indices)  # shuffled
    assert order[0] == GridPoints(space.params)[indices[0]]
    assert space.grid_order()[12345] == order[12345]  # the same seed, the same order
