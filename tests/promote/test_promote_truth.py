"""`hpo promote` tells the truth about what it promotes: a degenerate model is refused or tagged, and the
promoted pyfunc takes rows as the table has them without a warning (issue 25, items 6 and 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from hpo.schema import TAG_DEGENERATE
from tests.conftest import commit_all, invoke, write_space_as


def run_study_of(ws: Path, study: str, data: dict[str, Any], metric: str, n_trials: int, fixed: dict[str, Any]) -> None:
    """Run a small CatBoost study on ``data`` in a committed workspace (data files stay out of git)."""
    space = {
        "study": study,
        "data": {"version": "v0.1.0", "target": "y", **data},
        "model": "catboost",
        "metric": metric,
        "n_trials": n_trials,
        "seed": 1,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {"depth": {"type": "int", "low": 2, "high": 3}},
        "fixed": {**fixed, "thread_count": 1},
    }
    path = write_space_as(ws, space, f"{study}.yaml")
    commit_all(ws)
    code, _, err = invoke("run", str(path), "--quiet")
    assert code == 0, err


def promoted_runs(ws: Path) -> list[Any]:
    exp = MlflowClient().get_experiment_by_name(f"{ws.name}-Data-v0.1.0")
    return [] if exp is None else MlflowClient().search_runs([exp.experiment_id])


def test_a_degenerate_winner_is_refused_and_with_allow_degenerate_promoted_loudly(workspace: Path, mlflow_store: str) -> None:
    # 2% positives and 5 tiny boosting steps: every trial predicts the majority class, f1 = 0.
    rng = np.random.default_rng(0)
    n = 400
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, 8, replace=False)] = 1
    pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "y": y}).to_csv(workspace / "rare.csv", index=False)
    split = {"validation": 0.25, "test": 0.25}
    run_study_of(workspace, "rare", {"source": "rare.csv", "split": split}, "f1", 2, {"iterations": 5, "learning_rate": 0.03})

    # Refused by default: one error line with the figures, nothing logged.
    code, out, err = invoke("promote", "best")
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]), err
    assert "is a degenerate model: predicts class 0 for all 100 validation rows (2 are class 1)" in err
    assert "and all 100 test rows (2 are class 1)" in err
    assert "f1 is 0 on validation and test, its worst possible value" in err
    assert "--allow-degenerate" in err and TAG_DEGENERATE in err
    assert promoted_runs(workspace) == []

    # Insisted on: promoted, with one warning line on stderr, the finding in the JSON and as a tag.
    code, out, err = invoke("promote", "best", "--allow-degenerate", "--json")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "predicts class 0 for all 100 validation rows" in warnings[0], err
    result = json.loads(out)
    assert result["degenerate"].startswith("predicts class 0 for all 100 validation rows (2 are class 1)")
    (run,) = promoted_runs(workspace)
    assert run.data.tags[TAG_DEGENERATE] == result["degenerate"]
    assert "Degenerate model" in run.data.tags["mlflow.note.content"]

    # Asked again, the promoted run is found, and still said to be degenerate.
    code, out, err = invoke("promote", "best")
    assert code == 0 and "Already promoted" in out
    assert sum(line.startswith("warning: ") and "degenerate" in line for line in err.splitlines()) == 1, err


def test_a_multiclass_model_that_never_predicts_a_rare_class_is_promoted_with_a_warning(
    workspace: Path, mlflow_store: str
) -> None:
    # Classes 0 and 1 follow x1; class 2 is 4% of the rows and follows nothing: a few boosting steps never predict it.
    # That may be the best model there is, so it is promoted, with the figures on stderr, and not tagged degenerate.
    rng = np.random.default_rng(0)
    n = 400
    x1 = rng.normal(size=n)
    y = (x1 > 0).astype(int)
    y[rng.choice(n, 16, replace=False)] = 2
    pd.DataFrame({"x1": x1, "x2": rng.normal(size=n), "y": y}).to_csv(workspace / "three.csv", index=False)
    split = {"validation": 0.25, "test": 0.25}
    run_study_of(
        workspace, "three", {"source": "three.csv", "split": split}, "accuracy", 1, {"iterations": 5, "learning_rate": 0.03}
    )
    code, out, err = invoke("promote", "best", "--json")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "never predicts class 2" in warnings[0], err
    assert json.loads(out)["degenerate"] is None
    (run,) = promoted_runs(workspace)
    assert TAG_DEGENERATE not in run.data.tags


_PREDICT = r"""
import json, logging, sys, warnings
import mlflow.pyfunc
import pandas as pd

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger().addHandler(Keep())
logging.getLogger("mlflow").addHandler(Keep())

rows = pd.read_csv(sys.argv[2])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = mlflow.pyfunc.load_model(sys.argv[1])
    records.clear()
    caught.clear()
    whole = model.predict(rows)  # target, split column and dropped column included, as the file has them
    said = records + [str(w.message) for w in caught]
    features = model.predict(rows[["x1", "x2"]])
    try:
        model.predict(rows.drop(columns=["x1"]))
        missing = None
    except Exception as e:
        missing = f"{type(e).__name__}: {e}"
print(json.dumps({"said": said, "whole": whole.tolist(), "features": features.tolist(), "missing": missing}))
"""


def test_the_promoted_pyfunc_takes_rows_with_target_split_and_dropped_columns_without_a_warning(
    workspace: Path, mlflow_store: str
) -> None:
    rng = np.random.default_rng(1)
    n = 90
    x1 = rng.normal(size=n)
    table = pd.DataFrame(
        {
            "x1": x1,
            "x2": rng.choice(["a", "b", "c"], size=n),
            "note": [f"row {i}" for i in range(n)],  # dropped
            "part": ["train"] * 60 + ["validation"] * 15 + ["test"] * 15,
            "y": 2 * x1 + rng.normal(scale=0.3, size=n),
        }
    )
    table.to_csv(workspace / "table.csv", index=False)
    data = {"source": "table.csv", "drop": ["note"], "split": {"column": "part"}}
    run_study_of(workspace, "rows", data, "rmse", 1, {"iterations": 20})
    code, out, err = invoke("promote", "best", "--json")
    assert code == 0, err
    uri = json.loads(out)["model_uri"]

    # A fresh process, as a user scoring new rows would load it.
    done = subprocess.run(
        [sys.executable, "-c", _PREDICT, uri, str(workspace / "table.csv")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workspace,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert "extra inputs" not in done.stderr, done.stderr
    assert not [s for s in got["said"] if "extra inputs" in s], got["said"]
    assert got["whole"] == got["features"] and len(got["whole"]) == n
    # A feature the rows lack is still an error that names it.
    assert got["missing"] is not None and "x1" in got["missing"], got["missing"]
