"""Warehouse schema: fixed table names, column specs, versioned migrations and the analyst views.

The column specs are the single source of truth: the DDL of both dialects, the staging tables of the
bulk loader and the type normalisation of ``fetch_*`` are all derived from them. Every identifier
that reaches SQL comes from this module (or from a view file name checked against ``VIEW_NAME_RE``),
never from caller input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Dialect = Literal["postgres", "sqlite"]
#: Logical column types, mapped per dialect by ``TYPE_MAP``.
LogicalType = Literal["text", "int", "bool", "ts", "money", "float"]

TYPE_MAP: dict[Dialect, dict[LogicalType, str]] = {
    # Money is exact NUMERIC; times are timestamptz.
    "postgres": {
        "text": "TEXT",
        "int": "BIGINT",
        "bool": "BOOLEAN",
        "ts": "TIMESTAMPTZ",
        "money": "NUMERIC",
        "float": "DOUBLE PRECISION",
    },
    # Money stays exact as decimal text (SQLite's SUM/CAST read it as a number); times are fixed-width
    # ISO-8601 UTC text ('2026-08-20T14:05:31.482000Z'), so text order is chronological order.
    "sqlite": {
        "text": "TEXT",
        "int": "INTEGER",
        "bool": "INTEGER",
        "ts": "TEXT",
        "money": "TEXT",
        "float": "REAL",
    },
}

IDENTIFIER_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VIEW_NAME_RE = re.compile(r"^sp_v_[a-z0-9_]{1,58}$")

SCHEMA_VERSION_TABLE = "sp_schema_version"
ORDERS = "sp_orders"
ITEMS = "sp_order_items"
PACKAGES = "sp_order_packages"
STATUS_HISTORY = "sp_order_status_history"
BUYERS = "sp_order_buyers"
SYNC_RUNS = "sp_sync_runs"
INBOX = "sp_notification_inbox"
QUARANTINE = "sp_notification_quarantine"
FBA_SHIPMENTS = "sp_fba_shipment_status"


@dataclass(frozen=True, slots=True)
class Column:
    """One column: name, logical type, nullability."""

    name: str
    type: LogicalType
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Table:
    """A table: fixed name, columns, primary key and secondary indexes."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def types(self) -> dict[str, LogicalType]:
        return {c.name: c.type for c in self.columns}


def _cols(*specs: tuple[str, LogicalType] | tuple[str, LogicalType, bool]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


ORDERS_TABLE = Table(
    ORDERS,
    _cols(
        ("order_id", "text", False),
        ("seller_id", "text"),
        ("marketplace_id", "text", False),
        ("sales_channel", "text"),
        ("order_status", "text", False),
        ("fulfilled_by", "text"),
        ("fulfillment_service_level", "text"),
        ("order_type", "text"),
        ("seller_order_id", "text"),
        ("currency", "text"),
        ("order_total", "money"),
        ("created_time", "ts", False),
        ("last_updated_time", "ts", False),
        ("earliest_ship_time", "ts"),
        ("latest_ship_time", "ts"),
        ("earliest_delivery_time", "ts"),
        ("latest_delivery_time", "ts"),
        ("programs", "text"),
        ("items_shipped", "int"),
        ("items_unshipped", "int"),
        ("api_version", "text"),
        ("source", "text", False),
        ("status_from_complete", "bool", False),
        ("is_complete", "bool", False),
        ("details_updated_time", "ts", False),
        ("loaded_at", "ts", False),
    ),
    ("order_id",),
    (("last_updated_time",), ("marketplace_id", "created_time")),
)

#: Columns that follow the newest version by (last_updated_time, complete-before-partial).
STATUS_COLUMNS = ("order_status", "last_updated_time", "source", "status_from_complete")
#: Columns that follow the richest version by (complete-before-partial, details_updated_time).
DETAIL_COLUMNS = tuple(
    c for c in ORDERS_TABLE.column_names if c not in STATUS_COLUMNS and c not in ("order_id", "loaded_at")
)

ITEMS_TABLE = Table(
    ITEMS,
    _cols(
        ("order_id", "text", False),
        ("order_item_id", "text", False),
        ("asin", "text"),
        ("seller_sku", "text"),
        ("title", "text"),
        ("condition", "text"),
        ("quantity_ordered", "int", False),
        ("quantity_shipped", "int"),
        ("quantity_unshipped", "int"),
        ("currency", "text"),
        ("unit_price", "money"),
        ("item_price", "money"),
        ("item_tax", "money"),
        ("shipping_price", "money"),
        ("shipping_tax", "money"),
        ("promotion_discount", "money"),
        ("promotion_ids", "text"),
        ("is_buyer_requested_cancel", "bool"),
        ("buyer_cancel_reason", "text"),
        ("order_last_updated_time", "ts", False),
        ("loaded_at", "ts", False),
    ),
    ("order_id", "order_item_id"),
    (("seller_sku",),),
)

PACKAGES_TABLE = Table(
    PACKAGES,
    _cols(
        ("order_id", "text", False),
        ("package_reference_id", "text", False),
        ("carrier", "text"),
        ("tracking_number", "text"),
        ("shipping_service", "text"),
        ("package_status", "text"),
        ("package_detailed_status", "text"),
        ("ship_time", "ts"),
        ("order_last_updated_time", "ts", False),
        ("loaded_at", "ts", False),
    ),
    ("order_id", "package_reference_id"),
)

STATUS_HISTORY_TABLE = Table(
    STATUS_HISTORY,
    _cols(
        ("order_id", "text", False),
        ("order_status", "text", False),
        ("last_updated_time", "ts", False),
        ("packages_delivered", "bool", False),
        ("source", "text", False),
        ("observed_at", "ts", False),
    ),
    ("order_id", "last_updated_time", "order_status"),
    (("order_status", "last_updated_time"),),
)

BUYERS_TABLE = Table(
    BUYERS,
    _cols(
        ("order_id", "text", False),
        ("buyer_name", "text"),
        ("buyer_email", "text"),
        ("buyer_company_name", "text"),
        ("buyer_purchase_order_number", "text"),
        ("recipient_name", "text"),
        ("address_line1", "text"),
        ("address_line2", "text"),
        ("address_line3", "text"),
        ("city", "text"),
        ("state_or_region", "text"),
        ("postal_code", "text"),
        ("country_code", "text"),
        ("phone", "text"),
        ("order_last_updated_time", "ts", False),
        ("loaded_at", "ts", False),
    ),
    ("order_id",),
    (("order_last_updated_time",),),
)

SYNC_RUNS_TABLE = Table(
    SYNC_RUNS,
    _cols(
        ("run_id", "text", False),
        ("conn_id", "text", False),
        ("mode", "text", False),
        ("status", "text", False),
        ("window_start", "ts", False),
        ("window_end", "ts", False),
        ("seller_id", "text"),
        ("marketplace_ids", "text"),
        ("api_version", "text"),
        ("pages", "int", False),
        ("orders", "int", False),
        ("calls", "int", False),
        ("throttled", "int", False),
        ("duration_seconds", "float", False),
        ("started_at", "ts"),
        ("finished_at", "ts"),
        ("dag_id", "text"),
        ("dag_run_id", "text"),
        ("task_id", "text"),
        ("error", "text"),
        ("recorded_at", "ts", False),
    ),
    ("run_id",),
    (("window_end",),),
)

INBOX_TABLE = Table(
    INBOX,
    _cols(
        ("notification_id", "text", False),
        ("notification_type", "text", False),
        ("order_id", "text"),
        ("seller_id", "text"),
        ("event_time", "ts"),
        ("message_id", "text"),
        ("payload", "text", False),
        ("received_at", "ts", False),
        ("processed_at", "ts"),
    ),
    ("notification_id",),
    (("processed_at", "event_time"), ("order_id",)),
)

QUARANTINE_TABLE = Table(
    QUARANTINE,
    _cols(
        ("body_sha256", "text", False),
        ("reason", "text", False),
        ("message_id", "text"),
        ("notification_id", "text"),
        ("raw_body", "text", False),
        ("received_at", "ts", False),
    ),
    ("body_sha256",),
)

FBA_SHIPMENTS_TABLE = Table(
    FBA_SHIPMENTS,
    _cols(
        ("order_id", "text", False),
        ("shipment_id", "text", False),
        ("shipment_status", "text", False),
        ("event_time", "ts", False),
        ("seller_id", "text"),
        ("notification_id", "text"),
        ("loaded_at", "ts", False),
    ),
    ("order_id", "shipment_id"),
)

#: Staging only: the orders of a batch whose details version was accepted (their children get replaced).
ACCEPTED_TABLE = Table("sp_accepted", _cols(("order_id", "text", False)), ("order_id",))

SCHEMA_VERSION_TABLE_SPEC = Table(
    SCHEMA_VERSION_TABLE,
    _cols(("version", "int", False), ("description", "text", False), ("applied_at", "ts", False)),
    ("version",),
)

ALL_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        ORDERS_TABLE,
        ITEMS_TABLE,
        PACKAGES_TABLE,
        STATUS_HISTORY_TABLE,
        BUYERS_TABLE,
        SYNC_RUNS_TABLE,
        INBOX_TABLE,
        QUARANTINE_TABLE,
        FBA_SHIPMENTS_TABLE,
    )
}


def _check_identifier(name: str) -> str:
    if not IDENTIFIER_RE.match(name):
        raise ValueError(f"Not a valid warehouse identifier: {name!r}")
    return name


def create_table_sql(table: Table, dialect: Dialect, *, name: str | None = None, temp: bool = False) -> str:
    """``CREATE TABLE`` for ``table`` in ``dialect`` (``name``/``temp`` for staging copies)."""
    types = TYPE_MAP[dialect]
    cols = [
        f"{_check_identifier(c.name)} {types[c.type]}{'' if c.nullable else ' NOT NULL'}"
        for c in table.columns
    ]
    if not temp:  # staging copies are deduplicated on the key in Python and loaded without indexes
        cols.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    prefix = "CREATE TEMPORARY TABLE" if temp else "CREATE TABLE IF NOT EXISTS"
    return f"{prefix} {_check_identifier(name or table.name)} (\n    " + ",\n    ".join(cols) + "\n)"


def create_index_sql(table: Table, columns: tuple[str, ...]) -> str:
    """``CREATE INDEX IF NOT EXISTS`` with a derived, fixed name."""
    name = _check_identifier(f"ix_{table.name}__{'_'.join(columns)}"[:63])
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} ({', '.join(columns)})"


def table_statements(table: Table, dialect: Dialect) -> list[str]:
    """DDL for a table and its indexes."""
    return [create_table_sql(table, dialect), *(create_index_sql(table, ix) for ix in table.indexes)]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version: a description and the statements that produce it from the previous one."""

    version: int
    description: str
    statements: Callable[[Dialect], list[str]]


def _v1(dialect: Dialect) -> list[str]:
    out: list[str] = []
    for table in (
        ORDERS_TABLE,
        ITEMS_TABLE,
        PACKAGES_TABLE,
        STATUS_HISTORY_TABLE,
        BUYERS_TABLE,
        SYNC_RUNS_TABLE,
    ):
        out += table_statements(table, dialect)
    return out


def _v2(dialect: Dialect) -> list[str]:
    out: list[str] = []
    for table in (INBOX_TABLE, QUARANTINE_TABLE, FBA_SHIPMENTS_TABLE):
        out += table_statements(table, dialect)
    return out


#: Ordered, append-only. A released migration is never edited: add a new one instead.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "orders, items, packages, status history, buyer PII, sync runs", _v1),
    Migration(2, "event path: notification inbox, quarantine, FBA shipment status", _v2),
)
LATEST_VERSION = MIGRATIONS[-1].version


def sql_dir() -> Path:
    """Directory of the SQL files: ``$SP_API_SQL_DIR`` if set, else ``<repo>/include/sql``."""
    env = os.environ.get("SP_API_SQL_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "include" / "sql"
    if not (path / "views").is_dir():
        raise FileNotFoundError(
            f"SQL directory {path} has no views/ folder. Set SP_API_SQL_DIR to the project's include/sql "
            "directory (the one holding views/*.sql)."
        )
    return path


def iter_views(dialect: Dialect, directory: Path | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(view_name, select_sql)`` in name order.

    ``views/<name>.sql`` is portable; ``views/<name>.<dialect>.sql`` overrides it for one dialect.
    """
    views = (directory or sql_dir()) / "views"
    chosen: dict[str, Path] = {}
    for path in sorted(views.glob("*.sql")):
        parts = path.name[: -len(".sql")].split(".")
        if len(parts) == 1:
            chosen.setdefault(parts[0], path)
        elif len(parts) == 2 and parts[1] == dialect:
            chosen[parts[0]] = path
    for name in sorted(chosen):
        if not VIEW_NAME_RE.match(name):
            raise ValueError(f"View file {chosen[name]} must be named sp_v_<lowercase_name>[.<dialect>].sql")
        text = chosen[name].read_text(encoding="utf-8").strip().rstrip(";").strip()
        yield name, text
