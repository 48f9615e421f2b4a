"""Where the page's numbers come from: the warehouse (``DashboardReads``) and Airflow Variables.

Each panel is built by :meth:`Dashboard.panel` from one round of reads; a warehouse that is missing,
unreachable or not yet created raises :class:`SourceUnavailable` with a one-line message meant for the
page (never a stack trace, never a password: only the exception class and the first line of its
message, which for psycopg and sqlite name the host or file, not credentials).

Variables (the sync's checkpoints ``sp_api_sync__*`` and the default rate-limit backend's buckets
``sp_api_rate_limit__*``) are read from Airflow's metadata database through its ORM; the page runs in
the api-server, which has that database. The page never calls SP-API.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from selling_partner.checkpoint import loads_checkpoint
from selling_partner.hooks.ratelimit import VARIABLE_PREFIX
from selling_partner.settings import WAREHOUSE_CONN_ID
from selling_partner.warehouse.text import one_line

from . import panels as p

log = logging.getLogger(__name__)

#: The warehouse connection the page reads (default: the DAGs' ``warehouse_default``).
WAREHOUSE_CONN_ENV = "SP_API_UI_WAREHOUSE_CONN_ID"
PANELS = ("orders", "freshness", "work", "quota", "charts")
#: SQLite's and PostgreSQL's words for a table that is not there.
_NO_TABLE = re.compile(r"no such table|relation \S+ does not exist")


class SourceUnavailable(RuntimeError):
    """A source of the page cannot be read; the message is shown on the page as is."""


def warehouse_conn_id() -> str:
    return os.environ.get(WAREHOUSE_CONN_ENV, "").strip() or WAREHOUSE_CONN_ID


def _explain(what: str, exc: BaseException) -> str:
    text = one_line(str(exc))[:240]
    return f"{what}: {type(exc).__name__}{': ' + text if text else ''}"


def read_variables(*prefixes: str) -> dict[str, str | None]:
    """``{key: value}`` of the Airflow Variables whose key starts with one of ``prefixes`` (decrypted)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import or_, select

    with create_session() as session:
        rows = session.scalars(select(Variable).where(or_(*(Variable.key.startswith(x) for x in prefixes))))
        return {v.key: v.val for v in rows if any(v.key.startswith(x) for x in prefixes)}


class Dashboard:
    """Builds the panels (``PANELS``) from the warehouse ``conn_id`` and the Variables.

    :param conn_id: warehouse connection (default :func:`warehouse_conn_id`)
    :param base_path: path of Airflow's ``[api] base_url`` (for links into the UI)
    :param variables: reader of Variables by key prefix (default :func:`read_variables`)
    :param clock: the current time (tests pass a fixed one)
    """

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        base_path: str = "",
        variables: Callable[..., dict[str, str | None]] = read_variables,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.conn_id = conn_id or warehouse_conn_id()
        self.base_path = base_path.rstrip("/")
        self._variables = variables
        self._clock = clock

    # ------------------------------------------------------------------ sources
    def _reads(self) -> Any:
        from selling_partner.warehouse import get_warehouse
        from selling_partner.warehouse.dashboard import DashboardReads

        try:
            return DashboardReads(get_warehouse(self.conn_id))
        except Exception as exc:
            raise SourceUnavailable(
                _explain(f"warehouse connection {self.conn_id!r} is not usable", exc)
            ) from exc

    def _warehouse(self, fn: Callable[[Any], Any]) -> Any:
        reads = self._reads()
        try:
            return fn(reads)
        except Exception as exc:
            log.warning("Amazon orders page: warehouse %s cannot be read", self.conn_id, exc_info=True)
            message = _explain(f"warehouse {self.conn_id!r} cannot be read", exc)
            if _NO_TABLE.search(str(exc)):
                message += " (no tables yet: the first sync or events run creates them)"
            raise SourceUnavailable(message) from exc

    def _vars(self, prefix: str) -> dict[str, str | None]:
        try:
            return self._variables(prefix)
        except Exception as exc:
            log.warning("Amazon orders page: Variables cannot be read", exc_info=True)
            raise SourceUnavailable(_explain("Airflow Variables cannot be read", exc)) from exc

    def checkpoints(self, prefix: str = p.CHECKPOINT_PREFIX) -> dict[str, dict[str, Any]]:
        """The sync's checkpoints (or, with ``HISTORY_PREFIX``, the history loads' ledgers) by Variable
        key; unreadable ones are skipped with a log line."""
        out = {}
        for key, raw in self._vars(prefix).items():
            try:
                ckpt = loads_checkpoint(raw)
            except ValueError:
                log.warning("Amazon orders page: checkpoint %s is not JSON", key)
                continue
            if ckpt is not None:
                out[key] = ckpt
        return out

    def buckets(self, now: datetime) -> list[dict[str, Any]]:
        """Token buckets of the ``variable`` backend and (when in the warehouse) the ``postgres`` one."""
        rows = [p.bucket_from_variable(k, v, now) for k, v in self._vars(VARIABLE_PREFIX).items()]
        rows += [p.bucket_from_table(r, now) for r in self._warehouse(lambda r: r.rate_limit_buckets())]
        return [r for r in rows if r is not None]

    def now(self) -> datetime:
        return self._clock()

    # ------------------------------------------------------------------ panels
    def panel(self, name: str) -> dict[str, Any]:
        """The panel ``name`` (one of ``PANELS``) as JSON-ready data; raises :class:`SourceUnavailable`."""
        if name not in PANELS:
            raise KeyError(name)
        now = self._clock()
        return getattr(self, f"_{name}")(now)

    def _orders(self, now: datetime) -> dict[str, Any]:
        def read(r: Any) -> tuple[Any, ...]:
            summary, first = r.fbm_awaiting_shipment(limit=10)
            changes = r.status_changes(since=now - p.DAY, recent_since=now - p.HOUR)
            return r.order_status_counts(), changes, summary, first

        return p.orders_panel(*self._warehouse(read), now)

    def _freshness(self, now: datetime) -> dict[str, Any]:
        def read(r: Any) -> tuple[Any, ...]:
            return (
                r.notification_freshness(),
                r.publish_to_status_seconds(now - p.HOUR),
                r.sync_run_totals(now - p.DAY),
            )

        notifications, latencies, sync_day = self._warehouse(read)
        return p.freshness_panel(notifications, latencies, self.checkpoints(), sync_day, now)

    def _work(self, now: datetime) -> dict[str, Any]:
        def read(r: Any) -> tuple[Any, ...]:
            return r.enrichment_queue(now), r.open_quarantine(limit=5), r.sync_run_totals(now - p.DAY)

        queue, quarantine, sync_day = self._warehouse(read)
        sellers = {r["conn_id"]: r["seller_id"] for r in sync_day if r["seller_id"]}
        return p.work_panel(
            queue,
            quarantine,
            self.checkpoints(),
            self.buckets(now),
            sellers,
            now,
            self.base_path,
            ledgers=self.checkpoints(p.HISTORY_PREFIX),
        )

    def _quota(self, now: datetime) -> dict[str, Any]:
        sync_hour = self._warehouse(lambda r: r.sync_run_totals(now - p.HOUR))
        return p.quota_panel(sync_hour, self.buckets(now), now)

    def _charts(self, now: datetime) -> dict[str, Any]:
        def read(r: Any) -> tuple[Any, ...]:
            return r.status_changes_by_hour(now - p.DAY), r.publish_to_status_seconds(now - p.HOUR)

        return p.charts_panel(*self._warehouse(read), now)
