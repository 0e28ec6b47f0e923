"""The Python API: the notebook session of docs/python-api.md, on a small budget, in-process."""

from __future__ import annotations

import inspect
import json
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, git


def test_the_documented_notebook_session_runs(workspace: Path, mlflow_store: str) -> None:
    import hpo

    space = yaml.safe_load((ROOT / "search_spaces" / "diabetes-catboost.yaml").read_text())
    space.update(n_trials=10, fixed={"iterations": 30, "thread_count": 1})
    (workspace / "search_spaces" / "diabetes-catboost.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    git(workspace, "init", "-q")
    git(workspace, "add", "search_spaces")
    git(workspace, "commit", "-q", "-m", "the example")

    loaded = hpo.load_space("search_spaces/diabetes-catboost.yaml")
    assert isinstance(loaded, hpo.LoadedSpace) and loaded.space.study == "diabetes-catboost"
    assert list(loaded.space.params) == ["depth", "learning_rate", "l2_leaf_reg"]

    result = hpo.run_study(loaded.path)
    assert isinstance(result, hpo.RunResult) and result.after.best is not None
    assert sum(result.after.states.values()) == 10

    trials = hpo.export_trials("diabetes-catboost")
    assert isinstance(trials, pd.DataFrame) and len(trials) == 10
    complete = trials[trials.state == "COMPLETE"]
    assert complete.value.max() == pytest.approx(result.after.best.value)
    assert not complete.groupby("params_depth").value.median().empty

    analysis = hpo.analyze_study("diabetes-catboost", write=False, min_trials=3, noise_refits=0)
    assert isinstance(analysis, hpo.AnalyzeResult)
    assert set(analysis.analysis.params) == {"depth", "learning_rate", "l2_leaf_reg"}
    assert all(p.recommendation.kind and p.recommendation.reason for p in analysis.analysis.params.values())
    assert not (workspace / "studies" / "diabetes-catboost").exists()  # write=False writes no report

    promoted = hpo.promote_trial("best", study="diabetes-catboost")
    assert isinstance(promoted, hpo.PromoteResult) and promoted.check is not None and promoted.check.ok
    assert promoted.trial == result.after.best.number and "pearson_r" in promoted.test_metrics
    assert hpo.reproduce_run(promoted.run_id).ok

    # Bad input is the command's one line, as an exception; nothing is written.
    with pytest.raises(hpo.HpoError, match="no study 'nope'"):
        hpo.export_trials("nope")

    # From another folder, every function acts on the workspace it is given, as docs/python-api.md says.
    ws = hpo.load_workspace(workspace)
    elsewhere = Path(tempfile.mkdtemp())
    os.chdir(elsewhere)
    assert hpo.load_space("search_spaces/diabetes-catboost.yaml", workspace=ws).space.study == "diabetes-catboost"
    (version,) = hpo.data_versions(workspace=ws)
    assert version["version"] == loaded.space.data.version and "diabetes-catboost" in json.dumps(version)
    assert len(hpo.export_trials("diabetes-catboost", workspace=ws)) == 10
    assert not (elsewhere / "studies").exists() and not (elsewhere / "mlflow.db").exists()


def test_every_documented_function_takes_the_workspace() -> None:
    import hpo

    table = (ROOT / "docs" / "python-api.md").read_text()
    documented = re.findall(r"`hpo\.(\w+)\(", table)
    assert {"load_space", "run_study", "data_versions", "promote_trial"} <= set(documented)
    for name in documented:
        if name == "load_workspace":  # it makes the workspace the others take
            continue
        assert "workspace" in inspect.signature(getattr(hpo, name)).parameters, f"hpo.{name} takes no workspace="
