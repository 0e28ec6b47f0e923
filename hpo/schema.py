"""Every key hpo persists, named once: study and trial user attributes in the Optuna storage, and
the tags of its MLflow runs.

Readers import the constant, or read a study through :class:`StudyRecord`; no module retypes
the string. Renaming a key here renames it
everywhere, and breaks the studies and runs already written with the old name, so don't.
(MLflow keeps its own run tags the same way, in ``mlflow/utils/mlflow_tags.py``.)

MLflow run and experiment tags are namespaced (``hpo.``): MLflow's tag space is shared with
``mlflow.*``, autologging and people. Those first written without the prefix (``seed``,
``data_version``, ``digest.test`` ...) have their old spelling in :data:`LEGACY_TAGS` and
:data:`LEGACY_PREFIXES`, written beside the new name and read when it is missing
(``hpo.tracking._tags``), until a later release drops them.

Not renamed, on purpose:

- Optuna study and trial attributes. The study is hpo's own namespace, and workers of two hpo
  versions share one storage: an older worker that no longer finds ``hpo_ready``, ``search_hash``
  or ``budget_slot`` refuses the study or claims a slot twice. A trial's attributes also freeze
  when it ends, so a rename could never migrate the trials already run.
- MLflow metric names (``val_<metric>``, ``fit_seconds``): they are measurement names, compared
  across runs and studies in MLflow's charts; a prefix would split one series in two.
- The params of a study's parent run (``study``, ``metric``, ``seed``): MLflow's params are
  immutable, so an existing run could never take a new name, and this run holds no hyperparameter
  that a prefix would keep apart from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --- study user attributes (written once, when hpo creates the study) ----------------------------
STUDY_SPACE_YAML = "space_yaml"  # the space file's text, verbatim
STUDY_SPACE_SHA256 = "space_sha256"
STUDY_SPACE_PATH = "space_path"  # relative to the workspace
STUDY_SEARCH_HASH = "search_hash"  # what decides a trial's computation; resuming checks it
STUDY_DATA_VERSION = "data_version"
STUDY_DIGESTS = "data_digests"  # {train, validation, test: sha256}
STUDY_OVERVIEW = "data_overview"  # hpo.data.DataVersion.overview()
STUDY_DATA_DROP = "data_drop"  # the space's `data.drop`: the study's feature choice, not part of the data version
STUDY_MODEL = "model"
STUDY_TASK = "task"
STUDY_METRIC = "metric"
STUDY_SEED = "seed"
STUDY_SRC_VERSION = "src_version"
STUDY_COMMIT = "commit"
STUDY_DIRTY = "dirty"
STUDY_DERIVED_FROM = "derived_from"  # lineage: the parent study and the analysis
STUDY_HPO_VERSION = "hpo_version"
STUDY_CREATED_AT = "created_at"
STUDY_READY = "hpo_ready"  # written last: the study's attributes are complete
STUDY_INHERITED = "inherited_trials"  # warm start: {study, mode, trials, run_first}
STUDY_NOISE = "noise_floor"  # hpo analyze: {trial, values, rows}: the best trial's re-fits, its validation rows' bootstrap
STUDY_MLFLOW_PARENT_RUN = "mlflow_parent_run_id"  # the study's parent run in its HPO space
STUDY_BUDGET = "budget"  # {n_trials, timeout} of the latest run (a resume may raise them)

# --- trial user attributes ------------------------------------------------------------------------
TRIAL_SLOT = "budget_slot"
TRIAL_SEED = "seed"
TRIAL_WORKER = "worker"  # host:pid
TRIAL_ERROR = "error"
TRIAL_TRACEBACK = "traceback"
TRIAL_FIT_SECONDS = "fit_seconds"
TRIAL_BEST_ITERATION = "best_iteration"
TRIAL_VALIDATION_METRICS = "validation_metrics"  # every metric of the task on validation (with cv: fold means)
TRIAL_FOLD_VALUES = "fold_values"  # with cv: the objective on each fold, in fold order
TRIAL_FOLD_SD = "fold_sd"  # with cv: their standard deviation
TRIAL_MLFLOW_RUN = "mlflow_run_id"  # the trial's child run in the HPO space
TRIAL_INHERITED_FROM = "inherited_from"  # warm start: {study, trial, storage}
# Trial system attributes, Optuna's own names for a retried trial (as its RetryFailedTrialCallback).
TRIAL_RETRY_HISTORY = "retry_history"
TRIAL_FAILED_TRIAL = "failed_trial"
# A token per trial creation: a creation retried after its reply was lost finds the trial it made.
TRIAL_CREATED_BY = "hpo_created_by"

# --- MLflow metric names ---------------------------------------------------------------------------
VAL = "val_"  # + a metric name: on the validation split
TEST = "test_"  # + a metric name: on the test split (promoted runs only)
BY_ITERATION = "_by_iteration"  # val_<metric> + this: the per-iteration values, as a metric history
BY_FOLD = "_by_fold"  # val_<metric> + this: with cv, each fold's value, as a metric history (step = fold)
FOLD_SD = "_fold_sd"  # val_<metric> + this: with cv, the folds' standard deviation
BEST = "best_"  # best_val_<metric>: a study's best value, on its parent run
# fit_seconds and best_iteration are logged under their trial attribute names (TRIAL_FIT_SECONDS, ...).

# --- MLflow run and experiment tags ----------------------------------------------------------------
NOTE = "mlflow.note.content"  # MLflow's own: a run's or experiment's description
EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow's own: which view its UI opens an experiment on
KIND_TRAINING = "custom_model_development"  # ... the runs table (not "genai_development": traces)
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own: the commit the UI shows
PARENT_RUN_ID = "mlflow.parentRunId"  # MLflow's own: nests a trial's run under its study's run
TAG_SRC_VERSIONS = "hpo.src_versions"  # on a data-version experiment: every src_version with runs there
TAG_DERIVED_FROM = "hpo.derived_from"  # on a study's parent run: its parent study
TAG_STUDY = "hpo.study"
TAG_TRIAL = "hpo.trial_number"
TAG_STATE = "hpo.trial_state"
TAG_ROLE = "hpo.role"  # study / trial / promoted / leaderboard
# A trial's run in the HPO space (beside TAG_SEED), and its study's parent run.
TAG_BUDGET_SLOT = "hpo.budget_slot"
TAG_ERROR = "hpo.error"
TAG_DURATION = "hpo.duration_seconds"
TAG_N_FINISHED = "hpo.n_finished_trials"
TAG_BEST_TRIAL = "hpo.best_trial"
# Provenance, on every run hpo writes.
TAG_SRC_VERSION = "hpo.src_version"
TAG_GIT_COMMIT = "hpo.git_commit"
TAG_GIT_DIRTY = "hpo.git_dirty"
TAG_DATA_VERSION = "hpo.data_version"
TAG_DIGEST_PREFIX = "hpo.digests."  # + train / validation / test (plural: TAG_INPUT_DIGEST is "hpo.digest")
TAG_DIGEST_BASIS = "hpo.digest_basis"  # on a data-version experiment: "delivered" (absent: digests after data.drop)
TAG_DATA_DROP = "hpo.data_drop"  # the study's `data.drop`, as a JSON list
TAG_HPO_VERSION = "hpo.version"
TAG_PACKAGE_PREFIX = "hpo.package."  # + a package name
# A promoted run's recipe: everything a re-training needs.
TAG_DATA = "hpo.data"
TAG_CV = "hpo.cv"  # a promoted run scored by cross-validation: the space's cv section, as JSON
TAG_MODEL = "hpo.model"
TAG_SPACE = "hpo.space"  # a scratch run (`hpo try`): the space file it tried
TAG_METRIC = "hpo.metric"
TAG_TASK = "hpo.task"
TAG_SEED = "hpo.seed"
TAG_STRING_PARAMS = "hpo.string_params"
TAG_CLASSES = "hpo.classes"  # the study's class order, as JSON
# A promoted run's links and checks.
TAG_HPO_RUN = "hpo.hpo_run_id"
TAG_HPO_EXPERIMENT = "hpo.hpo_experiment_id"
TAG_MODEL_URI = "hpo.model_uri"  # the pyfunc on raw rows
TAG_NATIVE_MODEL_URI = "hpo.native_model_uri"  # the model in its library's flavor, on hpo's encoded features
TAG_MODEL_FLAVOR = "hpo.model_flavor"  # that flavor: catboost / sklearn, or pyfunc (the raw-rows model only)
TAG_MODEL_CHECK = "hpo.model_check"  # the logged model's predictions on raw test rows against hpo's, as JSON
TAG_ALLOW_DIRTY = "hpo.allow_dirty"
TAG_DEGENERATE = "hpo.degenerate"  # what is degenerate about a model promoted with --allow-degenerate
TAG_TRIAL_VALUE = "hpo.trial_value"
TAG_TOLERANCE = "hpo.tolerance"
TAG_STUDY_SRC_VERSION = "hpo.study_src_version"
TAG_STUDY_COMMIT = "hpo.study_commit"
TAG_SOURCE_DIFFERS = "hpo.source_differs"  # why the code promoted from may not be the study's (absent: it is)
TAG_REQUESTED_AS = "hpo.requested_as"  # an inherited trial promoted through its child study
# Tags of a promoted run's dataset inputs: the full SHA-256 (MLflow's digest column keeps 36 characters).
TAG_INPUT_DIGEST = "hpo.digest"
TAG_INPUT_SPLIT = "hpo.split"
# Set on the HPO space's child run of a promoted trial, and on a leaderboard entry.
TAG_PROMOTED_RUN = "hpo.promoted_run_id"
TAG_PROMOTED_EXPERIMENT = "hpo.promoted_experiment_id"

# Renamed tags: new name -> the old spelling still written beside it and read when the new one is
# missing (hpo.tracking._tags). An older hpo wrote, and still writes, only the old one.
LEGACY_TAGS: dict[str, str] = {
    TAG_DERIVED_FROM: "derived_from",
    TAG_BUDGET_SLOT: "budget_slot",
    TAG_ERROR: "error",
    TAG_DURATION: "duration_seconds",
    TAG_N_FINISHED: "n_finished_trials",
    TAG_BEST_TRIAL: "best_trial",
    TAG_SRC_VERSION: "src_version",
    TAG_GIT_COMMIT: "git_commit",
    TAG_GIT_DIRTY: "git_dirty",
    TAG_DATA_VERSION: "data_version",
    TAG_DATA_DROP: "data.drop",
    TAG_HPO_VERSION: "hpo_version",
    TAG_SEED: "seed",
}
LEGACY_PREFIXES: dict[str, str] = {  # a renamed prefix (+ a split or a package) -> its old spelling
    TAG_DIGEST_PREFIX: "digest.",
    TAG_PACKAGE_PREFIX: "version.",
}

# Values of TAG_ROLE.
ROLE_STUDY = "study"  # a study's parent run
ROLE_TRIAL = "trial"
ROLE_PROMOTED = "promoted"
ROLE_LEADERBOARD = "leaderboard"
ROLE_SCRATCH = "scratch"  # a run of `hpo try`, in the data version's scratch space

# Params of a study's parent run (params are immutable in MLflow, and this run holds no hyperparameter).
PARAM_STUDY = "study"
PARAM_METRIC = "metric"
PARAM_SEED = "seed"

# Artifacts of a study's parent run.
ARTIFACT_SPACE = "space.yaml"  # the space file the study was created from
ARTIFACT_ANALYSIS = "analysis"  # the folder of `hpo analyze`'s report (its .html, .md and .json)

# The id prefix of hpo's figures in the Optuna storage (optuna-dashboard): + the parameter's html id.
DASHBOARD_FIGURE_PREFIX = "hpo-analyze-"


@dataclass(frozen=True)
class StudyRecord:
    """A study's user attributes as hpo wrote them, typed; every field is None for a study hpo did
    not create (or, for older studies, a key it did not write yet)."""

    space_yaml: str | None = None
    space_sha256: str | None = None
    space_path: str | None = None
    search_hash: str | None = None
    data_version: str | None = None
    digests: dict[str, str] | None = None
    overview: dict[str, Any] | None = None
    model: str | None = None
    task: str | None = None
    metric: str | None = None
    seed: int | None = None
    src_version: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    derived_from: dict[str, Any] | None = None
    hpo_version: str | None = None
    created_at: str | None = None
    ready: bool = False
    inherited: dict[str, Any] | None = None
    mlflow_parent_run_id: str | None = None

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> StudyRecord:
        return cls(**{f: attrs.get(key) for f, key in _RECORD_KEYS.items() if f != "ready"}, ready=bool(attrs.get(STUDY_READY)))

    @classmethod
    def from_study(cls, study: Any) -> StudyRecord:
        """From an ``optuna.Study`` (its user attributes are read once)."""
        return cls.from_attrs(study.user_attrs)

    @property
    def by_hpo(self) -> bool:
        """Whether hpo created the study (it records the search hash of its space)."""
        return self.search_hash is not None

    @property
    def parent(self) -> str | None:
        """The study this one was derived from."""
        return (self.derived_from or {}).get("study")

    @property
    def inherited_numbers(self) -> list[int]:
        """The parent's trial numbers this study inherited (warm start)."""
        return list((self.inherited or {}).get("trials", []))


# Field of StudyRecord -> the attribute key it reads.
_RECORD_KEYS = {
    "space_yaml": STUDY_SPACE_YAML,
    "space_sha256": STUDY_SPACE_SHA256,
    "space_path": STUDY_SPACE_PATH,
    "search_hash": STUDY_SEARCH_HASH,
    "data_version": STUDY_DATA_VERSION,
    "digests": STUDY_DIGESTS,
    "overview": STUDY_OVERVIEW,
    "model": STUDY_MODEL,
    "task": STUDY_TASK,
    "metric": STUDY_METRIC,
    "seed": STUDY_SEED,
    "src_version": STUDY_SRC_VERSION,
    "commit": STUDY_COMMIT,
    "dirty": STUDY_DIRTY,
    "derived_from": STUDY_DERIVED_FROM,
    "hpo_version": STUDY_HPO_VERSION,
    "created_at": STUDY_CREATED_AT,
    "ready": STUDY_READY,
    "inherited": STUDY_INHERITED,
    "mlflow_parent_run_id": STUDY_MLFLOW_PARENT_RUN,
}
