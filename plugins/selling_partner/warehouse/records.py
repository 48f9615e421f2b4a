"""Records the warehouse accepts and returns besides the canonical order."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .text import clean_text, one_line

if TYPE_CHECKING:
    from selling_partner.orders.canonical import CanonicalOrder

#: ``sp_sync_runs.status`` values: finished, stopped at a budget (time/pages) with work left, the try raised.
SYNC_RUN_STATUSES = ("success", "partial", "failed")
#: ``sp_order_quarantine.source`` values: the sync's searchOrders/getOrders pages, the event path's getOrder,
#: the history backfill's order reports.
ORDER_QUARANTINE_SOURCES = ("sync", "enrich", "report")
#: An order id usable as the quarantine key: 1-64 visible ASCII characters, not starting with ``?``.
QUARANTINE_ORDER_ID_RE = re.compile(r"(?!\?)[!-~]{1,64}", re.ASCII)  # fullmatch
#: Prefix of the key of a quarantined record without a usable order id (followed by 16 hex digits).
NO_ORDER_ID_PREFIX = "?sha256:"


def error_summary(exc: BaseException) -> str:
    """``ExceptionClass: first line of the message`` - what ``SyncRunRecord.error`` should hold."""
    message = one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What one ``upsert_orders`` batch changed.

    ``orders_written`` counts orders whose stored row was inserted or accepted a version (status or
    details); ``orders_stale`` counts distinct orders of the batch that were older than what is stored.
    ``history_rows`` counts status-history rows that were new (or newly marked delivered);
    ``quarantine_resolved`` the open ``sp_order_quarantine`` rows the batch resolved.
    """

    orders_written: int
    orders_stale: int
    items_written: int
    packages_written: int
    history_rows: int
    buyers_written: int = 0
    quarantine_resolved: int = 0


@dataclass(frozen=True, slots=True)
class SyncRunRecord:
    """One sync run: one try of a DAG task over one window, recorded by the operator at the end of the try.

    ``status`` is one of ``SYNC_RUN_STATUSES``: ``success`` (caught up), ``partial`` (stopped at a budget,
    the next run continues) or ``failed`` (the try raised; ``error`` then holds ``error_summary(exc)``).
    ``calls`` counts every HTTP request the run sent to SP-API (all operations, retries included),
    ``throttled`` the 429 responses among them and ``retries`` the requests the hook repeated.
    """

    conn_id: str
    mode: str  # "sweep" | "backfill" | "recovery" ... (free text, chosen by the operator)
    status: str  # one of SYNC_RUN_STATUSES
    window_start: datetime
    window_end: datetime
    pages: int = 0
    orders: int = 0
    calls: int = 0  # HTTP requests sent to SP-API by the run (all operations)
    throttled: int = 0  # 429 responses seen
    duration_seconds: float = 0.0  # wall time of the try, deferrals included
    seller_id: str | None = None
    marketplace_ids: Sequence[str] = ()
    api_version: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    dag_id: str | None = None
    dag_run_id: str | None = None
    task_id: str | None = None
    error: str | None = None  # failed: "ExceptionClass: first line" (see error_summary)
    #: Stable key; recording the same run again replaces its row. Derived when not given.
    run_id: str | None = None
    try_number: int | None = None  # Airflow's try number of the task instance (None: not in a task)
    deferrals: int = 0  # times the try deferred while waiting for SP-API quota
    deferred_seconds: float = 0.0  # time spent deferred (part of duration_seconds)
    retries: int = 0  # requests the hook retried (429, 5xx, timeouts)
    quarantined: int = 0  # order records fetched but not loadable, sent to sp_order_quarantine
    missed_by_events: int = 0  # sweep: orders found newer than stored that notifications should have brought

    def key(self) -> str:
        """``run_id`` or a deterministic id from (dag_id, dag_run_id, task_id, conn, mode, window[, try]).

        The try number takes part only when set, so every try gets its own row and keys derived before
        it existed stay the same.
        """
        if self.run_id:
            return self.run_id
        parts = [
            self.dag_id or "",
            self.dag_run_id or "",
            self.task_id or "",
            self.conn_id,
            self.mode,
            self.window_start.isoformat(),
            self.window_end.isoformat(),
        ]
        if self.try_number is not None:
            parts.append(str(self.try_number))
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One landed notification, keyed by Amazon's NotificationId. ``payload`` is the raw JSON body."""

    notification_id: str
    notification_type: str
    payload: str
    received_at: datetime
    order_id: str | None = None
    seller_id: str | None = None
    event_time: datetime | None = None
    message_id: str | None = None  # the SQS MessageId (diagnostics only; SQS may redeliver)
    conn_id: str | None = None  # the seller connection the notification was routed to
    publish_time: datetime | None = None  # Amazon's NotificationMetadata.PublishTime


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A message that could not be parsed or validated, kept verbatim with the reason."""

    raw_body: str
    reason: str
    received_at: datetime
    message_id: str | None = None
    notification_id: str | None = None

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.raw_body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class FbaShipmentStatusRow:
    """Latest FBA_OUTBOUND_SHIPMENT_STATUS per (order, shipment); monotonic on ``event_time``."""

    order_id: str
    shipment_id: str
    shipment_status: str
    event_time: datetime
    seller_id: str | None = None
    notification_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderQuarantineRow:
    """One sighting of an order record that was fetched but could not be mapped to a canonical order.

    ``raw_record`` is the record as received: JSON text, or the decoded object (then stored as canonical
    JSON - sorted keys, no whitespace - so repeated sightings hash alike); like every stored text it
    follows ``text.clean_text`` (NUL removed, lone surrogates replaced). ``reason`` is one line without
    PII (the first line is kept). ``order_id`` is the id the record carries, if any: the row is keyed by
    it when it is 1-64 visible ASCII characters, else by ``?sha256:<first 16 hex of record_sha256>``
    (``key_order_id``). ``last_updated_time`` is the record's lastUpdatedTime when it could be read: the
    row is resolved only by a complete version at least as new.
    """

    order_id: str | None
    source: str  # one of ORDER_QUARANTINE_SOURCES
    raw_record: str | Mapping[str, Any]
    reason: str
    seen_at: datetime
    seller_id: str | None = None
    conn_id: str | None = None
    api_version: str | None = None
    last_updated_time: datetime | None = None
    dag_id: str | None = None
    dag_run_id: str | None = None
    task_id: str | None = None

    @property
    def record_text(self) -> str:
        """``raw_record`` as stored: the text as given or the object as canonical JSON, then cleaned."""
        if isinstance(self.raw_record, str):
            text = self.raw_record
        else:
            text = json.dumps(
                self.raw_record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
            )
        return clean_text(text) or ""

    @property
    def key_order_id(self) -> str:
        """The ``order_id`` column: the record's id if usable, else ``?sha256:<16 hex>`` of the record."""
        if isinstance(self.order_id, str) and QUARANTINE_ORDER_ID_RE.fullmatch(self.order_id):
            return self.order_id
        return NO_ORDER_ID_PREFIX + self.record_sha256[:16]

    @property
    def record_sha256(self) -> str:
        """SHA-256 (hex) of ``record_text`` (the stored text) as UTF-8."""
        return hashlib.sha256(self.record_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class NotificationToApply:
    """A valid notification and what applying it means: its summary (ORDER_CHANGE), its FBA shipment
    status, and whether the order is queued for enrichment (getOrder). Applied only if it is new."""

    inbox: InboxRow
    summary: CanonicalOrder | None = None
    fba: FbaShipmentStatusRow | None = None
    enrich: bool = False


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What ``apply_notifications`` did in its one transaction."""

    new: int  # notifications landed for the first time (and applied)
    duplicate: int  # already in the inbox (or repeated in the batch): nothing applied again
    orders_written: int
    history_rows: int
    enqueued: int  # queue rows inserted or moved to a newer event
    fba_written: int
    quarantined: int  # distinct poison bodies kept (a redelivered one is kept once)
    new_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EnrichmentClaim:
    """An order claimed from the enrichment queue by one worker until ``claimed_until``."""

    order_id: str
    conn_id: str
    newest_event_time: datetime
    attempts: int
    first_queued_at: datetime


@dataclass(frozen=True, slots=True)
class EnrichmentOutcome:
    """What became of one claimed order.

    ``version`` set: fetched, its ``lastUpdatedTime`` (done unless a newer event arrived meanwhile, or
    ``retry_at`` asks to fetch again: Amazon served an older version than the event). ``error`` set: the
    fetch failed; retried at ``retry_at``, or given up when ``quarantine`` carries the record/reason.
    """

    order_id: str
    version: datetime | None = None
    error: str | None = None
    retry_at: datetime | None = None
    quarantine: OrderQuarantineRow | None = None


@dataclass(frozen=True, slots=True)
class EnrichmentResult:
    """What ``finish_enrichment`` did: orders done, kept for a newer event, to retry, given up."""

    done: int
    newer_event: int
    retry: int
    quarantined: int
    upsert: UpsertResult | None = None
