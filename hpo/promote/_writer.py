"""The promoted run in the data-version space: what it holds (tags, the note, scores, datasets, models).

The run is written all or nothing by :func:`hpo.tracking._promoted.write_promoted_run`: a promotion
that fails or is interrupted half-way leaves no run and no logged model behind.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.data import DataVersion
from hpo.errors import HpoError
from hpo.models import FitResult
from hpo.promote._checks import Check, PromotionInterrupted, ReproductionError
from hpo.promote._models import PackedModel, check_predictions, other_columns
from hpo.promote._recipe import Recipe, encode_param
from hpo.provenance import SourceVersion
from hpo.schema import (
    BY_FOLD,
    FOLD_SD,
    NOTE,
    ROLE_PROMOTED,
    STUDY_COMMIT,
    STUDY_DIRTY,
    STUDY_SRC_VERSION,
    TAG_ALLOW_DIRTY,
    TAG_CLASSES,
    TAG_DEGENERATE,
    TAG_HPO_EXPERIMENT,
    TAG_HPO_RUN,
    TAG_MODEL_CHECK,
    TAG_MODEL_FLAVOR,
    TAG_MODEL_URI,
    TAG_NATIVE_MODEL_URI,
    TAG_REQUESTED_AS,
    TAG_ROLE,
    TAG_SOURCE_DIFFERS,
    TAG_STUDY,
    TAG_STUDY_COMMIT,
    TAG_STUDY_SRC_VERSION,
    TAG_TOLERANCE,
    TAG_TRIAL,
    TAG_TRIAL_VALUE,
    TEST,
    TRIAL_BEST_ITERATION,
    TRIAL_FIT_SECONDS,
    VAL,
)
from hpo.space import SplitFiles
from hpo.tracking import describe_data_experiment, provenance_tags
from hpo.tracking._promoted import Dataset, PromotedRun, Score, WriteFailed, WriteInterrupted, write_promoted_run
from hpo.workspace import Workspace

if TYPE_CHECKING:
    import optuna

    from hpo.tracking import Client, Run
    from hpo.tracking._models import LoggedModels


@dataclass(frozen=True)
class Target:
    """The trial being promoted, and where its promoted run goes."""

    ws: Workspace
    url: str  # the Optuna storage the trial is in
    s: optuna.Study
    t: optuna.trial.FrozenTrial
    recipe: Recipe
    names: dict[str, str]  # the experiment names of its data version (hpo, data, leaderboard)
    where: str  # "trial #n of study 'x'", for messages
    via: str | None  # "study#n" when the trial asked for was inherited from this one


@dataclass(frozen=True)
class Evidence:
    """What the re-training showed: the code and data it ran on, the model, and the checks it passed."""

    src: SourceVersion
    differs: str | None  # why the code here may not be the study's (see source_differs)
    data: DataVersion
    fit: FitResult
    check: Check  # the re-trained validation metric against the trial's
    test: dict[str, float]
    degenerate: str | None = None  # what is degenerate about the model, when promoted as asked


@dataclass(frozen=True)
class HpoLink:
    """The trial's run in the HPO space (none when the projection has no run of it)."""

    experiment_id: str | None
    run_id: str | None


def promoted_tags(target: Target, evidence: Evidence, hpo: HpoLink) -> dict[str, str]:
    """The promoted run's tags: provenance, the recipe, the trial it promotes, and what was allowed."""
    s, t, src = target.s, target.t, evidence.src
    attrs = {**s.user_attrs, STUDY_SRC_VERSION: src.src_version, STUDY_COMMIT: src.commit, STUDY_DIRTY: src.dirty}
    tags = {
        **provenance_tags(attrs),
        **target.recipe.tags(),
        TAG_ROLE: ROLE_PROMOTED,
        TAG_STUDY: s.study_name,
        TAG_TRIAL: str(t.number),
        TAG_TRIAL_VALUE: repr(float(t.value)),  # type: ignore[arg-type]
        TAG_TOLERANCE: repr(evidence.check.tolerance),
        TAG_STUDY_SRC_VERSION: str(s.user_attrs.get(STUDY_SRC_VERSION, "unknown")),
        TAG_STUDY_COMMIT: str(s.user_attrs.get(STUDY_COMMIT, "unknown")),
    }
    if evidence.differs is not None:
        tags[TAG_SOURCE_DIFFERS] = evidence.differs
    if hpo.run_id is not None:
        tags[TAG_HPO_RUN] = hpo.run_id
        tags[TAG_HPO_EXPERIMENT] = str(hpo.experiment_id)
    if target.via is not None:
        tags[TAG_REQUESTED_AS] = target.via
    # A tree that is dirty or outside git got this far only with allow_dirty (_check_source refuses it otherwise).
    if src.dirty is not False:
        tags[TAG_ALLOW_DIRTY] = "true"
    if evidence.degenerate is not None:
        tags[TAG_DEGENERATE] = evidence.degenerate
    tags[NOTE] = promoted_note(target, evidence, hpo)
    return tags


def promoted_note(target: Target, evidence: Evidence, hpo: HpoLink) -> str:
    """The run's description in MLflow (its note): the trial, the source, the check and the test score.

    It is data, the same whoever promotes: it names the CLI's flags whatever the caller.
    """
    s, t, recipe, src, check = target.s, target.t, target.recipe, evidence.src, evidence.check
    differs, degenerate, via = evidence.differs, evidence.degenerate, target.via
    scored_on = "validation" if recipe.cv is None else f"{recipe.cv.folds}-fold cross-validated (mean)"
    return (
        f"Trial #{t.number} of hpo study `{s.study_name}` (HPO experiment `{target.names['hpo']}`"
        + (f", run `{hpo.run_id}`" if hpo.run_id else "")
        + f"), promoted from source `{src.src_version}`"
        + (" (dirty tree, --allow-dirty)" if src.dirty else " (unknown, --allow-dirty)" if src.dirty is None else "")
        + (f"; note: {differs}" if differs else "")
        + f". Re-trained with seed {recipe.seed} on data {recipe.data_version}: {scored_on} {recipe.metric} "
        f"{check.reproduced:.6g} reproduces the trial's {check.recorded:.6g} within {check.tolerance:g}; "
        + ("" if recipe.cv is None else "the model was then fit on train + validation; ")
        + f"test {recipe.metric} {evidence.test[recipe.metric]:.6g}."
        + (f" Requested as trial {via}, which was inherited from it." if via else "")
        + (f" **Degenerate model** (promoted with --allow-degenerate): {degenerate}." if degenerate else "")
    )


def promoted_scores(recipe: Recipe, fit: FitResult, test: dict[str, float]) -> list[Score]:
    """The run's metrics: validation and test scores, fit time, best iteration, and each fold's value."""
    # An undefined metric is logged as NaN, not left out: every metric of the task is on the run.
    scores = [Score(f"{VAL}{k}", float(v)) for k, v in fit.metrics.items()]
    scores += [Score(f"{TEST}{k}", float(v)) for k, v in test.items()]
    scores.append(Score(TRIAL_FIT_SECONDS, round(fit.fit_seconds, 4)))
    if fit.best_iteration is not None:
        scores.append(Score(TRIAL_BEST_ITERATION, float(fit.best_iteration)))
    if fit.fold_values:  # with cv: val_ metrics are fold means; each fold's value, and their spread
        scores += [Score(f"{VAL}{recipe.metric}{BY_FOLD}", float(v), k) for k, v in enumerate(fit.fold_values)]
        if len(fit.fold_values) > 1:
            scores.append(Score(f"{VAL}{recipe.metric}{FOLD_SD}", statistics.stdev(fit.fold_values)))
    return scores


def _log_promoted(c: Client, target: Target, evidence: Evidence, pack: PackedModel, hpo: HpoLink) -> Run:
    """One run in the data-version space; a failure half-way deletes it again (nothing is promoted)."""
    recipe, data, fit = target.recipe, evidence.data, evidence.fit
    tolerance = evidence.check.tolerance

    def verify(models: LoggedModels) -> dict[str, str]:
        served = check_predictions(models.model_uri, fit.model, data.test, "test", data)
        if not served.max_abs_diff <= tolerance:
            raise ReproductionError(
                f"the logged model's predictions on the {served.rows} raw test rows differ from hpo's own by up to "
                f"{served.max_abs_diff:.3g} (> tolerance {tolerance:g}); nothing was logged. Either the model "
                "predicts other values for the same rows once loaded back, or hpo's feature encoding has a bug "
                "(please report it with the table's column types)"
            )
        tags = {TAG_MODEL_URI: models.model_uri, TAG_MODEL_FLAVOR: models.flavor, TAG_MODEL_CHECK: json.dumps(served.as_dict())}
        if models.native_uri is not None:
            tags[TAG_NATIVE_MODEL_URI] = models.native_uri
        if data.task == "classification":
            tags[TAG_CLASSES] = classes_tag(data.classes)
        return tags

    run = PromotedRun(
        experiment_id=describe_data_experiment(c, target.ws, data.overview(), evidence.src.src_version),
        name=f"{target.s.study_name}-{target.t.number}",
        tags=promoted_tags(target, evidence, hpo),
        scores=promoted_scores(recipe, fit, evidence.test),
        params={k: encode_param(v) for k, v in recipe.params.items()},
        datasets=_datasets(target.ws, recipe, data),
        model=pack,
        data=data,
        others=other_columns(recipe.data),
        verify=verify,
    )
    try:
        return write_promoted_run(c, run)
    except WriteInterrupted as e:
        raise PromotionInterrupted(
            f"interrupted (Ctrl-C) while logging run {e.run_id}; the run and its logged models were deleted, nothing was promoted"
        ) from None
    except WriteFailed as e:
        raise HpoError(
            f"MLflow could not log the promoted run {e.run_id} ({e.reason}); the run and its logged models were deleted, "
            "nothing was promoted"
        ) from None


def _datasets(ws: Workspace, recipe: Recipe, data: DataVersion) -> list[Dataset]:
    """The three splits as the run's dataset inputs: a file's absolute path, or the package dataset's name."""
    out = []
    for split, context in (("train", "training"), ("validation", "validation"), ("test", "test")):
        part = getattr(data, split)
        frame = part.X.assign(**{data.target: part.y.to_numpy()})
        src = recipe.data.source
        path = getattr(src, split) if isinstance(src, SplitFiles) else src
        source: str | dict[str, str]
        if path.startswith("sklearn:"):
            source = {"source": path, "split": split, "data_version": recipe.data_version}
        else:
            source = str((ws.root / path).resolve())
        out.append(Dataset(f"{recipe.data_version}-{split}", split, context, frame, data.target, part.digest, source))
    return out


# MLflow keeps at most this many characters of a tag value (mlflow.utils.validation.MAX_TAG_VAL_LENGTH).
MAX_TAG_LENGTH = 8000


def classes_tag(classes: list[Any]) -> str:
    """The class order as JSON, or, when that is longer than a tag holds, where to find it."""
    text = json.dumps(classes)
    if len(text) <= MAX_TAG_LENGTH:
        return text
    return f"{len(classes)} classes, too many for a tag: the order is in the logged model's artifact encoding.json"
