"""One conversion, step by step: check the sweep, map each of its parts, write the text, validate it as a space file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.errors import HpoError, option
from hpo.metrics import METRICS
from hpo.space import NAME_RE, SpaceFile, parse_space
from hpo.sweep._findings import Findings, Keyed, NotCarried, SweepError
from hpo.sweep._metric import convert_metric
from hpo.sweep._params import convert_parameters
from hpo.sweep._read import check_is_sweep, drop_other_keys
from hpo.sweep._strategies import convert_budget, convert_early_terminate, convert_method, fit_grid
from hpo.sweep._write import SpaceDraft, space_text


@dataclass(frozen=True)
class SweepConversion:
    """A converted sweep: the space file's text, the same validated, and what did not carry over."""

    text: str
    """The space file as YAML, with comments naming the sweep key each key came from."""
    space: SpaceFile
    not_carried: tuple[NotCarried, ...]
    notes: tuple[str, ...]
    """What was carried over with a change a reader should know of (exponents made values, names flattened)."""


@dataclass(frozen=True)
class ImportOptions:
    """What the sweep does not say and ``hpo import-sweep``'s options do; see :func:`convert_sweep`."""

    data: str
    target: str = "target"
    version: str = "v0.1.0"
    study: str | None = None
    model: str = "catboost"
    metric: str | None = None
    n_trials: int | None = None


def convert_sweep(
    sweep: Mapping[str, Any],
    *,
    data: str,
    source: str = "<sweep>",
    target: str = "target",
    version: str = "v0.1.0",
    study: str | None = None,
    model: str = "catboost",
    metric: str | None = None,
    n_trials: int | None = None,
) -> SweepConversion:
    """Convert a W&B sweep into an hpo space file.

    Args:
        sweep: the sweep, as read by :func:`read_sweep`.
        data: the data source (a table file or ``sklearn:<name>``), split 60/20/20 with seed 0.
        source: the sweep file's name, for messages and the written file's header.
        study: the study name; default the sweep's ``name``, else ``source``'s stem.
        metric: an hpo metric, for a sweep whose metric names none (or none unambiguously).
        n_trials: the budget; default the sweep's ``run_cap``.

    Raises:
        SweepError: one line per problem, naming ``source``, the key and the rule.
    """
    options = ImportOptions(data, target, version, study, model, metric, n_trials)
    if metric is not None and metric not in METRICS:
        raise SweepError(f"{option('metric')} must be one of {', '.join(METRICS)}, but got {metric!r}")
    findings = Findings(source)
    check_is_sweep(sweep, findings)
    draft = _draft(sweep, options, findings)
    text = space_text(draft, findings, sweep.get("name"), sweep.get("description"))

    try:
        space = parse_space(text, f"{source} (converted)")
    except HpoError as e:
        raise SweepError(str(e)) from None
    return SweepConversion(text=text, space=space, not_carried=tuple(findings.not_carried), notes=tuple(findings.notes))


def _draft(sweep: Mapping[str, Any], options: ImportOptions, findings: Findings) -> SpaceDraft:
    """Every key of the space file from a (checked) sweep; raises every problem found on the way at once."""
    method = sweep["method"]
    # The order of the steps is the order of the findings in the header and on stderr.
    params = convert_parameters(sweep.get("parameters"), method, findings)
    metric = convert_metric(sweep.get("metric"), options.metric, findings)
    pruner = convert_early_terminate(sweep.get("early_terminate"), findings)
    budget = convert_budget(sweep.get("run_cap"), options.n_trials, method, findings)
    study = _study(sweep.get("name"), options.study, findings)
    drop_other_keys(sweep, findings)
    findings.raise_problems()
    assert metric is not None

    if method == "grid" and budget is not None:
        budget = fit_grid(budget, params.grid_points(), findings)
    return SpaceDraft(
        study=study,
        data=options.data,
        target=options.target,
        version=options.version,
        model=options.model,
        metric=metric,
        n_trials=budget,
        sampler=convert_method(method),
        pruner=pruner,
        params=params,
    )


def _study(name: Any, study: str | None, findings: Findings) -> Keyed:
    """The study name: ``--study``, else the sweep's ``name`` made a valid study name, else the file's name."""
    if study is not None:
        if name is not None:
            findings.drop("name", name, f"{option('study')} names the study")
        return Keyed(study, "--study")
    if isinstance(name, str) and name.strip():
        cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-._")
        if cleaned and NAME_RE.match(cleaned):
            return Keyed(cleaned, "name" if cleaned == name else f"name: {name!r}, made a valid study name")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(findings.source).stem).strip("-._") or "sweep"
    return Keyed(stem, "the sweep file's name")
