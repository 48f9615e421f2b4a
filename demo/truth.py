"""Compare the warehouse with the sandbox's ground truth (``GET /_sandbox/truth``).

The truth is normalised with the same v2026 normaliser the sync uses for the API, then compared on the
fields both API versions (v2026 ``searchOrders`` and v0 ``getOrders`` + ``getOrderItems``) carry, so
one check serves both modes. Used by ``python -m demo`` and by the sync tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

#: Order columns compared with the truth.
ORDER_FIELDS = (
    "marketplace_id",
    "order_status",
    "created_time",
    "last_updated_time",
    "fulfilled_by",
    "currency",
    "order_total",
)
#: Item columns compared with the truth.
ITEM_FIELDS = ("asin", "seller_sku", "quantity_ordered", "item_price")
_MONEY = {"order_total", "item_price"}


def _norm(name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if name in _MONEY:
        return Decimal(str(value)).normalize()
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(microsecond=(value.microsecond // 1000) * 1000)
    return value


def _record(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    get = obj.get if isinstance(obj, Mapping) else lambda k: getattr(obj, k)
    return {f: _norm(f, get(f)) for f in fields}


def expected_from_truth(truth: Mapping[str, Any]) -> tuple[dict[str, dict], dict[tuple[str, str], dict]]:
    """(orders by id, items by (order id, item id)) from a ``/_sandbox/truth`` payload."""
    from selling_partner.orders.v2026 import normalize_order

    orders: dict[str, dict] = {}
    items: dict[tuple[str, str], dict] = {}
    for raw in truth["orders"]:
        order = normalize_order(raw, seller_id=truth.get("seller_id"))
        orders[order.order_id] = _record(order, ORDER_FIELDS)
        for item in order.items:
            items[(item.order_id, item.order_item_id)] = _record(item, ITEM_FIELDS)
    return orders, items


def compare_with_truth(
    truth: Mapping[str, Any],
    warehouse_orders: Iterable[Mapping[str, Any]],
    warehouse_items: Iterable[Mapping[str, Any]],
    *,
    limit: int = 20,
) -> list[str]:
    """Differences between the warehouse rows and the truth (empty list: they match)."""
    exp_orders, exp_items = expected_from_truth(truth)
    got_orders = {r["order_id"]: _record(r, ORDER_FIELDS) for r in warehouse_orders}
    got_items = {(r["order_id"], r["order_item_id"]): _record(r, ITEM_FIELDS) for r in warehouse_items}
    diffs: list[str] = []
    for oid in sorted(exp_orders.keys() - got_orders.keys()):
        diffs.append(f"order {oid}: missing from the warehouse")
    for oid in sorted(got_orders.keys() - exp_orders.keys()):
        diffs.append(f"order {oid}: in the warehouse but not in the truth")
    for oid in sorted(exp_orders.keys() & got_orders.keys()):
        for f in ORDER_FIELDS:
            if exp_orders[oid][f] != got_orders[oid][f]:
                diffs.append(f"order {oid}: {f} is {got_orders[oid][f]!r}, truth {exp_orders[oid][f]!r}")
    # Items only for orders both sides know (a missing order is reported once above).
    common = exp_orders.keys() & got_orders.keys()
    exp_i = {k: v for k, v in exp_items.items() if k[0] in common}
    got_i = {k: v for k, v in got_items.items() if k[0] in common}
    for key in sorted(exp_i.keys() - got_i.keys()):
        diffs.append(f"item {key[0]}/{key[1]}: missing from the warehouse")
    for key in sorted(got_i.keys() - exp_i.keys()):
        diffs.append(f"item {key[0]}/{key[1]}: in the warehouse but not in the truth")
    for key in sorted(exp_i.keys() & got_i.keys()):
        for f in ITEM_FIELDS:
            if exp_i[key][f] != got_i[key][f]:
                diffs.append(f"item {key[0]}/{key[1]}: {f} is {got_i[key][f]!r}, truth {exp_i[key][f]!r}")
    if len(diffs) > limit:
        diffs = [*diffs[:limit], f"... and {len(diffs) - limit} more differences"]
    return diffs
