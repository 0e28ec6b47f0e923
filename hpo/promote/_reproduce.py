"""``hpo reproduce``: re-train a promoted run from the run alone and compare everything it logged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpo.errors import HpoError
from hpo.models import evaluate
from hpo.promote._checks import DEFAULT_TOLERANCE, Check, PromoteOptions, _check_model_code
from hpo.promote._models import check_predictions
from hpo.promote._recipe import Recipe
from hpo.provenance import source_version
from hpo.schema import (
    TAG_MODEL_CHECK,
    TAG_MODEL_URI,
    TAG_NATIVE_MODEL_URI,
    TAG_SRC_VERSION,
    TEST,
    VAL,
)
from hpo.tracking._models import PredictionCheck
from hpo.tracking._runs import find_promoted, reachable_client, read_run
from hpo.tracking._tags import normalized
from hpo.workspace import Workspace, load_workspace


@dataclass
class ReproduceResult:
    run_id: str
    checks: list[Check]
    tolerance: float
    src_version: str | None  # the run's
    current_src_version: str
    # The logged model on the raw test rows against the re-trained model (None: not a raw-rows model).
    model_check: PredictionCheck | None = None

    @property
    def model_ok(self) -> bool:
        return self.model_check is None or self.model_check.max_abs_diff <= self.tolerance

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and self.model_ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "tolerance": self.tolerance,
            "src_version": self.src_version,
            "current_src_version": self.current_src_version,
            "checks": [c.as_dict() for c in self.checks],
            "model_check": None if self.model_check is None else {**self.model_check.as_dict(), "ok": self.model_ok},
        }


def reproduce(run_id: str, *, tolerance: float = DEFAULT_TOLERANCE, workspace: Workspace | None = None) -> ReproduceResult:
    """Re-train the promoted run ``run_id`` from its tags and params alone; compare every metric."""
    PromoteOptions(tolerance=tolerance).check()
    ws = workspace or load_workspace()
    run = read_run(reachable_client(), run_id)
    tags = normalized(run.data.tags)
    recipe = Recipe.from_run(run)
    _check_model_code(ws, recipe.model, f"run {run_id}")
    data = recipe.load_data(ws, f"run {run_id}")
    fit = recipe.train(data)

    test = evaluate(fit.model, data.test, data)
    # The model that serves is the logged one: its predictions on raw rows must match the re-training too.
    # (Runs from before the raw-rows model have a model_uri of another kind, and neither of these tags.)
    raw_rows = TAG_MODEL_CHECK in tags or TAG_NATIVE_MODEL_URI in tags
    uri = tags.get(TAG_MODEL_URI) if raw_rows else None
    model_check = None if uri is None else check_predictions(uri, fit.model, data.test, "test", data)
    checks = []
    for prefix, values in ((VAL, fit.metrics), (TEST, test)):
        for name, value in values.items():
            logged = run.data.metrics.get(f"{prefix}{name}")
            if logged is not None:
                checks.append(Check(f"{prefix}{name}", float(logged), float(value), tolerance))
    if not checks:
        raise HpoError(f"run {run_id}: it logged no val_/test_ metrics to compare with")
    return ReproduceResult(run_id, checks, tolerance, tags.get(TAG_SRC_VERSION), source_version(ws.root).src_version, model_check)


def promoted_run_id(
    study: str | None, trial: str = "best", *, storage: str | None = None, workspace: Workspace | None = None
) -> str:
    """The run id of the newest promotion of ``trial`` (a number or ``best``) of ``study`` (default:
    the newest study); an inherited trial is looked up where it was promoted, as its parent's."""
    from hpo.promote._promote import _origin, _resolve_trial
    from hpo.schema import TRIAL_INHERITED_FROM
    from hpo.tracking import experiment_names

    ws = workspace or load_workspace()
    url = ws.storage_url(storage)
    s, t = _resolve_trial(url, study, trial, verb="reproduce")
    if TRIAL_INHERITED_FROM in t.user_attrs:
        s, t, _ = _origin(s, t.user_attrs[TRIAL_INHERITED_FROM], url)
    recipe = Recipe.from_trial(s, t)
    experiment = experiment_names(ws, recipe.data_version)["data"]
    run = find_promoted(reachable_client(), experiment, s.study_name, t.number)
    if run is None:
        raise HpoError(
            f"trial #{t.number} of study {s.study_name!r} has no promoted run in experiment {experiment!r} to reproduce; "
            f"promote it first: hpo promote {t.number} --study {s.study_name}"
        )
    return str(run.info.run_id)
