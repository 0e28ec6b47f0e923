"""The promoted model in MLflow, and the proof that it predicts as hpo did.

A promoted run logs two models:

- ``model``: a pyfunc that takes raw rows of the table (hpo's feature encoding travels with it, as
  the code of :mod:`hpo.features`) and returns labels, values or class probabilities. Load it with
  ``mlflow.pyfunc.load_model`` to serve or score new rows.
- ``catboost_model``: the native CatBoost model, which takes features as hpo encodes them
  (:func:`hpo.features.encode`). Load it with ``mlflow.catboost.load_model`` for CatBoost's own API.

:func:`check_predictions` loads the logged pyfunc back and compares its predictions on the raw
rows of a split with the predictions hpo computed itself. :func:`discard_models` deletes the models
of a promotion that did not finish, whatever state MLflow left them in.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo import features
from hpo.models import predict

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from hpo.data import DataVersion, Split

PYFUNC_NAME = "model"
NATIVE_NAME = "catboost_model"

# Appended to hpo/features.py to make the file MLflow loads as the model's code.
_MODEL_CODE_TAIL = """

# --- added by hpo promote: this file is the logged model's code (MLflow models from code) ---
import mlflow.models  # noqa: E402

mlflow.models.set_model(served_model())
"""


@dataclass(frozen=True)
class LoggedModels:
    model_uri: str  # the pyfunc on raw rows
    native_uri: str  # the CatBoost model on encoded features


@dataclass(frozen=True)
class PredictionCheck:
    """The logged model's predictions on raw rows against hpo's own, on one split."""

    split: str
    rows: int
    max_abs_diff: float

    def as_dict(self) -> dict[str, Any]:
        return {"split": self.split, "rows": self.rows, "max_abs_diff": self.max_abs_diff}


def log_models(model: Any, data: DataVersion) -> LoggedModels:
    """Log the pyfunc and the native model into the active MLflow run."""
    import warnings

    import mlflow.catboost
    import mlflow.pyfunc
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    requirements = [f"{p}=={version(p)}" for p in ("catboost", "pandas", "numpy")]
    config = {
        "task": data.task,
        "target": data.target,
        # Pairs, not a mapping: the column order is the model's feature order.
        "features": [[name, kind] for name, kind in data.kinds.items()],
        "classes": data.classes if data.task == "classification" else None,
        "class_names": data.class_names if data.task == "classification" else None,
    }
    # Raw columns come in every dtype a table has (category, nullable, dates, text with gaps):
    # the signature names them and leaves their values to the model's own encoding.
    signature = ModelSignature(
        inputs=Schema([ColSpec(AnyType(), name) for name in data.features]),
        params=ParamSchema([ParamSpec("output", "string", "label")]),
    )
    # record=True keeps MLflow's notes (integer columns, type hints on predict) off the terminal: MLflow
    # re-enables its own warnings inside, so a filter alone would not.
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True):
        code = Path(tmp) / "hpo_model.py"
        code.write_text(Path(features.__file__).read_text(encoding="utf-8") + _MODEL_CODE_TAIL, encoding="utf-8")
        weights = Path(tmp) / "model.cbm"
        model.save_model(str(weights))
        # A file, not MLflow's model_config: that would also be logged as the run's params, which
        # are the promoted trial's parameters and nothing else.
        encoding = Path(tmp) / "encoding.json"
        encoding.write_text(json.dumps(config, indent=1), encoding="utf-8")
        pyfunc = mlflow.pyfunc.log_model(
            name=PYFUNC_NAME,
            python_model=str(code),
            artifacts={"catboost": str(weights), "encoding": str(encoding)},
            signature=signature,
            input_example=data.train.raw.head(5),
            pip_requirements=requirements,
        )
        X = data.train.X
        native = mlflow.catboost.log_model(
            model,
            name=NATIVE_NAME,
            signature=infer_signature(X, model.predict(X)),
            input_example=X.head(5),
            pip_requirements=requirements,
        )
    return LoggedModels(model_uri=pyfunc.model_uri, native_uri=native.model_uri)


def check_predictions(model_uri: str, model: Any, split: Split, name: str, data: DataVersion) -> PredictionCheck:
    """Load the logged pyfunc, predict the raw rows of ``split``, compare with ``model`` on hpo's features."""
    import warnings

    import mlflow.pyfunc
    import numpy as np

    ours = predict(model, split.X, data)
    params = {"output": "proba"} if data.task == "classification" else None
    with warnings.catch_warnings(record=True):  # MLflow asks for type hints on predict(); raw rows have none
        served = mlflow.pyfunc.load_model(model_uri)
        theirs = np.asarray(served.predict(split.raw, params=params), dtype=float).reshape(ours.shape)
    return PredictionCheck(split=name, rows=len(split.raw), max_abs_diff=float(np.max(np.abs(theirs - ours))))


def discard_models(c: MlflowClient, experiment_id: str, run_id: str) -> None:
    """Delete every logged model of ``run_id``, marking one that MLflow left unfinished FAILED first.

    MLflow creates a logged model PENDING before it writes its files, and marks it FAILED on an
    error but not on a Ctrl-C, which would leave it PENDING for good. Models are looked up by
    their source run, not remembered, so one whose creation was cut short is found as well.
    """
    from mlflow.entities import LoggedModel, LoggedModelStatus

    models: list[LoggedModel] = []
    token = None
    while True:  # every page first: deleting while paging would shift the pages
        page = c.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'", page_token=token)
        models += page
        token = page.token
        if not token:
            break
    for m in models:
        if not LoggedModelStatus.is_finalized(m.status):
            c.finalize_logged_model(m.model_id, LoggedModelStatus.FAILED)
        c.delete_logged_model(m.model_id)
