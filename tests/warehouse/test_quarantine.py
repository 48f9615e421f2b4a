"""sp_order_quarantine: order records fetched but not loadable, folded per (order, source), resolved by
upsert_orders when a complete version at least as new is loaded (both backends)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from selling_partner.warehouse import OrderQuarantineRow

from tests.warehouse.factories import at, item, order, summary

pytestmark = pytest.mark.integration

A, B, C, D, E = (f"111-000000{n}-000000{n}" for n in range(1, 6))


def _bad(
    order_id: str | None,
    minute: float,
    *,
    source: str = "sync",
    reason: str = "unknown status",
    updated: datetime | None = None,
    record: str | dict | None = None,
) -> OrderQuarantineRow:
    raw = record if record is not None else json.dumps({"orderId": order_id, "fulfillmentStatus": "FOO"})
    return OrderQuarantineRow(
        order_id=order_id,
        source=source,
        raw_record=raw,
        reason=reason,
        seen_at=at(minute),
        seller_id="A1SANDBOXSELLERNA",
        conn_id="sp_api_default",
        api_version="2026-01-01",
        last_updated_time=updated,
        dag_id="sp_api_orders_sync",
        dag_run_id=f"run-{minute}",
        task_id="sync_orders__sp_api_default",
    )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_sightings_fold_into_one_row_per_order_and_source(warehouse):
    raw_a1 = json.dumps({"orderId": A, "fulfillmentStatus": "FOO"})
    raw_a2 = json.dumps({"orderId": A, "fulfillmentStatus": "BAR"})
    no_id = {"fulfillmentStatus": "SHIPPED", "createdTime": "2026-08-20T10:00:00Z"}
    no_id_text = '{"createdTime":"2026-08-20T10:00:00Z","fulfillmentStatus":"SHIPPED"}'  # canonical JSON
    too_long = "1" * 65
    too_long_raw = json.dumps({"orderId": too_long})
    written = warehouse.quarantine_orders(
        [
            _bad(A, 5, record=raw_a2, reason="fulfillmentStatus 'BAR' unknown\nsecond line dropped"),
            _bad(A, 1, record=raw_a1, updated=at(-10)),  # an earlier sighting, listed later
            _bad(A, 3, source="enrich", reason="missing createdTime"),
            _bad(None, 2, record=no_id, reason="orderId missing"),
            _bad(too_long, 4, record=too_long_raw, reason="orderId too long"),
        ]
    )
    assert written == 4
    rows = warehouse.fetch_order_quarantine()
    assert [(r["order_id"], r["source"]) for r in rows] == sorted(
        [
            (A, "enrich"),
            (A, "sync"),
            ("?sha256:" + _sha(no_id_text)[:16], "sync"),
            ("?sha256:" + _sha(too_long_raw)[:16], "sync"),
        ]
    )
    by_key = {(r["order_id"], r["source"]): r for r in rows}
    a_sync = by_key[(A, "sync")]
    assert a_sync == {
        "order_id": A,
        "source": "sync",
        "seller_id": "A1SANDBOXSELLERNA",
        "conn_id": "sp_api_default",
        "api_version": "2026-01-01",
        "last_updated_time": None,  # from the latest sighting (minute 5), which had none
        "reason": "fulfillmentStatus 'BAR' unknown",
        "raw_record": raw_a2,
        "record_sha256": _sha(raw_a2),
        "attempts": 2,
        "first_seen_at": at(1),
        "last_seen_at": at(5),
        "dag_id": "sp_api_orders_sync",
        "dag_run_id": "run-5",
        "task_id": "sync_orders__sp_api_default",
        "resolved_at": None,
    }
    assert (by_key[(A, "enrich")]["reason"], by_key[(A, "enrich")]["attempts"]) == ("missing createdTime", 1)
    no_id_row = by_key[("?sha256:" + _sha(no_id_text)[:16], "sync")]
    assert (no_id_row["raw_record"], no_id_row["record_sha256"]) == (no_id_text, _sha(no_id_text))


def test_repeated_sightings_bump_attempts_and_keep_first_seen(warehouse):
    warehouse.quarantine_orders([_bad(A, 10, reason="first")])
    assert warehouse.quarantine_orders([_bad(A, 20, reason="second", updated=at(15))]) == 1
    # An older sighting recorded late counts as an attempt but does not move last_seen_at or the record.
    assert warehouse.quarantine_orders([_bad(A, 5, reason="oldest")]) == 1
    (row,) = warehouse.fetch_order_quarantine()
    got = (
        row["attempts"],
        row["first_seen_at"],
        row["last_seen_at"],
        row["reason"],
        row["last_updated_time"],
    )
    assert got == (3, at(5), at(20), "second", at(15))
    assert row["dag_run_id"] == "run-20"


def test_upsert_orders_resolves_open_rows_of_complete_versions_at_least_as_new(warehouse):
    warehouse.upsert_orders(
        [order(E, updated=at(0))]
    )  # E exists already: its newer version takes the staged path
    warehouse.quarantine_orders(
        [
            _bad(A, 1, updated=at(5)),  # resolved: complete version at 5 (equal)
            _bad(B, 1, source="enrich"),  # resolved: no readable time, any complete version does
            _bad(C, 1, updated=at(10)),  # stays open: the version loaded (9) is older than the bad one
            _bad(D, 1),  # stays open: only a summary is loaded
            _bad(E, 1, updated=at(6)),  # resolved: newer complete version of an existing order
            _bad(None, 1, record="{not json"),  # stays open: no order id to match
        ]
    )
    result = warehouse.upsert_orders(
        [
            order(A, updated=at(5)),
            order(B, updated=at(1)),
            order(C, updated=at(9)),
            summary(D, status="SHIPPED", updated=at(30)),
            order(E, status="SHIPPED", updated=at(7)),
        ]
    )
    assert result.quarantine_resolved == 3
    loaded_at = {o["order_id"]: o["loaded_at"] for o in warehouse.fetch_orders()}
    got = {(r["order_id"], r["source"]): r["resolved_at"] for r in warehouse.fetch_order_quarantine()}
    assert got == {
        (A, "sync"): loaded_at[A],
        (B, "enrich"): loaded_at[B],
        (C, "sync"): None,
        (D, "sync"): None,
        (E, "sync"): loaded_at[E],
        ("?sha256:" + _sha("{not json")[:16], "sync"): None,
    }
    assert loaded_at[A] == loaded_at[B] == loaded_at[E]  # one batch, one load time
    assert [r["order_id"] for r in warehouse.fetch_order_quarantine({"resolved_at": None})] == sorted(
        [C, D, "?sha256:" + _sha("{not json")[:16]]
    )
    # Replaying the batch resolves nothing more and keeps the first resolution time.
    assert warehouse.upsert_orders([order(A, updated=at(5))]).quarantine_resolved == 0
    assert warehouse.fetch_order_quarantine({"order_id": A})[0]["resolved_at"] == loaded_at[A]


def test_resolution_is_part_of_the_upsert_transaction(warehouse):
    warehouse.quarantine_orders([_bad(A, 1)])
    broken = order(B, updated=at(2), items=(item(B, 1, qty=None),))  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(Exception):  # noqa: B017 - driver-specific IntegrityError / NotNullViolation
        warehouse.upsert_orders([order(A, updated=at(2)), broken])
    assert warehouse.fetch_order_quarantine()[0]["resolved_at"] is None
    assert warehouse.fetch_orders() == []


def test_new_sighting_reopens_a_resolved_row_an_older_one_does_not(warehouse):
    warehouse.quarantine_orders([_bad(A, 1)])
    warehouse.upsert_orders([order(A, updated=at(2))])
    (row,) = warehouse.fetch_order_quarantine()
    resolved_at = row["resolved_at"]
    assert resolved_at is not None

    # A sighting from before the resolution (recorded late) is the latest sighting but does not reopen.
    before = resolved_at - timedelta(seconds=1)
    warehouse.quarantine_orders([replace(_bad(A, 0, reason="seen before the resolution"), seen_at=before)])
    (row,) = warehouse.fetch_order_quarantine()
    assert (row["attempts"], row["resolved_at"], row["reason"], row["last_seen_at"]) == (
        2, resolved_at, "seen before the resolution", before,
    )  # fmt: skip

    fresh = replace(_bad(A, 0, reason="bad again"), seen_at=resolved_at + timedelta(seconds=1))
    warehouse.quarantine_orders([fresh])
    (row,) = warehouse.fetch_order_quarantine()
    assert (row["attempts"], row["resolved_at"], row["reason"], row["last_seen_at"]) == (
        3, None, "bad again", resolved_at + timedelta(seconds=1),
    )  # fmt: skip
    assert row["first_seen_at"] == at(1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "event"}, "source 'event' is not one of sync, enrich"),
        ({"reason": " \n "}, "reason is empty"),
        ({"seen_at": datetime(2026, 8, 20, 12, 0)}, "Naive datetime"),
    ],
    ids=["unknown-source", "empty-reason", "naive-time"],
)
def test_invalid_rows_are_refused_and_nothing_is_written(warehouse, change, message):
    with pytest.raises(ValueError, match=message):
        warehouse.quarantine_orders([_bad(A, 1), replace(_bad(B, 1), **change)])
    assert warehouse.fetch_order_quarantine() == []
    assert warehouse.quarantine_orders([]) == 0


def test_quarantine_key_of_records_without_a_usable_order_id():
    def key(order_id):
        return replace(_bad(A, 1), order_id=order_id, raw_record='{"x":1}').key_order_id

    marker = "?sha256:" + _sha('{"x":1}')[:16]
    assert key(A) == A and key("O2") == "O2" and key("x" * 64) == "x" * 64
    assert [
        key(v) for v in (None, "", "x" * 65, "111 0000001", "१२३-0000001", "?sha256:abc", "a\x00b", "abc\n")
    ] == [marker] * 8
    assert replace(_bad(A, 1), seen_at=datetime.now(UTC)).record_sha256 == _sha(_bad(A, 1).record_text)
