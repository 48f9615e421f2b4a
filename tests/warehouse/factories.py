"""Builders of canonical records for warehouse tests (deterministic, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from selling_partner.orders.canonical import (
    CanonicalBuyer,
    CanonicalItem,
    CanonicalOrder,
    CanonicalPackage,
)

T0 = datetime(2026, 8, 20, 14, 5, 31, 482000, tzinfo=UTC)
US = "ATVPDKIKX0DER"
UK = "A1F83G8C2ARO7P"


def at(minutes: float) -> datetime:
    """``T0`` plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


def item(
    order_id: str,
    n: int,
    *,
    qty: int = 1,
    price: str | None = "10.00",
    sku: str | None = None,
    shipped: int | None = 0,
) -> CanonicalItem:
    return CanonicalItem(
        order_id=order_id,
        order_item_id=f"{order_id}-I{n}",
        quantity_ordered=qty,
        asin=f"B00000000{n}",
        seller_sku=sku or f"SKU-{n}",
        title=f"Item {n}",
        quantity_shipped=shipped,
        currency="USD" if price is not None else None,
        unit_price=price,
        item_price=None if price is None or qty is None else f"{float(price) * qty:.2f}",
        promotion_ids=("PROMO1",) if n == 1 else (),
        is_buyer_requested_cancel=False,
    )


def package(
    order_id: str, n: int, *, status: str = "IN_TRANSIT", ship_time: datetime | None = None
) -> CanonicalPackage:
    return CanonicalPackage(
        order_id=order_id,
        package_reference_id=f"{order_id}-P{n}",
        carrier="UPS",
        tracking_number=f"1Z{n:08d}",
        package_status=status,
        ship_time=ship_time,
    )


def order(
    order_id: str = "111-0000001-0000001",
    *,
    status: str = "UNSHIPPED",
    updated: datetime = T0,
    created: datetime | None = None,
    total: str | None = "20.00",
    items: tuple[CanonicalItem, ...] | None = None,
    packages: tuple[CanonicalPackage, ...] = (),
    complete: bool = True,
    source: str = "sync",
    fulfilled_by: str = "MERCHANT",
    marketplace_id: str = US,
    latest_ship: datetime | None = None,
    buyer: CanonicalBuyer | None = None,
    currency: str = "USD",
) -> CanonicalOrder:
    return CanonicalOrder(
        order_id=order_id,
        marketplace_id=marketplace_id,
        order_status=status,
        created_time=created or T0 - timedelta(hours=1),
        last_updated_time=updated,
        seller_id="A1SANDBOXSELLERNA",
        sales_channel="Amazon.com",
        fulfilled_by=fulfilled_by,
        currency=currency if total is not None else None,
        order_total=total,
        latest_ship_time=latest_ship,
        programs=("PRIME",),
        items=(item(order_id, 1, qty=2),) if items is None else items,
        packages=packages,
        buyer=buyer,
        source=source,  # type: ignore[arg-type]
        complete=complete,
    )


def summary(order_id: str = "111-0000001-0000001", *, status: str, updated: datetime) -> CanonicalOrder:
    """A partial record as an ORDER_CHANGE summary gives it: status, SKUs and quantities, no prices."""
    return order(
        order_id,
        status=status,
        updated=updated,
        total=None,
        items=(item(order_id, 1, qty=2, price=None),),
        complete=False,
        source="summary",
    )


def buyer(order_id: str) -> CanonicalBuyer:
    return CanonicalBuyer(
        order_id=order_id, buyer_name="Jane Doe", buyer_email="jane@example.invalid", city="Seattle"
    )
