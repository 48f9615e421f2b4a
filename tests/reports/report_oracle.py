"""An independent oracle for the history backfill: the warehouse rows order reports must give.

From the sandbox's raw truth (``/_sandbox/truth``: Orders API v2026-01-01 ``Order`` objects) and the
documented mapping - ``../shared/reports-notes.md`` A1/A2 (what a report carries), README's data
dictionary (``source = report``, ``api_version = reports-2021-06-30``) and docs/CONTRACTS.md (what the
sandbox's reports render) - never from the product: this module must not import ``selling_partner``
(checked by ``test_oracle_is_independent``).

A report carries per order: id, seller order id, created/last-updated time, status, fulfilled by,
marketplace name, service level, business flag; per item: id, SKU, ASIN, title, quantity and the
line money (item, shipping, their taxes, promotion discounts; none while Pending). So the expected
``sp_orders`` row has the truth's values for those, ``order_total`` = ``proceeds.grandTotal`` (the sum of
the report's money cells), ``currency`` its currency, ``programs`` only ``AMAZON_BUSINESS`` (the one
program a report shows), and NULL for everything a report lacks (ship/delivery windows, item counts,
order type); ``source`` ``report``, ``api_version`` ``reports-2021-06-30``, complete. Items: NULL
condition, shipped/unshipped quantities and cancellation; ``unit_price`` the truth's unit price. No
packages; one status-history row per order (``source`` ``report``, nothing delivered); no buyers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.oracle import parse_time, warehouse_rows

REPORT_API_VERSION = "reports-2021-06-30"
BOOKKEEPING = frozenset({"loaded_at", "observed_at", "recorded_at"})
MONEY = frozenset(
    {
        "order_total",
        "unit_price",
        "item_price",
        "item_tax",
        "shipping_price",
        "shipping_tax",
        "promotion_discount",
    }
)
LISTS = frozenset({"programs", "promotion_ids"})


def _amount(money: Any) -> Decimal | None:
    return (
        Decimal(money["amount"]) if isinstance(money, Mapping) and money.get("amount") is not None else None
    )


def _breakdown(item: Mapping[str, Any], kind: str, subtype: str | None = None) -> Decimal | None:
    for b in (item.get("proceeds") or {}).get("breakdowns") or []:
        if b.get("type") != kind:
            continue
        if subtype is None:
            return _amount(b.get("subtotal"))
        for d in b.get("detailedBreakdowns") or []:
            if d.get("subtype") == subtype:
                return _amount(d.get("value"))
    return None


def expected_rows(truth: Mapping[str, Any], *, order_ids: Iterable[str] | None = None) -> dict[str, dict]:
    """``{table: {key: row}}`` that loading reports of the truth's orders must give."""
    keep = set(order_ids) if order_ids is not None else None
    orders: dict = {}
    items: dict = {}
    history: dict = {}
    for o in truth["orders"]:
        oid = o["orderId"]
        if keep is not None and oid not in keep:
            continue
        updated = parse_time(o["lastUpdatedTime"])
        fulfillment = o.get("fulfillment") or {}
        total = (o.get("proceeds") or {}).get("grandTotal")
        alias = [a["aliasId"] for a in o.get("orderAliases") or [] if a.get("aliasType") == "SELLER_ORDER_ID"]
        orders[(oid,)] = {
            "order_id": oid,
            "seller_id": truth["seller_id"],
            "marketplace_id": o["salesChannel"]["marketplaceId"],
            "sales_channel": o["salesChannel"].get("marketplaceName"),
            "order_status": fulfillment["fulfillmentStatus"],
            "fulfilled_by": fulfillment.get("fulfilledBy"),
            "fulfillment_service_level": fulfillment.get("fulfillmentServiceLevel"),
            "order_type": None,
            "seller_order_id": alias[0] if alias else None,
            "currency": total["currencyCode"] if total else None,
            "order_total": _amount(total),
            "created_time": parse_time(o["createdTime"]),
            "last_updated_time": updated,
            "earliest_ship_time": None,
            "latest_ship_time": None,
            "earliest_delivery_time": None,
            "latest_delivery_time": None,
            "programs": "AMAZON_BUSINESS" if "AMAZON_BUSINESS" in (o.get("programs") or []) else "",
            "items_shipped": None,
            "items_unshipped": None,
            "api_version": REPORT_API_VERSION,
            "source": "report",
            "status_from_complete": True,
            "is_complete": True,
            "details_updated_time": updated,
        }
        history[(oid, updated, fulfillment["fulfillmentStatus"])] = {
            "order_id": oid,
            "order_status": fulfillment["fulfillmentStatus"],
            "last_updated_time": updated,
            "packages_delivered": False,
            "source": "report",
        }
        for it in o.get("orderItems") or []:
            product = it.get("product") or {}
            unit = (product.get("price") or {}).get("unitPrice")
            discount = _breakdown(it, "DISCOUNT")
            items[(oid, it["orderItemId"])] = {
                "order_id": oid,
                "order_item_id": it["orderItemId"],
                "asin": product.get("asin"),
                "seller_sku": product.get("sellerSku"),
                "title": product.get("title"),
                "condition": None,
                "quantity_ordered": it["quantityOrdered"],
                "quantity_shipped": None,
                "quantity_unshipped": None,
                "currency": unit["currencyCode"] if unit else None,
                "unit_price": _amount(unit),
                "item_price": _breakdown(it, "ITEM"),
                "item_tax": _breakdown(it, "TAX", "ITEM"),
                "shipping_price": _breakdown(it, "SHIPPING"),
                "shipping_tax": _breakdown(it, "TAX", "SHIPPING"),
                "promotion_discount": abs(discount) if discount is not None else None,
                "promotion_ids": ",".join(
                    p["promotionId"] for p in (it.get("promotion") or {}).get("breakdowns") or []
                ),
                "is_buyer_requested_cancel": None,
                "buyer_cancel_reason": None,
                "order_last_updated_time": updated,
            }
    return {"sp_orders": orders, "sp_order_items": items, "sp_order_status_history": history,
            "sp_order_packages": {}, "sp_order_buyers": {}}  # fmt: skip


KEYS = {
    "sp_orders": ("order_id",),
    "sp_order_items": ("order_id", "order_item_id"),
    "sp_order_status_history": ("order_id", "last_updated_time", "order_status"),
    "sp_order_packages": ("order_id", "package_reference_id"),
    "sp_order_buyers": ("order_id",),
}


def _equal(column: str, expected: Any, got: Any) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if column in MONEY:
        return Decimal(str(expected)) == Decimal(str(got))
    if column in LISTS:
        return set(filter(None, str(expected).split(","))) == set(filter(None, str(got).split(",")))
    if isinstance(expected, datetime):
        return isinstance(got, datetime) and expected == got
    if isinstance(expected, bool):
        return isinstance(got, bool) and expected is got
    return type(expected) is type(got) and expected == got


def compare(
    expected: Mapping[str, dict], warehouse: Any, *, order_ids: Iterable[str] | None = None
) -> list[str]:
    """Differences between ``expected`` and a ``Warehouse`` (or ``{table: rows}`` as its ``fetch_*`` give
    them), restricted to ``order_ids`` when given; empty: equal."""
    keep = set(order_ids) if order_ids is not None else None
    actual = warehouse_rows(warehouse) if hasattr(warehouse, "fetch_orders") else warehouse
    diffs: list[str] = []
    for table, rows in expected.items():
        key_cols = KEYS[table]
        got = {
            tuple(r[c] for c in key_cols): r for r in actual[table] if keep is None or r["order_id"] in keep
        }
        for key in sorted(set(rows) - set(got), key=str):
            diffs.append(f"{table} {key}: missing")
        for key in sorted(set(got) - set(rows), key=str):
            diffs.append(f"{table} {key}: unexpected")
        for key in sorted(set(rows) & set(got), key=str):
            want, have = rows[key], got[key]
            for column in sorted(set(want) | set(have) - BOOKKEEPING):
                if column in BOOKKEEPING:
                    continue
                if column not in want or column not in have:
                    diffs.append(f"{table} {key}.{column}: column known to only one side")
                elif not _equal(column, want[column], have[column]):
                    diffs.append(f"{table} {key}.{column}: expected {want[column]!r}, got {have[column]!r}")
    return diffs
