"""Read-only SQL behind the "Amazon orders" page in the Airflow UI (``selling_partner.ui``).

Every statement aggregates: the page shows counts, ages and order ids, never a buyer column
(``sp_order_buyers`` is not read at all) and never a raw body (``payload``, ``raw_body``,
``raw_record``). ``{ph}`` is the backend's placeholder; the few expressions the dialects spell
differently are in :data:`EXPRESSIONS`. :class:`DashboardReads` runs them on a :class:`Warehouse`, each
in one read-only transaction, and returns plain rows (times aware UTC, counts ``int``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import schema as s
from .base import Warehouse
from .rows import parse_ts

#: Dialect spellings: the UTC hour of a time as ``YYYY-MM-DDTHH`` text, and seconds from a to b.
EXPRESSIONS: dict[str, dict[s.Dialect, str]] = {
    "utc_hour": {
        "postgres": "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')",
        "sqlite": "substr({0}, 1, 13)",
    },
    "seconds_between": {
        "postgres": "EXTRACT(EPOCH FROM ({1} - {0}))",
        "sqlite": "(julianday({1}) - julianday({0})) * 86400.0",
    },
}

#: Order statuses waiting for the seller to ship (FBM).
AWAITING_SHIPMENT = ("UNSHIPPED", "PARTIALLY_SHIPPED")


def expr(name: str, dialect: s.Dialect, *args: str) -> str:
    """:data:`EXPRESSIONS` ``name`` in ``dialect`` applied to column expressions ``args``."""
    return EXPRESSIONS[name][dialect].format(*args)


ORDER_STATUS_COUNTS_SQL = (
    f"SELECT seller_id, marketplace_id, order_status, COUNT(*) FROM {s.ORDERS} "
    "GROUP BY seller_id, marketplace_id, order_status ORDER BY seller_id, marketplace_id, order_status"
)

#: (recent_since, since): status changes (history rows, by Amazon's change time) of each status.
STATUS_CHANGES_SQL = (
    "SELECT o.seller_id, o.marketplace_id, h.order_status, COUNT(*), "
    "SUM(CASE WHEN h.last_updated_time >= {ph} THEN 1 ELSE 0 END) "
    f"FROM {s.STATUS_HISTORY} h JOIN {s.ORDERS} o ON o.order_id = h.order_id "
    "WHERE h.last_updated_time >= {ph} "
    "GROUP BY o.seller_id, o.marketplace_id, h.order_status "
    "ORDER BY o.seller_id, o.marketplace_id, h.order_status"
)


def status_changes_by_hour_sql(dialect: s.Dialect) -> str:
    """(since): status changes per UTC hour and new status."""
    hour = expr("utc_hour", dialect, "last_updated_time")
    return (
        f"SELECT {hour} AS hour, order_status, COUNT(*) FROM {s.STATUS_HISTORY} "
        "WHERE last_updated_time >= {ph} GROUP BY hour, order_status ORDER BY hour, order_status"
    )


_AWAITING = f"fulfilled_by = 'MERCHANT' AND order_status IN ({', '.join(repr(x) for x in AWAITING_SHIPMENT)})"
FBM_AWAITING_SUMMARY_SQL = (
    f"SELECT seller_id, marketplace_id, COUNT(*), MIN(latest_ship_time), MIN(created_time) FROM {s.ORDERS} "
    f"WHERE {_AWAITING} GROUP BY seller_id, marketplace_id ORDER BY seller_id, marketplace_id"
)
#: (limit): the FBM orders to ship first (ship-by soonest; orders without a ship-by last).
FBM_AWAITING_OLDEST_SQL = (
    "SELECT order_id, seller_id, marketplace_id, order_status, latest_ship_time, items_unshipped, "
    f"created_time FROM {s.ORDERS} WHERE {_AWAITING} "
    "ORDER BY CASE WHEN latest_ship_time IS NULL THEN 1 ELSE 0 END, latest_ship_time, order_id LIMIT {ph}"
)

NOTIFICATION_FRESHNESS_SQL = (
    "SELECT conn_id, seller_id, COUNT(*), MAX(received_at), MAX(publish_time) "
    f"FROM {s.INBOX} GROUP BY conn_id, seller_id ORDER BY conn_id, seller_id"
)


def publish_to_status_sql(dialect: s.Dialect) -> str:
    """(since): seconds from Amazon's PublishTime to the status being applied, per notification."""
    seconds = expr("seconds_between", dialect, "publish_time", "processed_at")
    return (
        f"SELECT {seconds} FROM {s.INBOX} WHERE publish_time IS NOT NULL AND processed_at IS NOT NULL "
        "AND processed_at >= {ph}"
    )


#: (since): sync-run tries finished since ``since``, per connection and mode.
SYNC_RUN_TOTALS_SQL = (
    "SELECT conn_id, mode, MAX(seller_id), COUNT(*), SUM(calls), SUM(throttled), SUM(retries), "
    "SUM(deferrals), SUM(missed_by_events), SUM(orders), "
    "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), MAX(finished_at) "
    f"FROM {s.SYNC_RUNS} WHERE finished_at >= {{ph}} GROUP BY conn_id, mode ORDER BY conn_id, mode"
)

#: (now): queue depth per connection, oldest entry, orders being retried, orders claimed right now.
ENRICHMENT_QUEUE_STATS_SQL = (
    "SELECT conn_id, COUNT(*), MIN(first_queued_at), SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN claimed_until IS NOT NULL AND claimed_until >= {ph} THEN 1 ELSE 0 END) "
    f"FROM {s.ENRICHMENT_QUEUE} GROUP BY conn_id ORDER BY conn_id"
)

ORDER_QUARANTINE_REASONS_SQL = (
    "SELECT source, reason, COUNT(*), MAX(last_seen_at) "
    f"FROM {s.ORDER_QUARANTINE} WHERE resolved_at IS NULL "
    "GROUP BY source, reason ORDER BY COUNT(*) DESC, source, reason"
)
#: (limit): the newest open order quarantine rows (no raw record).
ORDER_QUARANTINE_NEWEST_SQL = (
    "SELECT order_id, source, seller_id, conn_id, reason, attempts, last_seen_at, "
    "dag_id, dag_run_id, task_id "
    f"FROM {s.ORDER_QUARANTINE} WHERE resolved_at IS NULL ORDER BY last_seen_at DESC, order_id LIMIT {{ph}}"
)
NOTIFICATION_QUARANTINE_REASONS_SQL = (
    f"SELECT reason, COUNT(*), MAX(received_at) FROM {s.QUARANTINE} GROUP BY reason "
    "ORDER BY COUNT(*) DESC, reason"
)
#: (limit): the newest quarantined notifications (no raw body).
NOTIFICATION_QUARANTINE_NEWEST_SQL = (
    "SELECT body_sha256, notification_id, reason, received_at "
    f"FROM {s.QUARANTINE} ORDER BY received_at DESC, body_sha256 LIMIT {{ph}}"
)

#: The shared token buckets of ``rate_limit_backend = postgres`` (``hooks.ratelimit.PG_TABLE``) when
#: they live in the warehouse database.
RATE_LIMIT_BUCKETS_TABLE = "sp_rate_limit_buckets"
RATE_LIMIT_BUCKETS_EXISTS_SQL = f"SELECT to_regclass('{RATE_LIMIT_BUCKETS_TABLE}') IS NOT NULL"
RATE_LIMIT_BUCKETS_SQL = (
    f"SELECT bucket_key, tokens, rate, burst, updated_at FROM {RATE_LIMIT_BUCKETS_TABLE} ORDER BY bucket_key"
)


def _int(value: Any) -> int:
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class QuarantineSummary:
    """Open quarantine: counts by reason and the newest rows of both quarantine tables (no raw bodies)."""

    order_reasons: list[dict[str, Any]]
    order_newest: list[dict[str, Any]]
    notification_reasons: list[dict[str, Any]]
    notification_newest: list[dict[str, Any]]


class DashboardReads:
    """The page's reads on one warehouse (PostgreSQL or SQLite); every method is one read transaction."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.wh._transaction(write=False) as cur:
            cur.execute(sql.format(ph=self.wh.placeholder), tuple(params))
            return list(cur.fetchall())

    def _ts(self, value: datetime) -> Any:
        return self.wh._encode_ts(value)

    def order_status_counts(self) -> list[dict[str, Any]]:
        """Orders per (seller, marketplace, current status)."""
        return [
            {"seller_id": seller, "marketplace_id": mp, "order_status": status, "orders": _int(n)}
            for seller, mp, status, n in self._rows(ORDER_STATUS_COUNTS_SQL)
        ]

    def status_changes(self, *, since: datetime, recent_since: datetime) -> list[dict[str, Any]]:
        """Status changes per (seller, marketplace, new status) since ``since`` and since ``recent_since``,
        by Amazon's change time (``sp_order_status_history.last_updated_time``)."""
        rows = self._rows(STATUS_CHANGES_SQL, (self._ts(recent_since), self._ts(since)))
        return [
            {
                "seller_id": seller,
                "marketplace_id": mp,
                "order_status": status,
                "changes": _int(n),
                "recent_changes": _int(recent),
            }
            for seller, mp, status, n, recent in rows
        ]

    def status_changes_by_hour(self, since: datetime) -> list[dict[str, Any]]:
        """Status changes per UTC hour (``hour``: its start) and new status since ``since``."""
        rows = self._rows(status_changes_by_hour_sql(self.wh.dialect), (self._ts(since),))
        return [
            {
                "hour": datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC),
                "order_status": status,
                "changes": _int(n),
            }
            for hour, status, n in rows
        ]

    def fbm_awaiting_shipment(self, *, limit: int = 10) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """FBM orders waiting to ship: ``(per seller and marketplace, the first ``limit`` to ship)``."""
        summary = [
            {
                "seller_id": seller,
                "marketplace_id": mp,
                "orders": _int(n),
                "oldest_ship_by": parse_ts(ship_by),
                "oldest_created": parse_ts(created),
            }
            for seller, mp, n, ship_by, created in self._rows(FBM_AWAITING_SUMMARY_SQL)
        ]
        first = [
            {
                "order_id": oid,
                "seller_id": seller,
                "marketplace_id": mp,
                "order_status": status,
                "latest_ship_time": parse_ts(ship_by),
                "items_unshipped": units,
                "created_time": parse_ts(created),
            }
            for oid, seller, mp, status, ship_by, units, created in self._rows(
                FBM_AWAITING_OLDEST_SQL, (limit,)
            )
        ]
        return summary, first

    def notification_freshness(self) -> list[dict[str, Any]]:
        """Per (connection, seller): notifications landed, newest ``received_at`` and ``publish_time``."""
        return [
            {
                "conn_id": conn,
                "seller_id": seller,
                "notifications": _int(n),
                "newest_received_at": parse_ts(rec),
                "newest_publish_time": parse_ts(pub),
            }
            for conn, seller, n, rec, pub in self._rows(NOTIFICATION_FRESHNESS_SQL)
        ]

    def publish_to_status_seconds(self, since: datetime) -> list[float]:
        """Seconds from PublishTime to the applied status of each notification processed since ``since``."""
        rows = self._rows(publish_to_status_sql(self.wh.dialect), (self._ts(since),))
        return sorted(float(x) for (x,) in rows if x is not None)

    def sync_run_totals(self, since: datetime) -> list[dict[str, Any]]:
        """Per (connection, mode): the sync-run tries finished since ``since`` and what they spent."""
        keys = (
            "conn_id",
            "mode",
            "seller_id",
            "runs",
            "calls",
            "throttled",
            "retries",
            "deferrals",
            "missed_by_events",
            "orders",
            "failed",
            "last_finished_at",
        )
        out = []
        for row in self._rows(SYNC_RUN_TOTALS_SQL, (self._ts(since),)):
            rec = dict(zip(keys, row, strict=True))
            for k in keys[3:-1]:
                rec[k] = _int(rec[k])
            rec["last_finished_at"] = parse_ts(rec["last_finished_at"])
            out.append(rec)
        return out

    def enrichment_queue(self, now: datetime) -> list[dict[str, Any]]:
        """Per connection: orders queued, the oldest ``first_queued_at``, orders retrying, claimed now."""
        return [
            {
                "conn_id": conn,
                "queued": _int(n),
                "oldest_queued_at": parse_ts(oldest),
                "retrying": _int(retry),
                "claimed": _int(claimed),
            }
            for conn, n, oldest, retry, claimed in self._rows(ENRICHMENT_QUEUE_STATS_SQL, (self._ts(now),))
        ]

    def open_quarantine(self, *, limit: int = 5) -> QuarantineSummary:
        """Open order quarantine and notification quarantine: counts by reason, newest ``limit`` rows."""
        order_reasons = [
            {"source": src, "reason": reason, "rows": _int(n), "newest": parse_ts(newest)}
            for src, reason, n, newest in self._rows(ORDER_QUARANTINE_REASONS_SQL)
        ]
        keys = (
            "order_id",
            "source",
            "seller_id",
            "conn_id",
            "reason",
            "attempts",
            "last_seen_at",
            "dag_id",
            "dag_run_id",
            "task_id",
        )
        order_newest = []
        for row in self._rows(ORDER_QUARANTINE_NEWEST_SQL, (limit,)):
            rec = dict(zip(keys, row, strict=True))
            rec["attempts"] = _int(rec["attempts"])
            rec["last_seen_at"] = parse_ts(rec["last_seen_at"])
            order_newest.append(rec)
        notification_reasons = [
            {"reason": reason, "rows": _int(n), "newest": parse_ts(newest)}
            for reason, n, newest in self._rows(NOTIFICATION_QUARANTINE_REASONS_SQL)
        ]
        notification_newest = [
            {"body_sha256": sha, "notification_id": nid, "reason": reason, "received_at": parse_ts(rec)}
            for sha, nid, reason, rec in self._rows(NOTIFICATION_QUARANTINE_NEWEST_SQL, (limit,))
        ]
        return QuarantineSummary(order_reasons, order_newest, notification_reasons, notification_newest)

    def rate_limit_buckets(self) -> list[dict[str, Any]]:
        """Rows of the shared ``postgres`` rate-limit backend when its table is in the warehouse database."""
        if self.wh.dialect != "postgres":
            return []
        with self.wh._transaction(write=False) as cur:
            cur.execute(RATE_LIMIT_BUCKETS_EXISTS_SQL)
            if not cur.fetchone()[0]:
                return []
            cur.execute(RATE_LIMIT_BUCKETS_SQL)
            rows = cur.fetchall()
        return [
            {
                "bucket_key": key,
                "tokens": float(tokens),
                "rate": float(rate),
                "burst": float(burst),
                "updated_at": parse_ts(updated),
            }
            for key, tokens, rate, burst, updated in rows
        ]
