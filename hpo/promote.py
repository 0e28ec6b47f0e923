"""Promotion: re-train a trial, prove that it reproduces, and record it in the data-version space.

A promoted run is the only kind of run the data-version space holds. It carries everything a
re-training needs (the :class:`Recipe`: model, metric, data section, split digests, parameters
and seed) in its tags and params, so :func:`reproduce` can re-train it from the run alone.

Nothing is written to MLflow until the re-trained model has matched the trial's recorded
validation value: a trial that does not reproduce leaves no trace.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.errors import DataError, HpoError, StudyError
from hpo.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from hpo.data import DataVersion
    from hpo.logged_model import PredictionCheck
    from hpo.provenance import SourceVersion
    from hpo.space import DataConfig
    from hpo.trainer import FitResult

# CatBoost with a fixed seed is deterministic (also across thread counts); the tolerance only
# absorbs floating-point noise between machines.
DEFAULT_TOLERANCE = 1e-6
DEFAULT_ALIAS = "champion"

ROLE_PROMOTED = "promoted"
ROLE_LEADERBOARD = "leaderboard"
# Tags of a promoted run (beside tracking.provenance_tags and the hpo.study / hpo.trial_number links).
TAG_DATA = "hpo.data"
TAG_MODEL = "hpo.model"
TAG_METRIC = "hpo.metric"
TAG_TASK = "hpo.task"
TAG_SEED = "seed"
TAG_STRING_PARAMS = "hpo.string_params"
TAG_HPO_RUN = "hpo.hpo_run_id"
TAG_HPO_EXPERIMENT = "hpo.hpo_experiment_id"
TAG_MODEL_URI = "hpo.model_uri"  # the pyfunc on raw rows
TAG_NATIVE_MODEL_URI = "hpo.native_model_uri"  # the CatBoost model on hpo's encoded features
TAG_CLASSES = "hpo.classes"  # the study's class order, as JSON
TAG_MODEL_CHECK = "hpo.model_check"  # the logged model's predictions on raw test rows against hpo's, as JSON
TAG_ALLOW_DIRTY = "hpo.allow_dirty"
# Tag set on the HPO space's child run of the promoted trial.
TAG_PROMOTED_RUN = "hpo.promoted_run_id"


class ReproductionError(HpoError):
    """A re-training did not give the recorded value: the record is not what produced it."""

    exit_code = 1


# --- what a re-training needs -----------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained model, and nothing else."""

    model: str
    metric: str
    task: str
    data: DataConfig
    data_version: str
    digests: dict[str, str]
    params: dict[str, Any]
    seed: int

    @classmethod
    def from_trial(cls, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> Recipe:
        from hpo.space import parse_space

        attrs = study.user_attrs
        if not attrs.get("space_yaml") or not attrs.get("data_digests"):
            raise StudyError(
                f"study {study.study_name!r} was not created by hpo: it records no space or data digests to re-train from"
            )
        space = parse_space(attrs["space_yaml"], f"study {study.study_name!r} (recorded space)")
        seed = trial.user_attrs.get("seed")
        if seed is None:
            raise StudyError(
                f"trial #{trial.number} of study {study.study_name!r} records no `seed` attribute; it cannot be re-run exactly"
            )
        return cls(
            model=space.model,
            metric=space.metric,
            task=str(attrs.get("task") or space.task),
            data=space.data,
            data_version=space.data.version,
            digests=dict(attrs["data_digests"]),
            params={**space.fixed, **trial.params},
            seed=int(seed),
        )

    @classmethod
    def from_run(cls, run: Run) -> Recipe:
        """Read a promoted run's recipe from its tags and params alone."""
        from pydantic import ValidationError

        from hpo.space import DataConfig

        tags, rid = run.data.tags, run.info.run_id
        missing = [t for t in (TAG_DATA, TAG_MODEL, TAG_METRIC, TAG_TASK, TAG_SEED, "data_version") if t not in tags]
        if missing:
            raise HpoError(f"run {rid}: tag `{missing[0]}` is missing; only runs made by `hpo promote` can be reproduced")
        try:
            data = DataConfig.model_validate(json.loads(tags[TAG_DATA]))
        except (ValueError, ValidationError) as e:
            raise HpoError(f"run {rid}: tag `{TAG_DATA}` is not a valid data section: {str(e).splitlines()[0]}") from None
        strings = set(json.loads(tags.get(TAG_STRING_PARAMS) or "[]"))
        params = {k: (v if k in strings else decode_param(v)) for k, v in run.data.params.items()}
        return cls(
            model=tags[TAG_MODEL],
            metric=tags[TAG_METRIC],
            task=tags[TAG_TASK],
            data=data,
            data_version=tags["data_version"],
            digests={k.removeprefix("digest."): v for k, v in tags.items() if k.startswith("digest.")},
            params=params,
            seed=int(tags[TAG_SEED]),
        )

    def tags(self) -> dict[str, str]:
        return {
            TAG_DATA: json.dumps(self.data.model_dump(mode="json"), sort_keys=True),
            TAG_MODEL: self.model,
            TAG_METRIC: self.metric,
            TAG_TASK: self.task,
            TAG_SEED: str(self.seed),
            TAG_STRING_PARAMS: json.dumps(sorted(k for k, v in self.params.items() if isinstance(v, str))),
        }

    def load_data(self, ws: Workspace, what: str) -> DataVersion:
        """Load the data and check it is the data the recipe was made on (split digests)."""
        from hpo.data import load_data

        data = load_data(self.data, task=self.task, base=ws.root, where=what)  # type: ignore[arg-type]
        changed = [s for s, d in data.digests.items() if self.digests.get(s) != d]
        if changed:
            first = changed[0]
            raise DataError(
                f"{what}: the data changed since it was recorded: the {', '.join(changed)} split digest differs "
                f"(recorded {self.digests.get(first, '?')[:12]}, now {data.digests[first][:12]} for {first}); "
                f"re-training on other data proves nothing. Restore {self.data_version} or run a new study on a new data version"
            )
        return data

    def train(self, data: DataVersion) -> FitResult:
        from hpo.trainer import train

        return train(model=self.model, metric=self.metric, data=data, params=self.params, seed=self.seed)


def encode_param(value: Any) -> str:
    """An MLflow param value that :func:`decode_param` turns back into ``value``."""
    return value if isinstance(value, str) else json.dumps(value)


def decode_param(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- hpo promote ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A re-trained metric against its record."""

    name: str
    recorded: float
    reproduced: float
    tolerance: float

    @property
    def diff(self) -> float:
        return abs(self.reproduced - self.recorded)

    @property
    def ok(self) -> bool:
        if math.isnan(self.recorded) and math.isnan(self.reproduced):
            return True
        return self.diff <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.name,
            "recorded": self.recorded,
            "reproduced": self.reproduced,
            "abs_diff": self.diff,
            "ok": self.ok,
        }


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
    model_check: dict[str, Any] | None = None  # the logged model's predictions on raw test rows
    test_metrics: dict[str, float] = field(default_factory=dict)
    registered: dict[str, Any] | None = None
    leaderboard: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)

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
    workspace: Workspace | None = None,
    say: Callable[[str], None] = lambda _: None,
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
        say: receives one line per step, for a terminal.

    Raises:
        HpoError: the trial is not COMPLETE, the tree is dirty, the data changed, or (as
            :class:`ReproductionError`) the re-trained value differs from the record.
    """
    _check_options(tolerance, register, alias)
    ws = workspace or load_workspace()
    url = ws.storage_url(storage)
    s, t = _resolve_trial(url, study, trial)
    via = None
    if "inherited_from" in t.user_attrs:
        # A warm-start copy: the trial that ran (and its HPO run) belongs to the parent study.
        asked = f"trial #{t.number} of study {s.study_name}"
        via = f"{s.study_name}#{t.number}"
        s, t = _origin(s, t.user_attrs["inherited_from"], url)
        say(f"{asked} was inherited from trial #{t.number} of study {s.study_name}; promoting that one")
    where = f"trial #{t.number} of study {s.study_name!r}"
    recipe = Recipe.from_trial(s, t)

    from hpo.tracking import experiment_names

    c = _client()
    names = experiment_names(ws, recipe.data_version)
    previous = None if again else find_promoted(c, names["data"], s.study_name, t.number)
    if previous is not None:
        result = _result(s, t, previous, names["data"], tolerance, via, check=None)
        say(f"{where} was promoted before, as run {previous.info.run_id}; nothing re-trained (--again promotes it once more)")
        _extras(c, ws, result, previous, register, alias, leaderboard, say)
        return result

    src = _check_source(ws, allow_dirty)
    say(f"Promoting {where}: {recipe.metric} {t.value:.6g}, seed {recipe.seed}, data {recipe.data_version}")
    state = "dirty tree, --allow-dirty" if src.dirty else "outside git, --allow-dirty" if src.dirty is None else "clean"
    say(f"  source    {src.src_version} (commit {src.commit[:12]}, {state})")
    data = recipe.load_data(ws, where)
    say(f"  data      {recipe.data_version}: train/validation/test digests match the study")
    fit = recipe.train(data)
    check = Check(f"val_{recipe.metric}", float(t.value), float(fit.objective), tolerance)  # type: ignore[arg-type]
    if not check.ok:
        raise ReproductionError(
            f"{where} did not reproduce: re-trained validation {recipe.metric} is {check.reproduced:.10g}, but the trial "
            f"recorded {check.recorded:.10g} (|difference| {check.diff:.3g} > tolerance {tolerance:g}); nothing was logged. "
            "The trial's record does not match what its configuration produces (edited storage, other library versions?)"
        )
    say(
        f"  re-train  validation {recipe.metric} {check.reproduced:.6g} (trial {check.recorded:.6g}, "
        f"|difference| {check.diff:.3g} <= tolerance {tolerance:g})"
    )

    from hpo.trainer import evaluate

    test = evaluate(fit.model, data.test, data)
    scored = {**{f"val_{k}": v for k, v in fit.metrics.items()}, **{f"test_{k}": v for k, v in test.items()}}
    undefined = [k for k, v in scored.items() if not math.isfinite(v)]
    if undefined:
        say(f"  note      {', '.join(undefined)} undefined (NaN, e.g. constant predictions); logged as NaN")
    hpo_exp, hpo_run = _hpo_run(c, ws, s, t)
    run = _log_promoted(c, ws, s, t, recipe, data, fit, test, check, src, allow_dirty, names, hpo_exp, hpo_run, via)
    if hpo_run is not None:
        c.set_tag(hpo_run, TAG_PROMOTED_RUN, run.info.run_id)
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
        model_check=json.loads(tags[TAG_MODEL_CHECK]) if TAG_MODEL_CHECK in tags else None,
        test_metrics=_prefixed(run.data.metrics, "test_"),
        source={k: tags.get(k) for k in ("src_version", "git_commit", "git_dirty")},
    )


def _client() -> MlflowClient:
    from hpo.tracking import client, is_reachable, tracking_uri

    c = client()
    why = is_reachable(c)
    if why is not None:
        raise HpoError(f"MLflow at {tracking_uri()} is unreachable ({why}); set MLFLOW_TRACKING_URI to a reachable store")
    return c


def _check_options(tolerance: float, register: str | None, alias: str) -> None:
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise HpoError(f"--tolerance must be a finite number >= 0, but got {tolerance}")
    if register is None:
        return
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_alias_name, _validate_model_alias_name_reserved, _validate_model_name

    checks = (
        ("--register", register, (_validate_model_name,)),
        ("--alias", alias, (_validate_model_alias_name, _validate_model_alias_name_reserved)),
    )
    for option, value, rules in checks:
        try:
            for rule in rules:
                rule(value)
        except MlflowException as e:
            raise HpoError(f"{option} {value!r}: {e.message}") from None


def _resolve_trial(url: str, study: str | None, ref: str) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    from hpo.studies import load_named_or_newest, trial_counts

    s = load_named_or_newest(url, study)
    name = s.study_name
    if ref == "best":
        if not trial_counts(s).get("COMPLETE"):
            raise StudyError(f"study {name!r} has no COMPLETE trial to promote")
        return s, s.best_trial
    try:
        number = int(ref)
    except ValueError:
        raise HpoError(f"TRIAL must be a trial number or `best`, but got {ref!r}") from None
    try:
        t = s._storage.get_trial(s._storage.get_trial_id_from_study_id_trial_number(s._study_id, number))
    except KeyError:
        n = sum(trial_counts(s).values())
        raise StudyError(f"study {name!r} has no trial #{number} (trials #0-#{n - 1})") from None
    if t.state.name != "COMPLETE":
        why = f": {t.user_attrs['error']}" if t.user_attrs.get("error") else ""
        raise StudyError(
            f"trial #{number} of study {name!r} is {t.state.name}{why}; only COMPLETE trials can be promoted "
            f"(`hpo promote best --study {name}` takes the best one)"
        )
    return s, t


def _origin(s: optuna.Study, origin: dict[str, Any], url: str) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    from hpo.studies import load_study

    parent_url = (s.user_attrs.get("derived_from") or {}).get("storage") or url
    try:
        parent = load_study(parent_url, origin["study"])
    except StudyError as e:
        raise StudyError(f"study {s.study_name!r}: its trial comes from study {origin['study']!r}, which is gone: {e}") from None
    return _resolve_trial(parent_url, parent.study_name, str(origin["trial"]))


def _check_source(ws: Workspace, allow_dirty: bool) -> SourceVersion:
    from hpo.provenance import source_version

    src = source_version(ws.root)
    if allow_dirty:
        return src
    if src.dirty is None:
        raise HpoError(
            f"{ws.root} is not inside a git repository, so the promoted run's src_version would be unknown; "
            "commit the code to git (and tag it), or pass --allow-dirty to promote anyway (the run is then tagged so)"
        )
    if src.dirty:
        raise HpoError(
            f"{ws.root}: the git tree has uncommitted changes to tracked files (see `git status`), so src_version "
            f"{src.src_version} does not name the code; commit (and tag) them, or pass --allow-dirty (the run is then tagged so)"
        )
    return src


def find_promoted(c: MlflowClient, experiment: str, study: str, trial: int) -> Run | None:
    """The active promoted run of ``study``'s trial ``trial`` in the data-version space, if any."""
    from hpo.tracking import TAG_ROLE, TAG_STUDY, TAG_TRIAL

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
    from hpo.tracking import StudyProjection, sync_study

    projection = StudyProjection.open(ws, s, c)
    runs = projection.trial_runs()
    if t.number not in runs:
        sync_study(ws, s, c)  # MLflow was unreachable during the run: rebuild the projection from the truth
        runs = projection.trial_runs()
    run = runs.get(t.number)
    return projection.experiment_id, None if run is None else run[0]


def _log_promoted(
    c: MlflowClient,
    ws: Workspace,
    s: optuna.Study,
    t: optuna.trial.FrozenTrial,
    recipe: Recipe,
    data: DataVersion,
    fit: FitResult,
    test: dict[str, float],
    check: Check,
    src: SourceVersion,
    allow_dirty: bool,
    names: dict[str, str],
    hpo_experiment: str | None,
    hpo_run: str | None,
    via: str | None,
) -> Run:
    """One run in the data-version space; a failure half-way deletes it again."""
    import mlflow

    from hpo.tracking import NOTE, TAG_ROLE, TAG_STUDY, TAG_TRIAL, describe_data_experiment, provenance_tags

    exp_id = describe_data_experiment(c, ws, data.overview(), src.src_version)
    attrs = {**s.user_attrs, "src_version": src.src_version, "commit": src.commit, "dirty": src.dirty}
    tags = {
        **provenance_tags(attrs),
        **recipe.tags(),
        TAG_ROLE: ROLE_PROMOTED,
        TAG_STUDY: s.study_name,
        TAG_TRIAL: str(t.number),
        "hpo.trial_value": repr(float(t.value)),  # type: ignore[arg-type]
        "hpo.tolerance": repr(check.tolerance),
        "hpo.study_src_version": str(s.user_attrs.get("src_version", "unknown")),
    }
    if hpo_run is not None:
        tags[TAG_HPO_RUN] = hpo_run
        tags[TAG_HPO_EXPERIMENT] = str(hpo_experiment)
    if via is not None:
        tags["hpo.requested_as"] = via
    if allow_dirty and src.dirty is not False:
        tags[TAG_ALLOW_DIRTY] = "true"
    description = (
        f"Trial #{t.number} of hpo study `{s.study_name}` (HPO experiment `{names['hpo']}`"
        + (f", run `{hpo_run}`" if hpo_run else "")
        + f"), promoted from source `{src.src_version}`"
        + (" (dirty tree, --allow-dirty)" if src.dirty else " (unknown, --allow-dirty)" if src.dirty is None else "")
        + f". Re-trained with seed {recipe.seed} on data {recipe.data_version}: validation {recipe.metric} "
        f"{check.reproduced:.6g} reproduces the trial's {check.recorded:.6g} within {check.tolerance:g}; "
        f"test {recipe.metric} {test[recipe.metric]:.6g}."
        + (f" Requested as trial {via}, which was inherited from it." if via else "")
    )
    tags[NOTE] = description
    run = c.create_run(exp_id, run_name=f"{s.study_name}-{t.number}", tags=tags)
    run_id = run.info.run_id
    try:
        from mlflow.entities import Metric, Param, RunTag

        from hpo.logged_model import check_predictions, log_models

        now = run.info.start_time
        # An undefined metric is logged as NaN, not left out: every metric of the task is on the run.
        metrics = [Metric(f"val_{k}", float(v), now, 0) for k, v in fit.metrics.items()]
        metrics += [Metric(f"test_{k}", float(v), now, 0) for k, v in test.items()]
        metrics.append(Metric("fit_seconds", round(fit.fit_seconds, 4), now, 0))
        if fit.best_iteration is not None:
            metrics.append(Metric("best_iteration", float(fit.best_iteration), now, 0))
        params = [Param(k, encode_param(v)) for k, v in recipe.params.items()]
        c.log_batch(run_id, metrics=metrics, params=params)
        with mlflow.start_run(run_id=run_id):
            _log_datasets(ws, recipe, data)
            models = log_models(fit.model, data)
        served = check_predictions(models.model_uri, fit.model, data.test, "test", data)
        if not served.max_abs_diff <= check.tolerance:
            raise ReproductionError(
                f"the logged model's predictions on the {served.rows} raw test rows differ from hpo's own by up to "
                f"{served.max_abs_diff:.3g} (> tolerance {check.tolerance:g}); nothing was logged. This is a bug in hpo's "
                "feature encoding: please report it with the table's column types"
            )
        model_tags = {
            TAG_MODEL_URI: models.model_uri,
            TAG_NATIVE_MODEL_URI: models.native_uri,
            TAG_MODEL_CHECK: json.dumps(served.as_dict()),
        }
        if data.task == "classification":
            model_tags[TAG_CLASSES] = json.dumps(data.classes)
        c.log_batch(run_id, tags=[RunTag(k, v) for k, v in model_tags.items()])
        c.set_terminated(run_id, "FINISHED")
    except BaseException:
        c.delete_run(run_id)  # no half-written promotion
        raise
    return c.get_run(run_id)


def _log_datasets(ws: Workspace, recipe: Recipe, data: DataVersion) -> None:
    import warnings

    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource

    from hpo.space import SplitFiles

    for split, context in (("train", "training"), ("validation", "validation"), ("test", "test")):
        part = getattr(data, split)
        frame = part.X.assign(**{data.target: part.y.to_numpy()})
        src = recipe.data.source
        path = getattr(src, split) if isinstance(src, SplitFiles) else src
        if path.startswith("sklearn:"):
            source: Any = CodeDatasetSource({"source": path, "split": split, "data_version": recipe.data_version})
        else:
            source = str((ws.root / path).resolve())
        name = f"{recipe.data_version}-{split}"
        # MLflow keeps 36 characters of a digest; the whole SHA-256 is the input's `hpo.digest` tag.
        # MLflow says on every path that two identical local-file source types match it, and hints
        # about integer columns; record=True keeps that off the terminal (MLflow re-enables its warnings).
        with warnings.catch_warnings(record=True):
            ds = mlflow.data.from_pandas(frame, source=source, targets=data.target, name=name, digest=part.digest[:36])
            mlflow.log_input(ds, context=context, tags={"hpo.digest": part.digest, "hpo.split": split})


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}


# --- registry and leaderboard ------------------------------------------------------------------


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


def register_model(c: MlflowClient, run: Run, name: str, alias: str) -> dict[str, Any]:
    """Register the promoted run's model as ``name`` (once per run) and point ``alias`` at it."""
    import contextlib
    import io

    import mlflow

    from hpo.tracking import TAG_STUDY, TAG_TRIAL

    run_id, tags = run.info.run_id, run.data.tags
    uri = tags.get(TAG_MODEL_URI)
    if uri is None:
        raise HpoError(f"run {run_id} has no `{TAG_MODEL_URI}` tag; it was not made by `hpo promote`")
    existing = None
    try:
        existing = next(iter(c.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")), None)
    except Exception:
        existing = None  # the registered model does not exist yet
    if existing is None:
        keep = (TAG_STUDY, TAG_TRIAL, "data_version", "src_version", "digest.test", TAG_METRIC)
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Successfully registered..." there
            mv = mlflow.register_model(uri, name, tags={k: tags[k] for k in keep if k in tags})
        c.update_model_version(name, mv.version, description=tags.get("mlflow.note.content", ""))
        version = mv.version
    else:
        version = existing.version
    c.set_registered_model_alias(name, alias, version)
    return {"name": name, "version": int(version), "alias": alias, "existing": existing is not None}


def post_leaderboard(c: MlflowClient, ws: Workspace, run: Run) -> dict[str, Any]:
    """Keep one leaderboard run per data version and metric, pointing at the best promoted run.

    "Best" is by the validation metric the study optimised (the test split is for reporting,
    not for choosing). The run's metric history counts the times the lead changed hands.
    """
    from hpo.metrics import METRICS
    from hpo.tracking import NOTE, TAG_ROLE, TAG_STUDY, TAG_TRIAL, ensure_experiment, experiment_names

    tags, metrics = run.data.tags, run.data.metrics
    version, metric = tags["data_version"], tags[TAG_METRIC]
    value = metrics[f"val_{metric}"]
    exp_id = ensure_experiment(c, experiment_names(ws, version)["leaderboard"])
    found = c.search_runs(
        [exp_id],
        filter_string=(
            f"tags.`{TAG_ROLE}` = '{ROLE_LEADERBOARD}' and tags.data_version = '{version}' and tags.`{TAG_METRIC}` = '{metric}'"
        ),
        max_results=1,
    )
    leader = found[0] if found else None
    if leader is not None:
        current = leader.data.metrics.get(f"val_{metric}")
        same = leader.data.tags.get(TAG_PROMOTED_RUN) == run.info.run_id
        better = current is None or (value > current if METRICS[metric].higher_is_better else value < current)
        if same or not better:
            held = "holds" if same else f"keeps run {leader.data.tags.get(TAG_PROMOTED_RUN)} (validation {metric} {current:.6g})"
            return {"run_id": leader.info.run_id, "updated": False, "message": f"{version}: the leaderboard {held}"}
        step = len(c.get_metric_history(leader.info.run_id, f"val_{metric}"))
        lb_id = leader.info.run_id
    else:
        lb_id = c.create_run(
            exp_id, run_name=f"{version} {metric}", tags={TAG_ROLE: ROLE_LEADERBOARD, "data_version": version, TAG_METRIC: metric}
        ).info.run_id
        step = 0
    from mlflow.entities import Metric, RunTag

    now = run.info.end_time or run.info.start_time
    logged = [Metric(f"val_{metric}", value, now, step)]
    logged += [Metric(k, v, now, step) for k, v in metrics.items() if k.startswith("test_")]
    link = {
        TAG_PROMOTED_RUN: run.info.run_id,
        "hpo.promoted_experiment_id": run.info.experiment_id,
        TAG_STUDY: tags.get(TAG_STUDY, ""),
        TAG_TRIAL: tags.get(TAG_TRIAL, ""),
        **{k: tags[k] for k in ("src_version", "git_commit", "digest.test", TAG_MODEL_URI) if k in tags},
        NOTE: (
            f"Best promoted run of data {version} by validation {metric}: run `{run.info.run_id}` "
            f"(trial #{tags.get(TAG_TRIAL)} of study `{tags.get(TAG_STUDY)}`, source `{tags.get('src_version')}`)."
        ),
    }
    c.log_batch(lb_id, metrics=logged, tags=[RunTag(k, str(v)) for k, v in link.items()])
    c.set_terminated(lb_id, "FINISHED")
    was = "new leader" if leader is not None else "first entry"
    return {"run_id": lb_id, "updated": True, "message": f"{version}: {was}, validation {metric} {value:.6g}"}


# --- hpo reproduce ----------------------------------------------------------------------------


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
    _check_options(tolerance, None, DEFAULT_ALIAS)
    ws = workspace or load_workspace()
    from hpo.provenance import source_version

    c = _client()
    try:
        run = c.get_run(run_id)
    except Exception as e:
        raise HpoError(f"run {run_id}: not found in the tracking store ({str(e).splitlines()[0][:200]})") from None
    recipe = Recipe.from_run(run)
    data = recipe.load_data(ws, f"run {run_id}")
    fit = recipe.train(data)

    from hpo.logged_model import check_predictions
    from hpo.trainer import evaluate

    test = evaluate(fit.model, data.test, data)
    # The model that serves is the logged one: its predictions on raw rows must match the re-training too.
    uri = run.data.tags.get(TAG_MODEL_URI) if TAG_NATIVE_MODEL_URI in run.data.tags else None
    model_check = None if uri is None else check_predictions(uri, fit.model, data.test, "test", data)
    checks = []
    for prefix, values in (("val_", fit.metrics), ("test_", test)):
        for name, value in values.items():
            logged = run.data.metrics.get(f"{prefix}{name}")
            if logged is not None:
                checks.append(Check(f"{prefix}{name}", float(logged), float(value), tolerance))
    if not checks:
        raise HpoError(f"run {run_id}: it logged no val_/test_ metrics to compare with")
    return ReproduceResult(
        run_id, checks, tolerance, run.data.tags.get("src_version"), source_version(ws.root).src_version, model_check
    )
