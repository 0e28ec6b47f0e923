"""Shared fixtures: a temp workspace and small, fast space files (real CatBoost, few iterations)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Real PostgreSQL and `mlflow server` fixtures, started on loopback when a test names them.
pytest_plugins = ["tests.servers"]


def small_space(**overrides: Any) -> dict[str, Any]:
    """A space that trains in ~0.1 s per trial on scikit-learn's diabetes data."""
    space: dict[str, Any] = {
        "study": "small",
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2, "seed": 0},
        },
        "model": "catboost",
        "metric": "pearson_r",
        "n_trials": 4,
        "seed": 7,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {
            "depth": {"type": "int", "low": 2, "high": 4},
            "learning_rate": {"type": "float", "low": 0.03, "high": 0.3, "log": True},
        },
        "fixed": {"iterations": 40, "thread_count": 1},
    }
    for key, value in overrides.items():
        if value is None:
            space.pop(key, None)
        else:
            space[key] = value
    return space


@pytest.fixture
def mlflow_store(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real MLflow tracking store (SQLite) in the workspace."""
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def invoke(*args: str) -> tuple[int, str, str]:
    """Run an `hpo` verb in this process (Typer's CliRunner): exit code, stdout, stderr."""
    from typer.testing import CliRunner

    from hpo.cli import app

    r = CliRunner().invoke(app, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace folder, made the current directory; no HPO_STORAGE leaks in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "search_spaces").mkdir()
    return tmp_path


@contextlib.contextmanager
def shared_workspace(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A workspace with its own MLflow store for a whole module, for module-scoped fixtures.

    Building a study is what tests spend their time on; tests that only read one share it.
    """
    ws = tmp_path_factory.mktemp(name)
    (ws / "search_spaces").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ws)
        mp.delenv("HPO_STORAGE", raising=False)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{ws / 'mlflow.db'}")
        yield ws


def write_space(folder: Path, name: str = "space.yaml", **overrides: Any) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(small_space(**overrides), sort_keys=False))
    return path


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real `hpo` command in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hpo", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def git(ws: Path, *args: str) -> str:
    """Run git in ``ws`` as a test user; its output."""
    out = subprocess.run(
        ["git", "-c", "user.name=hpo tests", "-c", "user.email=tests@hpo", *args],
        cwd=ws,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def commit_all(ws: Path, tag: str | None = None) -> None:
    """Commit the workspace (data files stay out of git, as data usually does)."""
    if not (ws / ".git").exists():
        git(ws, "init", "-q")
    (ws / ".gitignore").write_text("studies/\nmlflow.db\nmlruns/\n*.csv\n")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "workspace")
    if tag:
        git(ws, "tag", tag)


def write_space_as(ws: Path, space: dict[str, Any], name: str = "space.yaml") -> Path:
    """``space`` as written, under the workspace's ``search_spaces/``."""
    path = ws / "search_spaces" / name
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def trials_of(ws: Path, study: str) -> list[Any]:
    """The trials of ``study`` in the workspace's default storage."""
    import optuna

    return optuna.load_study(study_name=study, storage=f"sqlite:///{ws / 'studies' / 'hpo.db'}").trials
