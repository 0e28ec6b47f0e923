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

from hpo.errors import HpoError, StudyError, option
from hpo.ledger import check_promotion
from hpo.models import evaluate, model_spec
from hpo.promote._checks import (
    DEFAULT_ALIAS,
    DEFAULT_TOLERANCE,
    Check,
    PromoteOptions,
    ReproductionError,
    _check_model_code,
    _check_source,
    source_differs,
)
from hpo.promote._degenerate import check_degenerate
from hpo.promote._lock import promotion_lock
from hpo.promote._models import packed
from hpo.promote._recipe import Recipe
from hpo.promote._writer import Evidence, HpoLink, Target, _log_promoted
from hpo.schema import (
    TAG_DEGENERATE,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_HPO_RUN,
    TAG_MODEL_CHECK,
    TAG_MODEL_FLAVOR,
    TAG_MODEL_URI,
    TAG_NATIVE_MODEL_URI,
    TAG_SOURCE_DIFFERS,
    TAG_SRC_VERSION,
    TEST,
    TRIAL_ERROR,
    TRIAL_INHERITED_FROM,
    VAL,
    StudyRecord,
)
from hpo.storage import load_named_or_newest, load_study, trial_by_number, trial_counts
from hpo.tracking import experiment_names, recorded_digests
from hpo.tracking._registry import post_leaderboard, register_model
from hpo.tracking._runs import find_promoted, link_promoted, reachable_client, trial_run
from hpo.tracking._tags import normalized
from hpo.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    import optuna

    from hpo.tracking import Client, Run


@dataclass(frozen=True)
class Say:
    """Where a promotion tells what it does: one line per step (``say``), and a degenerate model (``warn``)."""

    say: Callable[[str], None]
    warn: Callable[[str], None]


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
    opts = PromoteOptions(
        tolerance=tolerance,
        allow_dirty=allow_dirty,
        again=again,
        register=register,
        alias=alias,
        leaderboard=leaderboard,
        allow_degenerate=allow_degenerate,
    ).check()
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

    c = reachable_client()
    names = experiment_names(ws, recipe.data_version)
    target = Target(ws=ws, url=url, s=s, t=t, recipe=recipe, names=names, where=where, via=via)
    # One promotion of a trial at a time: a second one started meanwhile waits, then finds the first's run.
    with promotion_lock(url, s.study_name, t.number, lambda: say(f"{where}: waiting for another `hpo promote` of it to finish")):
        return _promote_locked(c, target, opts, Say(say, warn))


def _promote_locked(c: Client, target: Target, opts: PromoteOptions, io: Say) -> PromoteResult:
    """:func:`promote` once the trial's promotion lock is held: find its promoted run, or re-train and log it."""
    previous = _previous(c, target, opts, io)
    if previous is not None:
        return previous
    evidence = _retrain(c, target, opts, io)
    run = _log(c, target, evidence)
    if evidence.degenerate is not None:
        io.warn(f"{target.where} is a degenerate model, promoted as asked ({option('allow_degenerate')}): {evidence.degenerate}")
    result = _result(target, run, opts.tolerance, evidence.check)
    if result.model_check:
        mc = result.model_check
        io.say(
            f"  model     the logged pyfunc on {mc['rows']} raw {mc['split']} rows: "
            f"max |difference| {mc['max_abs_diff']:.3g} from hpo's own predictions"
        )
    _extras(c, target.ws, result, run, opts, io.say)
    return result


def _previous(c: Client, target: Target, opts: PromoteOptions, io: Say) -> PromoteResult | None:
    """The result of the trial's earlier promotion (its extras done again), or None: promote it now."""
    s, t, where = target.s, target.t, target.where
    previous = None if opts.again else find_promoted(c, target.names["data"], s.study_name, t.number)
    if previous is None:
        return None
    result = _result(target, previous, opts.tolerance, check=None)
    io.say(
        f"{where} was promoted before, as run {previous.info.run_id}; nothing re-trained "
        f"({option('again')} promotes it once more)"
    )
    if result.degenerate:
        io.warn(f"{where} is a degenerate model (tag {TAG_DEGENERATE}): {result.degenerate}")
    _extras(c, target.ws, result, previous, opts, io.say)
    return result


def _retrain(c: Client, target: Target, opts: PromoteOptions, io: Say) -> Evidence:
    """Check the source, code and data, re-train, and prove the trial's value reproduces; nothing is written."""
    ws, s, t, recipe, where, say = target.ws, target.s, target.t, target.recipe, target.where, io.say
    src = _check_source(ws, opts.allow_dirty)
    _check_model_code(ws, recipe.model, where)
    say(f"Promoting {where}: {recipe.metric} {t.value:.6g}, seed {recipe.seed}, data {recipe.data_version}")
    flag = option("allow_dirty")
    state = f"dirty tree, {flag}" if src.dirty else f"outside git, {flag}" if src.dirty is None else "clean"
    say(f"  source    {src.src_version} (commit {src.commit[:12]}, {state})")
    differs = source_differs(StudyRecord.from_study(s), src)
    if differs is not None:
        say(f"  source    note: {differs}")
    data = recipe.load_data(ws, where)
    check_promotion(target.url, recipe.data_version, data.digests, where, recorded_digests(c, ws, recipe.data_version), data)
    say(f"  data      {recipe.data_version}: train/validation/test digests match the study and the data ledger")
    fit = recipe.train(data)
    check = Check(f"{VAL}{recipe.metric}", float(t.value), float(fit.objective), opts.tolerance)  # type: ignore[arg-type]
    scored_on = "validation" if recipe.cv is None else f"{len(fit.fold_values or ())}-fold mean"
    if not check.ok:
        raise ReproductionError(
            f"{where} did not reproduce: re-trained {scored_on} {recipe.metric} is {check.reproduced:.10g}, but the trial "
            f"recorded {check.recorded:.10g} (|difference| {check.diff:.3g} > tolerance {opts.tolerance:g}); nothing was "
            "logged. The trial's record does not match what its configuration produces (edited storage, other library "
            "versions?)"
        )
    say(
        f"  re-train  {scored_on} {recipe.metric} {check.reproduced:.6g} (trial {check.recorded:.6g}, "
        f"|difference| {check.diff:.3g} <= tolerance {opts.tolerance:g})"
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
    bad = check_degenerate(fit, recipe, data, test, where, opts.allow_degenerate, io.warn)
    return Evidence(src=src, differs=differs, data=data, fit=fit, check=check, test=test, degenerate=bad)


def _log(c: Client, target: Target, evidence: Evidence) -> Run:
    """Log the promoted run (its model packed first), and link the trial's HPO run to it."""
    with packed(
        evidence.fit.model, target.recipe.model, evidence.data
    ) as pack:  # a model that cannot be logged is refused before any write
        hpo = HpoLink(*trial_run(c, target.ws, target.s, target.t))
        run = _log_promoted(c, target, evidence, pack, hpo)
    if hpo.run_id is not None:
        link_promoted(c, hpo.run_id, run.info.run_id)
    return run


def _result(target: Target, run: Run, tolerance: float, check: Check | None) -> PromoteResult:
    s, t = target.s, target.t
    tags = normalized(run.data.tags)
    return PromoteResult(
        study=s.study_name,
        trial=t.number,
        value=float(t.value),  # type: ignore[arg-type]
        run_id=run.info.run_id,
        experiment=target.names["data"],
        experiment_id=run.info.experiment_id,
        existing=check is None,
        tolerance=tolerance,
        check=check,
        via=target.via,
        hpo_run_id=tags.get(TAG_HPO_RUN),
        model_uri=tags.get(TAG_MODEL_URI),
        native_model_uri=tags.get(TAG_NATIVE_MODEL_URI),
        model_flavor=tags.get(TAG_MODEL_FLAVOR),
        model_check=json.loads(tags[TAG_MODEL_CHECK]) if TAG_MODEL_CHECK in tags else None,
        test_metrics=_prefixed(run.data.metrics, TEST),
        # Output fields keep the names the tags had before they were namespaced.
        source={
            "src_version": tags.get(TAG_SRC_VERSION),
            "git_commit": tags.get(TAG_GIT_COMMIT),
            "git_dirty": tags.get(TAG_GIT_DIRTY),
            TAG_SOURCE_DIFFERS: tags.get(TAG_SOURCE_DIFFERS),
        },
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
        raise HpoError(f"{option('trial')} must be a trial number or `best`, but got {ref!r}") from None
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


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}


def _extras(c: Client, ws: Workspace, result: PromoteResult, run: Run, opts: PromoteOptions, say: Callable[[str], None]) -> None:
    """The Model Registry and the leaderboard, as asked: also for a trial promoted before."""
    if opts.register is not None:
        result.registered = register_model(c, run, opts.register, opts.alias)
        r = result.registered
        say(f"  registry  {r['name']} version {r['version']} @{r['alias']}" + (" (registered before)" if r["existing"] else ""))
    if opts.leaderboard:
        result.leaderboard = post_leaderboard(c, ws, run)
        say(f"  leaderboard {result.leaderboard['message']}")
