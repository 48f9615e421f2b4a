"""SQLite backend (zero-setup default): connections from ``SqliteHook``, staging with ``executemany``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from . import schema as s
from .base import Warehouse, _stage_name
from .rows import sqlite_ts

BUSY_TIMEOUT_MS = 30_000


class SqliteWarehouse(Warehouse):
    """The embedded warehouse on a ``sqlite`` connection (host = absolute path of the database file)."""

    dialect = "sqlite"
    placeholder = "?"

    def _connect(self) -> sqlite3.Connection:
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        conn = SqliteHook(sqlite_conn_id=self.conn_id).get_conn()
        conn.isolation_level = None  # explicit BEGIN/COMMIT below
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _begin(self, conn: sqlite3.Connection, *, write: bool) -> None:
        # Writers take the write lock up front, so concurrent writers queue instead of failing to
        # upgrade a read lock; readers use a deferred transaction (WAL: they never block writers).
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def _lock_schema(self, cur: Any) -> None:
        """``BEGIN IMMEDIATE`` already serialises writers."""

    def _encode_ts(self, value: datetime | None) -> Any:
        return sqlite_ts(value)

    def _existing_views(self, cur: Any) -> set[str]:
        cur.execute("SELECT name FROM main.sqlite_master WHERE type = 'view'")
        return {name for (name,) in cur.fetchall()}

    def _stage(self, cur: Any, table: s.Table, rows: Iterable[tuple[Any, ...]]) -> None:
        name = _stage_name(table)
        cur.execute(f"DROP TABLE IF EXISTS temp.{name}")
        cur.execute(s.create_table_sql(table, "sqlite", name=name, temp=True))
        if rows:
            marks = ", ".join("?" * len(table.columns))
            cur.executemany(f"INSERT INTO temp.{name} VALUES ({marks})", rows)

    def ensure_schema(self, target_version: int | None = None) -> int:
        """As the base, and switch the database to WAL so readers do not block the loader."""
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        return super().ensure_schema(target_version)
