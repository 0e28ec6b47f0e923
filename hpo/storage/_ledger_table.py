"""The data ledger's table (``hpo_data_versions``) beside Optuna's in an RDB storage: its SQL, nothing else.

Rows are plain dicts, the digests and overview as JSON text; :mod:`hpo.ledger` gives them meaning. A
storage without an SQL backend has no table: reading it gives nothing and writing it does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

LEDGER_TABLE = "hpo_data_versions"


def _table() -> Any:
    from sqlalchemy import Column, MetaData, String, Table, Text

    return Table(
        LEDGER_TABLE,
        MetaData(),
        Column("version", String(64), primary_key=True),
        Column("digests", Text, nullable=False),
        Column("overview", Text, nullable=False),
        Column("first_study", String(512)),
        Column("recorded_at", String(40)),
    )


def ledger_rows(storage: optuna.storages.BaseStorage) -> list[dict[str, Any]]:
    """Every row of the table (none where the storage has no table)."""
    from sqlalchemy import inspect, select

    from hpo.storage._optuna import rdb_backend

    backend = rdb_backend(storage)
    if backend is None or not inspect(backend.engine).has_table(LEDGER_TABLE):
        return []
    with backend.engine.connect() as conn:
        return [r._asdict() for r in conn.execute(select(_table())).all()]


def insert_ledger_rows(storage: optuna.storages.BaseStorage, rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` in one transaction, making the table the first time."""
    from hpo.storage._optuna import rdb_backend

    backend = rdb_backend(storage)
    if backend is None or not rows:
        return
    table = _table()
    table.metadata.create_all(backend.engine, checkfirst=True)
    with backend.engine.begin() as conn:
        conn.execute(table.insert(), rows)


def update_ledger_row(storage: optuna.storages.BaseStorage, version: str, **values: str) -> None:
    """Rewrite columns of ``version``'s row."""
    from hpo.storage._optuna import rdb_backend

    backend = rdb_backend(storage)
    if backend is None:
        return
    table = _table()
    with backend.engine.begin() as conn:
        conn.execute(table.update().where(table.c.version == version).values(**values))
