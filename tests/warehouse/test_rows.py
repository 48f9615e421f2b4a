"""Pure row building: time encoding, batch reduction, dedupe (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from selling_partner.warehouse.postgres import rows_to_tsv
from selling_partner.warehouse.rows import build_order_batch, parse_ts, require_aware, sqlite_ts

from tests.warehouse.factories import at, item, order, summary

OID = "111-0000001-0000001"


def test_sqlite_ts_is_fixed_width_utc_and_sorts_chronologically():
    plus2 = timezone(timedelta(hours=2))
    assert sqlite_ts(datetime(2026, 8, 20, 16, 5, 31, 482000, tzinfo=plus2)) == "2026-08-20T14:05:31.482000Z"
    assert sqlite_ts(datetime(2026, 8, 20, 14, 5, tzinfo=UTC)) == "2026-08-20T14:05:00.000000Z"
    times = [at(m) for m in (0, 0.001, 1, 60, 60 * 24 * 400)]
    assert sorted(sqlite_ts(t) for t in reversed(times)) == [sqlite_ts(t) for t in times]
    assert parse_ts(sqlite_ts(times[1])) == times[1]
    assert sqlite_ts(None) is None


def test_naive_times_are_rejected():
    with pytest.raises(ValueError, match="Naive"):
        require_aware(datetime(2026, 1, 1))


def test_batch_reduces_to_one_row_per_order_with_status_and_details_winners():
    versions = [
        order(OID, status="UNSHIPPED", updated=at(1), total="20.00"),
        summary(OID, status="SHIPPED", updated=at(9)),
        order(OID, status="PENDING", updated=at(0), total="19.00"),
    ]
    batch = build_order_batch(versions, ts=sqlite_ts, loaded_at=at(100))
    (row,) = batch.orders
    cols = dict(
        zip(
            __import__("selling_partner.warehouse.schema", fromlist=["x"]).ORDERS_TABLE.column_names,
            row,
            strict=True,
        )
    )
    assert (cols["order_status"], cols["last_updated_time"], cols["source"]) == (
        "SHIPPED",
        sqlite_ts(at(9)),
        "summary",
    )
    assert (cols["order_total"], cols["is_complete"], cols["details_updated_time"]) == (
        "20.00",
        True,
        sqlite_ts(at(1)),
    )
    assert len(batch.history) == 3
    assert [r[1] for r in batch.items] == [f"{OID}-I1"] and batch.items[0][10] == "10.00"


def test_child_of_another_order_is_refused():
    with pytest.raises(ValueError, match="belongs to"):
        build_order_batch([order(OID, items=(item("OTHER", 1),))], ts=sqlite_ts)


def test_duplicate_items_in_one_record_keep_the_last():
    o = order(OID, items=(item(OID, 1, qty=1), item(OID, 1, qty=7)))
    assert [r[6] for r in build_order_batch([o], ts=sqlite_ts).items] == [7]


def test_copy_text_format_escapes_specials():
    assert (
        rows_to_tsv([("a\tb", None, True, False, 3, "x\\y\nz\r")]) == "a\\tb\t\\N\tt\tf\t3\tx\\\\y\\nz\\r\n"
    )
