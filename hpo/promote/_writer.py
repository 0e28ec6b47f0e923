"""The promoted run in the data-version space: params, metrics, datasets, models and tags, all or nothing.

A promotion that fails or is interrupted half-way soft-deletes its run and its logged models (as
``mlflow.delete_run`` does; ``mlflow gc`` removes them for good), so no half-written promotion is
found as promoted and no model is left PENDING.
"""

from __future__ import annotations

import json
import statistics
import sys
import warnings
from typing import TYPE_CHECKING, Any

from hpo.data import DataVersion
from hpo.errors import HpoError
from hpo.models import FitResult
from hpo.promote._checks import Check, PromotionInterrupted, ReproductionError
from hpo.promote._models import PackedModel, check_predictions, discard_models, log_models, other_columns
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
    TAG_INPUT_DIGEST,
    TAG_INPUT_SPLIT,
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
from hpo.workspace import Workspace

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Run


def _log_promoted(
    c: MlflowClient,
    ws: Workspace,
    s: optuna.Study,
    t: optuna.trial.FrozenTrial,
    recipe: Recipe,
    data: DataVersion,
    fit: FitResult,
    pack: PackedModel,
    test: dict[str, float],
    check: Check,
    src: SourceVersion,
    differs: str | None,
    allow_dirty: bool,
    names: dict[str, str],
    hpo_experiment: str | None,
    hpo_run: str | None,
    via: str | None,
    degenerate: str | None = None,
) -> Run:
    """One run in the data-version space; a failure half-way deletes it again."""
    import mlflow

    exp_id = describe_data_experiment(c, ws, data.overview(), src.src_version)
    attrs = {**s.user_attrs, STUDY_SRC_VERSION: src.src_version, STUDY_COMMIT: src.commit, STUDY_DIRTY: src.dirty}
    tags = {
        **provenance_tags(attrs),
        **recipe.tags(),
        TAG_ROLE: ROLE_PROMOTED,
        TAG_STUDY: s.study_name,
        TAG_TRIAL: str(t.number),
        TAG_TRIAL_VALUE: repr(float(t.value)),  # type: ignore[arg-type]
        TAG_TOLERANCE: repr(check.tolerance),
        TAG_STUDY_SRC_VERSION: str(s.user_attrs.get(STUDY_SRC_VERSION, "unknown")),
        TAG_STUDY_COMMIT: str(s.user_attrs.get(STUDY_COMMIT, "unknown")),
    }
    if differs is not None:
        tags[TAG_SOURCE_DIFFERS] = differs
    if hpo_run is not None:
        tags[TAG_HPO_RUN] = hpo_run
        tags[TAG_HPO_EXPERIMENT] = str(hpo_experiment)
    if via is not None:
        tags[TAG_REQUESTED_AS] = via
    if allow_dirty and src.dirty is not False:
        tags[TAG_ALLOW_DIRTY] = "true"
    if degenerate is not None:
        tags[TAG_DEGENERATE] = degenerate
    scored_on = "validation" if recipe.cv is None else f"{recipe.cv.folds}-fold cross-validated (mean)"
    description = (
        f"Trial #{t.number} of hpo study `{s.study_name}` (HPO experiment `{names['hpo']}`"
        + (f", run `{hpo_run}`" if hpo_run else "")
        + f"), promoted from source `{src.src_version}`"
        + (" (dirty tree, --allow-dirty)" if src.dirty else " (unknown, --allow-dirty)" if src.dirty is None else "")
        + (f"; note: {differs}" if differs else "")
        + f". Re-trained with seed {recipe.seed} on data {recipe.data_version}: {scored_on} {recipe.metric} "
        f"{check.reproduced:.6g} reproduces the trial's {check.recorded:.6g} within {check.tolerance:g}; "
        + ("" if recipe.cv is None else "the model was then fit on train + validation; ")
        + f"test {recipe.metric} {test[recipe.metric]:.6g}."
        + (f" Requested as trial {via}, which was inherited from it." if via else "")
        + (f" **Degenerate model** (promoted with --allow-degenerate): {degenerate}." if degenerate else "")
    )
    tags[NOTE] = description
    with _DeferredInterrupt() as stop:
        run = c.create_run(exp_id, run_name=f"{s.study_name}-{t.number}", tags=tags)
        run_id = run.info.run_id
        try:
            from mlflow.entities import Metric, Param, RunTag

            now = run.info.start_time
            # An undefined metric is logged as NaN, not left out: every metric of the task is on the run.
            metrics = [Metric(f"{VAL}{k}", float(v), now, 0) for k, v in fit.metrics.items()]
            metrics += [Metric(f"{TEST}{k}", float(v), now, 0) for k, v in test.items()]
            metrics.append(Metric(TRIAL_FIT_SECONDS, round(fit.fit_seconds, 4), now, 0))
            if fit.best_iteration is not None:
                metrics.append(Metric(TRIAL_BEST_ITERATION, float(fit.best_iteration), now, 0))
            if fit.fold_values:  # with cv: val_ metrics are fold means; each fold's value, and their spread
                metrics += [Metric(f"{VAL}{recipe.metric}{BY_FOLD}", float(v), now, k) for k, v in enumerate(fit.fold_values)]
                if len(fit.fold_values) > 1:
                    metrics.append(Metric(f"{VAL}{recipe.metric}{FOLD_SD}", statistics.stdev(fit.fold_values), now, 0))
            params = [Param(k, encode_param(v)) for k, v in recipe.params.items()]
            c.log_batch(run_id, metrics=metrics, params=params)
            stop.check()
            with mlflow.start_run(run_id=run_id):
                _log_datasets(ws, recipe, data)
                stop.check()
                models = log_models(pack, data, other_columns(recipe.data))
            stop.check()
            served = check_predictions(models.model_uri, fit.model, data.test, "test", data)
            if not served.max_abs_diff <= check.tolerance:
                raise ReproductionError(
                    f"the logged model's predictions on the {served.rows} raw test rows differ from hpo's own by up to "
                    f"{served.max_abs_diff:.3g} (> tolerance {check.tolerance:g}); nothing was logged. Either the model "
                    "predicts other values for the same rows once loaded back, or hpo's feature encoding has a bug "
                    "(please report it with the table's column types)"
                )
            model_tags = {
                TAG_MODEL_URI: models.model_uri,
                TAG_MODEL_FLAVOR: models.flavor,
                TAG_MODEL_CHECK: json.dumps(served.as_dict()),
            }
            if models.native_uri is not None:
                model_tags[TAG_NATIVE_MODEL_URI] = models.native_uri
            if data.task == "classification":
                model_tags[TAG_CLASSES] = classes_tag(data.classes)
            stop.check()
            c.log_batch(run_id, tags=[RunTag(k, v) for k, v in model_tags.items()])
            c.set_terminated(run_id, "FINISHED")
        except BaseException as e:
            # The run first: an active run with these tags would count as promoted (find_promoted).
            c.delete_run(run_id)
            discard_models(c, exp_id, run_id)
            if _interrupted(e):
                raise PromotionInterrupted(
                    f"interrupted (Ctrl-C) while logging run {run_id}; the run and its logged models were deleted, "
                    "nothing was promoted"
                ) from None
            if isinstance(e, (HpoError, SystemExit)) or not isinstance(e, Exception):
                raise
            # The tracking store failed mid-way (an artifact folder it cannot write, a server gone).
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            raise HpoError(
                f"MLflow could not log the promoted run {run_id} ({reason}); the run and its logged models were deleted, "
                "nothing was promoted"
            ) from None
        return c.get_run(run_id)


class _DeferredInterrupt:
    """Holds a first Ctrl-C until the MLflow write under way has ended; a second one stops at once.

    A KeyboardInterrupt raised inside MLflow's SQLAlchemy session can leave a read unfinished that
    keeps SQLite's lock, so the clean-up's writes wait out the busy timeout and fail ("database is
    locked", with MLflow's traceback on stderr) and a logged model may stay PENDING. Between
    writes (``check``) the interrupt is raised where the clean-up can undo everything.
    """

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None

    def __enter__(self) -> _DeferredInterrupt:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True
        print(
            "Ctrl-C: finishing the MLflow write under way, then undoing this promotion (press again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def check(self) -> None:
        if self.pending:
            raise KeyboardInterrupt


def _interrupted(e: BaseException) -> bool:
    """A Ctrl-C, also when MLflow's clean-up after it failed in turn (its session's commit, say)."""
    todo: list[BaseException | None] = [e]
    seen: set[int] = set()
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        todo += [cur.__cause__, cur.__context__]
    return False


def _log_datasets(ws: Workspace, recipe: Recipe, data: DataVersion) -> None:

    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas

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
            ds = from_pandas(frame, source=source, targets=data.target, name=name, digest=part.digest[:36])
            mlflow.log_input(ds, context=context, tags={TAG_INPUT_DIGEST: part.digest, TAG_INPUT_SPLIT: split})


# MLflow keeps at most this many characters of a tag value (mlflow.utils.validation.MAX_TAG_VAL_LENGTH).
MAX_TAG_LENGTH = 8000


def classes_tag(classes: list[Any]) -> str:
    """The class order as JSON, or, when that is longer than a tag holds, where to find it."""
    text = json.dumps(classes)
    if len(text) <= MAX_TAG_LENGTH:
        return text
    return f"{len(classes)} classes, too many for a tag: the order is in the logged model's artifact encoding.json"
