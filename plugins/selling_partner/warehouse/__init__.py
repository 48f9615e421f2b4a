"""The order warehouse: PostgreSQL (reference) or SQLite (zero-setup default), one SQL dialect.

from selling_partner.warehouse import get_warehouse

wh = get_warehouse("warehouse_default")
wh.ensure_schema()
result = wh.upsert_orders(orders)
"""

from __future__ import annotations

from .base import Warehouse
from .records import (
    ORDER_QUARANTINE_SOURCES,
    SYNC_RUN_STATUSES,
    ApplyResult,
    EnrichmentClaim,
    EnrichmentOutcome,
    EnrichmentResult,
    FbaShipmentStatusRow,
    InboxRow,
    NotificationToApply,
    OrderQuarantineRow,
    QuarantineRow,
    SyncRunRecord,
    UpsertResult,
    error_summary,
)
from .schema import LATEST_VERSION, sql_dir
from .text import clean_text

__all__ = [
    "LATEST_VERSION",
    "ORDER_QUARANTINE_SOURCES",
    "SYNC_RUN_STATUSES",
    "ApplyResult",
    "EnrichmentClaim",
    "EnrichmentOutcome",
    "EnrichmentResult",
    "FbaShipmentStatusRow",
    "InboxRow",
    "NotificationToApply",
    "OrderQuarantineRow",
    "QuarantineRow",
    "SyncRunRecord",
    "UpsertResult",
    "Warehouse",
    "clean_text",
    "error_summary",
    "get_warehouse",
    "sql_dir",
]

#: Airflow connection types -> backend.
SUPPORTED_CONN_TYPES = ("postgres", "sqlite")


def get_warehouse(conn_id: str = "warehouse_default") -> Warehouse:
    """The warehouse behind Airflow connection ``conn_id``, chosen by its ``conn_type``."""
    from airflow.sdk import BaseHook

    conn_type = BaseHook.get_connection(conn_id).conn_type
    if conn_type == "postgres":
        from .postgres import PostgresWarehouse

        return PostgresWarehouse(conn_id)
    if conn_type == "sqlite":
        from .sqlite import SqliteWarehouse

        return SqliteWarehouse(conn_id)
    raise ValueError(
        f"Connection {conn_id!r} has type {conn_type!r}; "
        f"the warehouse supports {', '.join(SUPPORTED_CONN_TYPES)}"
    )
