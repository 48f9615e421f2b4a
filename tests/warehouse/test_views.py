"""Analyst views return the right numbers on small hand-built datasets (both backends).

The lifecycle histories include what a historical backfill produces (each order seen once, in its current
state), which the old view turned into wrong times (shipped = delivered = last update).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from selling_partner.warehouse.rows import parse_ts

from tests.warehouse.factories import UK, item, order, package, summary

pytestmark = pytest.mark.integration

D1 = datetime(2026, 8, 19, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
US = "ATVPDKIKX0DER"

#: Columns of every view, in order, on both backends (the data dictionary documents each one).
VIEW_COLUMNS = {
    "sp_v_daily_orders": [
        "order_date", "marketplace_id", "order_status", "currency", "orders", "revenue",
        "orders_without_total", "summary_only_orders",
    ],
    "sp_v_fbm_orders_needing_action": [
        "order_id", "marketplace_id", "order_status", "fulfillment_service_level", "created_time",
        "earliest_ship_time", "latest_ship_time", "latest_delivery_time", "items_unshipped",
        "last_updated_time",
    ],
    "sp_v_order_lifecycle": [
        "order_id", "marketplace_id", "fulfilled_by", "order_status", "created_time", "first_observed_time",
        "shipped_time", "shipped_time_source", "shipped_observed_time", "shipped_transition_observed",
        "cancelled_time", "cancelled_observed_time", "cancel_transition_observed",
        "delivered_time", "delivered_observed_time", "delivery_transition_observed",
        "hours_to_ship", "hours_to_cancel", "hours_to_delivery",
    ],
    "sp_v_units_per_sku_day": [
        "order_date", "marketplace_id", "seller_sku", "asin", "orders", "units_ordered", "units_shipped",
    ],
}  # fmt: skip


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
        # O8: a complete record of a PENDING order: Amazon sends no total before payment. Not summary-only.
        order(
            "O8", status="PENDING", created=D1 + 4 * H, updated=D1 + 4 * H, total=None, items=(a("O8", 1),)
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


def test_views_have_the_documented_columns_on_both_backends(warehouse):
    assert warehouse.view_names() == sorted(VIEW_COLUMNS)
    for name, columns in VIEW_COLUMNS.items():
        with warehouse._transaction(write=False) as cur:
            cur.execute(f"SELECT * FROM {name} WHERE 1 = 0")
            assert [d[0] for d in cur.description] == columns, name


def test_daily_orders_and_revenue(loaded):
    rows = {
        (_day(r["order_date"]), r["marketplace_id"], r["order_status"], r["currency"]): (
            r["orders"],
            _money(r["revenue"]),
            r["orders_without_total"],
            r["summary_only_orders"],
        )
        for r in loaded.fetch_view("sp_v_daily_orders")
    }
    assert rows == {
        ("2026-08-19", US, "SHIPPED", "USD"): (2, Decimal("32.34"), 0, 0),
        ("2026-08-19", US, "UNSHIPPED", "USD"): (1, Decimal("15.50"), 0, 0),
        ("2026-08-19", US, "UNSHIPPED", None): (1, None, 1, 1),  # O6: summary only
        ("2026-08-19", US, "PENDING", None): (1, None, 1, 0),  # O8: complete, no total yet
        ("2026-08-19", US, "PARTIALLY_SHIPPED", "USD"): (1, Decimal("7.25"), 0, 0),
        ("2026-08-19", US, "CANCELLED", "USD"): (1, Decimal("5.00"), 0, 0),
        ("2026-08-20", UK, "UNSHIPPED", "GBP"): (1, Decimal("30.00"), 0, 0),
    }


def test_fbm_orders_needing_action_most_urgent_first(loaded):
    rows = loaded.fetch_view("sp_v_fbm_orders_needing_action")
    assert [(r["order_id"], r["order_status"]) for r in rows] == [
        ("O3", "PARTIALLY_SHIPPED"),
        ("O2", "UNSHIPPED"),
        ("O5", "UNSHIPPED"),
        ("O6", "UNSHIPPED"),
    ]
    assert [parse_ts(r["latest_ship_time"]) for r in rows] == [D1 + 24 * H, D1 + 48 * H, None, None]


def test_units_per_sku_per_day(loaded):
    rows = {
        (_day(r["order_date"]), r["marketplace_id"], r["seller_sku"]): (
            r["orders"],
            int(r["units_ordered"]),
            int(r["units_shipped"]),
        )
        for r in loaded.fetch_view("sp_v_units_per_sku_day")
    }
    assert rows == {
        ("2026-08-19", US, "SKU-A"): (4, 5, 2),  # O1 (2, 2 shipped), O2 (1), O6 (1), O8 (1)
        ("2026-08-19", US, "SKU-B"): (2, 5, 3),  # O3 (3, 1 shipped), O7 (2, 2 shipped); O4 cancelled
        ("2026-08-20", UK, "SKU-A"): (1, 4, 0),
    }


# --------------------------------------------------------------------------- lifecycle
def _lifecycle_dataset() -> list:
    """Hand-built histories; created at D1 unless said otherwise. Times in hours after D1."""

    def fbm(oid, status, hours, *, packages=(), complete=True, created=D1):
        if not complete:
            return summary(oid, status=status, updated=D1 + hours * H)
        return order(oid, status=status, created=created, updated=D1 + hours * H, packages=packages)

    def pkg(oid, n, status="IN_TRANSIT", shipped_at=None):
        return package(oid, n, status=status, ship_time=None if shipped_at is None else D1 + shipped_at * H)

    return [
        # WATCHED: every change observed (the event path): unshipped 1 h, shipped 26 h, delivered 50 h;
        # the package carries no ship_time, so the observed transition is the ship time.
        fbm("WATCHED", "UNSHIPPED", 1),
        fbm("WATCHED", "SHIPPED", 26, packages=(pkg("WATCHED", 1),)),
        fbm("WATCHED", "SHIPPED", 50, packages=(pkg("WATCHED", 1, "DELIVERED"),)),
        # BACKFILLED_FBM: seen once, already delivered at 50 h; Amazon's package ship_time says 20 h.
        fbm("BACKFILLED_FBM", "SHIPPED", 50, packages=(pkg("BACKFILLED_FBM", 1, "DELIVERED", 20),)),
        # BACKFILLED_FBA: seen once, shipped at 30 h, no packages: the ship time is unknown.
        order("BACKFILLED_FBA", status="SHIPPED", created=D1, updated=D1 + 30 * H, fulfilled_by="AMAZON"),
        # TWO_PACKAGES: unshipped then shipped at 15 h; packages shipped at 10 h and 12 h -> 12 h (packages
        # win over the observed transition).
        fbm("TWO_PACKAGES", "UNSHIPPED", 1),
        fbm("TWO_PACKAGES", "SHIPPED", 15, packages=(pkg("TWO_PACKAGES", 1, shipped_at=10),
                                                      pkg("TWO_PACKAGES", 2, shipped_at=12))),
        # SUMMARY_SHIPPED: the packages come from a PARTIALLY_SHIPPED complete record (one package shipped at
        # 5 h), the SHIPPED status from a later summary: the packages do not tell when it fully shipped.
        fbm("SUMMARY_SHIPPED", "PARTIALLY_SHIPPED", 6, packages=(pkg("SUMMARY_SHIPPED", 1, shipped_at=5),)),
        fbm("SUMMARY_SHIPPED", "SHIPPED", 9, complete=False),
        # MISSING_SHIP_TIME: seen once shipped at 8 h; one of two packages has no ship_time.
        fbm("MISSING_SHIP_TIME", "SHIPPED", 8, packages=(pkg("MISSING_SHIP_TIME", 1, shipped_at=3),
                                                          pkg("MISSING_SHIP_TIME", 2))),
        # CANCEL_SEEN: pending at 0 h, cancelled at 2 h (created 1 h before D1).
        order("CANCEL_SEEN", status="PENDING", created=D1 - H, updated=D1, fulfilled_by="AMAZON"),
        order("CANCEL_SEEN", status="CANCELLED", created=D1 - H, updated=D1 + 2 * H, fulfilled_by="AMAZON"),
        # CANCEL_BACKFILLED: seen once, already cancelled at 5 h.
        order("CANCEL_BACKFILLED", status="CANCELLED", created=D1, updated=D1 + 5 * H),
        # NOT_YET: unshipped, nothing happened.
        fbm("NOT_YET", "UNSHIPPED", 3),
    ]  # fmt: skip


@pytest.fixture
def lifecycle(warehouse) -> dict[str, dict[str, Any]]:
    versions = _lifecycle_dataset()
    warehouse.upsert_orders(versions[1::2])  # out of order, in two batches
    warehouse.upsert_orders(versions[::2])
    out = {}
    for r in warehouse.fetch_view("sp_v_order_lifecycle"):
        row = dict(r)
        for k in (
            "created_time",
            "first_observed_time",
            "shipped_time",
            "shipped_observed_time",
            "cancelled_time",
            "cancelled_observed_time",
            "delivered_time",
            "delivered_observed_time",
        ):
            row[k] = parse_ts(row[k])
        for k in (
            "shipped_transition_observed",
            "cancel_transition_observed",
            "delivery_transition_observed",
        ):
            row[k] = None if row[k] is None else bool(row[k])
        for k in ("hours_to_ship", "hours_to_cancel", "hours_to_delivery"):
            row[k] = None if row[k] is None else round(float(row[k]), 3)
        out[row.pop("order_id")] = row
    return out  # fmt: skip


def _t(hours: float | None) -> datetime | None:
    return None if hours is None else D1 + hours * H


def _shipping(r: dict[str, Any]) -> tuple:
    return (
        r["shipped_time"],
        r["shipped_time_source"],
        r["shipped_observed_time"],
        r["shipped_transition_observed"],
        r["hours_to_ship"],
    )


def test_lifecycle_has_one_row_per_order(lifecycle):
    assert sorted(lifecycle) == sorted({v.order_id for v in _lifecycle_dataset()})
    assert {k: r["first_observed_time"] for k, r in lifecycle.items()} == {
        "WATCHED": _t(1), "BACKFILLED_FBM": _t(50), "BACKFILLED_FBA": _t(30), "TWO_PACKAGES": _t(1),
        "SUMMARY_SHIPPED": _t(6), "MISSING_SHIP_TIME": _t(8), "CANCEL_SEEN": _t(0),
        "CANCEL_BACKFILLED": _t(5), "NOT_YET": _t(3),
    }  # fmt: skip


def test_lifecycle_shipping_times_say_how_they_are_known(lifecycle):
    assert {k: _shipping(r) for k, r in lifecycle.items()} == {
        "WATCHED": (_t(26), "observed", _t(26), True, 26.0),
        # The old view said shipped_time = delivered_time = 50 h and hours_to_ship = 50.
        "BACKFILLED_FBM": (_t(20), "packages", _t(50), False, 20.0),
        # The old view said hours_to_ship = 30 (hours to the last update).
        "BACKFILLED_FBA": (None, None, _t(30), False, None),
        "TWO_PACKAGES": (_t(12), "packages", _t(15), True, 12.0),
        "SUMMARY_SHIPPED": (_t(9), "observed", _t(9), True, 9.0),
        "MISSING_SHIP_TIME": (None, None, _t(8), False, None),
        "CANCEL_SEEN": (None, None, None, None, None),
        "CANCEL_BACKFILLED": (None, None, None, None, None),
        "NOT_YET": (None, None, None, None, None),
    }


def test_lifecycle_cancellation_only_when_observed(lifecycle):
    cols = ("cancelled_time", "cancelled_observed_time", "cancel_transition_observed", "hours_to_cancel")
    got = {k: tuple(r[c] for c in cols) for k, r in lifecycle.items() if r["cancelled_observed_time"]}
    assert got == {
        "CANCEL_SEEN": (_t(2), _t(2), True, 3.0),
        "CANCEL_BACKFILLED": (None, _t(5), False, None),  # old view: hours_to_cancel = 5
    }


def test_lifecycle_delivery_only_when_observed(lifecycle):
    cols = ("delivered_time", "delivered_observed_time", "delivery_transition_observed", "hours_to_delivery")
    got = {k: tuple(r[c] for c in cols) for k, r in lifecycle.items() if r["delivered_observed_time"]}
    assert got == {
        "WATCHED": (_t(50), _t(50), True, 50.0),
        "BACKFILLED_FBM": (None, _t(50), False, None),  # old view: delivered_time = shipped_time = 50 h
    }


def test_lifecycle_of_the_mixed_dataset(loaded):
    """The first dataset through the lifecycle view: only observed transitions produce durations."""
    rows = {r["order_id"]: r for r in loaded.fetch_view("sp_v_order_lifecycle")}
    hours = {
        k: tuple(None if r[c] is None else round(float(r[c]), 3)
                 for c in ("hours_to_ship", "hours_to_cancel", "hours_to_delivery"))
        for k, r in rows.items()
    }  # fmt: skip
    assert hours == {
        "111-0000001-0000001": (26.0, None, 50.0),
        "O2": (None, None, None),
        "O3": (None, None, None),
        "O4": (None, 3.0, None),
        "O5": (None, None, None),
        "O6": (None, None, None),
        "O7": (None, None, None),  # seen once, already SHIPPED: unknown (the old view said 28 h)
        "O8": (None, None, None),
    }
