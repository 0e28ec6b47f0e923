"""Features: how raw columns of a table become what the model is trained on, and the served model
that applies the same encoding to raw rows.

Training (:func:`hpo.data.load_data`) and every promoted model use this one encoding, so a model
predicts on rows of its own table exactly as hpo did on its test split. ``hpo promote`` ships this
file verbatim inside the logged model (MLflow's models from code), so loading the model needs
pandas, numpy, mlflow and the model's own library, but not hpo. Hence: nothing from hpo is
imported here, and mlflow and the model's library only inside the served model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# A column's kind decides its encoding; it is read off the train split and recorded with the model.
NUMERIC = "numeric"  # float64, missing as NaN (CatBoost's own handling of missing numbers)
CATEGORICAL = "categorical"  # text; booleans, categories and strings alike; missing as its own category
DATETIME = "datetime"  # seconds since 1970-01-01 UTC, as a number; missing as NaN
MISSING = "<NA>"

# What the served model returns: class labels (or values, for regression), or class probabilities.
OUTPUTS = ("label", "proba")


class FeatureError(ValueError):
    """A raw column cannot be encoded as the model was trained (a text in a numeric column, ...)."""


def column_kind(column: pd.Series) -> str:
    """The kind of a raw column, from its dtype."""
    if pd.api.types.is_bool_dtype(column):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(column):
        return NUMERIC
    if pd.api.types.is_datetime64_any_dtype(column):
        return DATETIME
    return CATEGORICAL


def encode(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The model's features: the columns of ``kinds``, in its order, each encoded by its kind.

    Raises:
        FeatureError: a column is missing, or holds a value its kind cannot take.
    """
    missing = [c for c in kinds if c not in frame.columns]
    if missing:
        raise FeatureError(f"the input has no column {missing[0]!r}; the model needs the columns {list(kinds)}")
    return pd.DataFrame({name: _encode_column(frame[name], name, kind) for name, kind in kinds.items()}, index=frame.index)


def first_misfit(column: pd.Series, kind: str) -> tuple[int, Any] | None:
    """Position and value of the first present value of ``column`` that ``kind`` cannot take."""
    present = column.notna().to_numpy()
    if kind == NUMERIC:
        fits = pd.to_numeric(column, errors="coerce").notna().to_numpy()
    elif kind == DATETIME:
        fits = pd.to_datetime(column, errors="coerce", utc=True, format="mixed").notna().to_numpy()
    else:
        fits = np.array([isinstance(v, (str, bool, np.bool_)) for v in column], dtype=bool) | ~present
    bad = np.flatnonzero(present & ~fits)
    return None if len(bad) == 0 else (int(bad[0]), column.iloc[bad[0]])


def _encode_column(column: pd.Series, name: str, kind: str) -> pd.Series:
    if kind == NUMERIC:
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            misfit = first_misfit(column, NUMERIC)
            if misfit is not None:
                raise FeatureError(f"column {name!r} is numeric, but holds {misfit[1]!r} (row {misfit[0] + 1})")
            column = pd.to_numeric(column)
        return pd.Series(column.to_numpy(dtype="float64", na_value=np.nan), index=column.index, name=name)
    if kind == DATETIME:
        try:
            stamps = pd.to_datetime(column, utc=True, format="mixed")
        except (ValueError, TypeError) as e:
            raise FeatureError(f"column {name!r} holds dates, but a value is not one: {e}") from None
        return (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    # CatBoost takes categories as text; a missing value is a category of its own.
    return column.astype("string").fillna(MISSING).astype(str)


def as_categories(X: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Text columns as pandas categories with the given (train's) categories; a value train never
    had becomes missing, as pandas casting did and will refuse to do silently."""
    if not categories:
        return X
    X = X.copy()
    for c, cats in categories.items():
        column = X[c].astype(str)
        X[c] = pd.Categorical(column.where(column.isin(cats)), categories=cats)
    return X


def _label_text(label: Any) -> str:
    """A class label as text, integral floats as integers (0.0 reads '0'), as :func:`hpo.data.label_key`."""
    v = label.item() if hasattr(label, "item") else label
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def served_model() -> Any:
    """The served model: raw rows in, the model's encoding applied, labels or values out.

    A factory, so that importing this module does not import mlflow.
    """
    from mlflow.pyfunc.model import PythonModel

    class RawRowsModel(PythonModel):
        """The trained model behind hpo's feature encoding.

        ``predict(rows)`` gives a class label (classification) or a value (regression) per row;
        ``predict(rows, params={"output": "proba"})`` gives class probabilities, one column per
        class, named by the class.
        """

        def load_context(self, context: Any) -> None:
            import json

            with open(context.artifacts["encoding"], encoding="utf-8") as f:
                config = json.load(f)
            self._kinds: dict[str, str] = dict(config["features"])
            # Text columns that the model takes as pandas categories, with train's categories.
            self._categories: dict[str, list[str]] = dict(config.get("categories") or {})
            self._classes: list[Any] | None = config.get("classes")
            self._names: list[str] = list(config.get("class_names") or [])
            if "catboost" in context.artifacts:
                from catboost import CatBoostClassifier, CatBoostRegressor

                model = CatBoostClassifier() if self._classes is not None else CatBoostRegressor()
                self._model = model.load_model(context.artifacts["catboost"])
            else:
                import pickle  # the model's own classes are found through the model's code_paths

                with open(context.artifacts["model"], "rb") as f:
                    self._model = pickle.load(f)
            self._order: list[int] | None = None
            if self._classes is not None:
                # Probabilities in the study's class order, whatever order the model keeps its classes in.
                # One label in any representation is one class: a training function's model may keep
                # the labels 0, 1 as 0.0, 1.0 (the names are the study's, as text; hpo.data.label_key).
                got = [_label_text(c) for c in getattr(self._model, "classes_", self._names)]
                want = [_label_text(n) for n in self._names]
                self._order = None if got == want else [got.index(n) for n in want]

        # No type hints here: MLflow reads them as an input schema, and raw rows have none.
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            output = (params or {}).get("output", "label")
            if output not in OUTPUTS:
                raise ValueError(f"params `output` must be one of {', '.join(OUTPUTS)}, but got {output!r}")
            X = encode(pd.DataFrame(model_input), self._kinds)
            X = as_categories(X, self._categories)
            if self._classes is None:
                return pd.Series(np.asarray(self._model.predict(X), dtype=float).ravel(), name="prediction")
            proba = np.asarray(self._model.predict_proba(X), dtype=float)
            if self._order is not None:
                proba = proba[:, self._order]
            if output == "proba":
                return pd.DataFrame(proba, columns=self._names)
            return pd.Series([self._classes[i] for i in proba.argmax(axis=1)], name="prediction")

    return RawRowsModel()
