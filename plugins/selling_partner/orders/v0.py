"""Orders API v0 ``Order`` + ``OrderItem`` list -> canonical ``CanonicalOrder`` (pure functions).

Field mapping (v0 -> canonical), chosen so the same order read through v0 and v2026 gives the same
record (see :data:`FIELDS_NOT_IN_V0` and :data:`FIELDS_NOT_IN_V2026` for what cannot match):

==============================================  ============================================
``AmazonOrderId``                               ``order_id``
``MarketplaceId`` / ``SalesChannel``            ``marketplace_id`` / ``sales_channel``
``OrderStatus``                                 ``order_status`` via ``V0_STATUS_TO_V2026``
``PurchaseDate`` / ``LastUpdateDate``           ``created_time`` / ``last_updated_time`` (UTC)
``FulfillmentChannel`` (MFN/AFN)                ``fulfilled_by`` (MERCHANT/AMAZON)
``ShipmentServiceLevelCategory``                ``fulfillment_service_level`` (``SecondDay`` -> SECOND_DAY)
``OrderType``                                   ``order_type``
``SellerOrderId``                               ``seller_order_id``
``OrderTotal``                                  ``order_total`` + ``currency``
``Earliest/LatestShipDate``, ``...DeliveryDate``  ship / delivery windows
``Is*`` flags, ``OrderType=Preorder``           ``programs`` (v2026 names, sorted; see ``V0_FLAG_PROGRAMS``)
``NumberOfItemsShipped/Unshipped``              ``items_shipped`` / ``items_unshipped``
getOrderBuyerInfo + getOrderAddress (RDT)       ``buyer``
==============================================  ============================================

Items: ``ASIN``, ``SellerSKU``, ``Title``, ``ConditionId`` (upper case), ``QuantityOrdered``,
``QuantityShipped`` (unshipped = ordered - shipped; 0 once the order is cancelled),
``ItemPrice`` -> ``item_price`` and
``unit_price`` = ItemPrice / QuantityOrdered, ``ItemTax``, ``ShippingPrice``, ``ShippingTax``,
``PromotionDiscount`` -> ``promotion_discount``, ``PromotionIds`` (sorted),
``BuyerRequestedCancel`` -> ``is_buyer_requested_cancel`` / ``buyer_cancel_reason``.
v0 has no packages: ``packages`` is always empty.
"""

from __future__ import annotations

import re
from typing import Any

from selling_partner.orders.canonical import (
    V0_CHANNEL_TO_FULFILLED_BY,
    V0_STATUS_TO_V2026,
    CanonicalBuyer,
    CanonicalItem,
    CanonicalOrder,
)
from selling_partner.orders.v2026 import absolute, divide, money_parts, required_id
from selling_partner.validation import parse_amazon_time

API_VERSION = "v0"

#: v0 boolean flags -> v2026 program names.
V0_FLAG_PROGRAMS = {
    "IsPrime": "PRIME",
    "IsBusinessOrder": "AMAZON_BUSINESS",
    "IsPremiumOrder": "PREMIUM",
    "IsISPU": "IN_STORE_PICK_UP",
}
#: Canonical fields v0 cannot fill (always None/empty from this adapter).
FIELDS_NOT_IN_V0 = ("packages",)
#: Canonical fields v2026 cannot fill (None from orders.v2026).
FIELDS_NOT_IN_V2026 = ("order_type",)


def _money(obj: Any) -> tuple[str | None, str | None]:
    return money_parts(obj, amount_key="Amount", currency_key="CurrencyCode")


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def service_level(category: str | None) -> str | None:
    """v0 ``ShipmentServiceLevelCategory`` (``SecondDay``) -> v2026 style (``SECOND_DAY``)."""
    if not category:
        return None
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", category).upper()


def programs_from_flags(raw_order: dict[str, Any]) -> tuple[str, ...]:
    """v2026 program names implied by a v0 order's flags (sorted)."""
    programs = {name for flag, name in V0_FLAG_PROGRAMS.items() if raw_order.get(flag) is True}
    if raw_order.get("OrderType") == "Preorder":
        programs.add("PREORDER")
    return tuple(sorted(programs))


def normalize_item(raw: dict[str, Any], order_id: str, *, cancelled: bool = False) -> CanonicalItem:
    """One v0 ``OrderItem`` -> :class:`CanonicalItem` (nothing is left to ship on a ``cancelled`` order)."""
    ordered = int(raw.get("QuantityOrdered") or 0)
    shipped = raw.get("QuantityShipped")
    item_price, currency = _money(raw.get("ItemPrice"))
    item_tax, tax_currency = _money(raw.get("ItemTax"))
    shipping, ship_currency = _money(raw.get("ShippingPrice"))
    shipping_tax, _ = _money(raw.get("ShippingTax"))
    discount, _ = _money(raw.get("PromotionDiscount"))
    cancel = raw.get("BuyerRequestedCancel") or {}
    condition = raw.get("ConditionId")
    return CanonicalItem(
        order_id=order_id,
        order_item_id=required_id(raw, "OrderItemId", f"order {order_id}: an item"),
        quantity_ordered=ordered,
        asin=raw.get("ASIN"),
        seller_sku=raw.get("SellerSKU"),
        title=raw.get("Title"),
        condition=condition.upper() if isinstance(condition, str) else None,
        quantity_shipped=int(shipped) if shipped is not None else None,
        quantity_unshipped=(0 if cancelled else ordered - int(shipped)) if shipped is not None else None,
        currency=currency or tax_currency or ship_currency,
        unit_price=divide(item_price, ordered),
        item_price=item_price,
        item_tax=item_tax,
        shipping_price=shipping,
        shipping_tax=shipping_tax,
        promotion_discount=absolute(discount),
        promotion_ids=tuple(sorted(p for p in raw.get("PromotionIds") or [] if p)),
        is_buyer_requested_cancel=bool(_bool(cancel.get("IsBuyerRequestedCancel"))),
        buyer_cancel_reason=cancel.get("BuyerCancelReason") or None,
    )


def normalize_buyer(
    order_id: str, buyer_info: dict[str, Any] | None, address: dict[str, Any] | None
) -> CanonicalBuyer | None:
    """getOrderBuyerInfo + getOrderAddress payloads -> :class:`CanonicalBuyer` (``None`` if neither)."""
    if not buyer_info and not address:
        return None
    info = buyer_info or {}
    addr_payload = address or {}
    addr = addr_payload.get("ShippingAddress") or {}
    return CanonicalBuyer(
        order_id=order_id,
        buyer_name=info.get("BuyerName"),
        buyer_email=info.get("BuyerEmail"),
        buyer_company_name=addr_payload.get("BuyerCompanyName") or addr.get("CompanyName"),
        buyer_purchase_order_number=info.get("PurchaseOrderNumber"),
        recipient_name=addr.get("Name"),
        address_line1=addr.get("AddressLine1"),
        address_line2=addr.get("AddressLine2"),
        address_line3=addr.get("AddressLine3"),
        city=addr.get("City"),
        state_or_region=addr.get("StateOrRegion"),
        postal_code=addr.get("PostalCode"),
        country_code=addr.get("CountryCode"),
        phone=addr.get("Phone"),
    )


def normalize_order(
    raw_order: dict[str, Any],
    raw_items: list[dict[str, Any]],
    *,
    seller_id: str | None,
    buyer_info: dict[str, Any] | None = None,
    address: dict[str, Any] | None = None,
) -> CanonicalOrder:
    """A v0 order (getOrders/getOrder payload) and its getOrderItems list -> :class:`CanonicalOrder`.

    Raises ``ValueError`` on a malformed order or an unknown status.
    """
    order_id = raw_order.get("AmazonOrderId")
    if not order_id:
        raise ValueError("v0 order without AmazonOrderId")
    status = V0_STATUS_TO_V2026.get(raw_order.get("OrderStatus", ""))
    if status is None:
        raise ValueError(f"order {order_id}: unknown v0 OrderStatus {raw_order.get('OrderStatus')!r}")
    created = parse_amazon_time(raw_order.get("PurchaseDate"))
    updated = parse_amazon_time(raw_order.get("LastUpdateDate"))
    if created is None or updated is None:
        raise ValueError(f"order {order_id}: PurchaseDate/LastUpdateDate missing")
    total, currency = _money(raw_order.get("OrderTotal"))
    items = tuple(normalize_item(item, order_id, cancelled=status == "CANCELLED") for item in raw_items)
    return CanonicalOrder(
        order_id=order_id,
        marketplace_id=raw_order.get("MarketplaceId") or "",
        order_status=status,
        created_time=created,
        last_updated_time=updated,
        seller_id=seller_id,
        sales_channel=raw_order.get("SalesChannel"),
        fulfilled_by=V0_CHANNEL_TO_FULFILLED_BY.get(raw_order.get("FulfillmentChannel", "")),
        fulfillment_service_level=service_level(raw_order.get("ShipmentServiceLevelCategory")),
        order_type=raw_order.get("OrderType"),
        seller_order_id=raw_order.get("SellerOrderId"),
        currency=currency,  # the currency of order_total (None while the order has no total)
        order_total=total,
        earliest_ship_time=parse_amazon_time(raw_order.get("EarliestShipDate")),
        latest_ship_time=parse_amazon_time(raw_order.get("LatestShipDate")),
        earliest_delivery_time=parse_amazon_time(raw_order.get("EarliestDeliveryDate")),
        latest_delivery_time=parse_amazon_time(raw_order.get("LatestDeliveryDate")),
        programs=programs_from_flags(raw_order),
        items_shipped=raw_order.get("NumberOfItemsShipped"),
        items_unshipped=raw_order.get("NumberOfItemsUnshipped"),
        items=items,
        packages=(),
        buyer=normalize_buyer(order_id, buyer_info, address),
        api_version=API_VERSION,
        source="sync",
        complete=True,
    )
