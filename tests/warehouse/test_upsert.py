"""upsert_orders on real PostgreSQL and SQLite: idempotent, monotonic, children follow their order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from tests.warehouse.factories import at, buyer, item, order, package, summary

pytestmark = pytest.mark.integration
OID = "111-0000001-0000001"


def _state(wh) -> tuple:
    """Everything an analyst sees, minus load timestamps."""
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("loaded_at", "observed_at")} for r in rows]  # noqa: E731
    return (
        strip(wh.fetch_orders()),
        strip(wh.fetch_items()),
        strip(wh.fetch_packages()),
        strip(wh.fetch_status_history()),
        strip(wh.fetch_buyers()),
    )


def test_insert_then_same_batch_again_changes_nothing(warehouse):
    batch = [order(OID, items=(item(OID, 1), item(OID, 2)), packages=(package(OID, 1),))]
    first = warehouse.upsert_orders(batch)
    assert (first.orders_written, first.orders_stale, first.items_written, first.packages_written) == (
        1,
        0,
        2,
        1,
    )
    assert first.history_rows == 1
    before = _state(warehouse)
    orders, items, packages, history, buyers = before
    assert [(o["order_id"], o["order_status"], o["last_updated_time"], o["order_total"]) for o in orders] == [
        (OID, "UNSHIPPED", at(0), Decimal("20.00"))
    ]
    assert [(i["order_item_id"], i["quantity_ordered"], i["order_last_updated_time"]) for i in items] == [
        (f"{OID}-I1", 1, at(0)),
        (f"{OID}-I2", 1, at(0)),
    ]
    assert [(p["package_reference_id"], p["tracking_number"]) for p in packages] == [
        (f"{OID}-P1", "1Z00000001")
    ]
    assert [tuple(h.values()) for h in history] == [(OID, "UNSHIPPED", at(0), False, "sync")]
    assert buyers == []
    again = warehouse.upsert_orders(batch)
    assert again.orders_stale == 0 and again.history_rows == 0
    assert _state(warehouse) == before


def test_types_round_trip(warehouse):
    warehouse.upsert_orders([order(OID, total="1234.5678", latest_ship=at(90))])
    (row,) = warehouse.fetch_orders()
    assert row["order_total"] == Decimal("1234.5678")
    assert row["last_updated_time"] == at(0) and row["last_updated_time"].utcoffset().total_seconds() == 0
    assert row["latest_ship_time"] == at(90)
    assert row["programs"] == "PRIME" and row["is_complete"] is True and row["source"] == "sync"
    (it,) = warehouse.fetch_items()
    assert it["unit_price"] == Decimal("10.00") and it["promotion_ids"] == "PROMO1"
    assert it["is_buyer_requested_cancel"] is False


def test_older_version_is_stale_and_changes_nothing(warehouse):
    warehouse.upsert_orders([order(OID, status="SHIPPED", updated=at(10), items=(item(OID, 1, shipped=2),))])
    before = _state(warehouse)
    res = warehouse.upsert_orders([order(OID, status="UNSHIPPED", updated=at(5), items=(item(OID, 9),))])
    assert (res.orders_written, res.orders_stale, res.items_written) == (0, 1, 0)
    assert res.history_rows == 1  # the older observation still enters the history
    after = _state(warehouse)
    assert after[:3] == before[:3]
    assert {(h["order_status"], h["last_updated_time"]) for h in after[3]} == {
        ("SHIPPED", at(10)),
        ("UNSHIPPED", at(5)),
    }


def test_newer_version_replaces_items_and_packages(warehouse):
    warehouse.upsert_orders(
        [
            order(
                OID,
                updated=at(1),
                items=(item(OID, 1), item(OID, 2)),
                packages=(package(OID, 1), package(OID, 2)),
            )
        ]
    )
    res = warehouse.upsert_orders(
        [
            order(
                OID,
                updated=at(2),
                items=(item(OID, 2, qty=5), item(OID, 3)),
                packages=(package(OID, 2, status="DELIVERED"),),
            )
        ]
    )
    assert (res.orders_written, res.items_written, res.packages_written) == (1, 2, 1)
    items = warehouse.fetch_items()
    assert [(i["order_item_id"], i["quantity_ordered"]) for i in items] == [
        (f"{OID}-I2", 5),
        (f"{OID}-I3", 1),
    ]
    assert all(i["order_last_updated_time"] == at(2) for i in items)
    assert [(p["package_reference_id"], p["package_status"]) for p in warehouse.fetch_packages()] == [
        (f"{OID}-P2", "DELIVERED")
    ]


def test_same_version_is_accepted_and_idempotent(warehouse):
    o = order(OID, updated=at(3))
    warehouse.upsert_orders([o])
    before = _state(warehouse)
    res = warehouse.upsert_orders([o])
    assert (res.orders_written, res.orders_stale, res.items_written, res.history_rows) == (1, 0, 1, 0)
    assert _state(warehouse) == before
    assert [(r["order_id"], r["last_updated_time"], r["details_updated_time"]) for r in before[0]] == [
        (OID, at(3), at(3))
    ]


def test_batch_with_many_versions_keeps_the_newest(warehouse):
    versions = [
        order(OID, status=s, updated=at(m)) for s, m in [("SHIPPED", 9), ("UNSHIPPED", 1), ("PENDING", 0)]
    ]
    other = order("111-0000002-0000002", updated=at(4))
    res = warehouse.upsert_orders([*versions, other])
    assert (res.orders_written, res.orders_stale, res.history_rows) == (2, 0, 4)
    assert [(r["order_id"], r["order_status"]) for r in warehouse.fetch_orders()] == [
        (OID, "SHIPPED"),
        ("111-0000002-0000002", "UNSHIPPED"),
    ]


def test_newer_summary_updates_status_but_keeps_prices(warehouse):
    warehouse.upsert_orders([order(OID, status="UNSHIPPED", updated=at(1), total="20.00")])
    res = warehouse.upsert_orders([summary(OID, status="SHIPPED", updated=at(5))])
    assert res.orders_written == 1 and res.items_written == 0
    (row,) = warehouse.fetch_orders()
    assert (row["order_status"], row["last_updated_time"], row["source"]) == ("SHIPPED", at(5), "summary")
    assert row["order_total"] == Decimal("20.00") and row["is_complete"] is True
    assert row["details_updated_time"] == at(1)
    assert warehouse.fetch_items()[0]["unit_price"] == Decimal("10.00")


def test_complete_record_of_same_version_wins_over_summary(warehouse):
    warehouse.upsert_orders([summary(OID, status="SHIPPED", updated=at(5))])
    (partial,) = warehouse.fetch_orders()
    assert partial["is_complete"] is False and partial["order_total"] is None
    assert warehouse.fetch_items()[0]["unit_price"] is None
    warehouse.upsert_orders([order(OID, status="SHIPPED", updated=at(5), total="20.00")])
    (row,) = warehouse.fetch_orders()
    assert row["is_complete"] is True and row["order_total"] == Decimal("20.00") and row["source"] == "sync"
    # ... and the same summary replayed afterwards changes nothing.
    res = warehouse.upsert_orders([summary(OID, status="SHIPPED", updated=at(5))])
    assert res.orders_written == 0 and res.orders_stale == 1
    assert warehouse.fetch_items()[0]["unit_price"] == Decimal("10.00")


def test_older_complete_record_fills_details_after_newer_summary(warehouse):
    warehouse.upsert_orders([summary(OID, status="SHIPPED", updated=at(5))])
    warehouse.upsert_orders([order(OID, status="UNSHIPPED", updated=at(1), total="20.00")])
    (row,) = warehouse.fetch_orders()
    assert row["order_status"] == "SHIPPED" and row["last_updated_time"] == at(5)
    assert row["order_total"] == Decimal("20.00") and row["details_updated_time"] == at(1)


def test_status_history_marks_delivery_and_is_idempotent(warehouse):
    shipped = order(OID, status="SHIPPED", updated=at(3), packages=(package(OID, 1),))
    delivered = order(OID, status="SHIPPED", updated=at(3), packages=(package(OID, 1, status="DELIVERED"),))
    assert warehouse.upsert_orders([shipped]).history_rows == 1
    assert warehouse.upsert_orders([delivered]).history_rows == 1  # newly marked delivered
    assert warehouse.upsert_orders([shipped, delivered]).history_rows == 0
    (h,) = warehouse.fetch_status_history()
    assert h["packages_delivered"] is True


def test_buyer_pii_only_when_present_and_purged(warehouse):
    warehouse.upsert_orders([order(OID, updated=at(0)), order("111-0000002-0000002", updated=at(0))])
    assert warehouse.fetch_buyers() == []
    res = warehouse.upsert_orders([order(OID, updated=at(1), buyer=buyer(OID))])
    assert res.buyers_written == 1
    (b,) = warehouse.fetch_buyers()
    assert b["buyer_name"] == "Jane Doe" and b["order_last_updated_time"] == at(1)
    assert warehouse.upsert_orders([order(OID, updated=at(0), buyer=buyer(OID))]).buyers_written == 0
    assert warehouse.purge_pii(30, now=at(60 * 24 * 29)) == 0
    assert warehouse.purge_pii(30, now=at(60 * 24 * 31)) == 1
    assert warehouse.fetch_buyers() == []
    assert [r["order_id"] for r in warehouse.fetch_orders()] == [OID, "111-0000002-0000002"]  # analytics stay


def test_purge_rejects_negative_retention(warehouse):
    with pytest.raises(ValueError, match="older_than_days"):
        warehouse.purge_pii(-1)


def test_empty_batch_is_a_no_op(warehouse):
    assert warehouse.upsert_orders([]).orders_written == 0
    assert warehouse.fetch_orders() == []


def test_naive_datetime_is_rejected_and_nothing_is_written(warehouse):
    good = order("111-0000002-0000002", updated=at(1))
    bad = order(OID, updated=datetime(2026, 8, 20, 14, 0))
    with pytest.raises(ValueError, match="Naive datetime"):
        warehouse.upsert_orders([good, bad])
    assert warehouse.fetch_orders() == []


def test_failed_batch_rolls_back_whole_transaction(warehouse):
    warehouse.upsert_orders([order(OID, updated=at(1))])
    # quantity_ordered is NOT NULL: the database rejects the batch mid-way; nothing of it may remain.
    broken = order("111-0000002-0000002", updated=at(2), items=(item("111-0000002-0000002", 1, qty=None),))  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - driver-specific IntegrityError / NotNullViolation
        warehouse.upsert_orders([order(OID, status="SHIPPED", updated=at(2)), broken])
    assert [(r["order_id"], r["order_status"]) for r in warehouse.fetch_orders()] == [(OID, "UNSHIPPED")]


def test_fetch_filters_by_known_columns_only(warehouse):
    warehouse.upsert_orders(
        [order(OID, updated=at(1)), order("111-0000002-0000002", status="SHIPPED", updated=at(2))]
    )
    assert [r["order_id"] for r in warehouse.fetch_orders({"order_status": "SHIPPED"})] == [
        "111-0000002-0000002"
    ]
    assert [r["order_id"] for r in warehouse.fetch_orders({"last_updated_time": at(1)})] == [OID]
    with pytest.raises(ValueError, match="Unknown column"):
        warehouse.fetch_orders({"order_status; DROP TABLE sp_orders; --": "x"})
    assert [r["order_id"] for r in warehouse.fetch_orders()] == [OID, "111-0000002-0000002"]
    assert [r["order_id"] for r in warehouse.fetch_orders({"seller_order_id": None})] == [
        OID,
        "111-0000002-0000002",
    ]


def test_hostile_ids_are_data_not_sql(warehouse):
    evil = "1'); DROP TABLE sp_orders; --\t\\N\n"
    warehouse.upsert_orders([order(evil, updated=at(1), items=(item(evil, 1),))])
    assert [r["order_id"] for r in warehouse.fetch_orders()] == [evil]
    assert [r["order_id"] for r in warehouse.fetch_items()] == [evil]
