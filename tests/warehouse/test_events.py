"""Event-path tables: inbox dedupe, quarantine, FBA shipment status, sync runs (both backends)."""

from __future__ import annotations

import json
from dataclasses import replace

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
        try_number=1,
        deferrals=2,
        deferred_seconds=360.0,
        retries=3,
        quarantined=1,
    )
    warehouse.record_sync_run(run)
    warehouse.record_sync_run(replace(run, status="success", pages=4, deferrals=3))  # same key: replaced
    (got,) = warehouse.fetch_sync_runs()
    assert got == {
        "run_id": run.key(),
        "conn_id": "sp_api_default",
        "mode": "sweep",
        "status": "success",
        "window_start": at(0),
        "window_end": at(60),
        "seller_id": None,
        "marketplace_ids": "ATVPDKIKX0DER,A2EUQ1WTGCTBG2",
        "api_version": None,
        "pages": 4,
        "orders": 250,
        "calls": 4,
        "throttled": 1,
        "duration_seconds": 12.5,
        "started_at": None,
        "finished_at": None,
        "dag_id": "sp_api_orders_sync",
        "dag_run_id": "scheduled__2026-08-20",
        "task_id": "sync",
        "error": None,
        "recorded_at": got["recorded_at"],  # the time of the write, checked below
        "try_number": 1,
        "deferrals": 3,
        "deferred_seconds": 360.0,
        "retries": 3,
        "quarantined": 1,
    }
    assert got["recorded_at"].tzinfo is not None
    # A second try of the same task gets its own row (the derived key includes the try number).
    warehouse.record_sync_run(replace(run, try_number=2, status="failed", error="SpApiThrottled: quota gone"))
    other = SyncRunRecord(
        conn_id="sp_api_default", mode="sweep", status="success", window_start=at(60), window_end=at(120)
    )
    warehouse.record_sync_run(other)
    runs = warehouse.fetch_sync_runs()  # by window_start, then run_id
    assert [r["window_start"] for r in runs] == [at(0), at(0), at(60)]
    assert {(r["window_start"], r["try_number"], r["status"], r["error"]) for r in runs} == {
        (at(0), 1, "success", None),
        (at(0), 2, "failed", "SpApiThrottled: quota gone"),
        (at(60), None, "success", None),
    }


def test_invalid_sync_run_is_refused_and_nothing_is_written(warehouse):
    with pytest.raises(ValueError, match="needs error"):
        warehouse.record_sync_run(SyncRunRecord("sp_api_default", "sweep", "failed", at(0), at(60)))
    assert warehouse.fetch_sync_runs() == []
