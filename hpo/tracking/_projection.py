"""A study's projection into its HPO space: a parent run per study, a child run per trial, kept live
during a run (and quiet when MLflow is down: the storage is the truth).
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.schema import (
    ARTIFACT_SPACE,
    BEST,
    BY_FOLD,
    BY_ITERATION,
    FOLD_SD,
    NOTE,
    PARAM_METRIC,
    PARAM_SEED,
    PARAM_STUDY,
    PARENT_RUN_ID,
    ROLE_STUDY,
    ROLE_TRIAL,
    STUDY_DATA_VERSION,
    STUDY_METRIC,
    STUDY_MLFLOW_PARENT_RUN,
    STUDY_SPACE_YAML,
    TAG_BEST_TRIAL,
    TAG_BUDGET_SLOT,
    TAG_DERIVED_FROM,
    TAG_DURATION,
    TAG_ERROR,
    TAG_N_FINISHED,
    TAG_ROLE,
    TAG_SEED,
    TAG_STATE,
    TAG_STUDY,
    TAG_TRIAL,
    TRIAL_BEST_ITERATION,
    TRIAL_ERROR,
    TRIAL_FIT_SECONDS,
    TRIAL_FOLD_SD,
    TRIAL_FOLD_VALUES,
    TRIAL_INHERITED_FROM,
    TRIAL_SEED,
    TRIAL_SLOT,
    TRIAL_VALIDATION_METRICS,
    VAL,
    StudyRecord,
)
from hpo.tracking._client import client, ensure_experiment, provenance_tags, tracking_uri
from hpo.tracking._store import store_lock
from hpo.tracking._tags import normalized, searchable, written
from hpo.workspace import Workspace, experiment_names

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient

_RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


@dataclass
class StudyProjection:
    """Writes one study into its HPO space. Create it once per process."""

    client: MlflowClient
    study_name: str
    experiment_id: str
    parent_run_id: str
    base_tags: dict[str, str]
    metric: str
    fixed: dict[str, Any]
    history: str = "sampled"  # the space file's `tracking.history`: all, sampled or none
    maximize: bool = False  # the study's direction, which says where the history's best step is

    @classmethod
    def open(cls, ws: Workspace, study: optuna.Study, c: MlflowClient | None = None) -> StudyProjection:
        """Find or create the study's HPO experiment and parent run (the id is kept on the study)."""
        c = c or client()
        attrs = study.user_attrs
        names = experiment_names(ws, str(attrs.get(STUDY_DATA_VERSION, "unknown")))
        base = provenance_tags(attrs)
        # Workers of one study open it at the same moment: one finds what the other created.
        with store_lock(tracking_uri()):
            exp_id = ensure_experiment(c, names["hpo"])
            parent = attrs.get(STUDY_MLFLOW_PARENT_RUN)
            if parent is None or not _run_exists(c, parent):
                parent = _find_parent(c, exp_id, study.study_name)
            if parent is None:
                parent = _create_parent(c, exp_id, study, base)
        if attrs.get(STUDY_MLFLOW_PARENT_RUN) != parent:
            study.set_user_attr(STUDY_MLFLOW_PARENT_RUN, parent)
        fixed, history = _recorded_space(attrs.get(STUDY_SPACE_YAML))
        maximize = study.directions[0].name == "MAXIMIZE"
        metric = str(attrs.get(STUDY_METRIC, "objective"))
        return cls(c, study.study_name, exp_id, parent, base, metric, fixed, history, maximize)

    def start_trial(self, number: int, started: datetime.datetime | None) -> str:
        """Create the child run (status RUNNING) of trial ``number``, which started at ``started``; returns its id."""
        tags = {
            **self.base_tags,
            PARENT_RUN_ID: self.parent_run_id,
            TAG_STUDY: self.study_name,
            TAG_TRIAL: str(number),
            TAG_STATE: "RUNNING",
            TAG_ROLE: ROLE_TRIAL,
        }
        # A run created later by `hpo sync` starts when its trial did (else it would end before it started).
        run = self.client.create_run(
            self.experiment_id,
            start_time=_ms(started),
            tags=written(tags),
            run_name=f"{self.study_name}-{number}",
        )
        return str(run.info.run_id)

    def finish_trial(self, run_id: str, trial: optuna.trial.FrozenTrial) -> None:
        """Log a finished trial into its run in one batch, and close the run."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        ts = int((trial.datetime_complete or trial.datetime_start).timestamp() * 1000) if trial.datetime_start else now
        metric = self.metric
        metrics: list[Metric] = []
        if trial.value is not None and trial.state.name == "COMPLETE":
            metrics.append(Metric(f"{VAL}{metric}", float(trial.value), ts, 0))
        for name, value in (trial.user_attrs.get(TRIAL_VALIDATION_METRICS) or {}).items():
            if name != metric and value is not None and value == value:
                metrics.append(Metric(f"{VAL}{name}", float(value), ts, 0))
        for key in (TRIAL_FIT_SECONDS, TRIAL_BEST_ITERATION):
            if trial.user_attrs.get(key) is not None:
                metrics.append(Metric(key, float(trial.user_attrs[key]), ts, 0))
        for step, value in enumerate(trial.user_attrs.get(TRIAL_FOLD_VALUES) or []):
            if value is not None and value == value:
                metrics.append(Metric(f"{VAL}{metric}{BY_FOLD}", float(value), ts, step))
        if trial.user_attrs.get(TRIAL_FOLD_SD) is not None:
            metrics.append(Metric(f"{VAL}{metric}{FOLD_SD}", float(trial.user_attrs[TRIAL_FOLD_SD]), ts, 0))
        # The per-iteration validation values (with cv: the running fold mean), as the history of one metric.
        history = trial.intermediate_values
        for step in history_steps(history, self.history, self.maximize):
            metrics.append(Metric(f"{VAL}{metric}{BY_ITERATION}", float(history[step]), ts, int(step)))

        params = {**self.fixed, **trial.params}
        tags = {
            TAG_STATE: trial.state.name,
            TAG_SEED: str(trial.user_attrs.get(TRIAL_SEED, "")),
            TAG_BUDGET_SLOT: str(trial.user_attrs.get(TRIAL_SLOT, "")),
        }
        error = trial.user_attrs.get(TRIAL_ERROR)
        if error is None and trial.state.name == "FAIL":
            error = "its worker stopped sending heartbeats (killed or lost); the trial was requeued in its budget slot"
        if error:
            tags[TAG_ERROR] = str(error)[:5000]
        if trial.datetime_start and trial.datetime_complete:
            tags[TAG_DURATION] = f"{(trial.datetime_complete - trial.datetime_start).total_seconds():.3f}"
        for i in range(0, max(len(metrics), 1), 1000):  # MLflow takes 1,000 metrics per batch
            self.client.log_batch(
                run_id,
                metrics=metrics[i : i + 1000],
                params=[Param(k, _param_str(v)) for k, v in params.items()] if i == 0 else [],
                tags=[RunTag(k, v) for k, v in written(tags).items()] if i == 0 else [],
            )
        end = int(trial.datetime_complete.timestamp() * 1000) if trial.datetime_complete else now
        self.client.set_terminated(run_id, status=_RUN_STATUS.get(trial.state.name, "FAILED"), end_time=end)

    def finish_study(self, study: optuna.Study) -> None:
        """Close the parent run with the study's best value so far, ending when its last trial ended.

        Writes only what differs from the run as it is: a sync that found nothing new leaves the
        run untouched (its end time was once rewritten to "now", and MLflow showed a one-minute
        study as lasting as long as the time to the next sync).
        """
        from mlflow.entities import Metric, RunTag

        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state.name == "COMPLETE"]
        run = self.client.get_run(self.parent_run_id)
        tags = {TAG_N_FINISHED: str(sum(t.state.is_finished() for t in trials))}  # not its WAITING budget slots
        metrics = []
        if complete:
            best = study.best_trial
            tags[TAG_BEST_TRIAL] = str(best.number)
            name = f"{BEST}{VAL}{self.metric}"
            if run.data.metrics.get(name) != float(best.value):  # type: ignore[arg-type]
                metrics.append(Metric(name, float(best.value), _ms(best.datetime_complete) or _now(), len(complete)))  # type: ignore[arg-type]
        changed = [RunTag(k, v) for k, v in written(tags).items() if run.data.tags.get(k) != v]
        if metrics or changed:
            self.client.log_batch(self.parent_run_id, metrics=metrics, tags=changed)
        end = _last_end(trials) or run.info.end_time or run.info.start_time
        end = max(end, run.info.start_time or end)
        if run.info.status != "FINISHED" or run.info.end_time != end:
            self.client.set_terminated(self.parent_run_id, status="FINISHED", end_time=end)

    def trial_runs(self) -> dict[int, tuple[str, str]]:
        """The study's child runs in MLflow: trial number -> (run id, recorded trial state)."""
        out: dict[int, tuple[str, str]] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=(
                    f"tags.`{searchable(TAG_STUDY)}` = '{self.study_name}' and tags.`{searchable(TAG_ROLE)}` = '{ROLE_TRIAL}'"
                ),
                max_results=1000,
                page_token=token,
            )
            for r in page:
                tags = normalized(r.data.tags)
                # Keep the first run of a trial; a duplicate (should never happen) stays visible in MLflow.
                out.setdefault(int(tags[TAG_TRIAL]), (r.info.run_id, tags.get(TAG_STATE, "RUNNING")))
            token = page.token
            if not token:
                return out


def history_steps(values: dict[int, float], history: str, maximize: bool) -> list[int]:
    """The steps of a trial's per-iteration history its run holds, for the space's `tracking.history`.

    ``sampled`` keeps at most ``HISTORY_POINTS`` evenly spaced steps, always the first, the last and
    the best, so MLflow's chart keeps its shape at a fraction of the rows (most of a trial's batch
    was its history). NaN values are never logged.
    """
    from hpo.space._file import HISTORY_POINTS

    steps = sorted(s for s, v in values.items() if v == v)
    if history == "none":
        return []
    if history == "all" or len(steps) <= HISTORY_POINTS:
        return steps
    best = (max if maximize else min)(steps, key=lambda s: values[s])
    even = HISTORY_POINTS - 1  # one place left for the best step
    return sorted({steps[round(i * (len(steps) - 1) / (even - 1))] for i in range(even)} | {best})


def _recorded_space(text: Any) -> tuple[dict[str, Any], str]:
    """The ``fixed`` params and ``tracking.history`` of the space a study recorded (an older study's has no history key)."""
    from hpo.space._file import TrackingConfig

    if not text:
        return {}, TrackingConfig.model_validate({}).history
    import yaml
    from pydantic import ValidationError

    raw = yaml.safe_load(text) or {}
    try:
        history = TrackingConfig.model_validate(raw.get("tracking") or {}).history
    except ValidationError:  # recorded under rules since changed: the default
        history = TrackingConfig.model_validate({}).history
    return dict(raw.get("fixed") or {}), history


def _last_end(trials: list[optuna.trial.FrozenTrial]) -> int | None:
    """When the study's own last finished trial ended (ms since the epoch); inherited trials ended in their parent study."""
    ends = [_ms(t.datetime_complete) for t in trials if t.datetime_complete and TRIAL_INHERITED_FROM not in t.user_attrs]
    return max((e for e in ends if e is not None), default=None)


def _first_start(trials: list[optuna.trial.FrozenTrial]) -> int | None:
    """When the study's own first trial started (ms since the epoch)."""
    starts = [_ms(t.datetime_start) for t in trials if t.datetime_start and TRIAL_INHERITED_FROM not in t.user_attrs]
    return min((s for s in starts if s is not None), default=None)


def _ms(when: datetime.datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _now() -> int:
    return int(time.time() * 1000)


def _param_str(v: Any) -> str:
    return str(v)[:6000]


def _run_exists(c: MlflowClient, run_id: str) -> bool:
    try:
        return c.get_run(run_id).info.lifecycle_stage == "active"
    except Exception:
        return False


def _find_parent(c: MlflowClient, exp_id: str, study: str) -> str | None:
    runs = c.search_runs(
        [exp_id],
        filter_string=f"tags.`{searchable(TAG_STUDY)}` = '{study}' and tags.`{searchable(TAG_ROLE)}` = '{ROLE_STUDY}'",
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def _create_parent(c: MlflowClient, exp_id: str, study: optuna.Study, base: dict[str, str]) -> str:
    record = StudyRecord.from_study(study)
    tags = {**base, TAG_STUDY: study.study_name, TAG_ROLE: ROLE_STUDY}
    if record.parent:
        tags[TAG_DERIVED_FROM] = record.parent
    tags[NOTE] = (
        f"hpo study `{study.study_name}`: metric {record.metric} on data {record.data_version}, "
        f"source {record.src_version}. Child runs are its trials; the Optuna storage is the source of truth."
    )
    # Created by `hpo sync` after the trials ran, it starts with the first of them.
    run = c.create_run(
        exp_id, start_time=_first_start(study.get_trials(deepcopy=False)), tags=written(tags), run_name=study.study_name
    )
    run_id = run.info.run_id
    if record.space_yaml:
        c.log_text(run_id, record.space_yaml, ARTIFACT_SPACE)
    from mlflow.entities import Param

    params = [Param(PARAM_STUDY, study.study_name), Param(PARAM_METRIC, str(record.metric)), Param(PARAM_SEED, str(record.seed))]
    c.log_batch(run_id, params=params)
    return str(run_id)
