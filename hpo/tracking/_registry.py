"""After promotion: the Model Registry, and the leaderboard of the best promoted run per data version.

Promotion calls these; they live here because they talk to MLflow (hpo.promote re-exports them).
"""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.metrics import METRICS
from hpo.schema import (
    NOTE,
    ROLE_LEADERBOARD,
    TAG_DATA_VERSION,
    TAG_DIGEST_PREFIX,
    TAG_GIT_COMMIT,
    TAG_METRIC,
    TAG_MODEL_URI,
    TAG_PROMOTED_EXPERIMENT,
    TAG_PROMOTED_RUN,
    TAG_ROLE,
    TAG_SRC_VERSION,
    TAG_STUDY,
    TAG_TRIAL,
    TEST,
    VAL,
)
from hpo.tracking._client import ensure_experiment
from hpo.tracking._tags import normalized, searchable, written
from hpo.workspace import Workspace, experiment_names

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run


def register_model(c: MlflowClient, run: Run, name: str, alias: str) -> dict[str, Any]:
    """Register the promoted run's model as ``name`` (once per run) and point ``alias`` at it."""

    import mlflow

    run_id, tags = run.info.run_id, normalized(run.data.tags)
    uri = tags.get(TAG_MODEL_URI)
    if uri is None:
        raise HpoError(f"run {run_id} has no `{TAG_MODEL_URI}` tag; it was not made by `hpo promote`")
    existing = None
    try:
        existing = next(iter(c.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")), None)
    except Exception:
        existing = None  # the registered model does not exist yet
    if existing is None:
        keep = (TAG_STUDY, TAG_TRIAL, TAG_DATA_VERSION, TAG_SRC_VERSION, TAG_DIGEST_PREFIX + "test", TAG_METRIC)
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Successfully registered..." there
            mv = mlflow.register_model(uri, name, tags=written({k: tags[k] for k in keep if k in tags}))
        c.update_model_version(name, mv.version, description=tags.get(NOTE, ""))
        version = mv.version
    else:
        version = existing.version
    c.set_registered_model_alias(name, alias, version)
    return {"name": name, "version": int(version), "alias": alias, "existing": existing is not None}


def post_leaderboard(c: MlflowClient, ws: Workspace, run: Run) -> dict[str, Any]:
    """Keep one leaderboard run per data version, metric and test digest, pointing at the best promoted run.

    Runs are compared only when their test digests are equal (the data ledger keeps one set of
    digests per version name; a run promoted before it, on other test rows, gets a row of its own).

    "Best" is by the validation metric the study optimised (the test split is for reporting,
    not for choosing). The run's metric history counts the times the lead changed hands.
    """

    tags, metrics = normalized(run.data.tags), run.data.metrics
    version, metric = tags[TAG_DATA_VERSION], tags[TAG_METRIC]
    value = metrics[f"{VAL}{metric}"]
    exp_id = ensure_experiment(c, experiment_names(ws, version)["leaderboard"])
    # Only runs scored on the same test rows are compared: the leader must have this run's test digest.
    test_digest = tags.get(TAG_DIGEST_PREFIX + "test", "")
    found = c.search_runs(
        [exp_id],
        filter_string=(
            f"tags.`{searchable(TAG_ROLE)}` = '{ROLE_LEADERBOARD}' "
            f"and tags.`{searchable(TAG_DATA_VERSION)}` = '{version}' and tags.`{searchable(TAG_METRIC)}` = '{metric}' "
            f"and tags.`{searchable(TAG_DIGEST_PREFIX + 'test')}` = '{test_digest}'"
        ),
        max_results=1,
    )
    leader = found[0] if found else None
    if leader is not None:
        current = leader.data.metrics.get(f"{VAL}{metric}")
        leader_tags = normalized(leader.data.tags)
        same = leader_tags.get(TAG_PROMOTED_RUN) == run.info.run_id
        better = current is None or (value > current if METRICS[metric].higher_is_better else value < current)
        if same or not better:
            held = "holds" if same else f"keeps run {leader_tags.get(TAG_PROMOTED_RUN)} (validation {metric} {current:.6g})"
            return {"run_id": leader.info.run_id, "updated": False, "message": f"{version}: the leaderboard {held}"}
        step = len(c.get_metric_history(leader.info.run_id, f"{VAL}{metric}"))
        lb_id = leader.info.run_id
    else:
        lb_id = c.create_run(
            exp_id,
            run_name=f"{version} {metric}",
            tags=written(
                {
                    TAG_ROLE: ROLE_LEADERBOARD,
                    TAG_DATA_VERSION: version,
                    TAG_METRIC: metric,
                    TAG_DIGEST_PREFIX + "test": test_digest,
                }
            ),
        ).info.run_id
        step = 0
    from mlflow.entities import Metric, RunTag

    now = run.info.end_time or run.info.start_time
    logged = [Metric(f"{VAL}{metric}", value, now, step)]
    logged += [Metric(k, v, now, step) for k, v in metrics.items() if k.startswith(TEST)]
    link = {
        TAG_PROMOTED_RUN: run.info.run_id,
        TAG_PROMOTED_EXPERIMENT: run.info.experiment_id,
        TAG_STUDY: tags.get(TAG_STUDY, ""),
        TAG_TRIAL: tags.get(TAG_TRIAL, ""),
        **{k: tags[k] for k in (TAG_SRC_VERSION, TAG_GIT_COMMIT, TAG_DIGEST_PREFIX + "test", TAG_MODEL_URI) if k in tags},
        NOTE: (
            f"Best promoted run of data {version} by validation {metric}: run `{run.info.run_id}` "
            f"(trial #{tags.get(TAG_TRIAL)} of study `{tags.get(TAG_STUDY)}`, source `{tags.get(TAG_SRC_VERSION)}`)."
        ),
    }
    c.log_batch(lb_id, metrics=logged, tags=[RunTag(k, v) for k, v in written({k: str(v) for k, v in link.items()}).items()])
    c.set_terminated(lb_id, "FINISHED")
    was = "new leader" if leader is not None else "first entry"
    return {"run_id": lb_id, "updated": True, "message": f"{version}: {was}, validation {metric} {value:.6g}"}
