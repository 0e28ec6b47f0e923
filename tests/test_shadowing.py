"""Workspace files never hide the libraries hpo runs on: a ``catboost.py`` or ``mlflow.py`` in the workspace.

Through both ways of starting hpo: the installed console script and ``python -m hpo`` (which puts the
current folder first on the import path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import invoke, trials_of, write_space

CONSOLE_SCRIPT = Path(sys.executable).parent / "hpo"
LAUNCHERS = {"console-script": [str(CONSOLE_SCRIPT)], "python-m": [sys.executable, "-m", "hpo"]}

TRAIN = """
from sklearn.linear_model import Ridge


def fit(params, train, seed):
    return Ridge(alpha=params["alpha"]).fit(train.X, train.y)
"""


def hpo(launcher: str, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "PYTHONPATH", "PYTHONSAFEPATH")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{ws / 'mlflow.db'}", HPO_HEARTBEAT_INTERVAL="1", HPO_GRACE_PERIOD="2")
    return subprocess.run([*LAUNCHERS[launcher], *args], cwd=ws, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_workspace_catboost_py_and_mlflow_py_hide_nothing(workspace: Path, launcher: str) -> None:
    if launcher == "console-script" and not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT} (hpo is not installed in this environment)")
    for name in ("catboost", "mlflow"):
        (workspace / f"{name}.py").write_text(f"raise RuntimeError('the workspace {name}.py was imported')\n")
    space = write_space(workspace / "search_spaces", "small.yaml", n_trials=2)

    r = hpo(launcher, workspace, "validate", str(space))
    assert r.returncode == 0 and ": ok: study" in r.stdout, r.stderr
    r = hpo(launcher, workspace, "run", str(space), "--quiet")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert [t.state.name for t in trials_of(workspace, "small")] == ["COMPLETE", "COMPLETE"]
    assert (workspace / "mlflow.db").stat().st_size > 0  # the real MLflow logged the study


def test_the_workspace_own_module_is_found_and_one_named_like_a_library_is_refused(workspace: Path) -> None:
    (workspace / "mlflow.py").write_text("raise RuntimeError('the workspace mlflow.py was imported')\n")
    (workspace / "mytrain.py").write_text(TRAIN)
    params = {"alpha": {"type": "float", "low": 0.1, "high": 10.0}}
    own = write_space(workspace / "search_spaces", "own.yaml", study="own", model="mytrain:fit", params=params, fixed=None)
    code, out, err = invoke("validate", str(own))
    assert code == 0 and ": ok: study 'own'" in out, err

    # A model named after a module that an installed library hides is refused in one line.
    clash = write_space(workspace / "search_spaces", "clash.yaml", study="clash", model="mlflow:fit", params=params, fixed=None)
    code, out, err = invoke("validate", str(clash))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err
    assert "the workspace's mlflow.py" in errors[0] and "installed module 'mlflow'" in errors[0], err
    assert "rename mlflow.py" in errors[0]
