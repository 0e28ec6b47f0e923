"""Reading a sweep file, and checking that it is a W&B sweep before any of its keys is converted."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hpo.errors import option
from hpo.space import StrictLoader, read_text
from hpo.sweep._findings import Findings, SweepError
from hpo.sweep._strategies import METHODS

CONVERTED = ("method", "parameters", "metric", "early_terminate", "run_cap", "name", "description")
"""The top-level keys of a sweep that have a counterpart in a space file."""

# Top-level keys of a sweep with no counterpart in a space file, and why.
_ELSEWHERE: dict[str, str] = {
    "program": "hpo trains the space's model, not a script; to run your own training code, write a function "
    "(params, train, validation, seed, report) and pass {model}",  # the option, named as the caller names it
    "command": "hpo calls the model itself; there is no command line",
    "project": "hpo names its MLflow experiments after `project` under [tool.hpo] in pyproject.toml",
    "entity": "a W&B team; hpo has no counterpart",
    "controller": "hpo's workers share the study through its Optuna storage",
    "job": "a W&B Launch job; hpo runs trials itself",
    "image_uri": "a W&B Launch image; hpo runs trials itself",
    "scheduler": "a W&B custom scheduler; hpo's sampler is `sampler`",
    "apiVersion": "W&B's format version",
    "kind": "W&B's format kind",
}


class _SweepLoader(StrictLoader):
    """The space files' strict YAML (``hpo.space``), with the wording of a sweep file."""

    IN = ""


def read_sweep(path: str | Path) -> dict[str, Any]:
    """The mapping in a sweep file, read as strictly as a space file (no aliases, no repeated keys)."""
    path = Path(path)
    text = read_text(path, SweepError, "give a W&B sweep file")
    try:
        raw = yaml.load(text, Loader=_SweepLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SweepError(f"{path}: invalid YAML{where}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: is not a W&B sweep: it must be a YAML mapping with `method` and `parameters`")
    return raw


def check_is_sweep(sweep: Mapping[str, Any], findings: Findings) -> None:
    """Refuse a mapping that is not a W&B sweep at all, before its other keys add only noise.

    Raises:
        SweepError: without a known ``method`` or without ``parameters``.
    """
    method = sweep.get("method")
    if "method" not in sweep and "parameters" not in sweep:
        keys = ", ".join(map(str, sweep)) or "none"
        findings.fail(f"is not a W&B sweep: it has no `method` and no `parameters` (its keys: {keys})")
    elif "method" not in sweep:
        findings.fail("is not a W&B sweep: `method` is required (grid, random or bayes)")
    elif not isinstance(method, str) or method not in METHODS:
        findings.fail(f"`method` must be one of {', '.join(METHODS)}, but got {method!r}")
    if "parameters" not in sweep and "method" in sweep:
        findings.fail("is not a W&B sweep: `parameters` is required (a mapping of parameter names to their values)")
    findings.raise_problems()


def drop_other_keys(sweep: Mapping[str, Any], findings: Findings) -> None:
    """Say why each top-level key outside :data:`CONVERTED` is not carried over."""
    for key, value in sweep.items():
        if key in _ELSEWHERE:
            findings.drop(key, value, _ELSEWHERE[key].replace("{model}", option("model", "module:function")))
        elif key == "metrics":
            findings.drop(key, value, "several metrics (multi-objective) need W&B's custom method; hpo optimizes one `metric`")
        elif key not in CONVERTED:
            findings.drop(key, value, "not a key of a W&B sweep that hpo knows")
