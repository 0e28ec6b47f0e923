"""MLflow experiment spaces: the projection of Optuna studies for people.

Optuna's storage is the truth; MLflow is rebuilt from it (``hpo sync``). Each study has one
parent run in its HPO space and one child run per finished trial. A child run is created when
its trial starts, so that the RUNNING trial can store the run id (Optuna freezes a trial's
attributes once it finishes); when the trial ends, everything else goes in one ``log_batch``.

Nothing in this module writes to the data-version space except its description.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.workspace import Workspace

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient

DEFAULT_TEMPLATES = {
    "hpo_experiment": "{project}-HPO-{data_version}",
    "data_experiment": "{project}-Data-{data_version}",
    "leaderboard_experiment": "{project}-Leaderboard",
}

# Trial and study attributes that link Optuna to MLflow.
ATTR_RUN_ID = "mlflow_run_id"
ATTR_PARENT_RUN_ID = "mlflow_parent_run_id"
# Run tags that link MLflow back to Optuna (and make `hpo sync` idempotent).
TAG_STUDY = "hpo.study"
TAG_TRIAL = "hpo.trial_number"
TAG_STATE = "hpo.trial_state"
TAG_ROLE = "hpo.role"
NOTE = "mlflow.note.content"

_RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
_PACKAGES = ("optuna", "catboost", "mlflow", "scikit-learn", "numpy", "pandas")


def experiment_names(ws: Workspace, data_version: str) -> dict[str, str]:
    """The three experiment names for ``data_version``, from ``[tool.hpo]`` or the defaults."""
    values = {"project": ws.project, "data_version": data_version}
    out = {}
    for key, default in DEFAULT_TEMPLATES.items():
        template = ws.templates.get(key, default)
        try:
            out[key.removesuffix("_experiment")] = template.format(**values)
        except (KeyError, IndexError) as e:
            from hpo.errors import HpoError

            raise HpoError(
                f"pyproject.toml: `tool.hpo.{key}` may use {{project}} and {{data_version}}, but uses {{{e.args[0]}}}"
            ) from None
    return out


def _quiet_and_quick() -> None:
    # An unreachable tracking server must cost seconds, not MLflow's default minutes of retries:
    # hpo then warns once and leaves the trials for `hpo sync`.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    # Model logging and loading draw download bars on stderr, over hpo's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # With a tracking server MLflow prints "View run ... at" to stdout for every finished run,
    # which would break `--json` output (one object, nothing else).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def client() -> MlflowClient:
    """A client for ``MLFLOW_TRACKING_URI``, else MLflow's own default store in the workspace."""
    _quiet_and_quick()
    import logging

    from mlflow import MlflowClient

    # MLflow announces its own table migrations at INFO; hpo's terminal has no room for them.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    return MlflowClient()


def tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def ensure_experiment(c: MlflowClient, name: str) -> str:
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    try:
        return c.create_experiment(name)
    except Exception:
        # Another worker created it a moment ago.
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def provenance_tags(study_attrs: dict[str, Any]) -> dict[str, str]:
    """Tags every hpo run carries: data version, digests, source version, versions of things."""
    from hpo import __version__

    digests = study_attrs.get("data_digests") or {}
    tags = {
        "data_version": str(study_attrs.get("data_version", "unknown")),
        "src_version": str(study_attrs.get("src_version", "unknown")),
        "git_commit": str(study_attrs.get("commit", "unknown")),
        "git_dirty": "unknown" if study_attrs.get("dirty") is None else str(study_attrs["dirty"]).lower(),
        "hpo_version": __version__,
        **{f"digest.{split}": str(d) for split, d in digests.items()},
        **{f"version.{k}": v for k, v in package_versions().items()},
    }
    if study_attrs.get("commit") not in (None, "unknown"):
        tags["mlflow.source.git.commit"] = str(study_attrs["commit"])
    return tags


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

    @classmethod
    def open(cls, ws: Workspace, study: optuna.Study, c: MlflowClient | None = None) -> StudyProjection:
        """Find or create the study's HPO experiment and parent run (the id is kept on the study)."""
        c = c or client()
        attrs = study.user_attrs
        names = experiment_names(ws, str(attrs.get("data_version", "unknown")))
        exp_id = ensure_experiment(c, names["hpo"])
        base = provenance_tags(attrs)
        parent = attrs.get(ATTR_PARENT_RUN_ID)
        if parent is None or not _run_exists(c, parent):
            parent = _find_parent(c, exp_id, study.study_name)
        if parent is None:
            parent = _create_parent(c, exp_id, study, base)
        if attrs.get(ATTR_PARENT_RUN_ID) != parent:
            study.set_user_attr(ATTR_PARENT_RUN_ID, parent)
        fixed: dict[str, Any] = {}
        if attrs.get("space_yaml"):
            import yaml

            fixed = dict((yaml.safe_load(attrs["space_yaml"]) or {}).get("fixed") or {})
        return cls(c, study.study_name, exp_id, parent, base, str(attrs.get("metric", "objective")), fixed)

    def start_trial(self, trial: optuna.Trial | optuna.trial.FrozenTrial) -> str:
        """Create the trial's child run (status RUNNING); returns its id."""
        tags = {
            **self.base_tags,
            "mlflow.parentRunId": self.parent_run_id,
            TAG_STUDY: self.study_name,
            TAG_TRIAL: str(trial.number),
            TAG_STATE: "RUNNING",
            TAG_ROLE: "trial",
        }
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=f"{self.study_name}-{trial.number}")
        return run.info.run_id

    def finish_trial(self, run_id: str, trial: optuna.trial.FrozenTrial) -> None:
        """Log a finished trial into its run in one batch, and close the run."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        ts = int((trial.datetime_complete or trial.datetime_start).timestamp() * 1000) if trial.datetime_start else now
        metric = self.metric
        metrics: list[Metric] = []
        if trial.value is not None and trial.state.name == "COMPLETE":
            metrics.append(Metric(f"val_{metric}", float(trial.value), ts, 0))
        for name, value in (trial.user_attrs.get("validation_metrics") or {}).items():
            if name != metric and value is not None and value == value:
                metrics.append(Metric(f"val_{name}", float(value), ts, 0))
        for key in ("fit_seconds", "best_iteration"):
            if trial.user_attrs.get(key) is not None:
                metrics.append(Metric(key, float(trial.user_attrs[key]), ts, 0))
        # The per-iteration validation values, as the history of one metric.
        for step, value in sorted(trial.intermediate_values.items()):
            if value == value:
                metrics.append(Metric(f"val_{metric}_by_iteration", float(value), ts, int(step)))

        params = {**self.fixed, **trial.params}
        tags = {
            TAG_STATE: trial.state.name,
            "seed": str(trial.user_attrs.get("seed", "")),
            "budget_slot": str(trial.user_attrs.get("budget_slot", "")),
        }
        error = trial.user_attrs.get("error")
        if error is None and trial.state.name == "FAIL":
            error = "its worker stopped sending heartbeats (killed or lost); the trial was requeued in its budget slot"
        if error:
            tags["error"] = str(error)[:5000]
        if trial.datetime_start and trial.datetime_complete:
            tags["duration_seconds"] = f"{(trial.datetime_complete - trial.datetime_start).total_seconds():.3f}"
        for i in range(0, max(len(metrics), 1), 1000):  # MLflow takes 1,000 metrics per batch
            self.client.log_batch(
                run_id,
                metrics=metrics[i : i + 1000],
                params=[Param(k, _param_str(v)) for k, v in params.items()] if i == 0 else [],
                tags=[RunTag(k, v) for k, v in tags.items()] if i == 0 else [],
            )
        end = int(trial.datetime_complete.timestamp() * 1000) if trial.datetime_complete else now
        self.client.set_terminated(run_id, status=_RUN_STATUS.get(trial.state.name, "FAILED"), end_time=end)

    def finish_study(self, study: optuna.Study) -> None:
        """Close the parent run with the study's best value so far (a resumed study reopens it)."""
        from mlflow.entities import Metric, RunTag

        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        metrics, tags = [], [RunTag("n_finished_trials", str(len(study.get_trials(deepcopy=False))))]
        if complete:
            best = study.best_trial
            metrics.append(Metric(f"best_val_{self.metric}", float(best.value), int(time.time() * 1000), len(complete)))  # type: ignore[arg-type]
            tags.append(RunTag("best_trial", str(best.number)))
        self.client.log_batch(self.parent_run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(self.parent_run_id, status="FINISHED")

    def trial_runs(self) -> dict[int, tuple[str, str]]:
        """The study's child runs in MLflow: trial number -> (run id, recorded trial state)."""
        out: dict[int, tuple[str, str]] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{TAG_STUDY}` = '{self.study_name}' and tags.`{TAG_ROLE}` = 'trial'",
                max_results=1000,
                page_token=token,
            )
            for r in page:
                number = int(r.data.tags[TAG_TRIAL])
                # Keep the first run of a trial; a duplicate (should never happen) stays visible in MLflow.
                out.setdefault(number, (r.info.run_id, r.data.tags.get(TAG_STATE, "RUNNING")))
            token = page.token
            if not token:
                return out


def _param_str(v: Any) -> str:
    return str(v)[:6000]


def _run_exists(c: MlflowClient, run_id: str) -> bool:
    try:
        return c.get_run(run_id).info.lifecycle_stage == "active"
    except Exception:
        return False


def _find_parent(c: MlflowClient, exp_id: str, study: str) -> str | None:
    runs = c.search_runs([exp_id], filter_string=f"tags.`{TAG_STUDY}` = '{study}' and tags.`{TAG_ROLE}` = 'study'", max_results=1)
    return runs[0].info.run_id if runs else None


def _create_parent(c: MlflowClient, exp_id: str, study: optuna.Study, base: dict[str, str]) -> str:
    attrs = study.user_attrs
    tags = {**base, TAG_STUDY: study.study_name, TAG_ROLE: "study"}
    if attrs.get("derived_from"):
        tags["derived_from"] = str(attrs["derived_from"].get("study"))
    tags[NOTE] = (
        f"hpo study `{study.study_name}`: metric {attrs.get('metric')} on data {attrs.get('data_version')}, "
        f"source {attrs.get('src_version')}. Child runs are its trials; the Optuna storage is the source of truth."
    )
    run = c.create_run(exp_id, tags=tags, run_name=study.study_name)
    run_id = run.info.run_id
    if attrs.get("space_yaml"):
        c.log_text(run_id, attrs["space_yaml"], "space.yaml")
    from mlflow.entities import Param

    params = [Param("study", study.study_name), Param("metric", str(attrs.get("metric"))), Param("seed", str(attrs.get("seed")))]
    c.log_batch(run_id, params=params)
    return run_id


# --- the data-version space's description ------------------------------------------------------


def describe_data_experiment(c: MlflowClient, ws: Workspace, overview: dict[str, Any], src_version: str | None = None) -> str:
    """Create the data-version experiment if needed and keep its description up to date.

    The description states rows and columns per split, the target and the digests, and lists
    every src_version that has produced runs there (``src_version`` adds one).
    """
    name = experiment_names(ws, str(overview["version"]))["data"]
    exp_id = ensure_experiment(c, name)
    exp = c.get_experiment(exp_id)
    known = [v for v in (exp.tags.get("hpo.src_versions") or "").split(",") if v]
    if src_version and src_version not in known:
        known.append(src_version)
        c.set_experiment_tag(exp_id, "hpo.src_versions", ",".join(known))
    text = data_description(overview, known)
    if exp.tags.get(NOTE) != text:
        c.set_experiment_tag(exp_id, NOTE, text)
    return exp_id


def data_description(overview: dict[str, Any], src_versions: list[str]) -> str:
    rows = overview["rows"]
    lines = [
        f"# Data version {overview['version']}",
        "",
        f"Source: `{overview['source']}`. Target: `{overview['target']}` ({overview['task']}). "
        f"Features: {overview['features']} columns"
        + (f", categorical: {', '.join(overview['cat_features'])}" if overview.get("cat_features") else "")
        + "."
        + (f" Classes, in the study's order: {', '.join(map(repr, overview['classes']))}." if overview.get("classes") else ""),
        "",
        "| split | rows | columns | digest (sha256) |",
        "|---|---|---|---|",
    ]
    for split in ("train", "validation", "test"):
        lines.append(f"| {split} | {rows[split]} | {overview['features'] + 1} | `{overview['digests'][split]}` |")
    lines += [
        "",
        "Results are comparable only when their test digests are equal.",
        "",
        "Source versions with runs here: " + (", ".join(f"`{v}`" for v in src_versions) if src_versions else "none yet") + ".",
    ]
    return "\n".join(lines)


def is_reachable(c: MlflowClient) -> str | None:
    """``None`` when the tracking store answers, else why not (one line)."""
    try:
        c.search_experiments(max_results=1)
        return None
    except Exception as e:  # any failure means: keep going, log later with `hpo sync`
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


class LiveProjection:
    """Logs trials as they run; on the first MLflow failure it warns once and stops trying.

    Trials are never failed because of MLflow: what was not logged is left for ``hpo sync``.
    """

    def __init__(self, open_projection: Any, warn: Any) -> None:
        self._warn = warn
        self._projection: StudyProjection | None = None
        try:
            self._projection = open_projection()
        except Exception as e:
            self._disable(e)

    @property
    def active(self) -> bool:
        return self._projection is not None

    def start(self, trial: optuna.Trial) -> str | None:
        if self._projection is None:
            return None
        try:
            run_id = self._projection.start_trial(trial)
        except Exception as e:
            self._disable(e)
            return None
        trial.set_user_attr(ATTR_RUN_ID, run_id)
        return run_id

    def finish(self, run_id: str | None, trial: optuna.trial.FrozenTrial) -> None:
        if self._projection is None or run_id is None:
            return
        try:
            self._projection.finish_trial(run_id, trial)
        except Exception as e:
            self._disable(e)

    def close(self, study: optuna.Study) -> None:
        if self._projection is None:
            return
        try:
            self._projection.finish_study(study)
        except Exception as e:
            self._disable(e)

    def _disable(self, e: Exception) -> None:
        self._projection = None
        first = str(e).splitlines()[0][:200] if str(e) else ""
        self._warn(
            f"warning: MLflow at {tracking_uri()} is unreachable ({type(e).__name__}: {first}); "
            "trials go on in Optuna and `hpo sync` will log them later"
        )


@dataclass(frozen=True)
class SyncResult:
    study: str
    experiment_id: str
    created: int
    completed: int
    unchanged: int


def sync_study(ws: Workspace, study: optuna.Study, c: MlflowClient | None = None) -> SyncResult:
    """Rebuild the study's projection: every finished trial gets exactly one complete run.

    Trials inherited from a parent study (warm start) get none: the parent's runs hold them.

    Idempotent: runs are found by their study and trial-number tags, so a second sync (or a
    sync after a live ``hpo run``) creates nothing.
    """
    from optuna.trial import TrialState

    projection = StudyProjection.open(ws, study, c)
    runs = projection.trial_runs()
    created = completed = unchanged = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        if "inherited_from" in t.user_attrs:
            continue  # a warm-start observation: its run is the parent study's
        if t.number in runs:
            run_id, state = runs[t.number]
            if state == t.state.name:
                unchanged += 1
                continue
            projection.finish_trial(run_id, t)  # created live, but its end was never logged
            completed += 1
        else:
            projection.finish_trial(projection.start_trial(t), t)
            created += 1
    projection.finish_study(study)
    return SyncResult(study.study_name, projection.experiment_id, created, completed, unchanged)
