"""Analyst views return the right numbers on a small crafted dataset (both backends)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.warehouse.factories import UK, item, order, package

pytestmark = pytest.mark.integration

D1 = datetime(2026, 8, 19, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _dataset():
    o1 = "111-0000001-0000001"

    def a(oid, qty, shipped=0, price="10.00"):
        return item(oid, 1, qty=qty, shipped=shipped, sku="SKU-A", price=price)

    def b(oid, qty, shipped=0):
        return item(oid, 2, qty=qty, shipped=shipped, sku="SKU-B")

    return [
        # O1: FBM, unshipped -> shipped after 26 h -> all packages delivered after 50 h.
        order(o1, status="UNSHIPPED", created=D1, updated=D1 + H, total="20.00", items=(a(o1, 2),)),
        order(
            o1,
            status="SHIPPED",
            created=D1,
            updated=D1 + 26 * H,
            total="20.00",
            items=(a(o1, 2, 2),),
            packages=(package(o1, 1),),
        ),
        order(
            o1,
            status="SHIPPED",
            created=D1,
            updated=D1 + 50 * H,
            total="20.00",
            items=(a(o1, 2, 2),),
            packages=(package(o1, 1, status="DELIVERED"),),
        ),
        # O2, O3: FBM orders to ship, O3 is due first. O2 was bought at 23:30 UTC (still D1).
        order(
            "O2",
            status="UNSHIPPED",
            created=D1 + 13.5 * H,
            updated=D1 + 14 * H,
            total="15.50",
            latest_ship=D1 + 48 * H,
            items=(a("O2", 1),),
        ),
        order(
            "O3",
            status="PARTIALLY_SHIPPED",
            created=D1 + 3 * H,
            updated=D1 + 5 * H,
            total="7.25",
            latest_ship=D1 + 24 * H,
            items=(b("O3", 3, 1),),
        ),
        # O4: FBA, cancelled after 3 h (its units do not count as sold).
        order(
            "O4",
            status="PENDING",
            created=D1 - H,
            updated=D1,
            total="5.00",
            fulfilled_by="AMAZON",
            items=(b("O4", 1),),
        ),
        order(
            "O4",
            status="CANCELLED",
            created=D1 - H,
            updated=D1 + 2 * H,
            total="5.00",
            fulfilled_by="AMAZON",
            items=(b("O4", 1),),
        ),
        # O5: UK, next day, no ship-by time.
        order(
            "O5",
            status="UNSHIPPED",
            created=D1 + 24 * H,
            updated=D1 + 25 * H,
            total="30.00",
            currency="GBP",
            marketplace_id=UK,
            items=(a("O5", 4),),
        ),
        # O6: known only from an ORDER_CHANGE summary (no total, no prices).
        order(
            "O6",
            status="UNSHIPPED",
            created=D1 + H,
            updated=D1 + 2 * H,
            total=None,
            complete=False,
            source="summary",
            items=(a("O6", 1, price=None),),
        ),
        # O7: FBA, shipped.
        order(
            "O7",
            status="SHIPPED",
            created=D1 + 2 * H,
            updated=D1 + 30 * H,
            total="12.34",
            fulfilled_by="AMAZON",
            items=(b("O7", 2, 2),),
        ),
    ]


def _day(v) -> str:
    return v.isoformat() if isinstance(v, date) else str(v)


def _money(v) -> Decimal | None:
    return None if v is None else Decimal(str(v)).quantize(Decimal("0.01"))


@pytest.fixture
def loaded(warehouse):
    versions = _dataset()
    warehouse.upsert_orders(versions[::2])  # two batches, out of order
    warehouse.upsert_orders(versions[1::2])
    return warehouse


def test_daily_orders_and_revenue(loaded):
    rows = {
        (_day(r["order_date"]), r["marketplace_id"], r["order_status"], r["currency"]): (
            r["orders"],
            _money(r["revenue"]),
            r["orders_without_total"],
        )
        for r in loaded.fetch_view("sp_v_daily_orders")
    }
    us = "ATVPDKIKX0DER"
    assert rows == {
        ("2026-08-19", us, "SHIPPED", "USD"): (2, Decimal("32.34"), 0),
        ("2026-08-19", us, "UNSHIPPED", "USD"): (1, Decimal("15.50"), 0),
        ("2026-08-19", us, "UNSHIPPED", None): (1, None, 1),
        ("2026-08-19", us, "PARTIALLY_SHIPPED", "USD"): (1, Decimal("7.25"), 0),
        ("2026-08-19", us, "CANCELLED", "USD"): (1, Decimal("5.00"), 0),
        ("2026-08-20", UK, "UNSHIPPED", "GBP"): (1, Decimal("30.00"), 0),
    }


def test_fbm_orders_needing_action_most_urgent_first(loaded):
    rows = loaded.fetch_view("sp_v_fbm_orders_needing_action")
    assert [r["order_id"] for r in rows] == ["O3", "O2", "O5", "O6"]
    assert rows[0]["order_status"] == "PARTIALLY_SHIPPED"


def test_order_lifecycle_durations(loaded):
    rows = {r["order_id"]: r for r in loaded.fetch_view("sp_v_order_lifecycle")}
    hours = lambda r, k: None if r[k] is None else round(float(r[k]), 3)  # noqa: E731
    o1 = rows["111-0000001-0000001"]
    assert (hours(o1, "hours_to_ship"), hours(o1, "hours_to_delivery"), hours(o1, "hours_to_cancel")) == (
        26.0,
        50.0,
        None,
    )
    o4 = rows["O4"]
    assert (hours(o4, "hours_to_ship"), hours(o4, "hours_to_cancel")) == (None, 3.0)
    assert hours(rows["O7"], "hours_to_ship") == 28.0
    assert hours(rows["O2"], "hours_to_ship") is None
    assert len(rows) == 7


def test_units_per_sku_per_day(loaded):
    rows = {
        (_day(r["order_date"]), r["marketplace_id"], r["seller_sku"]): (
            r["orders"],
            int(r["units_ordered"]),
            int(r["units_shipped"]),
        )
        for r in loaded.fetch_view("sp_v_units_per_sku_day")
    }
    us = "ATVPDKIKX0DER"
    assert rows == {
        ("2026-08-19", us, "SKU-A"): (3, 4, 2),
        ("2026-08-19", us, "SKU-B"): (2, 5, 3),
        ("2026-08-20", UK, "SKU-A"): (1, 4, 0),
    }
