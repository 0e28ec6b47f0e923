"""`hpo import-sweep`: W&B sweeps into space files, through the real CLI; the output validates and runs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpo.space import load_space
from tests.conftest import invoke, trials_of

# A W&B sweep over CatBoost's arguments, with every top-level key W&B documents.
SWEEP = """\
program: train.py
name: diabetes sweep
description: Tune CatBoost on diabetes.
method: bayes
project: my-project
entity: my-team
metric:
  name: val_rmse
  goal: minimize
  target: 40
run_cap: 3
early_terminate:
  type: hyperband
  min_iter: 3
  eta: 2
  strict: true
parameters:
  depth:
    distribution: int_uniform
    min: 2
    max: 4
  learning_rate:
    distribution: log_uniform_values
    min: 0.03
    max: 0.3
  l2_leaf_reg:
    distribution: q_uniform
    min: 1
    max: 10
    q: 0.5
  random_strength:
    min: 0.0
    max: 2.0
  bootstrap_type:
    values: [Bayesian, Bernoulli, MVS]
  bagging_temperature:
    distribution: log_uniform
    min: -2
    max: 0
  border_count:
    distribution: normal
    mu: 128
    sigma: 20
  iterations:
    value: 20
  thread_count:
    value: 1
command:
  - ${env}
  - python
  - ${program}
"""


def sweep_file(folder: Path, sweep: dict[str, Any] | str, name: str = "sweep.yaml") -> Path:
    path = folder / name
    path.write_text(sweep if isinstance(sweep, str) else yaml.safe_dump(sweep, sort_keys=False))
    return path


def minimal(**changes: Any) -> dict[str, Any]:
    """A small random sweep; ``changes`` replace its keys (None removes one)."""
    sweep: dict[str, Any] = {
        "method": "random",
        "metric": {"name": "rmse", "goal": "minimize"},
        "run_cap": 5,
        "parameters": {"depth": {"min": 2, "max": 4}},
    }
    for key, value in changes.items():
        if value is None:
            sweep.pop(key, None)
        else:
            sweep[key] = value
    return sweep


def convert(folder: Path, sweep: dict[str, Any] | str, *args: str) -> tuple[dict[str, Any], str]:
    """The printed space file, parsed, and stderr."""
    code, out, err = invoke("import-sweep", str(sweep_file(folder, sweep)), "--data", "sklearn:diabetes", *args)
    assert code == 0, err
    return yaml.safe_load(out), err


def test_a_bayes_sweep_becomes_a_space_that_validates_and_runs(workspace: Path) -> None:
    sweep = sweep_file(workspace, SWEEP)
    code, out, err = invoke("import-sweep", str(sweep), "--data", "sklearn:diabetes", "-o", "space.yaml")
    assert code == 0, err
    assert "wrote space.yaml: study 'diabetes-sweep', 6 tuned params, 2 fixed, metric rmse (minimize)" in out

    space = load_space(workspace / "space.yaml").space
    assert (space.study, space.metric, space.n_trials, space.model) == ("diabetes-sweep", "rmse", 3, "catboost")
    assert space.data.source == "sklearn:diabetes" and space.data.version == "v0.1.0" and space.data.target == "target"
    assert space.sampler.name == "tpe"
    assert space.pruner.model_dump() == {"name": "hyperband", "min_resource": 3, "reduction_factor": 2}
    assert space.fixed == {"iterations": 20, "thread_count": 1}
    params = {name: p.model_dump(exclude_defaults=True) for name, p in space.params.items()}
    assert params == {
        "depth": {"type": "int", "low": 2, "high": 4},
        "learning_rate": {"type": "float", "low": 0.03, "high": 0.3, "log": True},
        "l2_leaf_reg": {"type": "float", "low": 1.0, "high": 10.0, "step": 0.5},
        "random_strength": {"type": "float", "low": 0.0, "high": 2.0},
        "bootstrap_type": {"type": "categorical", "choices": ["Bayesian", "Bernoulli", "MVS"]},
        "bagging_temperature": {"type": "float", "low": pytest.approx(math.exp(-2)), "high": 1.0, "log": True},
    }

    # What had no counterpart is said on stderr, one line each, and kept in the file's header.
    dropped = [line for line in err.splitlines() if line.startswith("not carried over: ")]
    keys = [line.removeprefix("not carried over: ").split(" ")[0] for line in dropped]
    assert keys == [
        "parameters.border_count",
        "metric.target",
        "early_terminate.strict",
        "program",
        "project",
        "entity",
        "command",
    ]
    assert "write `{type: float, low: 88, high: 168}`" in dropped[0]
    assert "--model module:function" in dropped[3]
    assert "note: `parameters.bagging_temperature` is log_uniform, whose min and max are base-e exponents" in err
    text = (workspace / "space.yaml").read_text()
    assert "#   program ('train.py'): hpo trains the space's model" in text
    assert "# Its description: Tune CatBoost on diabetes." in text
    assert "n_trials: 3  # run_cap" in text and "metric: rmse  # metric: {name: val_rmse, goal: minimize}" in text

    code, out, err = invoke("validate", "space.yaml")
    assert code == 0, err
    assert "ok: study 'diabetes-sweep', 6 tuned params" in out
    code, out, err = invoke("run", "space.yaml", "--quiet")
    assert code == 0, err
    assert len(trials_of(workspace, "diabetes-sweep")) == 3


def test_without_output_the_space_is_printed_and_nothing_written(workspace: Path) -> None:
    sweep = sweep_file(workspace, minimal())
    code, out, err = invoke("import-sweep", str(sweep), "--data", "sklearn:diabetes")
    assert code == 0 and err == ""
    assert out.startswith("# Converted from the W&B sweep") and yaml.safe_load(out)["params"] == {
        "depth": {"type": "int", "low": 2, "high": 4}
    }
    assert sorted(p.name for p in workspace.iterdir()) == ["search_spaces", "sweep.yaml"]


@pytest.mark.parametrize(
    ("method", "sampler"),
    [("random", "random"), ("bayes", "tpe"), ("grid", "grid")],
)
def test_each_method_becomes_a_sampler(workspace: Path, method: str, sampler: str) -> None:
    space, _ = convert(workspace, minimal(method=method))
    assert space["sampler"] == {"name": sampler}
    assert space["pruner"] == {"name": "none"}  # no early_terminate: W&B stops no run early


DISTRIBUTIONS = {
    "values": ({"values": [1, "a", None, 2.5]}, {"type": "categorical", "choices": [1, "a", None, 2.5]}),
    "categorical": ({"distribution": "categorical", "values": [True, False]}, {"type": "categorical", "choices": [True, False]}),
    "min/max integers": ({"min": 2, "max": 8}, {"type": "int", "low": 2, "high": 8}),
    "min/max floats": ({"min": 0, "max": 0.5}, {"type": "float", "low": 0.0, "high": 0.5}),
    "int_uniform": ({"distribution": "int_uniform", "min": -3, "max": 3}, {"type": "int", "low": -3, "high": 3}),
    "uniform on integers": ({"distribution": "uniform", "min": 1, "max": 3}, {"type": "float", "low": 1.0, "high": 3.0}),
    "log_uniform_values": (
        {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
        {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
    ),
    "log_uniform (exponents)": (
        {"distribution": "log_uniform", "min": math.log(1e-4), "max": 0},
        {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    ),
    "inv_log_uniform_values": (
        {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1},
        {"type": "float", "low": 0.01, "high": 1.0, "log": True},
    ),
    "inv_log_uniform (exponents)": (
        {"distribution": "inv_log_uniform", "min": 0, "max": math.log(100)},
        {"type": "float", "low": 0.01, "high": 1.0, "log": True},
    ),
    "q_uniform float": (
        {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
        {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25},
    ),
    "q_uniform integers": (
        {"distribution": "q_uniform", "min": 16, "max": 128, "q": 16},
        {"type": "int", "low": 16, "high": 128, "step": 16},
    ),
    "q_uniform without q (W&B's 1.0)": (
        {"distribution": "q_uniform", "min": 1, "max": 4},
        {"type": "float", "low": 1.0, "high": 4.0, "step": 1.0},
    ),
    "q_uniform bounds off the multiples": (
        {"distribution": "q_uniform", "min": 1, "max": 10, "q": 3},
        {"type": "int", "low": 3, "high": 9, "step": 3},
    ),
    "q_log_uniform_values with q 1": (
        {"distribution": "q_log_uniform_values", "min": 8, "max": 512, "q": 1},
        {"type": "int", "low": 8, "high": 512, "log": True},
    ),
    "categorical_w_probabilities": (
        {"distribution": "categorical_w_probabilities", "values": ["a", "b"], "probabilities": [0.9, 0.1]},
        {"type": "categorical", "choices": ["a", "b"]},
    ),
}


@pytest.mark.parametrize(("spec", "expected"), DISTRIBUTIONS.values(), ids=DISTRIBUTIONS.keys())
def test_each_distribution(workspace: Path, spec: dict[str, Any], expected: dict[str, Any]) -> None:
    space, err = convert(workspace, minimal(parameters={"x": spec}))
    assert space["params"] == {"x": expected}
    if "probabilities" in spec:
        assert "not carried over: parameters.x.probabilities ([0.9, 0.1]): hpo's samplers weigh every choice alike" in err
    if spec.get("distribution") in ("log_uniform", "inv_log_uniform"):
        assert "whose min and max are base-e exponents" in err
    if spec.get("q") == 3:
        assert (
            "note: `parameters.x` is q_uniform, which rounds to multiples of q=3: written as the multiples within [1, 10], 3..9"
            in err
        )


def test_value_becomes_fixed(workspace: Path) -> None:
    space, _ = convert(workspace, minimal(parameters={"depth": {"min": 2, "max": 4}, "loss_function": {"value": "RMSE"}}))
    assert space["fixed"] == {"loss_function": "RMSE"}
    assert "loss_function" not in space["params"]


NOT_CARRIED = {
    "normal": ({"distribution": "normal", "mu": 0.5, "sigma": 0.1}, "write `{type: float, low: 0.3, high: 0.7}`"),
    "q_normal": ({"distribution": "q_normal", "mu": 10, "sigma": 2, "q": 1}, "`{type: float, low: 6, high: 14, step: 1}`"),
    "log_normal": ({"distribution": "log_normal"}, "`{type: float, low: 0.135335, high: 7.38906, log: true}`"),
    "beta": ({"distribution": "beta", "a": 2, "b": 5}, "write `{type: float, low: 0.0, high: 1.0}`"),
    "q_log_uniform_values": (
        {"distribution": "q_log_uniform_values", "min": 16, "max": 256, "q": 8},
        "`{type: float, low: 16, high: 256, log: true}` (unrounded)",
    ),
    "q_log_uniform": ({"distribution": "q_log_uniform", "min": 0, "max": 2, "q": 1}, "Optuna's log scale takes no step"),
    "values that are lists": ({"values": [[64, 64], [128]]}, "write each as a string"),
}


@pytest.mark.parametrize(("spec", "hint"), NOT_CARRIED.values(), ids=NOT_CARRIED.keys())
def test_distributions_without_a_counterpart_are_said_not_dropped(workspace: Path, spec: dict[str, Any], hint: str) -> None:
    space, err = convert(workspace, minimal(parameters={"depth": {"min": 2, "max": 4}, "x": spec}))
    assert list(space["params"]) == ["depth"]
    line = next(line for line in err.splitlines() if line.startswith("not carried over: parameters.x "))
    assert hint in line


def test_grid_needs_steps_and_its_budget_is_its_size(workspace: Path) -> None:
    grid = {
        "a": {"values": [0.1, 0.2]},
        "b": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.5},
        "c": {"min": 1, "max": 2},
    }
    space, err = convert(workspace, minimal(method="grid", parameters=grid, run_cap=None))
    assert space["params"] == {
        "a": {"type": "categorical", "choices": [0.1, 0.2]},
        "b": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.5},
        "c": {"type": "int", "low": 1, "high": 2},
    }
    assert "n_trials" not in space and err == ""  # 12 points: the grid's size is the budget

    space, err = convert(workspace, minimal(method="grid", parameters=grid, run_cap=50))
    assert "n_trials" not in space
    assert "note: the budget 50 covers the whole grid of 12 points" in err
    space, _ = convert(workspace, minimal(method="grid", parameters=grid, run_cap=5))
    assert space["n_trials"] == 5


def test_early_terminate_hyperband_becomes_the_hyperband_pruner(workspace: Path) -> None:
    space, _ = convert(workspace, minimal(early_terminate={"type": "hyperband", "min_iter": 5}))
    assert space["pruner"] == {"name": "hyperband", "min_resource": 5, "reduction_factor": 3}  # W&B's eta default is 3

    # max_iter and s: W&B's bands are 27/3=9, 27/9=3; the first is hpo's min_resource.
    space, err = convert(workspace, minimal(early_terminate={"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3}))
    assert space["pruner"] == {"name": "hyperband", "min_resource": 3, "reduction_factor": 3}
    assert "hpo's min_resource is W&B's first band, max_iter 27 / eta^2 = 3" in err

    space, err = convert(workspace, minimal(early_terminate={"type": "hyperband", "min_iter": 2, "eta": 2.5}))
    assert space["pruner"] == {"name": "hyperband", "min_resource": 2}
    assert "not carried over: early_terminate.eta (2.5): hpo's reduction_factor is a whole number" in err


def test_run_cap_is_the_budget_and_a_sweep_without_one_gets_a_stated_budget(workspace: Path) -> None:
    space, _ = convert(workspace, minimal(run_cap=7))
    assert space["n_trials"] == 7
    space, err = convert(workspace, minimal(run_cap=None))
    assert space["n_trials"] == 100
    assert "note: the sweep has no run_cap (W&B runs it until stopped)" in err
    space, _ = convert(workspace, minimal(run_cap=7), "--n-trials", "3")
    assert space["n_trials"] == 3


METRICS = {
    "hpo's own name": ({"name": "r2", "goal": "maximize"}, "r2"),
    "a validation prefix": ({"name": "val/accuracy", "goal": "maximize"}, "accuracy"),
    "an alias": ({"name": "valid_auc", "goal": "maximize"}, "roc_auc"),
    "cross entropy": ({"name": "eval_cross_entropy"}, "logloss"),  # goal: W&B's default minimize
    "mse ranks as rmse": ({"name": "val_mse"}, "rmse"),
}


@pytest.mark.parametrize(("metric", "expected"), METRICS.values(), ids=METRICS.keys())
def test_metric_names_map_to_hpo_metrics(workspace: Path, metric: dict[str, Any], expected: str) -> None:
    space, err = convert(workspace, minimal(metric=metric))
    assert space["metric"] == expected
    if expected == "rmse":
        assert "hpo has no mse; rmse, its square root, ranks trials the same" in err


def test_metric_option_overrides_an_ambiguous_metric(workspace: Path) -> None:
    space, err = convert(workspace, minimal(metric={"name": "val_loss", "goal": "minimize"}), "--metric", "logloss")
    assert space["metric"] == "logloss"
    assert "note: --metric logloss replaces the sweep's metric 'val_loss'" in err


def test_nested_parameters_are_flattened(workspace: Path) -> None:
    nested = {
        "depth": {"min": 2, "max": 4},
        "optimizer": {"parameters": {"lr": {"min": 0.1, "max": 0.5}, "kind": {"value": "x"}}},
    }
    space, err = convert(workspace, minimal(parameters=nested))
    assert list(space["params"]) == ["depth", "optimizer.lr"] and space["fixed"] == {"optimizer.kind": "x"}
    assert (
        "note: `parameters.optimizer` is nested; hpo's params are flat, so its parameters are named optimizer.kind, optimizer.lr"
        in err
    )


def test_study_name_from_option_sweep_name_or_file(workspace: Path) -> None:
    assert convert(workspace, minimal(name="My sweep #2"))[0]["study"] == "My-sweep-2"
    assert convert(workspace, minimal())[0]["study"] == "sweep"
    space, err = convert(workspace, minimal(name="x"), "--study", "mine", "--target", "y", "--version", "v1.2.0")
    assert (space["study"], space["data"]["target"], space["data"]["version"]) == ("mine", "y", "v1.2.0")
    assert "not carried over: name ('x'): --study names the study" in err


def test_an_existing_file_is_not_overwritten_without_force(workspace: Path) -> None:
    sweep = sweep_file(workspace, minimal())
    out = workspace / "space.yaml"
    out.write_text("keep me\n")
    code, stdout, err = invoke("import-sweep", str(sweep), "--data", "sklearn:diabetes", "-o", str(out))
    assert (code, stdout) == (2, "")
    assert err == f"error: {out}: already exists; give another -o path, or --force to overwrite it\n"
    assert out.read_text() == "keep me\n"
    code, _, err = invoke("import-sweep", str(sweep), "--data", "sklearn:diabetes", "-o", str(out), "--force")
    assert code == 0, err
    assert load_space(out).space.study == "sweep"
    assert sorted(p.name for p in workspace.iterdir()) == ["search_spaces", "space.yaml", "sweep.yaml"]  # no temp file left


BAD = {
    "not a mapping": (
        "- method: random\n",
        "sweep.yaml: is not a W&B sweep: it must be a YAML mapping with `method` and `parameters`",
    ),
    "an hpo space file": (
        "study: s\nmetric: r2\nparams: {depth: {type: int, low: 1, high: 2}}\n",
        "sweep.yaml: is not a W&B sweep: it has no `method` and no `parameters` (its keys: study, metric, params)",
    ),
    "no parameters": (minimal(parameters=None), "sweep.yaml: is not a W&B sweep: `parameters` is required"),
    "no method": (minimal(method=None), "sweep.yaml: is not a W&B sweep: `method` is required (grid, random or bayes)"),
    "unknown method": (minimal(method="custom"), "sweep.yaml: `method` must be one of grid, random, bayes, but got 'custom'"),
    "empty parameters": (minimal(parameters={}), "sweep.yaml: `parameters` must be a mapping of at least one parameter name"),
    "min > max": (
        minimal(parameters={"depth": {"min": 8, "max": 2}}),
        "sweep.yaml: `parameters.depth.min` must be < `max` (W&B's rule), but got min=8, max=2",
    ),
    "unknown distribution": (
        minimal(parameters={"x": {"distribution": "lognormal", "min": 1, "max": 2}}),
        "sweep.yaml: `parameters.x.distribution` must be one of W&B's constant, categorical,",
    ),
    "a key the distribution does not take": (
        minimal(parameters={"x": {"min": 1, "max": 2, "q": 1}}),
        "sweep.yaml: `parameters.x.q` is not a key of a W&B int_uniform parameter (it takes min, max)",
    ),
    "a parameter that is not a mapping": (minimal(parameters={"x": 3}), "sweep.yaml: `parameters.x` must be a mapping"),
    "int_uniform on floats": (
        minimal(parameters={"x": {"distribution": "int_uniform", "min": 1.5, "max": 3}}),
        "sweep.yaml: `parameters.x.min` must be an integer for int_uniform, but got 1.5",
    ),
    "log_uniform_values from 0": (
        minimal(parameters={"x": {"distribution": "log_uniform_values", "min": 0, "max": 1}}),
        "sweep.yaml: `parameters.x.min` must be > 0 for log_uniform_values, but got min=0",
    ),
    "a continuous range in a grid": (
        minimal(method="grid", parameters={"x": {"min": 0.1, "max": 0.5}}),
        "sweep.yaml: `parameters.x` is a continuous range (uniform), which a grid cannot enumerate",
    ),
    "only values": (
        minimal(parameters={"x": {"value": 1}}),
        "sweep.yaml: `parameters` leaves nothing to tune: every parameter is a `value` or was not carried over",
    ),
    "an ambiguous metric": (
        minimal(metric={"name": "val_loss"}),
        "sweep.yaml: `metric.name` 'val_loss' names none of hpo's metrics unambiguously; pass --metric "
        "(regression: pearson_r, spearman_r, r2, rmse, mae; classification: accuracy, f1, roc_auc, logloss)",
    ),
    "a goal against the metric": (
        minimal(metric={"name": "val_acc"}),
        "sweep.yaml: `metric.goal` is minimize (W&B's default when `goal` is not given), but hpo's accuracy, "
        "which `metric.name` 'val_acc' maps to, is to maximize",
    ),
    "no metric": (minimal(metric=None), "sweep.yaml: `metric` is not given, and hpo optimizes one; pass --metric, one of"),
    "an unknown --metric": (minimal(), "--metric must be one of pearson_r"),
    "early_terminate of another type": (
        minimal(early_terminate={"type": "median"}),
        "sweep.yaml: `early_terminate.type` must be hyperband (the only type W&B knows), but got 'median'",
    ),
    "run_cap of zero": (minimal(run_cap=0), "sweep.yaml: `run_cap` must be an integer >= 1, but got 0"),
    "a YAML alias": (
        "method: random\nmetric: {name: rmse}\nparameters:\n  a: &r {min: 1, max: 2}\n  b: *r\n",
        "sweep.yaml: invalid YAML (line 5, column 6): aliases (*r) are not allowed; write the value out",
    ),
    "a repeated key": (
        "method: random\nmethod: grid\nparameters: {a: {values: [1]}}\n",
        "sweep.yaml: invalid YAML (line 2, column 1): key 'method' appears twice",
    ),
    "invalid YAML": ("method: [random\n", "sweep.yaml: invalid YAML"),
    # Written as it came, such a name made a space whose run logged nothing to MLflow and that `hpo sync` never could.
    "a name MLflow refuses": (
        minimal(parameters={"depth": {"min": 2, "max": 4}, "alpha'; DROP TABLE trials;--": {"min": 0.1, "max": 1.0}}),
        "sweep.yaml: `parameters.alpha'; DROP TABLE trials;--`: the parameter name \"alpha'; DROP TABLE trials;--\" holds "
        "\"'\", ';', which MLflow refuses as a param key: MLflow keys hold only letters, digits",
    ),
    "a nested name MLflow refuses": (
        minimal(parameters={"depth": {"min": 2, "max": 4}, "opt": {"parameters": {"x//y": {"values": [1, 2]}}}}),
        "sweep.yaml: `parameters.opt.parameters.x//y`: the parameter name 'opt.x//y' reads as the path 'opt.x/y' once normalised",
    ),
}


@pytest.mark.parametrize(("sweep", "message"), BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_exit_2_and_nothing_written(workspace: Path, sweep: dict[str, Any] | str, message: str) -> None:
    path = sweep_file(workspace, sweep)
    extra = ["--metric", "mse"] if message.startswith("--metric") else []
    code, out, err = invoke("import-sweep", path.name, "--data", "sklearn:diabetes", "-o", "space.yaml", *extra)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {message}"), err
    assert not (workspace / "space.yaml").exists()


def test_a_missing_sweep_file(workspace: Path) -> None:
    code, _, err = invoke("import-sweep", "nope.yaml", "--data", "sklearn:diabetes")
    assert (code, err) == (2, "error: nope.yaml: file not found\n")


def test_the_python_api_names_its_keywords_not_the_cli_flags(tmp_path: Path) -> None:
    """Called from Python, a refusal or note names the keyword the caller passed; the CLI's flags are for the CLI."""
    from hpo.sweep import SweepError, check_output, convert_sweep

    with pytest.raises(SweepError) as bad:
        convert_sweep(minimal(), data="sklearn:diabetes", metric="nope")
    assert str(bad.value).startswith("`metric` must be one of pearson_r")
    with pytest.raises(SweepError) as ambiguous:
        convert_sweep(minimal(metric={"name": "loss"}), data="sklearn:diabetes")
    assert "unambiguously; pass `metric` (regression:" in str(ambiguous.value)
    r = convert_sweep(minimal(metric={"name": "loss"}, program="train.py"), data="sklearn:diabetes", metric="rmse", study="s")
    assert "`metric=rmse` replaces the sweep's metric 'loss'" in r.notes
    assert any("pass `model=module:function`" in str(n) for n in r.not_carried), r.not_carried
    (tmp_path / "space.yaml").write_text("keep me\n")
    with pytest.raises(SweepError) as exists:
        check_output(tmp_path / "space.yaml")
    assert str(exists.value) == f"{tmp_path / 'space.yaml'}: already exists; give another `path`, or `force` to overwrite it"
