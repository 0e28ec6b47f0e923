"""``hpo promote``: resolve the trial, check, re-train, verify, and log it into the data-version space.

Nothing is written to MLflow until the re-trained model has matched the trial's recorded
validation value: a trial that does not reproduce leaves no trace.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError, StudyError
from hpo.ledger import check_promotion
from hpo.models import evaluate, model_spec
from hpo.promote._checks import (
    DEFAULT_ALIAS,
    DEFAULT_TOLERANCE,
    Check,
    ReproductionError,
    _check_model_code,
    _check_options,
    _check_source,
    _client,
    source_differs,
)
from hpo.promote._degenerate import check_degenerate
from hpo.promote._lock import promotion_lock
from hpo.promote._models import packed
from hpo.promote._recipe import Recipe
from hpo.promote._registry import post_leaderboard, register_model
from hpo.promote._writer import _log_promoted
from hpo.schema import (
    ROLE_PROMOTED,
    TAG_DEGENERATE,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_HPO_RUN,
    TAG_MODEL_CHECK,
    TAG_MODEL_FLAVOR,
    TAG_MODEL_URI,
    TAG_NATIVE_MODEL_URI,
    TAG_PROMOTED_RUN,
    TAG_ROLE,
    TAG_SOURCE_DIFFERS,
    TAG_SRC_VERSION,
    TAG_STUDY,
    TAG_TRIAL,
    TEST,
    TRIAL_ERROR,
    TRIAL_INHERITED_FROM,
    VAL,
    StudyRecord,
)
from hpo.storage import load_named_or_newest, load_study, trial_by_number, trial_counts
from hpo.tracking import StudyProjection, experiment_names, recorded_digests, sync_study
from hpo.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Run


@dataclass
class PromoteResult:
    study: str
    trial: int
    value: float
    run_id: str
    experiment: str
    experiment_id: str
    existing: bool  # the trial had been promoted before; nothing was re-trained
    tolerance: float
    check: Check | None = None
    via: str | None = None  # "study#n" when the trial asked for was inherited from this one
    hpo_run_id: str | None = None
    model_uri: str | None = None
    native_model_uri: str | None = None
    model_flavor: str | None = None  # of the native model: catboost, sklearn; pyfunc when there is none
    model_check: dict[str, Any] | None = None  # the logged model's predictions on raw test rows
    test_metrics: dict[str, float] = field(default_factory=dict)
    registered: dict[str, Any] | None = None
    leaderboard: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    degenerate: str | None = None  # what is degenerate about the model (promoted with allow_degenerate), in figures

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["check"] = None if self.check is None else self.check.as_dict()
        return out


def promote(
    trial: str = "best",
    *,
    study: str | None = None,
    storage: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    allow_dirty: bool = False,
    again: bool = False,
    register: str | None = None,
    alias: str = DEFAULT_ALIAS,
    leaderboard: bool = False,
    allow_degenerate: bool = False,
    workspace: Workspace | None = None,
    say: Callable[[str], None] = lambda _: None,
    warn: Callable[[str], None] = lambda _: None,
) -> PromoteResult:
    """Re-train ``trial`` (a number or ``best``) of ``study``, verify it, log it into the data-version space.

    Args:
        study: study name; default the most recently created study in the storage.
        tolerance: largest absolute difference allowed between the re-trained validation metric
            and the trial's recorded value.
        allow_dirty: promote from a git tree with uncommitted changes, or from outside git.
        again: promote a trial that was promoted before, as a second run.
        register: register the model under this name in the Model Registry, with ``alias``.
        leaderboard: also update the leaderboard experiment's row for this data version.
        allow_degenerate: promote a degenerate model (one class or one value for every validation and
            test row, or the metric at its worst possible value); the run is then tagged ``hpo.degenerate``.
        say: receives one line per step, for a terminal.
        warn: receives one line when the promoted model is degenerate (it is also ``degenerate`` of the result).

    Raises:
        HpoError: the trial is not COMPLETE, the tree is dirty, the data changed, (as :class:`DegenerateModel`)
            the model is degenerate, or (as :class:`ReproductionError`) the re-trained value differs from the record.
    """
    _check_options(tolerance, register, alias)
    ws = workspace or load_workspace()
    url = ws.storage_url(storage)
    s, t = _resolve_trial(url, study, trial)
    via = None
    if TRIAL_INHERITED_FROM in t.user_attrs:
        # A warm-start copy: the trial that ran (and its HPO run) belongs to the parent study.
        asked = f"trial #{t.number} of study {s.study_name}"
        via = f"{s.study_name}#{t.number}"
        s, t, url = _origin(s, t.user_attrs[TRIAL_INHERITED_FROM], url)
        say(f"{asked} was inherited from trial #{t.number} of study {s.study_name}; promoting that one")
    where = f"trial #{t.number} of study {s.study_name!r}"
    recipe = Recipe.from_trial(s, t)

    c = _client()
    names = experiment_names(ws, recipe.data_version)
    # One promotion of a trial at a time: a second one started meanwhile waits, then finds the first's run.
    with promotion_lock(url, s.study_name, t.number, lambda: say(f"{where}: waiting for another `hpo promote` of it to finish")):
        return _promote_locked(
            c,
            ws,
            url,
            s,
            t,
            recipe,
            names,
            where,
            via,
            tolerance,
            allow_dirty,
            again,
            register,
            alias,
            leaderboard,
            allow_degenerate,
            say,
            warn,
        )


def _promote_locked(
    c: MlflowClient,
    ws: Workspace,
    url: str,
    s: optuna.Study,
    t: optuna.trial.FrozenTrial,
    recipe: Recipe,
    names: dict[str, str],
    where: str,
    via: str | None,
    tolerance: float,
    allow_dirty: bool,
    again: bool,
    register: str | None,
    alias: str,
    leaderboard: bool,
    allow_degenerate: bool,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> PromoteResult:
    """:func:`promote` once the trial's promotion lock is held: find its promoted run, or re-train and log it."""
    previous = None if again else find_promoted(c, names["data"], s.study_name, t.number)
    if previous is not None:
        result = _result(s, t, previous, names["data"], tolerance, via, check=None)
        say(f"{where} was promoted before, as run {previous.info.run_id}; nothing re-trained (--again promotes it once more)")
        if result.degenerate:
            warn(f"{where} is a degenerate model (tag {TAG_DEGENERATE}): {result.degenerate}")
        _extras(c, ws, result, previous, register, alias, leaderboard, say)
        return result

    src = _check_source(ws, allow_dirty)
    _check_model_code(ws, recipe.model, where)
    say(f"Promoting {where}: {recipe.metric} {t.value:.6g}, seed {recipe.seed}, data {recipe.data_version}")
    state = "dirty tree, --allow-dirty" if src.dirty else "outside git, --allow-dirty" if src.dirty is None else "clean"
    say(f"  source    {src.src_version} (commit {src.commit[:12]}, {state})")
    differs = source_differs(StudyRecord.from_study(s), src)
    if differs is not None:
        say(f"  source    note: {differs}")
    data = recipe.load_data(ws, where)
    check_promotion(url, recipe.data_version, data.digests, where, recorded_digests(c, ws, recipe.data_version), data)
    say(f"  data      {recipe.data_version}: train/validation/test digests match the study and the data ledger")
    fit = recipe.train(data)
    check = Check(f"{VAL}{recipe.metric}", float(t.value), float(fit.objective), tolerance)  # type: ignore[arg-type]
    scored_on = "validation" if recipe.cv is None else f"{len(fit.fold_values or ())}-fold mean"
    if not check.ok:
        raise ReproductionError(
            f"{where} did not reproduce: re-trained {scored_on} {recipe.metric} is {check.reproduced:.10g}, but the trial "
            f"recorded {check.recorded:.10g} (|difference| {check.diff:.3g} > tolerance {tolerance:g}); nothing was logged. "
            "The trial's record does not match what its configuration produces (edited storage, other library versions?)"
        )
    say(
        f"  re-train  {scored_on} {recipe.metric} {check.reproduced:.6g} (trial {check.recorded:.6g}, "
        f"|difference| {check.diff:.3g} <= tolerance {tolerance:g})"
    )
    if recipe.cv is not None:
        rows = data.train.rows + data.validation.rows
        best = fit.best_iteration
        fixed = best is not None and model_spec(recipe.model).final_params is not None
        iterations = f", {best + 1} iterations (the folds' mean best)" if best is not None and fixed else ""
        say(f"  final     the model to keep, fit on train + validation ({rows} rows){iterations}; scored on test")

    test = evaluate(fit.model, data.test, data)
    scored = {**{f"{VAL}{k}": v for k, v in fit.metrics.items()}, **{f"{TEST}{k}": v for k, v in test.items()}}
    undefined = [k for k, v in scored.items() if not math.isfinite(v)]
    if undefined:
        say(f"  note      {', '.join(undefined)} undefined (NaN, e.g. constant predictions); logged as NaN")
    bad = check_degenerate(fit, recipe, data, test, where, allow_degenerate, warn)
    with packed(fit.model, recipe.model, data) as pack:  # a model that cannot be logged is refused before any write
        hpo_exp, hpo_run = _hpo_run(c, ws, s, t)
        run = _log_promoted(
            c, ws, s, t, recipe, data, fit, pack, test, check, src, differs, allow_dirty, names, hpo_exp, hpo_run, via, bad
        )
    if hpo_run is not None:
        c.set_tag(hpo_run, TAG_PROMOTED_RUN, run.info.run_id)
    if bad is not None:
        warn(f"{where} is a degenerate model, promoted as asked (--allow-degenerate): {bad}")
    result = _result(s, t, run, names["data"], tolerance, via, check)
    if result.model_check:
        mc = result.model_check
        say(
            f"  model     the logged pyfunc on {mc['rows']} raw {mc['split']} rows: "
            f"max |difference| {mc['max_abs_diff']:.3g} from hpo's own predictions"
        )
    _extras(c, ws, result, run, register, alias, leaderboard, say)
    return result


def _result(
    s: optuna.Study,
    t: optuna.trial.FrozenTrial,
    run: Run,
    experiment: str,
    tolerance: float,
    via: str | None,
    check: Check | None,
) -> PromoteResult:
    tags = run.data.tags
    return PromoteResult(
        study=s.study_name,
        trial=t.number,
        value=float(t.value),  # type: ignore[arg-type]
        run_id=run.info.run_id,
        experiment=experiment,
        experiment_id=run.info.experiment_id,
        existing=check is None,
        tolerance=tolerance,
        check=check,
        via=via,
        hpo_run_id=tags.get(TAG_HPO_RUN),
        model_uri=tags.get(TAG_MODEL_URI),
        native_model_uri=tags.get(TAG_NATIVE_MODEL_URI),
        model_flavor=tags.get(TAG_MODEL_FLAVOR),
        model_check=json.loads(tags[TAG_MODEL_CHECK]) if TAG_MODEL_CHECK in tags else None,
        test_metrics=_prefixed(run.data.metrics, TEST),
        source={k: tags.get(k) for k in (TAG_SRC_VERSION, TAG_GIT_COMMIT, TAG_GIT_DIRTY, TAG_SOURCE_DIFFERS)},
        degenerate=tags.get(TAG_DEGENERATE),
    )


def _resolve_trial(url: str, study: str | None, ref: str, verb: str = "promote") -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    s = load_named_or_newest(url, study)
    name = s.study_name
    if ref == "best":
        if not trial_counts(s).get("COMPLETE"):
            raise StudyError(f"study {name!r} has no COMPLETE trial to {verb}")
        return s, s.best_trial
    try:
        number = int(ref)
    except ValueError:
        raise HpoError(f"TRIAL must be a trial number or `best`, but got {ref!r}") from None
    try:
        t = trial_by_number(s, number)
    except KeyError:
        n = sum(trial_counts(s).values())
        raise StudyError(f"study {name!r} has no trial #{number} (trials #0-#{n - 1})") from None
    if t.state.name != "COMPLETE":
        why = f": {t.user_attrs[TRIAL_ERROR]}" if t.user_attrs.get(TRIAL_ERROR) else ""
        raise StudyError(
            f"trial #{number} of study {name!r} is {t.state.name}{why}; only COMPLETE trials can be promoted "
            f"(`hpo promote best --study {name}` takes the best one)"
        )
    return s, t


def _origin(s: optuna.Study, origin: dict[str, Any], url: str) -> tuple[optuna.Study, optuna.trial.FrozenTrial, str]:
    """The study and trial that ``origin`` (a warm-start copy's record) names, and the URL of their storage."""
    parent_url = (StudyRecord.from_study(s).derived_from or {}).get("storage") or url
    try:
        parent = load_study(parent_url, origin["study"])
    except StudyError as e:
        raise StudyError(f"study {s.study_name!r}: its trial comes from study {origin['study']!r}, which is gone: {e}") from None
    return (*_resolve_trial(parent_url, parent.study_name, str(origin["trial"])), parent_url)


def find_promoted(c: MlflowClient, experiment: str, study: str, trial: int) -> Run | None:
    """The active promoted run of ``study``'s trial ``trial`` in the data-version space, if any."""
    exp = c.get_experiment_by_name(experiment)
    if exp is None or exp.lifecycle_stage != "active":
        return None
    runs = c.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"tags.`{TAG_ROLE}` = '{ROLE_PROMOTED}' and tags.`{TAG_STUDY}` = '{study}' and tags.`{TAG_TRIAL}` = '{trial}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def _hpo_run(c: MlflowClient, ws: Workspace, s: optuna.Study, t: optuna.trial.FrozenTrial) -> tuple[str | None, str | None]:
    """The HPO space's experiment id and the trial's child run; a missing projection is rebuilt first."""
    projection = StudyProjection.open(ws, s, c)
    runs = projection.trial_runs()
    if t.number not in runs:
        sync_study(ws, s, c)  # MLflow was unreachable during the run: rebuild the projection from the truth
        runs = projection.trial_runs()
    run = runs.get(t.number)
    return projection.experiment_id, None if run is None else run[0]


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}


def _extras(
    c: MlflowClient,
    ws: Workspace,
    result: PromoteResult,
    run: Run,
    register: str | None,
    alias: str,
    leaderboard: bool,
    say: Callable[[str], None],
) -> None:
    if register is not None:
        result.registered = register_model(c, run, register, alias)
        r = result.registered
        say(f"  registry  {r['name']} version {r['version']} @{r['alias']}" + (" (registered before)" if r["existing"] else ""))
    if leaderboard:
        result.leaderboard = post_leaderboard(c, ws, run)
        say(f"  leaderboard {result.leaderboard['message']}")
