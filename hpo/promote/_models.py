"""The promoted model in MLflow, and the proof that it predicts as hpo did.

A promoted run logs the model in two forms:

- ``model``: a pyfunc that takes raw rows of the table (hpo's feature encoding travels with it, as
  the code of :mod:`hpo.features`) and returns labels, values or class probabilities. Load it with
  ``mlflow.pyfunc.load_model`` to serve or score new rows. It carries the trained model itself
  (CatBoost's own file, or a pickle with the team's modules as its code paths).
- the model in its library's own flavor, which takes features as hpo encodes them
  (:func:`hpo.features.encode`): ``catboost_model`` (``mlflow.catboost``) for CatBoost,
  ``sklearn_model`` (``mlflow.sklearn``) for a scikit-learn estimator or pipeline. Any other model
  the team's function returns has no flavor of its own: the pyfunc is its flavor.

:func:`check_predictions` loads the logged pyfunc back and compares its predictions on the raw
rows of a split with the predictions hpo computed itself. :func:`discard_models` deletes the models
of a promotion that did not finish, whatever state MLflow left them in.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo import features
from hpo.models import is_class_path, predict
from hpo.promote._code import PickledModel, pickle_model, pinned

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from hpo.data import DataVersion, Split
    from hpo.space import DataConfig

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


@dataclass(frozen=True)
class PackedModel:
    """A trained model, ready to log: the library's own object, its flavor, and what loading needs.

    Made before anything is written, so that a model that cannot be logged is refused in one line.
    """

    native: Any  # what the library trained (hpo's wrapper of an estimator taken off)
    flavor: str
    categories: dict[str, list[str]]  # text columns the model takes as pandas categories, train's categories
    folder: Path  # holds the files below until the model is logged
    pickled: PickledModel | None = None  # None for CatBoost, which has a file format of its own
    requirements: list[str] = field(default_factory=list)

    def features(self, X: pd.DataFrame) -> pd.DataFrame:
        """hpo's encoded features as the native model takes them."""
        return features.as_categories(X, self.categories)


@contextmanager
def packed(model: Any, model_name: str, data: DataVersion) -> Iterator[PackedModel]:
    """``model`` (what hpo's fit returned for ``model_name``) as it is logged; files live until the end."""
    native, categories = model, {}
    if is_class_path(model_name):
        # hpo's wrapper of an estimator (hpo.models._sklearn) casts text columns to category with
        # train's categories; the served code does that from the recorded categories instead, so that
        # the logged model needs no hpo.
        categories, native = dict(model.categories), model.estimator
    flavor = _flavor(native)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if flavor == CATBOOST:
            yield PackedModel(native, flavor, categories, folder, None, pinned("catboost", "pandas", "numpy"))
            return
        what = f"the model of {model_name} ({type(native).__module__}.{type(native).__qualname__})"
        pickled = pickle_model(native, what, folder / "code")
        requirements = sorted(set(pickled.requirements) | set(pinned("pandas", "numpy", "cloudpickle")))
        yield PackedModel(native, flavor, categories, folder, pickled, requirements)


def other_columns(config: DataConfig) -> list[str]:
    """The columns of the data's table that are not features: the target, the split column, dropped columns."""
    from hpo.space import ColumnSplit

    split = [config.split.column] if isinstance(config.split, ColumnSplit) else []
    return [config.target, *split, *config.drop]


def _flavor(native: Any) -> str:
    catboost = sys.modules.get("catboost")  # a CatBoost model was made by an imported catboost
    if catboost is not None and isinstance(native, catboost.CatBoost):
        return CATBOOST
    from sklearn.base import BaseEstimator

    return SKLEARN if isinstance(native, BaseEstimator) else PYFUNC


def log_models(pack: PackedModel, data: DataVersion, others: Sequence[str] = ()) -> LoggedModels:
    """Log the raw-rows pyfunc and the model in its own flavor into the active MLflow run.

    Args:
        others: the table's columns that are not features (the target, the split column, dropped
            columns): rows may carry them, so the pyfunc's signature lists them as optional inputs.
    """
    import warnings

    import mlflow.pyfunc
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    config = {
        "task": data.task,
        "target": data.target,
        # Pairs, not a mapping: the column order is the model's feature order.
        "features": [[name, kind] for name, kind in data.kinds.items()],
        "categories": pack.categories or None,
        "classes": data.classes if data.task == "classification" else None,
        "class_names": data.class_names if data.task == "classification" else None,
    }
    # Raw columns come in every dtype a table has (category, nullable, dates, text with gaps):
    # the signature names them and leaves their values to the model's own encoding. The table's
    # other columns are optional inputs, which the model ignores: MLflow warns on every predict of
    # a column its signature does not name, and rows as the table has them carry these.
    optional = [name for name in dict.fromkeys(others) if name not in data.kinds]
    inputs: list[ColSpec | TensorSpec] = [ColSpec(AnyType(), name) for name in data.features]
    inputs += [ColSpec(AnyType(), name, required=False) for name in optional]
    signature = ModelSignature(
        inputs=Schema(inputs),
        params=ParamSchema([ParamSpec("output", "string", "label")]),
    )
    code_paths = pack.pickled.code_paths if pack.pickled is not None else []
    # record=True keeps MLflow's notes (integer columns, type hints on predict) off the terminal: MLflow
    # re-enables its own warnings inside, so a filter alone would not.
    with warnings.catch_warnings(record=True), _quiet("mlflow.sklearn"):
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
            code_paths=code_paths or None,
            signature=signature,
            input_example=data.train.raw.head(5),
            pip_requirements=pack.requirements,
        )
        native_uri = None
        if pack.flavor in NATIVE_NAMES:
            X = pack.features(data.train.X)
            common = {
                "name": NATIVE_NAMES[pack.flavor],
                "signature": infer_signature(X, pack.native.predict(X)),
                "input_example": X.head(5),
                "pip_requirements": pack.requirements,
            }
            if pack.flavor == CATBOOST:
                import mlflow.catboost

                native_uri = mlflow.catboost.log_model(pack.native, **common).model_uri
            else:
                import mlflow.sklearn

                # cloudpickle, as the pyfunc's copy: the team's own classes load through code_paths,
                # which skops (MLflow's default) would refuse as untrusted types.
                native_uri = mlflow.sklearn.log_model(
                    pack.native, serialization_format="cloudpickle", code_paths=code_paths or None, **common
                ).model_uri
    return LoggedModels(model_uri=pyfunc.model_uri, native_uri=native_uri, flavor=pack.flavor)


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
