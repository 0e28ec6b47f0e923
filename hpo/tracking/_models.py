"""A promoted model in MLflow: logged in two forms, loaded back, and discarded when a promotion fails.

- ``model``: a pyfunc that takes raw rows of the table (hpo's feature encoding travels with it, as
  the code of :mod:`hpo.features`) and returns labels, values or class probabilities. It carries the
  trained model itself (CatBoost's own file, or a pickle with the team's modules as its code paths).
- the model in its library's own flavor, which takes features as hpo encodes them:
  ``catboost_model`` (``mlflow.catboost``) or ``sklearn_model`` (``mlflow.sklearn``). Any other model
  has no flavor of its own: the pyfunc is its flavor.

What a model is made of (its flavor, its pickle, its requirements) is promotion's to decide
(:mod:`hpo.promote._models`); this module only hands it to MLflow, as a :class:`LoggableModel`.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hpo import features

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import ModelSignature

    from hpo.data import DataVersion

PYFUNC_NAME = "model"
# The flavors a promoted model is logged with, beside the raw-rows pyfunc.
CATBOOST, SKLEARN, PYFUNC = "catboost", "sklearn", "pyfunc"
NATIVE_NAMES = {CATBOOST: "catboost_model", SKLEARN: "sklearn_model"}  # PYFUNC: the raw-rows pyfunc only
NATIVE_NAME = NATIVE_NAMES[CATBOOST]

# Appended to hpo/features.py to make the file MLflow loads as the model's code.
_MODEL_CODE_TAIL = """

# --- added by hpo promote: this file is the logged model's code (MLflow models from code) ---
import mlflow.models  # noqa: E402

mlflow.models.set_model(served_model())
"""


class Pickled(Protocol):
    """A model as bytes, and the team's own modules it needs to load."""

    @property
    def blob(self) -> bytes: ...

    @property
    def code_paths(self) -> list[str]: ...


class LoggableModel(Protocol):
    """What :func:`log_models` logs: the library's model, its flavor, and the files loading it needs."""

    @property
    def native(self) -> Any: ...

    @property
    def flavor(self) -> str: ...  # CATBOOST, SKLEARN or PYFUNC

    @property
    def categories(self) -> dict[str, list[str]]: ...

    @property
    def folder(self) -> Path: ...  # a folder that lives until the model is logged

    @property
    def pickled(self) -> Pickled | None: ...  # None for CatBoost, which has a file format of its own

    @property
    def requirements(self) -> list[str]: ...

    def features(self, X: pd.DataFrame) -> pd.DataFrame: ...


@dataclass(frozen=True)
class LoggedModels:
    model_uri: str  # the pyfunc on raw rows
    native_uri: str | None  # the model in its library's flavor, on encoded features (None: a pyfunc only)
    flavor: str  # CATBOOST, SKLEARN or PYFUNC


@dataclass(frozen=True)
class PredictionCheck:
    """The logged model's predictions on raw rows against hpo's own, on one split."""

    split: str
    rows: int
    max_abs_diff: float

    def as_dict(self) -> dict[str, Any]:
        return {"split": self.split, "rows": self.rows, "max_abs_diff": self.max_abs_diff}


def log_models(pack: LoggableModel, data: DataVersion, others: Sequence[str] = ()) -> LoggedModels:
    """Log the raw-rows pyfunc and the model in its own flavor into the active MLflow run.

    Args:
        others: the table's columns that are not features (the target, the split column, dropped
            columns): rows may carry them, so the pyfunc's signature lists them as optional inputs.
    """
    signature = _signature(data, others)
    # record=True keeps MLflow's notes (integer columns, type hints on predict) off the terminal: MLflow
    # re-enables its own warnings inside, so a filter alone would not.
    with warnings.catch_warnings(record=True), _quiet("mlflow.sklearn"):
        model_uri = _log_pyfunc(pack, data, signature)
        native_uri = _log_native(pack, data) if pack.flavor in NATIVE_NAMES else None
    return LoggedModels(model_uri=model_uri, native_uri=native_uri, flavor=pack.flavor)


def _signature(data: DataVersion, others: Sequence[str]) -> ModelSignature:
    """The pyfunc's inputs: every raw feature column in any dtype, the table's other columns optional.

    Raw columns come in every dtype a table has (category, nullable, dates, text with gaps): the
    signature names them and leaves their values to the model's own encoding. The table's other
    columns are optional inputs, which the model ignores: MLflow warns on every predict of a column
    its signature does not name, and rows as the table has them carry these.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    optional = [name for name in dict.fromkeys(others) if name not in data.kinds]
    inputs: list[ColSpec | TensorSpec] = [ColSpec(AnyType(), name) for name in data.features]
    inputs += [ColSpec(AnyType(), name, required=False) for name in optional]
    return ModelSignature(inputs=Schema(inputs), params=ParamSchema([ParamSpec("output", "string", "label")]))


def _log_pyfunc(pack: LoggableModel, data: DataVersion, signature: ModelSignature) -> str:
    """Log the raw-rows pyfunc (hpo's encoding as its code, the trained model as an artifact); its URI."""
    import mlflow.pyfunc

    config = {
        "task": data.task,
        "target": data.target,
        # Pairs, not a mapping: the column order is the model's feature order.
        "features": [[name, kind] for name, kind in data.kinds.items()],
        "categories": pack.categories or None,
        "classes": data.classes if data.task == "classification" else None,
        "class_names": data.class_names if data.task == "classification" else None,
    }
    tmp = pack.folder
    code = tmp / "hpo_model.py"
    code.write_text(Path(features.__file__).read_text(encoding="utf-8") + _MODEL_CODE_TAIL, encoding="utf-8")
    if pack.pickled is None:
        weights = tmp / "model.cbm"
        pack.native.save_model(str(weights))
        artifacts = {"catboost": str(weights)}
    else:
        weights = tmp / "model.pkl"
        weights.write_bytes(pack.pickled.blob)
        artifacts = {"model": str(weights)}
    # A file, not MLflow's model_config: that would also be logged as the run's params, which
    # are the promoted trial's parameters and nothing else.
    encoding = tmp / "encoding.json"
    encoding.write_text(json.dumps(config, indent=1), encoding="utf-8")
    pyfunc = mlflow.pyfunc.log_model(
        name=PYFUNC_NAME,
        python_model=str(code),
        artifacts={**artifacts, "encoding": str(encoding)},
        code_paths=_code_paths(pack) or None,
        signature=signature,
        input_example=data.train.raw.head(5),
        pip_requirements=pack.requirements,
    )
    return str(pyfunc.model_uri)


def _log_native(pack: LoggableModel, data: DataVersion) -> str:
    """Log the model in its library's flavor, on hpo's encoded features; its URI."""
    from mlflow.models import infer_signature

    X = pack.features(data.train.X)
    common = {
        "name": NATIVE_NAMES[pack.flavor],
        "signature": infer_signature(X, pack.native.predict(X)),
        "input_example": X.head(5),
        "pip_requirements": pack.requirements,
    }
    if pack.flavor == CATBOOST:
        import mlflow.catboost

        return str(mlflow.catboost.log_model(pack.native, **common).model_uri)
    import mlflow.sklearn

    # cloudpickle, as the pyfunc's copy: the team's own classes load through code_paths,
    # which skops (MLflow's default) would refuse as untrusted types.
    code_paths = _code_paths(pack) or None
    return str(
        mlflow.sklearn.log_model(pack.native, serialization_format="cloudpickle", code_paths=code_paths, **common).model_uri
    )


def _code_paths(pack: LoggableModel) -> list[str]:
    return pack.pickled.code_paths if pack.pickled is not None else []


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Keep a library's log warnings off the terminal (MLflow's note that pickles run code when loaded:
    the pickle here is the team's own model, made a moment ago)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def load_model(model_uri: str) -> Any:
    """The logged pyfunc at ``model_uri``, loaded back as a server would (``mlflow.pyfunc.load_model``)."""
    import mlflow.pyfunc

    with warnings.catch_warnings(record=True):  # MLflow asks for type hints on predict(); raw rows have none
        return mlflow.pyfunc.load_model(model_uri)


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
