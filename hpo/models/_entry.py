"""The team's own training code as a model: ``model: mypkg.train:fit`` (``module:function``).

hpo calls the function with the keyword arguments it declares, of these:

- ``params``: the trial's parameters, tuned and fixed together (a dict);
- ``train`` and ``validation``: each with ``.X`` (a pandas DataFrame of the features, as hpo
  encodes them: numbers as float64, text with missing as ``<NA>``, dates as seconds) and ``.y``
  (a pandas Series of the target, labels as they are in the data, in numpy's dtype: a nullable
  ``Int64``, ``boolean`` or ``string`` column arrives as int64, bool or text);
- ``seed``: the trial's seed, to fix the function's randomness;
- ``report``: ``report(step, value) -> bool``, the validation value after a step of training in
  the study's direction; ``False`` means the trial is pruned, so the function should stop (it
  may then return None: the trial is recorded PRUNED).

It returns a fitted model with ``predict`` (and ``predict_proba`` and ``classes_`` for
classification), which hpo scores with its metrics as it does CatBoost. A function that declares
only what it needs (``def fit(params, train, seed)``) works; one that needs another argument is
refused by ``hpo validate``. The module is found in the workspace (it is on the import path) or
among the installed packages.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from hpo.models._interface import Fitted, ModelSpec, Reporter
from hpo.models._sklearn import ModelImportError, check_not_shadowed

if TYPE_CHECKING:
    import pandas as pd

    from hpo.data import DataVersion

ENTRY_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*\Z")
SUPPLIED = ("params", "train", "validation", "seed", "report")
DEFAULT_STEPS = 100  # the pruners' resource when `fixed` sets no `iterations`


def is_entry_point(name: str) -> bool:
    return bool(ENTRY_RE.match(name))


@functools.cache
def entry_spec(path: str) -> ModelSpec:
    """The family of the training function at ``path``; raises :class:`ModelImportError` saying why not."""
    func = _import_function(path)
    parameters = inspect.signature(func).parameters.values()
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    needed = [
        p.name
        for p in parameters
        if p.name not in SUPPLIED
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
    if needed:
        raise ModelImportError(
            f"{path} needs {', '.join(map(repr, needed))}, which hpo cannot supply (it supplies {', '.join(SUPPLIED)})"
        )
    takes = frozenset(n for n in SUPPLIED if open_ended or any(p.name == n for p in parameters))
    return ModelSpec(
        name=path,
        library=path.split(".")[0].split(":")[0],
        fit=functools.partial(_fit, func, takes, path),
        known_params=None,
        default_iterations=DEFAULT_STEPS,
    )


def _import_function(path: str) -> Callable[..., Any]:
    import importlib

    module_name, _, attr = path.partition(":")
    check_not_shadowed(module_name)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ModelImportError(f"cannot import module {module_name!r} ({type(e).__name__}: {e})") from None
    func = getattr(module, attr, None)
    if func is None:
        raise ModelImportError(f"module {module_name!r} has no attribute {attr!r}")
    if not callable(func) or isinstance(func, type):
        raise ModelImportError(f"{path} is not a function")
    return func  # type: ignore[no-any-return]


def _plain(y: pd.Series) -> pd.Series:
    """The target in numpy's dtype where pandas holds it in a nullable one (Parquet's ``Int64``,
    ``boolean``, ``string``): the labels as they are, in the form every library trains on. Given
    ``Int64``, scikit-learn learns the classes as floats (0.0, not the data's 0).

    The target is complete (the data checks refuse a missing label), so nothing is lost.
    """
    import pandas as pd

    dtype = y.dtype
    if isinstance(dtype, pd.CategoricalDtype) or not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return y
    if isinstance(dtype, pd.StringDtype):
        return y.astype(object)
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    return y if numpy_dtype is None else y.astype(numpy_dtype)


def _fit(
    func: Callable[..., Any],
    takes: frozenset[str],
    path: str,
    *,
    metric: str,
    data: DataVersion,
    params: dict[str, Any],
    seed: int,
    thread_count: int | None = None,
    report: Reporter | None = None,
) -> Fitted:
    stopped: list[int] = []

    def user_report(step: int, value: float) -> bool:
        go_on = True if report is None else report(int(step), float(value))
        if not go_on and not stopped:
            stopped.append(int(step))
        return go_on

    supplied = {
        "params": dict(params),
        "train": SimpleNamespace(X=data.train.X, y=_plain(data.train.y)),
        "validation": SimpleNamespace(X=data.validation.X, y=_plain(data.validation.y)),
        "seed": seed,
        "report": user_report,
    }
    start = time.perf_counter()
    try:
        model = func(**{k: v for k, v in supplied.items() if k in takes})
    except SystemExit as e:  # a training script's own exit: that trial fails, hpo goes on
        raise RuntimeError(f"{path} called sys.exit({e.code!r})") from None
    seconds = time.perf_counter() - start
    if model is None and stopped:
        # report() said stop and the function stopped with nothing to score: pruned, as if it had
        # raised Optuna's TrialPruned itself (the README asks it to stop, not to return a model).
        import optuna

        raise optuna.TrialPruned(f"pruned at iteration {stopped[0]} ({path} returned None after report() said stop)")
    needs = ("predict", "predict_proba") if data.task == "classification" else ("predict",)
    missing = [m for m in needs if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(f"{path} returned {type(model).__name__}, not a fitted model with {' and '.join(missing)}()")
    if data.task == "classification" and getattr(model, "classes_", None) is None:
        raise TypeError(f"{path} returned a classifier without classes_, so its probabilities cannot be matched to the classes")
    return Fitted(model, None, stopped[0] if stopped else None, seconds)
