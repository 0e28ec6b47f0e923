"""The model registry: name -> family. Adding a family is one module and one entry here."""

from __future__ import annotations

from typing import Any

from hpo.models._catboost import CATBOOST
from hpo.models._entry import entry_spec, is_entry_point
from hpo.models._interface import ModelSpec
from hpo.models._sklearn import ModelImportError, estimator_spec, is_class_path

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (CATBOOST,)}


def model_spec(model: str) -> ModelSpec:
    """The family of a space file's ``model``: a registry name, an estimator class's import path, or
    a training function as ``module:function``.

    Raises ``ModelImportError`` (a ``ValueError``) naming what could not be imported and why.
    """
    if model in MODELS:
        return MODELS[model]
    if is_entry_point(model):
        return entry_spec(model)
    if not is_class_path(model):
        raise ModelImportError(
            f"must be one of {', '.join(MODELS)}, an estimator class's import path or module:function, but got {model!r}"
        )
    return estimator_spec(model)


def check_model_params(model: str, params: dict[str, Any], fixed: dict[str, Any]) -> list[str]:
    """Problems with parameter names and ranges for ``model``, as ``(key, rule)`` sentences."""
    spec = model_spec(model)
    problems: list[str] = []
    known = spec.known_params() if spec.known_params else None
    for section, names in (("params", params), ("fixed", fixed)):
        for name in names:
            if name in spec.reserved:
                problems.append(f"`{section}.{name}` is set by hpo itself and must not be given")
            elif known is not None and name not in known:
                import difflib

                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                problems.append(f"`{section}.{name}` is not a {spec.name} parameter{hint}")
    for name, p in params.items():
        lo, hi = spec.hard_limits.get(name, (None, None))
        low, high = getattr(p, "low", None), getattr(p, "high", None)
        if low is None or high is None:
            continue
        if lo is not None and low < lo or hi is not None and high > hi:
            problems.append(
                f"`params.{name}` must lie within {spec.name}'s limits {_limits(lo, hi)}, but got low={low}, high={high}"
            )
    for name, value in fixed.items():
        lo, hi = spec.hard_limits.get(name, (None, None))
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if name in spec.integer_params and not (number and float(value).is_integer()):
            problems.append(f"`fixed.{name}` must be a whole number, but got {value!r}")
        elif name in spec.hard_limits and not number:
            problems.append(f"`fixed.{name}` must be a number, but got {value!r}")
        elif number and (lo is not None and value < lo or hi is not None and value > hi):
            problems.append(f"`fixed.{name}` must lie within {spec.name}'s limits {_limits(lo, hi)}, but got {value}")
    return problems


def _limits(lo: float | None, hi: float | None) -> str:
    return f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
