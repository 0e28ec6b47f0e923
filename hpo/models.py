"""Model registry: how to build and train each model a space file may name.

Adding a model is one entry in ``MODELS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """What hpo needs to know of a model family.

    ``hard_limits`` bound parameters the library itself rejects outside a range (used to check
    space files and to keep a widened range legal). ``reserved`` are constructor arguments hpo
    sets itself, so a space file must not.
    """

    name: str
    library: str
    hard_limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    reserved: frozenset[str] = frozenset()
    integer_params: frozenset[str] = frozenset()


MODELS: dict[str, ModelSpec] = {
    "catboost": ModelSpec(
        name="catboost",
        library="catboost",
        hard_limits={
            "depth": (1, 16),
            "iterations": (1, None),
            "learning_rate": (1e-6, 1.0),
            "l2_leaf_reg": (0.0, None),
            "random_strength": (0.0, None),
            "bagging_temperature": (0.0, None),
            "border_count": (1, 65535),
            "subsample": (1e-6, 1.0),
            "rsm": (1e-6, 1.0),
            "min_data_in_leaf": (1, None),
            "max_leaves": (1, 64),
            "one_hot_max_size": (0, 255),
        },
        reserved=frozenset(
            {
                "random_seed",
                "random_state",
                "eval_metric",
                "cat_features",
                "metric_period",
                "verbose",
                "verbose_eval",
                "silent",
                "logging_level",
                "train_dir",
                "allow_writing_files",
                "class_names",
            }
        ),
        integer_params=frozenset({"depth", "iterations", "border_count", "min_data_in_leaf", "max_leaves"}),
    ),
}


def check_model_params(model: str, params: dict[str, Any], fixed: dict[str, Any]) -> list[str]:
    """Problems with parameter names and ranges for ``model``, as ``(key, rule)`` sentences."""
    spec = MODELS[model]
    problems: list[str] = []
    known = _known_params(spec)
    for section, names in (("params", params), ("fixed", fixed)):
        for name in names:
            if name in spec.reserved:
                problems.append(f"`{section}.{name}` is set by hpo itself and must not be given")
            elif known is not None and name not in known:
                problems.append(f"`{section}.{name}` is not a {spec.name} parameter")
    for name, p in params.items():
        lo, hi = spec.hard_limits.get(name, (None, None))
        low, high = getattr(p, "low", None), getattr(p, "high", None)
        if low is None:
            continue
        if lo is not None and low < lo or hi is not None and high > hi:
            problems.append(
                f"`params.{name}` must lie within {spec.name}'s limits [{_fmt(lo)}, {_fmt(hi)}], but got low={low}, high={high}"
            )
    for name, value in fixed.items():
        lo, hi = spec.hard_limits.get(name, (None, None))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if lo is not None and value < lo or hi is not None and value > hi:
                problems.append(f"`fixed.{name}` must lie within {spec.name}'s limits [{_fmt(lo)}, {_fmt(hi)}], but got {value}")
    return problems


def _fmt(x: float | None) -> str:
    return "-inf" if x is None else f"{x:g}"


def _known_params(spec: ModelSpec) -> set[str] | None:
    if spec.library == "catboost":
        import inspect

        from catboost import CatBoostClassifier, CatBoostRegressor

        names: set[str] = set()
        for cls in (CatBoostRegressor, CatBoostClassifier):
            names |= set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        return names
    return None
