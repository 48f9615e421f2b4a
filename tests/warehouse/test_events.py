"""Event-path tables: inbox dedupe, quarantine, FBA shipment status, sync runs (both backends)."""

from __future__ import annotations

import json

import pytest
from selling_partner.warehouse import FbaShipmentStatusRow, InboxRow, QuarantineRow, SyncRunRecord

from tests.warehouse.factories import at

pytestmark = pytest.mark.integration


def _inbox(nid: str, minute: int = 0) -> InboxRow:
    return InboxRow(
        notification_id=nid,
        notification_type="ORDER_CHANGE",
        payload=json.dumps({"NotificationMetadata": {"NotificationId": nid}}),
        received_at=at(minute + 1),
        order_id="111-0000001-0000001",
        event_time=at(minute),
        message_id=f"msg-{nid}-{minute}",
    )


def test_inbox_dedupes_on_notification_id(warehouse):
    res = warehouse.land_notifications([_inbox("n1"), _inbox("n2", 5), _inbox("n1", 9)])
    assert (res.new, res.duplicate) == (2, 1)
    res = warehouse.land_notifications([_inbox("n2", 7), _inbox("n3", 3)])
    assert (res.new, res.duplicate) == (1, 1)
    rows = warehouse.fetch_inbox()
    assert [(r["notification_id"], r["event_time"]) for r in rows] == [
        ("n1", at(0)),
        ("n2", at(5)),
        ("n3", at(3)),
    ]
    assert rows[0]["message_id"] == "msg-n1-0"  # the first landing is kept
    assert warehouse.land_notifications([]) == type(res)(0, 0)


def test_pending_and_processed(warehouse):
    warehouse.land_notifications([_inbox("n1", 5), _inbox("n2", 1), _inbox("n3", 3)])
    assert [r["notification_id"] for r in warehouse.fetch_pending_notifications()] == ["n2", "n3", "n1"]
    assert [r["notification_id"] for r in warehouse.fetch_pending_notifications(limit=1)] == ["n2"]
    assert warehouse.mark_notifications_processed(["n2", "n3", "n2"], at(10)) == 2
    assert warehouse.mark_notifications_processed(["n2"], at(11)) == 0  # idempotent, keeps first time
    assert [r["notification_id"] for r in warehouse.fetch_pending_notifications()] == ["n1"]
    assert warehouse.fetch_inbox({"notification_id": "n2"})[0]["processed_at"] == at(10)
    # A processed notification redelivered by SQS is still a duplicate.
    assert warehouse.land_notifications([_inbox("n2", 1)]).duplicate == 1


def test_quarantine_keeps_each_body_once(warehouse):
    rows = [
        QuarantineRow(raw_body="not json", reason="invalid JSON", received_at=at(0), message_id="m1"),
        QuarantineRow(raw_body="not json", reason="invalid JSON", received_at=at(1), message_id="m2"),
        QuarantineRow(raw_body='{"x": 1}', reason="schema: NotificationType missing", received_at=at(2)),
    ]
    assert warehouse.quarantine(rows) == 2
    assert warehouse.quarantine(rows) == 0
    got = warehouse.fetch_quarantine()
    assert sorted((r["raw_body"], r["reason"]) for r in got) == [
        ("not json", "invalid JSON"),
        ('{"x": 1}', "schema: NotificationType missing"),
    ]
    assert warehouse.quarantine([]) == 0


def test_fba_shipment_status_is_monotonic(warehouse):
    def row(status: str, minute: int, shipment: str = "S1") -> FbaShipmentStatusRow:
        return FbaShipmentStatusRow(
            "111-0000001-0000001", shipment, status, at(minute), notification_id=f"{status}{minute}"
        )

    assert (
        warehouse.upsert_fba_shipment_status([row("Shipped", 5), row("Created", 1), row("Created", 0, "S2")])
        == 2
    )
    assert warehouse.upsert_fba_shipment_status([row("Created", 1)]) == 0  # older: ignored
    assert warehouse.upsert_fba_shipment_status([row("Shipped", 5)]) == 1  # same version: idempotent
    assert warehouse.upsert_fba_shipment_status([row("Cancelled", 2, "S2")]) == 1
    got = [
        (r["shipment_id"], r["shipment_status"], r["event_time"])
        for r in warehouse.fetch_fba_shipment_status()
    ]
    assert got == [("S1", "Shipped", at(5)), ("S2", "Cancelled", at(2))]


def test_sync_run_is_recorded_once_per_key(warehouse):
    run = SyncRunRecord(
        conn_id="sp_api_default",
        mode="sweep",
        status="partial",
        window_start=at(0),
        window_end=at(60),
        pages=3,
        orders=250,
        calls=4,
        throttled=1,
        duration_seconds=12.5,
        marketplace_ids=("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"),
        dag_id="sp_api_orders_sync",
        dag_run_id="scheduled__2026-08-20",
        task_id="sync",
    )
    warehouse.record_sync_run(run)
    warehouse.record_sync_run(
        run.__class__(**{**{f: getattr(run, f) for f in run.__slots__}, "status": "success", "pages": 4})
    )
    (got,) = warehouse.fetch_sync_runs()
    assert (got["status"], got["pages"], got["orders"], got["throttled"]) == ("success", 4, 250, 1)
    assert got["marketplace_ids"] == "ATVPDKIKX0DER,A2EUQ1WTGCTBG2" and got["duration_seconds"] == 12.5
    assert got["window_start"] == at(0) and got["window_end"] == at(60) and got["run_id"] == run.key()
    other = SyncRunRecord(
        conn_id="sp_api_default", mode="sweep", status="success", window_start=at(60), window_end=at(120)
    )
    warehouse.record_sync_run(other)
    assert [r["window_start"] for r in warehouse.fetch_sync_runs()] == [at(0), at(60)]
