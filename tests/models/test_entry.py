"""The team's own training function as a model (`model: module:function`), through validate and run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, invoke, trials_of, write_space_as

EXAMPLE = ROOT / "search_spaces" / "diabetes-sgd.yaml"


def space_of(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "study": "own",
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2},
        },
        "model": model,
        "metric": "r2",
        "n_trials": 2,
        "seed": 0,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        **extra,
    }


def test_the_shipped_entry_point_example_runs_and_its_pruner_stops_trials(workspace: Path) -> None:
    # The example's module sits where the README puts it, beside its space file.
    shutil.copy(ROOT / "search_spaces" / "diabetes_sgd.py", workspace / "search_spaces")
    space = yaml.safe_load(EXAMPLE.read_text())
    space.update(n_trials=14, fixed={"epochs": 20})
    code, out, err = invoke("run", str(write_space_as(workspace, space)), "--json")
    assert code == 0, err
    states = json.loads(out)["states"]
    done = trials_of(workspace, "diabetes-sgd")
    pruned = [t for t in done if t.state.name == "PRUNED"]
    complete = [t for t in done if t.state.name == "COMPLETE"]
    assert pruned and complete, states
    # A pruned trial stopped where the pruner said: fewer epochs reported than a full fit.
    assert all(len(t.intermediate_values) < 20 for t in pruned)
    assert all(len(t.intermediate_values) == 20 for t in complete)
    assert all(0 < t.value < 1 for t in complete)
    # In a fresh process (nothing imported yet), analyze finds the module in the workspace to re-fit
    # the best trial for its noise floor.
    args = ("--study", "diabetes-sgd", "--noise-refits", "2", "--min-trials", "3", "--json", "--dry-run")
    # The console script, as a user runs it: `python -m hpo` would put the current folder on the path.
    hpo = str(Path(sys.executable).with_name("hpo"))
    proc = subprocess.run([hpo, "analyze", *args], cwd=workspace, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    analysis = json.loads(proc.stdout)
    assert set(analysis["params"]) == {"alpha", "eta0", "penalty"}
    assert analysis["noise"] is not None and len(analysis["noise"]["values"]) == 2, proc.stderr


def test_a_function_that_declares_only_what_it_needs(workspace: Path) -> None:
    # Module names are unique per test: a process imports a module once (as any Python program).
    (workspace / "train_needs.py").write_text(
        "from sklearn.linear_model import Ridge\n\n\n"
        "def fit(params, train):\n    return Ridge(alpha=params['alpha']).fit(train.X, train.y)\n"
    )
    code, _, err = invoke("run", str(write_space_as(workspace, space_of("train_needs:fit"))), "--quiet")
    assert code == 0, err
    assert {t.state.name for t in trials_of(workspace, "own")} == {"COMPLETE"}


def test_what_only_a_fit_can_show_fails_that_trial_with_the_reason(workspace: Path) -> None:
    (workspace / "train_fails.py").write_text(
        "def nothing(params):\n    return None\n\n\n"
        "def broken(params, train, seed):\n    raise RuntimeError(f'no convergence at alpha={params[\"alpha\"]:.3f}')\n\n\n"
        "def leaves(params):\n    import sys\n\n    sys.exit(3)\n"
    )
    code, _, err = invoke("run", str(write_space_as(workspace, space_of("train_fails:nothing"))), "--quiet")
    assert code == 1 and "Traceback" not in err, err
    assert all(t.state.name == "FAIL" for t in trials_of(workspace, "own"))
    assert all(
        t.user_attrs["error"] == "TypeError: train_fails:nothing returned NoneType, not a fitted model with predict()"
        for t in trials_of(workspace, "own")
    )
    code, _, err = invoke("run", str(write_space_as(workspace, space_of("train_fails:broken", study="own2"))), "--quiet")
    assert code == 1 and "Traceback" not in err, err
    failed = trials_of(workspace, "own2")
    assert len(failed) == 2 and all(t.user_attrs["error"].startswith("RuntimeError: no convergence at alpha=") for t in failed)
    assert all("train_fails.py" in t.user_attrs["traceback"] for t in failed)  # the user's own frame is kept
    # A training script that exits (argparse, say) fails its trial; hpo neither exits nor leaves it RUNNING.
    code, _, err = invoke("run", str(write_space_as(workspace, space_of("train_fails:leaves", study="own3"))), "--quiet")
    assert code == 1 and "Traceback" not in err, err
    assert [t.user_attrs["error"] for t in trials_of(workspace, "own3")] == [
        "RuntimeError: train_fails:leaves called sys.exit(3)"
    ] * 2


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("nope:fit", "`model` cannot import module 'nope' (ModuleNotFoundError: No module named 'nope')"),
        ("train_bad:nope", "`model` module 'train_bad' has no attribute 'nope'"),
        ("train_bad:needs_more", "`model` train_bad:needs_more needs 'config', which hpo cannot supply (it supplies params, train, validation, seed, report)"),
        ("train_bad:Thing", "`model` train_bad:Thing is not a function"),
        ("train_bad:", "`model` must be one of catboost, an estimator class's import path"),
        ("broken_module:fit", "`model` cannot import module 'broken_module' (SyntaxError:"),
    ],
)  # fmt: skip
def test_an_entry_point_hpo_cannot_call_is_one_line_and_writes_nothing(workspace: Path, model: str, message: str) -> None:
    (workspace / "train_bad.py").write_text("class Thing:\n    pass\n\n\ndef needs_more(params, config):\n    pass\n")
    (workspace / "broken_module.py").write_text("def fit(:\n")
    path = write_space_as(workspace, space_of(model))
    for verb in ("validate", "run"):
        code, _, err = invoke(verb, str(path))
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and message in lines[0], err
    assert not (workspace / "studies").exists()


def test_the_shipped_pipeline_example_tunes_step_params(workspace: Path) -> None:
    shutil.copy(ROOT / "search_spaces" / "pipeline.py", workspace / "search_spaces")
    space = yaml.safe_load((ROOT / "search_spaces" / "breast-cancer-pipeline.yaml").read_text())
    space.update(n_trials=4)
    code, _, err = invoke("run", str(write_space_as(workspace, space)), "--quiet")
    assert code == 0, err
    done = trials_of(workspace, "breast-cancer-pipeline")
    assert {t.state.name for t in done} == {"COMPLETE"} and all(t.value < 0.5 for t in done)  # logloss of a real fit
    assert {t.params["logisticregression__class_weight"] for t in done} <= {None, "balanced"}
    # A step parameter the pipeline does not take shows only at fit time: that trial fails, saying so.
    space.update(study="pipeline-typo", params={"logisticregresion__C": {"type": "float", "low": 0.1, "high": 1}})
    code, _, err = invoke("run", str(write_space_as(workspace, space, "typo.yaml")), "--quiet")
    assert code == 1 and "Traceback" not in err, err
    errors = [t.user_attrs["error"] for t in trials_of(workspace, "pipeline-typo")]
    assert errors and all("Invalid parameter 'logisticregresion'" in e for e in errors), errors
