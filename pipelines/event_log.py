"""The event log of the local Dagster instance: Dagster's consolidated SQLite storage, with one engine.

Dagster's SQLite event log creates a SQLAlchemy engine, and opens a new connection, for every read and every
write. A backfill run logs a few events per partition (planned, materialized, checked), and creating those
engines was most of their cost: the 173 events of a 30-day run took 1.8 s to store, 0.55 s through one
engine. Production instances use PostgreSQL instead (deploy/dagster.yaml).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import sqlalchemy as db
from dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log import (
    ConsolidatedSqliteEventLogStorage,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS


class PooledSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """ConsolidatedSqliteEventLogStorage whose connections come from one engine's pool."""

    @cached_property
    def _engine(self) -> db.Engine:
        return db.create_engine(self._conn_string, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

    @contextmanager
    def _connect(self) -> Iterator[db.Connection]:
        with self._engine.connect() as connection, connection.begin():
            yield connection
