"""What an estimator is given: hpo's feature table, encoded for what the estimator says it takes.

hpo's features (:func:`hpo.features.encode`) are numbers as float64 with gaps as NaN, and text as
pandas ``category`` (a gap in text is a category of its own; a value train never had is missing).
Many estimators take neither text nor NaN. hpo reads what the estimator declares in its input
tags (scikit-learn 1.6+ ``get_tags(estimator).input_tags``: ``allow_nan``, ``categorical``,
``string``) and, where it does not take the table as it is, puts the estimator in a scikit-learn
``Pipeline`` behind a ``ColumnTransformer`` that encodes for it. The encoding is fitted on train
only and travels inside the fitted model: the trial's scores, the pickled model, the promoted
raw-rows pyfunc and the ``sklearn_model`` flavor all carry the same pipeline.

The encodings, and why:

- **text -> one-hot** (``OneHotEncoder``), for an estimator that takes no categories. One-hot
  assumes no order between values, so a linear model, a kernel or a neighbour search reads it
  as it should (ordinal codes would invent an order and distances); trees split on it as well.
  At most :data:`MAX_CATEGORIES` columns per text column: train's most frequent values get one
  each and the rest share one, so an identifier-like column cannot blow up the table. A value
  train never had goes with the rare ones (``handle_unknown='infrequent_if_exist'``; all zeros
  when no value was rare), so a served row with a new value is scored, not refused.
- **missing numbers -> train's median plus a missing flag** (``SimpleImputer(strategy='median',
  add_indicator=True)``), for an estimator that takes no NaN. The median is robust to outliers;
  the flag keeps "this was missing" as a feature, since gaps often mean something. Every numeric
  column goes through the imputer (it changes nothing where there is no gap), so that a served row
  with a gap where train had none is still scored; only columns with gaps in train get a flag.
- nothing else: numbers are not scaled (that is the estimator's parameter to tune, or the team's
  own pipeline's job), and an estimator that takes the table as it is gets it unchanged.

An estimator takes categories natively when its tags say ``categorical`` or it is configured to
read them off the pandas dtype: scikit-learn's histogram gradient boosting
(``categorical_features='from_dtype'``, its default), LightGBM (``categorical_feature='auto'``),
XGBoost (``enable_categorical=True``). A class that declares no tags (not built on scikit-learn's
``BaseEstimator``) gets the table unchanged, as it always has. An estimator that no
encoding can serve (it takes no table of features at all, or only non-negative features and a
column holds negative numbers) is refused by ``hpo validate``, naming the column and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Columns one text column may become (train's most frequent values, then one for all the others).
MAX_CATEGORIES = 32
# The steps of the pipeline hpo builds around an estimator.
INPUTS_STEP, MODEL_STEP = "inputs", "model"


class ModelInputError(ValueError):
    """The estimator cannot take the study's features, even encoded: the message names the column and the fix."""


@dataclass(frozen=True)
class InputPlan:
    """How the features reach one estimator: which columns are encoded or imputed for it, and why."""

    estimator: str  # the class's name
    takes: str  # what the estimator declares it takes, in words
    encoded: tuple[str, ...] = ()  # text columns, one-hot encoded
    imputed: tuple[str, ...] = ()  # numeric columns, missing values imputed (every numeric one, for an estimator without NaN)
    flagged: tuple[str, ...] = ()  # of ``imputed``, those with gaps in train: they get a missing flag too

    @property
    def changes(self) -> bool:
        return bool(self.encoded or self.imputed)

    def describe(self) -> str:
        """One line for ``hpo validate``: what the estimator is given and why."""
        if not self.changes:
            return f"inputs: {self.estimator} {self.takes}: the features as they are"
        parts = []
        if self.encoded:
            parts.append(f"one-hot {_names(self.encoded)} (at most {MAX_CATEGORIES} columns each; new values as the rare ones)")
        if self.imputed:
            gaps = f"; {_names(self.flagged)} with gaps in train, plus a missing flag" if self.flagged else ""
            parts.append(f"missing numbers as train's median{gaps}")
        return f"inputs: {self.estimator} {self.takes}: hpo encodes inside the model: " + "; ".join(parts)


def _names(columns: tuple[str, ...], shown: int = 5) -> str:
    more = f" and {len(columns) - shown} more" if len(columns) > shown else ""
    return ", ".join(map(repr, columns[:shown])) + more


def input_tags(estimator: Any) -> Any | None:
    """scikit-learn's input tags of ``estimator``, or None when it declares none."""
    from sklearn.utils import get_tags

    try:
        return get_tags(estimator).input_tags
    except Exception:  # no __sklearn_tags__ (not a BaseEstimator), or tags that raise: nothing is declared
        return None


def takes_categories(estimator: Any, tags: Any) -> bool:
    """Whether ``estimator`` takes text columns as pandas ``category`` as they are."""
    if tags.categorical or tags.string:
        return True
    try:
        params = estimator.get_params(deep=False)
    except Exception:
        return False
    # Libraries that read categories off the pandas dtype, though their tags do not say so; a
    # ``categorical_features`` the space sets (names, a mask) means the team routes categories itself.
    return (
        params.get("categorical_features") is not None
        or params.get("categorical_feature") == "auto"
        or params.get("enable_categorical") is True
    )


def plan_inputs(estimator: Any, splits: list[pd.DataFrame], kinds: dict[str, str]) -> InputPlan | None:
    """How hpo's features (``splits``, train first) reach ``estimator``; None when it declares no input tags.

    Raises:
        ModelInputError: no encoding makes the features acceptable to the estimator.
    """
    from hpo.features import CATEGORICAL  # pandas, at module level there

    tags = input_tags(estimator)
    if tags is None:
        return None
    name = type(estimator).__name__
    if not tags.two_d_array:
        raise ModelInputError(f"{name} does not take a table of features (its input tags); choose an estimator that does")
    numeric = [c for c, k in kinds.items() if k != CATEGORICAL]  # dates are numbers (seconds) too
    text = [c for c, k in kinds.items() if k == CATEGORICAL]
    if tags.positive_only:
        for c in numeric:
            low = min(float(X[c].min()) for X in splits)  # NaN-skipping; NaN when a column is all gaps
            if low < 0:
                raise ModelInputError(
                    f"{name} takes only non-negative features, but column {c!r} holds {low:g}; "
                    "drop it (`data.drop`) or choose another model"
                )
    native = takes_categories(estimator, tags)
    takes = {
        (True, True): "takes text and missing values",
        (True, False): "takes text but no missing values",
        (False, True): "takes missing values but no text",
        (False, False): "takes no text and no missing values",
    }[native, bool(tags.allow_nan)]
    train = splits[0]
    imputed = () if tags.allow_nan else tuple(numeric)
    return InputPlan(
        estimator=name,
        takes=takes,
        encoded=() if native else tuple(text),
        imputed=imputed,
        flagged=tuple(c for c in imputed if train[c].isna().any()),
    )


def with_inputs(estimator: Any, plan: InputPlan | None) -> Any:
    """``estimator`` behind the encoding of ``plan``: a ``Pipeline`` of (inputs, model), or the estimator itself."""
    if plan is None or not plan.changes:
        return estimator
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    steps: list[tuple[str, Any, list[str]]] = []
    if plan.imputed:
        # keep_empty_features: a column with no value in train is kept (as 0) rather than dropped with a warning.
        imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        steps.append(("impute", imputer, list(plan.imputed)))
    if plan.encoded:
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES, sparse_output=False)
        steps.append(("one_hot", encoder, list(plan.encoded)))
    inputs = ColumnTransformer(steps, remainder="passthrough", sparse_threshold=0.0)
    return Pipeline([(INPUTS_STEP, inputs), (MODEL_STEP, estimator)])
