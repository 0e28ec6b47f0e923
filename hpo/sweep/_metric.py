"""Mapping a sweep's ``metric`` (a name and a ``goal``) to one of hpo's metrics, or taking ``--metric``."""

from __future__ import annotations

import re
from typing import Any

from hpo.errors import option
from hpo.metrics import METRICS
from hpo.sweep._findings import Findings, Keyed, short

METRIC_ALIASES: dict[str, str] = {
    **{m: m for m in METRICS},
    **dict.fromkeys(("acc",), "accuracy"),
    **dict.fromkeys(("f1_score",), "f1"),
    **dict.fromkeys(("auc", "rocauc", "auroc", "roc_auc_score"), "roc_auc"),
    **dict.fromkeys(
        ("log_loss", "cross_entropy", "crossentropy", "binary_crossentropy", "categorical_crossentropy", "bce"), "logloss"
    ),
    **dict.fromkeys(("root_mean_squared_error",), "rmse"),
    **dict.fromkeys(("mse", "mean_squared_error"), "rmse"),
    **dict.fromkeys(("mean_absolute_error",), "mae"),
    **dict.fromkeys(("r2_score", "r_squared", "rsquared"), "r2"),
    **dict.fromkeys(("pearson", "pearsonr", "pearson_corr", "pearson_correlation"), "pearson_r"),
    **dict.fromkeys(("spearman", "spearmanr", "spearman_corr", "spearman_correlation"), "spearman_r"),
}
"""A W&B metric name, lower-cased, separators as ``_`` and a ``val_``/``eval_`` prefix removed -> hpo metric.

Only names that mean one thing: ``loss`` is log loss for a classifier and some error for a regressor,
so it maps to nothing and ``--metric`` decides."""

_SQUARED = {"mse", "mean_squared_error"}
_VALIDATION_AFFIX = re.compile(r"^(?:val|valid|validation|eval|evaluation)_|_(?:val|valid|validation)\Z")


def convert_metric(raw: Any, override: str | None, findings: Findings) -> Keyed | None:
    """The hpo metric for the sweep's ``metric`` (``raw``), or ``override`` (``--metric``); None after a problem."""
    if override is not None:
        return _overridden(raw, override, findings)
    if raw is None:
        findings.fail(f"`metric` is not given, and hpo optimizes one; pass {option('metric')}, one of {', '.join(METRICS)}")
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        findings.fail(f"`metric` must be a mapping with a `name` (and a `goal`), but got {short(raw)}")
        return None
    name, goal = raw["name"], raw.get("goal", "minimize")
    if goal not in ("minimize", "maximize"):
        findings.fail(f"`metric.goal` must be minimize or maximize, but got {short(goal)}")
        return None
    normal = _VALIDATION_AFFIX.sub("", re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_"))
    hpo = METRIC_ALIASES.get(normal)
    if hpo is None:
        by_task = "; ".join(
            f"{task}: {', '.join(m.name for m in METRICS.values() if m.task == task)}"
            for task in ("regression", "classification")
        )
        findings.fail(f"`metric.name` {name!r} names none of hpo's metrics unambiguously; pass {option('metric')} ({by_task})")
        return None
    direction = METRICS[hpo].direction
    if goal != direction:
        default = " (W&B's default when `goal` is not given)" if "goal" not in raw else ""
        findings.fail(
            f"`metric.goal` is {goal}{default}, but hpo's {hpo}, which `metric.name` {name!r} maps to, is to {direction}; "
            f"fix the goal, or pass {option('metric')}"
        )
        return None
    if normal in _SQUARED:
        findings.note(f"`metric.name` {name!r}: hpo has no mse; rmse, its square root, ranks trials the same")
    _drop_extras(raw, findings)
    return Keyed(hpo, f"metric: {{name: {name}, goal: {goal}}}")


def _overridden(raw: Any, override: str, findings: Findings) -> Keyed:
    """``--metric``, and what the sweep's own metric said."""
    said = ""
    if isinstance(raw, dict) and "name" in raw:
        said = f" (the sweep's metric: {short(raw['name'])}, {short(raw.get('goal', 'minimize'))})"
        findings.note(f"{option('metric', override)} replaces the sweep's metric {short(raw['name'])}")
    if isinstance(raw, dict):
        _drop_extras(raw, findings)
    elif raw is not None:
        findings.drop("metric", raw, f"{option('metric')} names the metric")
    return Keyed(override, f"--metric{said}")


def _drop_extras(raw: dict[str, Any], findings: Findings) -> None:
    for key, value in raw.items():
        if key == "target":
            findings.drop("metric.target", value, "hpo does not stop at a target value; n_trials or timeout end a study")
        elif key in ("impute", "impute_while_running"):
            findings.drop(f"metric.{key}", value, "a failed trial is FAIL in Optuna, and its samplers leave it out")
        elif key not in ("name", "goal"):
            findings.drop(f"metric.{key}", value, "not a key of a W&B metric that hpo knows")
