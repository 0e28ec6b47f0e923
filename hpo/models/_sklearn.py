"""Estimators named by import path: ``model: sklearn.ensemble.HistGradientBoostingRegressor``.

Any class with scikit-learn's estimator API (``get_params``, ``fit``, ``predict``; ``predict_proba``
for classification) is a model family: its parameters are its constructor's arguments, as
``get_params()`` lists them, and ``random_state`` is the trial seed. A class of a package in the
workspace (``mypkg.models.MyRegressor``) is found because the workspace is on the import path.

The estimator gets the features as a pandas DataFrame: numbers as float64 (missing as NaN), text
and category columns as pandas ``category`` (which scikit-learn's histogram gradient boosting
takes as categorical). An estimator that declares it takes no text or no missing values gets them
encoded inside its fitted model (:mod:`hpo.models._inputs`). Its native threads (OpenMP, BLAS) are
limited to the worker's share of the cores during fit and predict, as CatBoost's are, so that
parallel workers do not oversubscribe the machine. Nothing reports during a fit, so pruners have
nothing to act on.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.models._inputs import InputPlan, plan_inputs, with_inputs
from hpo.models._interface import Fitted, ModelSpec, Reporter

if TYPE_CHECKING:
    import pandas as pd

    from hpo.data import DataVersion

CLASS_PATH_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+\Z")


class ModelImportError(ValueError):
    """``model:`` names something that cannot be imported, or that is not an estimator class."""


def is_class_path(name: str) -> bool:
    return bool(CLASS_PATH_RE.match(name))


@functools.cache
def estimator_spec(path: str) -> ModelSpec:
    """The family of the estimator class at ``path``; raises :class:`ModelImportError` saying why not."""
    cls = _import_class(path)
    try:
        names = set(cls().get_params())
    except Exception as e:
        raise ModelImportError(f"{path}() cannot be made with its defaults ({type(e).__name__}: {e})") from None
    return ModelSpec(
        name=path,
        library=path.split(".")[0],
        fit=functools.partial(_fit, cls, frozenset(names)),
        reserved=frozenset({"random_state"} & names),
        # A constructor with **kwargs (LightGBM's, XGBoost's) passes other names on to its library,
        # so only its own checks at fit time can refuse them.
        known_params=None if _takes_any_keyword(cls) else lambda: names,
        default_iterations=1,
        hard_limits=declared_limits(cls),
    )


def declared_limits(cls: type) -> dict[str, tuple[float | None, float | None]]:
    """The numeric bounds a class declares for its parameters in scikit-learn's
    ``_parameter_constraints`` (scikit-learn 1.2 and later, and estimators built on its validation):
    ``hpo validate`` checks ranges against them and ``hpo analyze`` widens only within them.

    A parameter gets bounds only when every number it takes is in one of its ``Interval``s, all of one
    type (``None``, string options and booleans may stand beside them). An open bound of a whole-number
    interval becomes the next whole number; an open bound of a real one stays as written (``(0, inf)``
    allows 0).
    """
    declared = getattr(cls, "_parameter_constraints", None)
    out: dict[str, tuple[float | None, float | None]] = {}
    if not isinstance(declared, dict):
        return out
    for name, options in declared.items():
        if not isinstance(options, list):
            continue
        intervals = [c for c in options if type(c).__name__ == "Interval" and hasattr(c, "closed")]
        others_not_numbers = all(
            c is None or c == "boolean" or type(c).__name__ == "StrOptions" for c in options if c not in intervals
        )
        if not intervals or not others_not_numbers or len({c.type for c in intervals}) > 1:
            continue  # a whole-number interval beside a fraction's (min_samples_split): the space's type decides
        lows, highs = [], []
        for c in intervals:
            whole = isinstance(c.type, type) and c.type.__name__ == "Integral"
            lows.append(None if c.left is None else c.left + (whole and c.closed in ("right", "neither")))
            highs.append(None if c.right is None else c.right - (whole and c.closed in ("left", "neither")))
        low = None if None in lows else min(lows)  # type: ignore[type-var]
        high = None if None in highs else max(highs)  # type: ignore[type-var]
        if low is not None or high is not None:
            out[name] = (low, high)
    return out


def _takes_any_keyword(cls: type) -> bool:
    import inspect

    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def estimator_kind(path: str) -> str:
    """``classification`` or ``regression``, as scikit-learn tells the class's instances apart."""
    from sklearn.base import is_classifier

    return "classification" if is_classifier(_import_class(path)()) else "regression"


def check_not_shadowed(module_name: str) -> None:
    """Refuse a model module of the workspace that an installed or standard-library module of the same name hides.

    The workspace comes last on the import path (:func:`hpo.workspace.on_import_path`), so its
    ``catboost.py`` is never imported in place of CatBoost; a model named after it would silently be
    the library's, or fail with a baffling "has no attribute".
    """
    import importlib.util

    from hpo.workspace import import_roots, relative_path

    top = module_name.split(".")[0]
    roots = import_roots()
    own = next((p for r in roots for p in (r / f"{top}.py", r / top) if p.exists()), None)
    if own is None:
        return
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return  # importing it says what is wrong
    if spec is None:
        return
    found = [spec.origin] if spec.origin not in (None, "built-in", "frozen") else []
    found += list(spec.submodule_search_locations or [])
    if any(Path(f).resolve().is_relative_to(r.resolve()) for f in found for r in roots):
        return  # a workspace's own module is the one imported
    root = next(r for r in roots if own.is_relative_to(r))
    kind = "standard-library" if top in sys.stdlib_module_names else "installed"
    raise ModelImportError(
        f"module {top!r} is the workspace's {relative_path(own, root)}, but the {kind} module {top!r} "
        f"({found[0] if found else 'built in'}) has the same name and is the one imported; rename {relative_path(own, root)}"
    )


def _import_class(path: str) -> type:
    import importlib

    module_name, _, attr = path.rpartition(".")
    check_not_shadowed(module_name)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ModelImportError(f"cannot import module {module_name!r} ({type(e).__name__}: {e})") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ModelImportError(f"module {module_name!r} has no attribute {attr!r}")
    missing = [m for m in ("get_params", "fit", "predict") if not callable(getattr(cls, m, None))]
    if not isinstance(cls, type) or missing:
        what = "not a class" if not isinstance(cls, type) else f"it has no {', '.join(missing)}"
        raise ModelImportError(f"{path} is not a scikit-learn estimator class ({what})")
    return cls


def category_types(X: pd.DataFrame, cat_features: list[str]) -> dict[str, list[str]]:
    """Each text column's categories as train has them: the same codes for every split."""
    return {c: sorted(X[c].astype(str).unique()) for c in cat_features}


def estimator_inputs(path: str, data: DataVersion, fixed: dict[str, Any]) -> InputPlan | None:
    """How the features of ``data`` reach the estimator at ``path`` with the space's ``fixed`` parameters
    (None: the class declares no input tags, and gets them as they are).

    Raises:
        ModelInputError: the estimator cannot take the features, even encoded (the message names the column).
    """
    cls = _import_class(path)
    try:
        estimator = cls(**fixed)
    except Exception:
        estimator = cls()  # a fixed parameter the class refuses: the trials say so, in its words
    splits = [data.train.X, data.validation.X, data.test.X]
    return plan_inputs(estimator, splits, data.kinds)


def native_threads(params: dict[str, Any], thread_count: int | None) -> int | None:
    """The native threads (OpenMP, BLAS) of a fit: ``n_jobs`` when the space sets a count, else the worker's ``thread_count``."""
    n_jobs = params.get("n_jobs")
    return n_jobs if isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and n_jobs > 0 else thread_count


def thread_limit(threads: int | None, estimator: Any) -> contextlib.AbstractContextManager[Any]:
    """Native threads (OpenMP, BLAS) limited to ``threads`` inside the block (no limit for None)."""
    if not threads or threads < 1:
        return contextlib.nullcontext()
    limited: contextlib.AbstractContextManager[Any] = _thread_pools(type(estimator).__module__).limit(limits=threads)
    return limited


@functools.cache
def _thread_pools(module: str) -> Any:
    """The native thread pools loaded once ``module`` (an estimator's) is imported.

    Found once per process and module: finding them lists every loaded library (about 15 ms, on
    every fit and predict otherwise); limiting them is then instant.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _fit(
    cls: type,
    names: frozenset[str],
    *,
    metric: str,
    data: DataVersion,
    params: dict[str, Any],
    seed: int,
    thread_count: int | None = None,
    report: Reporter | None = None,
) -> Fitted:
    import numpy as np

    kwargs = dict(params)
    if "random_state" in names:
        kwargs["random_state"] = seed
    if thread_count and "n_jobs" in names and "n_jobs" not in kwargs:
        kwargs["n_jobs"] = thread_count
    estimator = cls(**kwargs)
    # Refused by `hpo validate` already when the estimator cannot take the features; a trial fails with the same line.
    plan = plan_inputs(estimator, [data.train.X, data.validation.X, data.test.X], data.kinds)
    y = data.train.y
    if data.task == "classification":
        # The labels as the study names them (text); predict() matches classes_ to the study's order.
        y_fit: Any = np.asarray(data.class_names, dtype=object)[data.codes(y)]
    else:
        y_fit = y.to_numpy(dtype=float)
    fitted = with_inputs(estimator, plan)
    threads = native_threads(params, thread_count)
    model = _Framed(fitted, category_types(data.train.X, data.cat_features), threads)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as said, thread_limit(threads, fitted):
        warnings.simplefilter("always")
        # hpo passes n_jobs to every estimator that lists it; some (LogisticRegression) now ignore it.
        warnings.filterwarnings("ignore", message=".*'n_jobs' has no effect", category=FutureWarning)
        fitted.fit(model.frame(data.train.X), y_fit)
    _say_once(said)
    if hasattr(fitted, "classes_"):
        model.classes_ = fitted.classes_
    return Fitted(model, None, None, time.perf_counter() - start)


_SAID: set[tuple[type, str]] = set()  # the fit warnings this process has shown


def _say_once(said: list[warnings.WarningMessage]) -> None:
    """Show each distinct warning of the fits once per process, not once per trial.

    ``catch_warnings`` resets Python's once-per-location registry, so an estimator that warns on
    every fit (a ConvergenceWarning of an unscaled LogisticRegression) printed nine lines per trial.
    """
    for w in said:
        key = (w.category, str(w.message))
        if key not in _SAID:
            _SAID.add(key)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class _Framed:
    """The fitted estimator (behind hpo's encoding for it, if it needs one), given hpo's feature table as
    it was trained on (text as category), with its native threads limited as in training."""

    def __init__(self, estimator: Any, categories: dict[str, list[str]], threads: int | None = None) -> None:
        self.estimator = estimator  # the estimator, or a Pipeline of hpo's encoding and the estimator
        self.categories = categories  # text column -> train's categories (a value outside them is missing)
        self.threads = threads
        self.classes_: Any = None

    def frame(self, X: pd.DataFrame) -> pd.DataFrame:
        from hpo.features import as_categories

        return as_categories(X, self.categories)

    def predict(self, X: pd.DataFrame) -> Any:
        with thread_limit(self.threads, self.estimator):
            return self.estimator.predict(self.frame(X))

    def predict_proba(self, X: pd.DataFrame) -> Any:
        with thread_limit(self.threads, self.estimator):
            return self.estimator.predict_proba(self.frame(X))
