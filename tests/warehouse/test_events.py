"""Event-path tables: land and apply in one transaction, the enrichment queue, quarantine, FBA status,
sync runs (both backends)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from selling_partner.warehouse import (
    EnrichmentOutcome,
    FbaShipmentStatusRow,
    InboxRow,
    NotificationToApply,
    OrderQuarantineRow,
    QuarantineRow,
    SyncRunRecord,
)

from tests.warehouse.factories import at, order, summary

pytestmark = pytest.mark.integration


def _inbox(nid: str, minute: int = 0, order_id: str = "111-0000001-0000001") -> InboxRow:
    return InboxRow(
        notification_id=nid,
        notification_type="ORDER_CHANGE",
        payload=json.dumps({"NotificationMetadata": {"NotificationId": nid}}),
        received_at=at(minute + 1),
        order_id=order_id,
        seller_id="A1SANDBOXSELLERNA",
        event_time=at(minute),
        message_id=f"msg-{nid}-{minute}",
        conn_id="sp_api_default",
        publish_time=at(minute) + timedelta(seconds=2),
    )


def _change(nid: str, minute: int, status: str, order_id: str = "111-0000001-0000001") -> NotificationToApply:
    return NotificationToApply(
        _inbox(nid, minute, order_id),
        summary=summary(order_id, status=status, updated=at(minute)),
        enrich=True,
    )


def test_inbox_dedupes_on_notification_id_and_applies_each_once(warehouse):
    res = warehouse.apply_notifications(
        [_change("n1", 0, "UNSHIPPED"), _change("n2", 5, "SHIPPED"), _change("n1", 9, "CANCELLED")],
        now=at(20),
    )
    assert (res.new, res.duplicate, res.new_ids) == (2, 1, ("n1", "n2"))
    assert (res.orders_written, res.history_rows, res.enqueued) == (1, 2, 1)
    # n1's second copy (a redelivery with another body) was not applied: no CANCELLED anywhere
    assert [(r["order_status"], r["last_updated_time"]) for r in warehouse.fetch_orders()] == [
        ("SHIPPED", at(5))
    ]
    res = warehouse.apply_notifications([_change("n2", 7, "CANCELLED"), _change("n3", 3, "UNSHIPPED")])
    assert (res.new, res.duplicate, res.orders_written) == (1, 1, 0)  # n3 is older than what is stored
    rows = warehouse.fetch_inbox()
    assert [(r["notification_id"], r["event_time"]) for r in rows] == [
        ("n1", at(0)),
        ("n2", at(5)),
        ("n3", at(3)),
    ]
    assert rows[0]["message_id"] == "msg-n1-0" and rows[0]["processed_at"] == at(20)  # the first landing
    assert rows[0]["conn_id"] == "sp_api_default" and rows[0]["publish_time"] == at(0) + timedelta(seconds=2)
    history = {(r["order_status"], r["last_updated_time"]) for r in warehouse.fetch_status_history()}
    assert history == {
        ("UNSHIPPED", at(0)),
        ("SHIPPED", at(5)),
        ("UNSHIPPED", at(3)),
    }  # every observed status
    assert warehouse.apply_notifications([]).new == 0


def test_apply_is_one_transaction(warehouse):
    """A batch that fails half way (a bad price in a summary) leaves no trace: nothing landed, so a
    redelivery applies it all."""
    bad = summary(status="UNSHIPPED", updated=at(1)).replace(order_total="twelve")
    with pytest.raises(ValueError, match="decimal"):
        warehouse.apply_notifications(
            [_change("n1", 0, "PENDING"), NotificationToApply(_inbox("n2", 1), summary=bad, enrich=True)],
            [QuarantineRow(raw_body="not json", reason="invalid JSON", received_at=at(0))],
        )
    assert warehouse.fetch_inbox() == warehouse.fetch_orders() == warehouse.fetch_quarantine() == []
    assert warehouse.enrichment_backlog() == {}


def test_enrichment_queue_claims_skips_and_settles(warehouse):
    a, b, c = "111-0000001-0000001", "111-0000002-0000002", "111-0000003-0000003"
    warehouse.apply_notifications(
        [_change("n1", 3, "UNSHIPPED", a), _change("n2", 1, "UNSHIPPED", b), _change("n3", 2, "SHIPPED", c),
         _change("n4", 4, "SHIPPED", a)],
        now=at(10),
    )  # fmt: skip
    assert warehouse.enrichment_backlog() == {"sp_api_default": (3, at(10))}
    # c's details are already complete and as new as its event (a sweep loaded it): it leaves unfetched
    warehouse.upsert_orders([order(c, status="SHIPPED", updated=at(2))])
    claims, skipped = warehouse.claim_enrichment(
        "sp_api_default", worker="w1", limit=10, lease_seconds=60, now=at(11)
    )
    assert skipped == 1 and [(x.order_id, x.newest_event_time) for x in claims] == [(b, at(1)), (a, at(4))]
    # an overlapping run claims nothing while the lease holds, and can after it ran out
    assert (
        warehouse.claim_enrichment("sp_api_default", worker="w2", limit=10, lease_seconds=60, now=at(11))[0]
        == []
    )
    # a newer event for a arrives while w1 fetches it
    warehouse.apply_notifications([_change("n5", 6, "SHIPPED", a)], now=at(11.5))
    result = warehouse.finish_enrichment(
        worker="w1",
        orders=[order(a, status="SHIPPED", updated=at(4)), order(b, status="UNSHIPPED", updated=at(1))],
        outcomes=[EnrichmentOutcome(a, version=at(4)), EnrichmentOutcome(b, version=at(1))],
        now=at(12),
    )
    assert (result.done, result.newer_event, result.retry, result.quarantined) == (1, 1, 0, 0)
    (left,) = warehouse.claim_enrichment(
        "sp_api_default", worker="w2", limit=10, lease_seconds=60, now=at(13)
    )[0]
    assert (left.order_id, left.newest_event_time) == (a, at(6))
    # a failure waits for retry_at and counts the attempt; a permanent one goes to the quarantine
    warehouse.finish_enrichment(
        worker="w2",
        orders=[],
        outcomes=[EnrichmentOutcome(a, error="SpApiNotFound: 404", retry_at=at(20))],
        now=at(14),
    )
    assert (
        warehouse.claim_enrichment("sp_api_default", worker="w3", limit=10, lease_seconds=60, now=at(15))[0]
        == []
    )
    (again,) = warehouse.claim_enrichment(
        "sp_api_default", worker="w3", limit=10, lease_seconds=60, now=at(21)
    )[0]
    assert again.attempts == 1
    gone = OrderQuarantineRow(a, "enrich", "{}", "getOrder answered 404 after 2 attempts", at(22))
    result = warehouse.finish_enrichment(
        worker="w3", orders=[], outcomes=[EnrichmentOutcome(a, error="404", quarantine=gone)], now=at(22)
    )
    assert result.quarantined == 1 and warehouse.enrichment_backlog() == {}
    (q,) = warehouse.fetch_order_quarantine()
    assert (q["order_id"], q["source"], q["reason"]) == (
        a,
        "enrich",
        "getOrder answered 404 after 2 attempts",
    )
    # a stale claim (the lease ran out, another worker took over) settles nothing
    warehouse.apply_notifications([_change("n6", 30, "CANCELLED", b)], now=at(31))
    warehouse.claim_enrichment("sp_api_default", worker="old", limit=10, lease_seconds=1, now=at(32))
    warehouse.claim_enrichment("sp_api_default", worker="new", limit=10, lease_seconds=60, now=at(33))
    stale = warehouse.finish_enrichment(
        worker="old", orders=[], outcomes=[EnrichmentOutcome(b, version=at(30))]
    )
    assert stale.done == 0 and warehouse.enrichment_backlog()["sp_api_default"][0] == 1


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
        "missed_by_events": 0,
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


def test_health_reads_gaps_between_notifications_and_recent_quarantine(warehouse):
    """What the alerts read: a seller's longest gap between notifications, what was quarantined lately."""
    assert warehouse.longest_notification_gap("sp_api_default", since=at(0), now=at(100)) is None
    warehouse.apply_notifications([_change("g1", 0, "UNSHIPPED"), _change("g2", 10, "SHIPPED")], now=at(11))
    warehouse.apply_notifications([_change("g3", 40, "SHIPPED", "111-0000002-0000002")], now=at(41))
    # received at minutes 1, 11 and 41: the longest gap is 30 minutes; the open gap up to now is not one
    gap = warehouse.longest_notification_gap("sp_api_default", since=at(0), now=at(500))
    assert gap == timedelta(minutes=30)
    assert warehouse.longest_notification_gap("sp_api_default", since=at(5), now=at(500)) == timedelta(
        minutes=30
    )
    assert warehouse.longest_notification_gap("sp_api_default", since=at(20), now=at(500)) is None
    assert warehouse.longest_notification_gap("another_seller", since=at(0), now=at(500)) is None

    warehouse.quarantine(
        [
            QuarantineRow(raw_body="old", reason="invalid JSON", received_at=at(0)),
            QuarantineRow(raw_body="new", reason="foreign seller", received_at=at(50)),
        ]
    )
    warehouse.quarantine_orders(
        [
            OrderQuarantineRow(
                order_id="111-0000009-0000009",
                source="enrich",
                raw_record="{}",
                reason="getOrder: 404",
                seen_at=at(55),
            )
        ]
    )
    got = sorted(warehouse.quarantined_since(at(45)))
    assert got == [("sp_notification_quarantine", "foreign seller"), ("sp_order_quarantine", "getOrder: 404")]
