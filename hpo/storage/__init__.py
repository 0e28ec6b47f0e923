"""Optuna storages: the source of truth for studies and trials.

SQLite under ``studies/`` by default (optuna-dashboard opens it directly); any SQLAlchemy URL
(PostgreSQL for many hosts) otherwise. Every RDB storage gets heartbeats, so a trial whose
worker died is failed and retried instead of staying RUNNING forever.

- :mod:`._open`: opening a storage, and the study lock;
- :mod:`._fork`: database connections in forked workers;
- :mod:`._outage`: riding out a database server's restart (retries with backoff, then one line);
- :mod:`._optuna`: every use of Optuna's private API and all SQL against its tables.
"""

from hpo.storage._fork import fork_safe_pools, ready_to_fork
from hpo.storage._open import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    MAX_RETRY,
    SQLITE_TIMEOUT,
    TIMING_ENV,
    flocked,
    open_storage,
    sqlite_path,
    study_lock,
    timing,
)
from hpo.storage._optuna import (
    budget_slots,
    change_state,
    complete_trials,
    heartbeat,
    heartbeat_enabled,
    in_distribution,
    rdb_backend,
    set_intermediate_values,
    stale_trial_ids,
    storage_of,
    study_id,
    study_view,
    trial_by_number,
    trial_counts,
    trial_id,
)
from hpo.storage._outage import StorageUnreachable

__all__ = [
    "budget_slots",
    "change_state",
    "study_view",
    "set_intermediate_values",
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "MAX_RETRY",
    "SQLITE_TIMEOUT",
    "StorageUnreachable",
    "TIMING_ENV",
    "timing",
    "complete_trials",
    "flocked",
    "fork_safe_pools",
    "ready_to_fork",
    "heartbeat",
    "heartbeat_enabled",
    "in_distribution",
    "open_storage",
    "rdb_backend",
    "sqlite_path",
    "stale_trial_ids",
    "storage_of",
    "study_id",
    "study_lock",
    "trial_by_number",
    "trial_counts",
    "trial_id",
]
