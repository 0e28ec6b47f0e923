"""The promoted model, packed for logging, and the proof that the logged one predicts as hpo did.

A promoted run logs the model in two forms (:mod:`hpo.tracking._models` hands them to MLflow): a
pyfunc on raw rows of the table, and the model in its library's own flavor (``catboost_model``,
``sklearn_model``) on hpo's encoded features. This module decides what is logged: the library's own
object, its flavor, a pickle with the team's modules (:mod:`._code`) and the requirements.

:func:`check_predictions` loads the logged pyfunc back and compares its predictions on the raw
rows of a split with the predictions hpo computed itself.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo import features
from hpo.models import is_class_path, predict
from hpo.promote._code import PickledModel, pickle_model, pinned
from hpo.tracking._models import CATBOOST, PYFUNC, SKLEARN, PredictionCheck, load_model

if TYPE_CHECKING:
    import pandas as pd

    from hpo.data import DataVersion, Split
    from hpo.space import DataConfig


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


def check_predictions(model_uri: str, model: Any, split: Split, name: str, data: DataVersion) -> PredictionCheck:
    """Load the logged pyfunc, predict the raw rows of ``split``, compare with ``model`` on hpo's features."""
    import numpy as np

    ours = predict(model, split.X, data)
    params = {"output": "proba"} if data.task == "classification" else None
    served = load_model(model_uri)
    with warnings.catch_warnings(record=True):  # MLflow asks for type hints on predict(); raw rows have none
        theirs = np.asarray(served.predict(split.raw, params=params), dtype=float).reshape(ours.shape)
    return PredictionCheck(split=name, rows=len(split.raw), max_abs_diff=float(np.max(np.abs(theirs - ours))))
