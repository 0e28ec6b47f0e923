"""What the benchmarks share: quiet logs, and a throwaway workspace that nothing escapes from."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


def quiet() -> None:
    import mlflow  # noqa: F401  (MLflow sets its loggers to INFO when imported)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")


@contextlib.contextmanager
def workspace(kind: str) -> Iterator[Path]:
    """A fresh temporary folder, made the current directory, with its own MLflow store selected."""
    import mlflow

    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix=f"hpo-bench-{kind}-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        os.environ.pop("HPO_STORAGE", None)
        # A URI set with mlflow.set_tracking_uri overrides the environment variable for the whole
        # process, so every workspace sets it (hpo's MlflowClient() would otherwise follow the
        # previous workspace's store).
        mlflow.set_tracking_uri(uri)
        os.chdir(root)  # MLflow's default artifact root (./mlruns) and hpo's studies/ land here
        try:
            yield root
        finally:
            os.chdir(old)


def write_space(root: Path, space: dict[str, Any], name: str = "bench") -> Path:
    folder = root / "search_spaces"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path
