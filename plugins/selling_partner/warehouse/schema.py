"""Warehouse schema: fixed table names, column specs, versioned migrations and the analyst views.

The column specs are the single source of truth: the DDL of both dialects, the staging tables of the
bulk loader and the type normalisation of ``fetch_*`` are all derived from them. Every identifier
that reaches SQL comes from this module (or from a view file name checked against ``VIEW_NAME_RE``),
never from caller input.

Migrations are append-only: a released migration's statements never change. A table whose columns grew
in a later version keeps its original column tuple for the migration that created it (e.g.
``SYNC_RUNS_V1_COLUMNS``) and the later migration adds the new ones with ``ALTER TABLE``.

The analyst views' SQL ships inside this package (``sql/views/*.sql``, read with ``importlib.resources``,
so it works from a wheel and from an editable install); ``$SP_API_SQL_DIR`` overrides the folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
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
ORDER_QUARANTINE = "sp_order_quarantine"
SCHEMA_STATE = "sp_schema_state"
ENRICHMENT_QUEUE = "sp_enrichment_queue"


@dataclass(frozen=True, slots=True)
class Column:
    """One column: name, logical type, nullability and an optional SQL literal default."""

    name: str
    type: LogicalType
    nullable: bool = True
    default: str | None = None

    def ddl(self, dialect: Dialect) -> str:
        """``name TYPE [NOT NULL] [DEFAULT x]`` in ``dialect``."""
        out = f"{_check_identifier(self.name)} {TYPE_MAP[dialect][self.type]}"
        if not self.nullable:
            out += " NOT NULL"
        if self.default is not None:
            out += f" DEFAULT {self.default}"
        return out


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


def _cols(
    *specs: tuple[str, LogicalType] | tuple[str, LogicalType, bool] | tuple[str, LogicalType, bool, str],
) -> tuple[Column, ...]:
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

#: ``sp_sync_runs`` as schema v1 created it (frozen: v1's statements must never change).
SYNC_RUNS_V1_COLUMNS = _cols(
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
)
#: Columns v3 adds to ``sp_sync_runs``; the defaults fill the rows recorded before the upgrade.
SYNC_RUNS_V3_COLUMNS = _cols(
    ("try_number", "int"),
    ("deferrals", "int", False, "0"),
    ("deferred_seconds", "float", False, "0"),
    ("retries", "int", False, "0"),
    ("quarantined", "int", False, "0"),
)
#: v4: orders a sweep found newer than the warehouse held although the event path should have
#: delivered them (notifications that never arrived).
SYNC_RUNS_V4_COLUMNS = _cols(("missed_by_events", "int", False, "0"))
SYNC_RUNS_TABLE = Table(
    SYNC_RUNS,
    SYNC_RUNS_V1_COLUMNS + SYNC_RUNS_V3_COLUMNS + SYNC_RUNS_V4_COLUMNS,
    ("run_id",),
    (("window_end",),),
)

INBOX_V2_COLUMNS = _cols(
    ("notification_id", "text", False),
    ("notification_type", "text", False),
    ("order_id", "text"),
    ("seller_id", "text"),
    ("event_time", "ts"),
    ("message_id", "text"),
    ("payload", "text", False),
    ("received_at", "ts", False),
    ("processed_at", "ts"),
)
#: v4: the seller connection the notification was routed to, and Amazon's PublishTime (freshness).
INBOX_V4_COLUMNS = _cols(("conn_id", "text"), ("publish_time", "ts"))
INBOX_INDEXES: tuple[tuple[str, ...], ...] = (("processed_at", "event_time"), ("order_id",))
INBOX_TABLE = Table(INBOX, INBOX_V2_COLUMNS + INBOX_V4_COLUMNS, ("notification_id",), INBOX_INDEXES)

#: Orders the event path has seen change and whose details (getOrder) are still to be fetched: one row
#: per order however many notifications it had; ``newest_event_time`` is the newest change seen.
ENRICHMENT_QUEUE_TABLE = Table(
    ENRICHMENT_QUEUE,
    _cols(
        ("order_id", "text", False),
        ("conn_id", "text", False),
        ("seller_id", "text"),
        ("newest_event_time", "ts", False),
        ("first_queued_at", "ts", False),
        ("queued_at", "ts", False),
        ("attempts", "int", False, "0"),
        ("last_error", "text"),
        ("next_attempt_at", "ts"),
        ("claimed_by", "text"),
        ("claimed_until", "ts"),
    ),
    ("order_id",),
    (("conn_id", "newest_event_time"),),
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

ORDER_QUARANTINE_TABLE = Table(
    ORDER_QUARANTINE,
    _cols(
        ("order_id", "text", False),
        ("source", "text", False),
        ("seller_id", "text"),
        ("conn_id", "text"),
        ("api_version", "text"),
        ("last_updated_time", "ts"),
        ("reason", "text", False),
        ("raw_record", "text", False),
        ("record_sha256", "text", False),
        ("attempts", "int", False),
        ("first_seen_at", "ts", False),
        ("last_seen_at", "ts", False),
        ("dag_id", "text"),
        ("dag_run_id", "text"),
        ("task_id", "text"),
        ("resolved_at", "ts"),
    ),
    ("order_id", "source"),
    (("resolved_at", "last_seen_at"),),
)

#: Schema bookkeeping besides the version: e.g. the checksum of each view's SQL (``view_sha256:<name>``).
SCHEMA_STATE_TABLE = Table(
    SCHEMA_STATE,
    _cols(("key", "text", False), ("value", "text", False), ("updated_at", "ts", False)),
    ("key",),
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
        ORDER_QUARANTINE_TABLE,
        ENRICHMENT_QUEUE_TABLE,
    )
}


def _check_identifier(name: str) -> str:
    if not IDENTIFIER_RE.match(name):
        raise ValueError(f"Not a valid warehouse identifier: {name!r}")
    return name


def create_table_sql(table: Table, dialect: Dialect, *, name: str | None = None, temp: bool = False) -> str:
    """``CREATE TABLE`` for ``table`` in ``dialect`` (``name``/``temp`` for staging copies)."""
    cols = [c.ddl(dialect) for c in table.columns]
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


def add_column_sql(table: Table, column: Column, dialect: Dialect) -> str:
    """``ALTER TABLE ... ADD COLUMN`` (a NOT NULL column needs a default, which fills existing rows)."""
    if not column.nullable and column.default is None:
        raise ValueError(f"{table.name}.{column.name}: a NOT NULL column added later needs a default")
    return f"ALTER TABLE {_check_identifier(table.name)} ADD COLUMN {column.ddl(dialect)}"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version: a description and the statements that produce it from the previous one."""

    version: int
    description: str
    statements: Callable[[Dialect], list[str]]
    #: Name of a ``Warehouse`` method run with the cursor after the statements, in the same transaction
    #: (a data step SQL cannot do, e.g. encrypting the rows written before encryption existed).
    data_step: str | None = None


def _v1(dialect: Dialect) -> list[str]:
    out: list[str] = []
    sync_runs_v1 = Table(SYNC_RUNS, SYNC_RUNS_V1_COLUMNS, ("run_id",), (("window_end",),))
    for table in (
        ORDERS_TABLE,
        ITEMS_TABLE,
        PACKAGES_TABLE,
        STATUS_HISTORY_TABLE,
        BUYERS_TABLE,
        sync_runs_v1,
    ):
        out += table_statements(table, dialect)
    return out


def _v2(dialect: Dialect) -> list[str]:
    out: list[str] = []
    inbox_v2 = Table(INBOX, INBOX_V2_COLUMNS, ("notification_id",), INBOX_INDEXES)
    for table in (inbox_v2, QUARANTINE_TABLE, FBA_SHIPMENTS_TABLE):
        out += table_statements(table, dialect)
    return out


def _v3(dialect: Dialect) -> list[str]:
    # Runs inside ensure_schema's locked transaction, so ADD COLUMN needs no IF NOT EXISTS (which SQLite
    # lacks): the version row and the new columns commit together or not at all.
    out = table_statements(ORDER_QUARANTINE_TABLE, dialect) + table_statements(SCHEMA_STATE_TABLE, dialect)
    out += [add_column_sql(SYNC_RUNS_TABLE, c, dialect) for c in SYNC_RUNS_V3_COLUMNS]
    return out  # (v4 adds the reconciliation column below)


def _v4(dialect: Dialect) -> list[str]:
    out = table_statements(ENRICHMENT_QUEUE_TABLE, dialect)
    out += [add_column_sql(INBOX_TABLE, c, dialect) for c in INBOX_V4_COLUMNS]
    out += [add_column_sql(SYNC_RUNS_TABLE, c, dialect) for c in SYNC_RUNS_V4_COLUMNS]
    return out


def _v5(dialect: Dialect) -> list[str]:
    return []  # no DDL: the PII columns stay text and now hold Fernet tokens (see the data step)


#: Ordered, append-only. A released migration is never edited: add a new one instead.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "orders, items, packages, status history, buyer PII, sync runs", _v1),
    Migration(2, "event path: notification inbox, quarantine, FBA shipment status", _v2),
    Migration(3, "order quarantine, schema state (view checksums), sync-run tries/deferrals/retries", _v3),
    Migration(
        4, "event path: enrichment queue; inbox routing connection and publish time; missed_by_events", _v4
    ),
    Migration(5, "buyer PII encrypted at rest (existing rows encrypted)", _v5, "_encrypt_plaintext_buyers"),
)
LATEST_VERSION = MIGRATIONS[-1].version


#: Package that ships the SQL files (``sql/views/*.sql`` inside it).
SQL_PACKAGE = "selling_partner.warehouse"


def sql_dir() -> Traversable:
    """Folder holding ``views/``: ``$SP_API_SQL_DIR`` if set, else the package's own ``sql/`` resources.

    The package folder is read through ``importlib.resources``, so it works from a wheel, an editable
    install and a checkout alike.
    """
    env = os.environ.get("SP_API_SQL_DIR")
    path: Traversable = Path(env) if env else resources.files(SQL_PACKAGE).joinpath("sql")
    if not path.joinpath("views").is_dir():
        where = "SP_API_SQL_DIR" if env else f"the installed package {SQL_PACKAGE}"
        raise FileNotFoundError(
            f"SQL directory {path} ({where}) has no views/ folder. Point SP_API_SQL_DIR at a folder holding "
            "views/*.sql, or unset it to use the views shipped with the package (reinstall it if they are "
            "missing)."
        )
    return path


#: The few expressions the dialects spell differently, usable in portable view files as
#: ``{{name(arg, ...)}}`` (arguments are column expressions without commas or parentheses).
VIEW_MACROS: dict[str, dict[Dialect, str]] = {
    # hours from a to b (both times)
    "hours_between": {
        "postgres": "EXTRACT(EPOCH FROM ({1} - {0})) / 3600.0",
        "sqlite": "(julianday({1}) - julianday({0})) * 24.0",
    },
    # the UTC calendar date of a time (a date on PostgreSQL, 'YYYY-MM-DD' text on SQLite)
    "utc_date": {"postgres": "CAST({0} AT TIME ZONE 'UTC' AS date)", "sqlite": "substr({0}, 1, 10)"},
    # the sum of a money column (exact NUMERIC; SQLite sums decimal text as REAL: rounded to 4 places)
    "money_sum": {"postgres": "SUM({0})", "sqlite": "ROUND(SUM(CAST({0} AS REAL)), 4)"},
}
_MACRO_RE = re.compile(r"\{\{\s*([a-z_]+)\(([^(){}]*)\)\s*\}\}")


def expand_view_macros(sql: str, dialect: Dialect) -> str:
    """Replace ``{{macro(args)}}`` in view SQL with the dialect's spelling (:data:`VIEW_MACROS`)."""

    def expand(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
        if name not in VIEW_MACROS:
            raise ValueError(f"unknown view macro {{{{{name}(...)}}}}; known: {', '.join(VIEW_MACROS)}")
        return VIEW_MACROS[name][dialect].format(*args)

    return _MACRO_RE.sub(expand, sql)


def iter_views(dialect: Dialect, directory: Traversable | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(view_name, select_sql)`` in name order.

    ``views/<name>.sql`` is portable (with ``{{macro(...)}}`` for what the dialects spell differently:
    :data:`VIEW_MACROS`); ``views/<name>.<dialect>.sql`` overrides it for one dialect.
    """
    views = (directory or sql_dir()).joinpath("views")
    chosen: dict[str, Traversable] = {}
    for entry in sorted(views.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql") or not entry.is_file():
            continue
        parts = entry.name[: -len(".sql")].split(".")
        if len(parts) == 1:
            chosen.setdefault(parts[0], entry)
        elif len(parts) == 2 and parts[1] == dialect:
            chosen[parts[0]] = entry
    for name in sorted(chosen):
        if not VIEW_NAME_RE.match(name):
            raise ValueError(f"View file {chosen[name]} must be named sp_v_<lowercase_name>[.<dialect>].sql")
        text = chosen[name].read_text(encoding="utf-8").strip().rstrip(";").strip()
        yield name, expand_view_macros(text, dialect)


def view_state_key(name: str) -> str:
    """``sp_schema_state`` key holding the checksum of view ``name``'s SQL."""
    return f"view_sha256:{name}"


def sql_sha256(sql: str) -> str:
    """Checksum of a view's SQL as it is created (after ``iter_views``' trimming)."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()
