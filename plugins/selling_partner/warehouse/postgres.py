"""PostgreSQL backend: connections from ``PostgresHook``, staging with ``COPY ... FROM STDIN``."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from selling_partner.orders.canonical import CanonicalOrder

from . import schema as s
from .base import ENRICH_CLAIM_SQL, ORDERS_UPSERT_SQL, NewOrders, Warehouse, _stage_name
from .rows import require_aware
from .text import clean_text

#: Logical column type -> PostgreSQL type name for binary COPY.
PG_COPY_TYPES = {
    "text": "text",
    "int": "int8",
    "bool": "bool",
    "ts": "timestamptz",
    "money": "numeric",
    "float": "float8",
}

#: Money columns go into binary COPY already encoded (PostgreSQL's binary ``numeric``, once per distinct
#: amount: see ``PostgresWarehouse._copy_money``), so the COPY passes those bytes through as they are. A
#: binary COPY sends no type per field: the server reads each one with the column's own ``numeric_recv``.
COPY_MONEY_TYPE = "bytea"
#: Distinct amounts kept encoded per warehouse (prices repeat; the cache is cleared when full).
MONEY_CACHE_SIZE = 65_536


def _binary_ids(sql: str, cur: Any) -> str:
    """psycopg 3 binds the id list in binary (``%b``: measured 4x faster than text for 4,000 ids)."""
    return sql.replace("%(ids)s", "%(ids)b") if hasattr(cur, "copy") else sql


def copy_types(table: s.Table) -> list[str]:
    """Binary COPY types of ``table``'s columns for rows built with ``PostgresWarehouse._copy_money``."""
    return [COPY_MONEY_TYPE if c.type == "money" else PG_COPY_TYPES[c.type] for c in table.columns]


#: ``work_mem`` for the loader's transactions (sorting a batch by key before the upsert).
WORK_MEM = "64MB"

#: The orders upsert also reports which orders it inserted: a row version whose ``xmax`` is 0 was
#: inserted by this statement; an updated (or conflict-locked) row carries this transaction's id.
ORDERS_UPSERT_RETURNING_SQL = f"{ORDERS_UPSERT_SQL} RETURNING order_id, xmax = 0"

#: Which of the just-inserted orders (``ids``) already have items or packages (orphaned rows).
ORPHANED_CHILDREN_SQL = (
    f"SELECT order_id FROM {s.ITEMS} WHERE order_id = ANY(%(ids)s) "
    f"UNION SELECT order_id FROM {s.PACKAGES} WHERE order_id = ANY(%(ids)s)"
)

#: Which orders of a batch (``ids``) are stored (0), have leftover items or packages without an order
#: row (1), or have an open quarantine row (2). One round trip, each table probed on its key.
KNOWN_ORDERS_SQL = (
    f"SELECT order_id, 0 FROM {s.ORDERS} WHERE order_id = ANY(%(ids)s) "
    f"UNION ALL SELECT DISTINCT order_id, 1 FROM {s.ITEMS} WHERE order_id = ANY(%(ids)s) "
    f"UNION ALL SELECT DISTINCT order_id, 1 FROM {s.PACKAGES} WHERE order_id = ANY(%(ids)s) "
    f"UNION ALL SELECT DISTINCT order_id, 2 FROM {s.ORDER_QUARANTINE} "
    "WHERE order_id = ANY(%(ids)s) AND resolved_at IS NULL"
)

#: SQLSTATE unique_violation.
UNIQUE_VIOLATION = "23505"

#: Arbitrary constant key of the advisory lock that serialises ensure_schema across sessions.
SCHEMA_LOCK_KEY = 0x5350_4150_4957_4800  # "SPAPIWH"

#: Views in the schema the warehouse creates them in (the first of search_path). pg_class is read
#: directly: pg_views would call pg_get_viewdef, and nothing here may touch the views themselves.
EXISTING_VIEWS_SQL = (
    "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'v' AND n.nspname = current_schema()"
)


def _tsv_field(value: Any) -> str:
    """One field of COPY's text format (used with psycopg2, which has no row-wise COPY)."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if any(ch in text for ch in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def rows_to_tsv(rows: Sequence[tuple[Any, ...]]) -> str:
    """Rows in COPY text format."""
    return "".join("\t".join(_tsv_field(v) for v in row) + "\n" for row in rows)


class PostgresWarehouse(Warehouse):
    """The reference warehouse on a ``postgres`` connection."""

    dialect = "postgres"
    placeholder = "%s"

    def __init__(self, conn_id: str, *, connection_factory: Any = None, pii_cipher: Any = None) -> None:
        super().__init__(conn_id, pii_cipher=pii_cipher)
        self._factory = connection_factory
        self._money_cache: dict[str, bytes] = {}

    def _connect(self) -> Any:
        if self._factory is not None:
            return self._factory()
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=self.conn_id).get_conn()

    def _begin(self, conn: Any, *, write: bool) -> None:
        # Both psycopg 2 and 3 open a transaction implicitly on the first statement (autocommit off).
        if getattr(conn, "autocommit", False):
            conn.autocommit = False
        # Enough sort memory that a batch's key-ordered insert does not spill to disk (this transaction only).
        with conn.cursor() as cur:
            cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")

    def _lock_schema(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))

    def _encode_ts(self, value: datetime | None) -> Any:
        return require_aware(value)

    def _existing_views(self, cur: Any) -> set[str]:
        cur.execute(EXISTING_VIEWS_SQL)
        return {name for (name,) in cur.fetchall()}

    def _encode_money(self, value: str | None) -> Decimal | None:
        if value is None:
            return None
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValueError(f"Not a decimal amount: {value!r}") from None

    def _row_money(self, cur: Any) -> Any:
        """psycopg 3 (binary COPY): amounts pre-encoded; psycopg2 (text COPY): ``Decimal``."""
        return self._copy_money() if hasattr(cur, "copy") else self._encode_money

    def _copy_money(self) -> Any:
        """A money encoder for binary COPY: the amount as PostgreSQL's binary ``numeric`` (bytes).

        Checked like ``_encode_money`` (``ValueError`` for what is not a decimal amount), encoded by
        psycopg's own ``Decimal`` dumper, once per distinct text: encoding a ``Decimal`` per value was
        the loader's largest client cost (measured: 1.3 s of 2.5 s encoding 200,000 orders' rows).
        """
        from psycopg.types.numeric import dump_decimal_to_numeric_binary

        cache = self._money_cache
        encode = self._encode_money

        def money(value: str | None) -> bytes | None:
            if value is None:
                return None
            out = cache.get(value)
            if out is None:
                out = bytes(dump_decimal_to_numeric_binary(encode(value)))
                if len(cache) >= MONEY_CACHE_SIZE:
                    cache.clear()
                cache[value] = out
            return out

        return money

    def _stage(self, cur: Any, table: s.Table, rows: Iterable[tuple[Any, ...]]) -> None:
        name = _stage_name(table)
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(s.create_table_sql(table, "postgres", name=name, temp=True) + " ON COMMIT DROP")
        self._copy(cur, name, table, rows)

    def _copy(self, cur: Any, name: str, table: s.Table, rows: Iterable[tuple[Any, ...]]) -> int:
        """``COPY`` ``rows`` (tuples in ``table``'s column order) into the table called ``name``.

        Rows are encoded as they are consumed, so a generator is streamed while the server inserts.
        Returns the number of rows written.
        """
        copy_sql = f"COPY {name} ({', '.join(table.column_names)}) FROM STDIN"
        n = 0
        if hasattr(cur, "copy"):  # psycopg 3: binary COPY with declared types (no per-value type lookup)
            with cur.copy(f"{copy_sql} (FORMAT BINARY)") as copy:
                copy.set_types(copy_types(table))
                write = copy.write_row
                for n, row in enumerate(rows, 1):  # noqa: B007 - n is the count afterwards
                    write(row)
        else:  # psycopg2
            rows = list(rows)
            n = len(rows)
            if n:
                cur.copy_expert(copy_sql, io.StringIO(rows_to_tsv(rows)))
        return n

    def _stage_more(self, cur: Any, table: s.Table, rows: Iterable[tuple[Any, ...]]) -> None:
        self._copy(cur, _stage_name(table), table, rows)

    def _probe_orders(self, cur: Any, orders: Sequence[CanonicalOrder]) -> Callable[[], Any]:
        """Run ``KNOWN_ORDERS_SQL`` for the batch's order ids on a helper thread: the server answers while
        this thread builds the rows (measured: the probe and the build take about as long each)."""
        ids = list({clean_text(o.order_id) or "" for o in orders})
        answer: dict[str, Any] = {}

        def probe() -> None:
            try:
                cur.execute(_binary_ids(KNOWN_ORDERS_SQL, cur), {"ids": ids})
                answer["rows"] = cur.fetchall()
            except BaseException as exc:  # re-raised by wait()
                answer["error"] = exc

        thread = threading.Thread(target=probe, name="sp-warehouse-probe", daemon=True)
        thread.start()

        def wait() -> Any:
            thread.join()
            if "error" in answer:
                raise answer["error"]
            return answer["rows"]

        return wait

    def _insert_new_orders(self, cur: Any, rows: Sequence[tuple[Any, ...]], probed: Any) -> NewOrders:
        """COPY the batch's absent orders straight into the orders table (no staging hop, no upsert).

        The probe (``KNOWN_ORDERS_SQL``) found the stored orders, the ones with leftover items or packages
        (they take the staged path, which replaces those children) and open quarantine rows. If a row
        appears meanwhile (a concurrent writer), the COPY waits for that writer and hits the primary key;
        it is then rolled back to its savepoint and every order takes the staged upsert.
        """
        known: set[str] = set()
        quarantine_open = False
        for order_id, kind in probed:
            if kind == 2:
                quarantine_open = True
            else:
                known.add(order_id)
        new = [r for r in rows if r[0] not in known] if known else rows
        if not new:
            return NewOrders(frozenset(), quarantine_open)
        cur.execute("SAVEPOINT sp_new_orders")
        try:
            self._copy(cur, s.ORDERS, s.ORDERS_TABLE, new)
        except Exception as exc:
            if _sqlstate(exc) != UNIQUE_VIOLATION:
                raise
            cur.execute("ROLLBACK TO SAVEPOINT sp_new_orders")
            return NewOrders(frozenset(), quarantine_open)
        cur.execute("RELEASE SAVEPOINT sp_new_orders")
        return NewOrders(frozenset(r[0] for r in new), quarantine_open)

    def _upsert_staged_orders(self, cur: Any) -> tuple[int, frozenset[str]]:
        """As the base; an inserted order that already has items or packages is not reported as new.

        Its leftover children must be replaced like those of any accepted version (the staged path
        deletes the ones it lacks); a direct COPY would only notice leftovers that share a key.
        """
        cur.execute(ORDERS_UPSERT_RETURNING_SQL)
        rows = cur.fetchall()
        new = sorted(order_id for order_id, inserted in rows if inserted)
        if new:
            cur.execute(_binary_ids(ORPHANED_CHILDREN_SQL, cur), {"ids": new})
            orphaned = {order_id for (order_id,) in cur.fetchall()}
            if orphaned:
                new = [order_id for order_id in new if order_id not in orphaned]
        return len(rows), frozenset(new)

    def _insert_new_children(
        self, cur: Any, children: Mapping[s.Table, Iterable[tuple[Any, ...]]]
    ) -> dict[s.Table, int] | None:
        """COPY the children of just-inserted orders into the final tables, skipping the staging hop.

        Such orders can only have children if rows were orphaned (e.g. orders deleted by hand). Orders
        with orphaned items or packages are not reported as new (see ``_upsert_staged_orders``); if an
        orphaned history row shares a key, the COPY hits the primary key, is rolled back to the savepoint
        and all rows take the staged path.
        """
        cur.execute("SAVEPOINT sp_new_children")
        written: dict[s.Table, int] = {}
        try:
            for table, rows in children.items():
                written[table] = self._copy(cur, table.name, table, rows)
        except Exception as exc:
            if _sqlstate(exc) != UNIQUE_VIOLATION:
                raise
            cur.execute("ROLLBACK TO SAVEPOINT sp_new_children")
            return None
        cur.execute("RELEASE SAVEPOINT sp_new_children")
        return written

    def _claim_sql(self) -> str:
        """Claims skip rows another transaction is claiming (no waiting, no double claim)."""
        return ENRICH_CLAIM_SQL.format(lock=" FOR UPDATE SKIP LOCKED", ph="{ph}")

    def _forget_accepted(self, cur: Any, order_ids: frozenset[str]) -> None:
        cur.execute(
            f"DELETE FROM {_stage_name(s.ACCEPTED_TABLE)} WHERE order_id = ANY(%s)", (sorted(order_ids),)
        )


def _sqlstate(exc: BaseException) -> str | None:
    """SQLSTATE of a psycopg 3 (``sqlstate``) or psycopg2 (``pgcode``) error."""
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
