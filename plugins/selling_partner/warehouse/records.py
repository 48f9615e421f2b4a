"""Records the warehouse accepts and returns besides the canonical order."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What one ``upsert_orders`` batch changed.

    ``orders_written`` counts orders whose stored row was inserted or accepted a version (status or
    details); ``orders_stale`` counts distinct orders of the batch that were older than what is stored.
    ``history_rows`` counts status-history rows that were new (or newly marked delivered).
    """

    orders_written: int
    orders_stale: int
    items_written: int
    packages_written: int
    history_rows: int
    buyers_written: int = 0


@dataclass(frozen=True, slots=True)
class SyncRunRecord:
    """One sync run (a window of one DAG task), written by the sync operator after its last commit."""

    conn_id: str
    mode: str  # "sweep" | "backfill" | "recovery" ... (free text, chosen by the operator)
    status: str  # "success" | "failed" | "deferred" | "partial"
    window_start: datetime
    window_end: datetime
    pages: int = 0
    orders: int = 0
    calls: int = 0
    throttled: int = 0  # 429 responses seen
    duration_seconds: float = 0.0
    seller_id: str | None = None
    marketplace_ids: Sequence[str] = ()
    api_version: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    dag_id: str | None = None
    dag_run_id: str | None = None
    task_id: str | None = None
    error: str | None = None
    #: Stable key; recording the same run again replaces its row. Derived when not given.
    run_id: str | None = None

    def key(self) -> str:
        """``run_id`` or a deterministic id from (dag_id, dag_run_id, task_id, conn, mode, window)."""
        if self.run_id:
            return self.run_id
        parts = (
            self.dag_id or "",
            self.dag_run_id or "",
            self.task_id or "",
            self.conn_id,
            self.mode,
            self.window_start.isoformat(),
            self.window_end.isoformat(),
        )
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


@dataclass(frozen=True, slots=True)
class LandResult:
    """Outcome of ``land_notifications``: rows newly landed and rows already in the inbox (or repeated)."""

    new: int
    duplicate: int


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
