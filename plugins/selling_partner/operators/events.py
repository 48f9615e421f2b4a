"""The event path's operators: land + apply SQS notifications in one transaction, then ack them.

``SpApiLandNotificationsOperator`` takes the messages the ``SqsSensor`` received (it never deletes
them: ``delete_message_on_reception=False``), keeps receiving while the queue has more (a storm is
absorbed in one run, in batches), and for each batch: parses every body (``notifications.parsing``),
then in ONE warehouse transaction lands the notifications in the inbox deduplicated on NotificationId,
applies the new ones (status and Summary fields, status history, FBA shipment status), queues their
orders for enrichment, and quarantines the bodies that cannot be used. It returns the receipt handles
of every landed, duplicate or quarantined message.

``SpApiAckNotificationsOperator`` then deletes exactly those messages (batch delete). It runs only
after the land task committed; a failed or missed delete is harmless: SQS delivers the message again,
and the inbox recognises it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator

from selling_partner import alerts, metrics
from selling_partner.notifications.parsing import (
    FBA_OUTBOUND_SHIPMENT_STATUS,
    Message,
    Notification,
    Rejected,
    parse_message,
)
from selling_partner.validation import parse_names

if TYPE_CHECKING:
    from airflow.sdk import Context

    from selling_partner.warehouse import ApplyResult, NotificationToApply, QuarantineRow

#: The enrichment queue as an Asset: ``sp_api_order_enrich`` runs when the land task queued orders.
ENRICHMENT_QUEUE_ASSET = Asset(
    uri="sp_api://warehouse/sp_enrichment_queue", name="sp_enrichment_queue", group="selling_partner"
)
#: SQS returns at most 10 messages per receive and deletes at most 10 per batch.
SQS_BATCH = 10
#: Messages per warehouse transaction while draining ...
APPLY_BATCH = 500
#: ... or what arrived within this many seconds, so statuses land in seconds during a long drain.
APPLY_BATCH_SECONDS = 2.0


def to_apply(n: Notification, received_at: datetime) -> NotificationToApply:
    """A parsed notification as the warehouse applies it."""
    from selling_partner.warehouse import FbaShipmentStatusRow, InboxRow, NotificationToApply

    inbox = InboxRow(
        notification_id=n.notification_id,
        notification_type=n.notification_type,
        payload=n.payload_json,
        received_at=received_at,
        order_id=n.order_id,
        seller_id=n.seller_id,
        event_time=n.event_time,
        message_id=n.message.message_id or None,
        conn_id=n.conn_id,
        publish_time=n.publish_time,
    )
    fba = None
    if n.notification_type == FBA_OUTBOUND_SHIPMENT_STATUS:
        fba = FbaShipmentStatusRow(
            n.order_id,
            n.shipment_id or "",
            n.shipment_status or "",
            n.event_time,
            n.seller_id,
            n.notification_id,
        )
    # Every notification of an order means its details may have changed: fetch them (once, however many).
    return NotificationToApply(inbox, summary=n.summary, fba=fba, enrich=True)


def to_quarantine(r: Rejected, received_at: datetime) -> QuarantineRow:
    from selling_partner.warehouse import QuarantineRow

    return QuarantineRow(
        raw_body=r.message.body,
        reason=r.reason,
        received_at=received_at,
        message_id=r.message.message_id or None,
        notification_id=r.notification_id,
    )


class SpApiLandNotificationsOperator(BaseOperator):
    """Land and apply SQS notifications (see the module docstring); returns what to ack and counts.

    :param messages: the messages the sensor received (its XCom ``messages``: boto3 message dicts)
    :param sp_api_conn_ids: the seller connections; a notification is routed by its SellerId to the one
        whose ``seller_id`` it is, anything else is quarantined
    :param warehouse_conn_id: postgres or sqlite connection of the warehouse
    :param sqs_queue: the queue URL, to keep receiving while it has more (``None``: only ``messages``)
    :param aws_conn_id: the ``aws`` connection to SQS
    :param drain_seconds: how long to keep receiving after the sensor's messages
    :param max_messages: the most messages one run takes (the rest wait for the next run)
    :param visibility_timeout: seconds the received messages stay invisible (longer than the run)
    """

    template_fields: Sequence[str] = (
        "messages",
        "sp_api_conn_ids",
        "warehouse_conn_id",
        "sqs_queue",
        "aws_conn_id",
    )
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        messages: Any,
        sp_api_conn_ids: str | Sequence[str],
        warehouse_conn_id: str = "warehouse_default",
        sqs_queue: str | None = None,
        aws_conn_id: str | None = "aws_default",
        drain_seconds: float = 30.0,
        max_messages: int = 20_000,
        visibility_timeout: int = 900,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [ENRICHMENT_QUEUE_ASSET])
        super().__init__(**kwargs)
        self.messages = messages
        self.sp_api_conn_ids = sp_api_conn_ids
        self.warehouse_conn_id = warehouse_conn_id
        self.sqs_queue = sqs_queue
        self.aws_conn_id = aws_conn_id
        self.drain_seconds = drain_seconds
        self.max_messages = max_messages
        self.visibility_timeout = visibility_timeout

    @cached_property
    def sellers(self) -> dict[str, str]:
        """seller id -> the connection serving it (read from each connection's validated config)."""
        from selling_partner.hooks.sp_api import SellingPartnerHook

        out: dict[str, str] = {}
        for conn_id in parse_names(self.sp_api_conn_ids, name="sp_api_conn_ids"):
            seller_id = SellingPartnerHook(conn_id).config.seller_id
            if seller_id in out and out[seller_id] != conn_id:
                raise ValueError(
                    f"connections {out[seller_id]!r} and {conn_id!r} both claim seller {seller_id}: "
                    "notifications could not be routed; keep one connection per seller (region)"
                )
            out[seller_id] = conn_id
        return out

    def execute(self, context: Context) -> dict[str, Any]:
        from selling_partner.warehouse import get_warehouse

        warehouse = get_warehouse(self.warehouse_conn_id)
        warehouse.ensure_schema()
        self.log.info("routing notifications of %d seller(s): %s", len(self.sellers), ", ".join(
            f"{s} -> {c}" for s, c in sorted(self.sellers.items())))  # fmt: skip
        totals = {
            "messages": 0,
            "new": 0,
            "duplicate": 0,
            "quarantined": 0,
            "enqueued": 0,
            "orders_written": 0,
        }
        handles: list[str] = []
        to_ship: dict[str, tuple[str, datetime | None]] = {}
        started = time.monotonic()
        self._redelivered_handles: list[str] = []
        for batch in self._batches(started):
            result, rejected = self._apply(warehouse, batch, to_ship)
            handles.extend(m.receipt_handle for m in batch if m.receipt_handle)
            handles.extend(self._redelivered_handles)  # their message is in this or an earlier batch
            self._redelivered_handles.clear()
            totals["messages"] += len(batch)
            for name in ("new", "duplicate", "orders_written", "enqueued"):
                totals[name] += getattr(result, name)
            totals["quarantined"] += rejected
        metrics.incr("events", "landed", count=totals["new"])
        metrics.incr("events", "duplicates", count=totals["duplicate"])
        metrics.incr("events", "quarantined", count=totals["quarantined"])
        alerts.send(alerts.fbm_digest(to_ship.values()), kind="fbm_digest", repeat=True)
        self.log.info(
            "landed %d messages in %.1f s: %d new notifications applied (%d orders written, %d queued for "
            "enrichment), %d duplicates, %d quarantined",
            totals["messages"], time.monotonic() - started, totals["new"], totals["orders_written"],
            totals["enqueued"], totals["duplicate"], totals["quarantined"],
        )  # fmt: skip
        return {**totals, "receipt_handles": handles}

    def _batches(self, started: float) -> Iterable[list[Message]]:
        """The sensor's messages, then what the queue still has, in batches of at most ``APPLY_BATCH``."""
        first = [Message.from_sqs(m) for m in (self.messages or [])]
        seen = {m.message_id for m in first}
        for i in range(0, len(first), APPLY_BATCH):
            yield first[i : i + APPLY_BATCH]
        taken = len(first)
        if not self.sqs_queue:
            return
        client = self._sqs
        while taken < self.max_messages and time.monotonic() - started < self.drain_seconds:
            batch: list[Message] = []
            batch_started = time.monotonic()
            while (
                len(batch) < APPLY_BATCH
                and taken + len(batch) < self.max_messages
                and time.monotonic() - batch_started < APPLY_BATCH_SECONDS
            ):
                got = client.receive_message(
                    QueueUrl=self.sqs_queue,
                    MaxNumberOfMessages=SQS_BATCH,
                    WaitTimeSeconds=0,
                    VisibilityTimeout=self.visibility_timeout,
                ).get("Messages", [])
                received = [Message.from_sqs(r) for r in got]
                fresh = [m for m in received if m.message_id not in seen]
                # A message delivered again within this run: only its newest receipt handle deletes it.
                self._redelivered_handles += [
                    m.receipt_handle for m in received if m.message_id in seen and m.receipt_handle
                ]
                seen.update(m.message_id for m in fresh)
                batch.extend(fresh)
                if not got:
                    break
            if not batch:
                return
            taken += len(batch)
            yield batch

    @cached_property
    def _sqs(self) -> Any:
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        return SqsHook(aws_conn_id=self.aws_conn_id).conn

    def _apply(
        self, warehouse: Any, batch: list[Message], to_ship: dict[str, tuple[str, datetime | None]]
    ) -> tuple[ApplyResult, int]:
        """Parse a batch and apply it in one transaction; returns the result and the messages rejected.
        Merchant-fulfilled orders that a new notification says just became UNSHIPPED (a status change)
        are added to ``to_ship`` for the digest."""
        received_at = datetime.now(UTC)
        parsed_ok: list[Notification] = []
        rejected: list[QuarantineRow] = []
        for message in batch:
            parsed = parse_message(message, self.sellers)
            if isinstance(parsed, Rejected):
                rejected.append(to_quarantine(parsed, received_at))
                self.log.warning(
                    "message %s quarantined (sp_notification_quarantine): %s",
                    message.message_id,
                    parsed.reason,
                )
            else:
                parsed_ok.append(parsed)
        notifications = [to_apply(n, received_at) for n in parsed_ok]
        result = warehouse.apply_notifications(notifications, rejected, now=received_at)
        new = set(result.new_ids)
        for n in parsed_ok:
            o = n.summary
            if (
                o is not None
                and n.notification_id in new
                and n.change_type == "OrderStatusChange"
                and o.fulfilled_by == "MERCHANT"
                and o.order_status == "UNSHIPPED"
            ):
                to_ship[o.order_id] = (o.marketplace_id, o.latest_ship_time)
        return result, len(rejected)


class SpApiAckNotificationsOperator(BaseOperator):
    """Delete the messages the land task committed (batch delete); failures are logged, not raised.

    :param landed: the land task's return value (``receipt_handles``)
    :param sqs_queue: the queue URL
    :param aws_conn_id: the ``aws`` connection to SQS
    """

    template_fields: Sequence[str] = ("landed", "sqs_queue", "aws_conn_id")
    ui_color = "#ff9900"

    def __init__(
        self, *, landed: Any, sqs_queue: str, aws_conn_id: str | None = "aws_default", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.landed = landed
        self.sqs_queue = sqs_queue
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, int]:
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        handles = list(dict.fromkeys((self.landed or {}).get("receipt_handles") or []))
        client = SqsHook(aws_conn_id=self.aws_conn_id).conn
        deleted = failed = 0
        for i in range(0, len(handles), SQS_BATCH):
            entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles[i : i + SQS_BATCH])]
            try:
                response = client.delete_message_batch(QueueUrl=self.sqs_queue, Entries=entries)
            except Exception as exc:  # harmless: the messages come back and the inbox knows them
                failed += len(entries)
                self.log.warning(
                    "delete of %d messages failed (%s); SQS will deliver them again and the inbox will "
                    "recognise them", len(entries), type(exc).__name__,
                )  # fmt: skip
                continue
            deleted += len(response.get("Successful") or [])
            for entry in response.get("Failed") or []:
                failed += 1
                self.log.warning(
                    "delete failed for one message (%s: %s); it will come back and be deduplicated",
                    entry.get("Code"), entry.get("Message"),
                )  # fmt: skip
        self.log.info(
            "acknowledged %d of %d messages (%d deletes failed, harmless)", deleted, len(handles), failed
        )
        return {"deleted": deleted, "failed": failed}


__all__ = ["ENRICHMENT_QUEUE_ASSET", "SpApiAckNotificationsOperator", "SpApiLandNotificationsOperator"]
