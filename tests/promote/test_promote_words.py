"""Promotion's refusals name a setting as its caller wrote it: the CLI's flag, or the Python API's keyword."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpo.errors import HpoError
from hpo.promote import DegenerateModel, promote
from hpo.workspace import load_workspace
from tests.conftest import commit_all, invoke, write_space, write_space_as


@pytest.fixture
def outside_git_study(workspace: Path, mlflow_store: str) -> Path:
    """A finished 2-trial study in a workspace that is not in git (promotion needs allow_dirty there)."""
    code, out, err = invoke("run", str(write_space(workspace / "search_spaces", "small.yaml", n_trials=2)), "--quiet")
    assert code == 0, err
    return workspace


# (CLI arguments, the CLI's error line, the same call through the Python API, the API's words)
REFUSALS = [
    (
        ["first"],
        "error: TRIAL must be a trial number or `best`, but got 'first'",
        {"trial": "first"},
        "`trial` must be a trial number or `best`, but got 'first'",
    ),
    (
        ["best", "--tolerance", "-1"],
        "error: --tolerance must be a finite number >= 0, but got -1.0",
        {"tolerance": -1.0},
        "`tolerance` must be a finite number >= 0, but got -1.0",
    ),
    (
        ["best", "--register", "model", "--alias", "latest"],
        "error: --alias 'latest': ",
        {"register": "model", "alias": "latest"},
        "`alias` 'latest': ",
    ),
    (
        ["best"],
        "or pass --allow-dirty to promote anyway (the run is then tagged so)",
        {},
        "or pass `allow_dirty` to promote anyway (the run is then tagged so)",
    ),
]


def test_a_refusal_names_the_flag_on_the_cli_and_the_keyword_in_python(outside_git_study: Path) -> None:
    for args, cli_words, kwargs, api_words in REFUSALS:
        code, out, err = invoke("promote", *args)
        assert code == 2 and cli_words in err and err.count("error:") == 1, (args, err)
        call = {"trial": "best", **kwargs}
        with pytest.raises(HpoError) as caught:
            promote(call.pop("trial"), workspace=load_workspace(outside_git_study), **call)
        assert api_words in str(caught.value) and "--" not in str(caught.value), (kwargs, str(caught.value))
    # `hpo reproduce` takes the trial as --trial (promote as its TRIAL argument): each names its own.
    code, out, err = invoke("reproduce", "--study", "small", "--trial", "first")
    assert code == 2 and "error: --trial must be a trial number or `best`, but got 'first'" in err, err


def test_a_degenerate_model_is_refused_and_allowed_in_the_callers_words(workspace: Path, mlflow_store: str) -> None:
    # 2% positives and 5 tiny boosting steps: every trial predicts the majority class.
    rng = np.random.default_rng(0)
    y = np.zeros(400, dtype=int)
    y[rng.choice(400, 8, replace=False)] = 1
    pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400), "y": y}).to_csv(workspace / "rare.csv", index=False)
    space = {
        "study": "rare",
        "data": {"version": "v0.1.0", "target": "y", "source": "rare.csv", "split": {"validation": 0.25, "test": 0.25}},
        "model": "catboost",
        "metric": "f1",
        "n_trials": 1,
        "seed": 1,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {"depth": {"type": "int", "low": 2, "high": 3}},
        "fixed": {"iterations": 5, "learning_rate": 0.03, "thread_count": 1},
    }
    path = write_space_as(workspace, space, "rare.yaml")
    commit_all(workspace)
    assert invoke("run", str(path), "--quiet")[0] == 0

    code, out, err = invoke("promote", "best")
    assert code == 2 and "; pass --allow-degenerate to promote it anyway, e.g. as a baseline" in err, err
    with pytest.raises(DegenerateModel) as caught:
        promote("best", workspace=load_workspace(workspace))
    assert "; pass `allow_degenerate` to promote it anyway, e.g. as a baseline" in str(caught.value)

    warned: list[str] = []
    result = promote("best", allow_degenerate=True, workspace=load_workspace(workspace), warn=warned.append)
    assert result.degenerate and warned == [
        f"trial #0 of study 'rare' is a degenerate model, promoted as asked (`allow_degenerate`): {result.degenerate}"
    ]
    # The run's note is data, the same whoever promoted: it names the CLI's flag.
    from mlflow import MlflowClient

    note = MlflowClient().get_run(result.run_id).data.tags["mlflow.note.content"]
    assert "**Degenerate model** (promoted with --allow-degenerate)" in note
    said: list[str] = []
    promote("best", workspace=load_workspace(workspace), say=said.append)
    assert said and said[0].endswith("; nothing re-trained (`again` promotes it once more)"), said
    code, out, err = invoke("promote", "best")
    assert code == 0 and "; nothing re-trained (--again promotes it once more)" in err, err
