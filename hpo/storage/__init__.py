"""Optuna storages: the source of truth for studies and trials.

SQLite under ``studies/`` by default (optuna-dashboard opens it directly); any SQLAlchemy URL
(PostgreSQL for many hosts) otherwise. Every RDB storage gets heartbeats, so a trial whose
worker died is failed and retried instead of staying RUNNING forever.

- :mod:`._open`: opening a storage, and the study lock;
- :mod:`._fork`: database connections in forked workers;
- :mod:`._outage`: riding out a database server's restart (retries with backoff, then one line);
- :mod:`._optuna` and :mod:`._optuna_trials` (reading trials in bulk): every use of Optuna's private API and all SQL
  against its tables (a trial's attributes and per-step values written together, in one transaction).
- :mod:`._beats`: heartbeats, and the trials whose worker is gone;
- :mod:`._ledger_table`: the SQL of hpo's data ledger table beside Optuna's;
- :mod:`._peek`: a local SQLite store read with ``sqlite3`` alone, for commands that only look;
- :mod:`._studies`: finding a study by name, or the newest (every verb starts there).
"""

from hpo.storage._beats import heartbeat, heartbeat_enabled, stale_trial_ids
from hpo.storage._fork import fork_safe_pools, ready_to_fork
from hpo.storage._ledger_table import LEDGER_TABLE, insert_ledger_rows, ledger_rows, update_ledger_row
from hpo.storage._open import check_storage, flocked, open_storage, sqlite_path, study_lock
from hpo.storage._optuna import (
    budget_slots,
    change_state,
    claim_waiting,
    in_distribution,
    link_trial,
    rdb_backend,
    record_fit,
    set_intermediate_values,
    set_user_attrs,
    storage_of,
    study_id,
    trial_by_number,
    trial_id,
)
from hpo.storage._optuna_trials import (
    Waiting,
    add_waiting_trials,
    cache_claimed,
    complete_trials,
    study_view,
    trial_counts,
    waiting_slots,
)
from hpo.storage._outage import StorageUnreachable
from hpo.storage._peek import Unsure, alembic_head, study_attrs
from hpo.storage._studies import hpo_study_names, load_named_or_newest, load_study, newest_study_name, study_names
from hpo.storage._timing import GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY, SQLITE_TIMEOUT, TIMING_ENV, timing

__all__ = [
    "LEDGER_TABLE",
    "insert_ledger_rows",
    "ledger_rows",
    "update_ledger_row",
    "Unsure",
    "alembic_head",
    "study_attrs",
    "budget_slots",
    "change_state",
    "claim_waiting",
    "check_storage",
    "study_view",
    "set_intermediate_values",
    "set_user_attrs",
    "record_fit",
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "MAX_RETRY",
    "SQLITE_TIMEOUT",
    "StorageUnreachable",
    "TIMING_ENV",
    "timing",
    "complete_trials",
    "add_waiting_trials",
    "cache_claimed",
    "Waiting",
    "waiting_slots",
    "flocked",
    "fork_safe_pools",
    "ready_to_fork",
    "heartbeat",
    "heartbeat_enabled",
    "hpo_study_names",
    "in_distribution",
    "link_trial",
    "load_named_or_newest",
    "load_study",
    "newest_study_name",
    "open_storage",
    "rdb_backend",
    "sqlite_path",
    "stale_trial_ids",
    "storage_of",
    "study_id",
    "study_lock",
    "study_names",
    "trial_by_number",
    "trial_counts",
    "trial_id",
]
