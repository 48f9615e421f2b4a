"""Orders API v2026-01-01 ``Order`` -> :class:`~selling_partner.orders.canonical.CanonicalOrder` (pure).

Field mapping (v2026 -> canonical):

==============================================  ============================================
``orderId``                                     ``order_id``
``salesChannel.marketplaceId`` / ``.marketplaceName``  ``marketplace_id`` / ``sales_channel``
``fulfillment.fulfillmentStatus``               ``order_status`` (already a v2026 status)
``createdTime`` / ``lastUpdatedTime``           ``created_time`` / ``last_updated_time`` (UTC)
``fulfillment.fulfilledBy``                     ``fulfilled_by`` (MERCHANT / AMAZON)
``fulfillment.fulfillmentServiceLevel``         ``fulfillment_service_level``
``fulfillment.shipByWindow`` / ``deliverByWindow``  ``earliest/latest_ship_time``, ``..._delivery_time``
``orderAliases[SELLER_ORDER_ID].aliasId``       ``seller_order_id``
``proceeds.grandTotal``                         ``order_total`` + ``currency``
``programs``                                    ``programs`` (sorted)
sum of items' ``quantityFulfilled/Unfulfilled`` ``items_shipped`` / ``items_unshipped``
``packages[]`` (FBM, ``PACKAGES``)              ``packages``
``buyer`` + ``recipient.deliveryAddress``       ``buyer`` (only when present: ``BUYER``/``RECIPIENT``)
==============================================  ============================================

Items: ``product.asin/sellerSku/title``, ``product.condition.conditionType`` -> ``condition``,
``product.price.unitPrice`` -> ``unit_price``, proceeds breakdowns ``ITEM`` -> ``item_price``,
``SHIPPING`` -> ``shipping_price``, ``TAX`` (split by ``detailedBreakdowns`` subtype ITEM/SHIPPING, other
subtypes such as GIFT_WRAP have no column, as in v0; undivided TAX counts as item tax) ->
``item_tax``/``shipping_tax``, ``DISCOUNT`` (absolute value) ->
``promotion_discount``, ``promotion.breakdowns[].promotionId`` -> ``promotion_ids`` (sorted),
``fulfillment.quantityFulfilled/Unfulfilled`` -> ``quantity_shipped/unshipped``,
``cancellation.cancellationRequest`` -> ``is_buyer_requested_cancel`` (True when the buyer asked,
else False - the hook always requests CANCELLATION) and ``buyer_cancel_reason``.
Not in v2026: ``order_type`` (None).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from selling_partner.orders.canonical import (
    ORDER_STATUSES,
    CanonicalBuyer,
    CanonicalItem,
    CanonicalOrder,
    CanonicalPackage,
)
from selling_partner.validation import parse_amazon_time

API_VERSION = "2026-01-01"


# --- money helpers (shared with orders.v0): decimal strings, never floats -------------------------


def amount(value: Any) -> Decimal | None:
    """The ``Decimal`` of an Amazon amount string (``"19.99"``), or ``None``."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {str(value)[:40]!r}") from None


def fmt(value: Decimal | None) -> str | None:
    """A decimal string without exponent; ``-0`` becomes ``0``."""
    if value is None:
        return None
    if value == 0:
        value = abs(value)
    return format(value, "f")


def money_parts(money: Any, *, amount_key: str, currency_key: str) -> tuple[str | None, str | None]:
    """``(amount_string, currency)`` of a Money object (v2026 ``amount``, v0 ``Amount`` keys)."""
    if not isinstance(money, dict):
        return None, None
    value = amount(money.get(amount_key))
    return fmt(value), money.get(currency_key) or None


def divide(total: str | None, quantity: int) -> str | None:
    """``total / quantity`` at the scale of ``total`` (unit price from a v0 ``ItemPrice``)."""
    value = amount(total)
    if value is None or quantity <= 0:
        return None
    exponent = (
        Decimal(1).scaleb(value.as_tuple().exponent) if isinstance(value.as_tuple().exponent, int) else None
    )
    result = value / Decimal(quantity)
    if exponent is not None:
        result = result.quantize(exponent, rounding=ROUND_HALF_UP)
    return fmt(result)


def absolute(value: str | None) -> str | None:
    """The absolute value of an amount string (discounts are stored as positive amounts)."""
    number = amount(value)
    return fmt(abs(number)) if number is not None else None


def required_id(raw: dict[str, Any], key: str, what: str) -> str:
    """``raw[key]`` as text; ``ValueError`` naming ``what`` when it is missing or empty."""
    value = raw.get(key)
    if value is None or value == "":
        raise ValueError(f"{what} has no {key}")
    return str(value)


def _money(obj: Any) -> tuple[str | None, str | None]:
    return money_parts(obj, amount_key="amount", currency_key="currencyCode")


def _sum_breakdowns(breakdowns: list[dict[str, Any]], kind: str) -> tuple[Decimal | None, str | None]:
    total: Decimal | None = None
    currency = None
    for entry in breakdowns:
        if entry.get("type") != kind:
            continue
        value, cur = _money(entry.get("subtotal"))
        if value is None:
            continue
        total = (total or Decimal(0)) + Decimal(value)
        currency = currency or cur
    return total, currency


def _split_tax(breakdowns: list[dict[str, Any]]) -> tuple[Decimal | None, Decimal | None]:
    """(item tax, shipping tax) from TAX breakdowns (their detailed subtypes, when present)."""
    item_tax: Decimal | None = None
    shipping_tax: Decimal | None = None
    for entry in breakdowns:
        if entry.get("type") != "TAX":
            continue
        details = entry.get("detailedBreakdowns") or []
        if not details:
            value = amount((entry.get("subtotal") or {}).get("amount"))
            if value is not None:
                item_tax = (item_tax or Decimal(0)) + value
            continue
        for detail in details:
            value = amount((detail.get("value") or {}).get("amount"))
            if value is None:
                continue
            if detail.get("subtype") == "SHIPPING":
                shipping_tax = (shipping_tax or Decimal(0)) + value
            elif detail.get("subtype") == "ITEM":
                item_tax = (item_tax or Decimal(0)) + value
            # other subtypes (GIFT_WRAP, ...) have no column, as in v0 (ItemTax / ShippingTax only)
    return item_tax, shipping_tax


def normalize_item(raw: dict[str, Any], order_id: str) -> CanonicalItem:
    """One v2026 ``OrderItem`` -> :class:`CanonicalItem`."""
    product = raw.get("product") or {}
    unit_price, unit_currency = _money((product.get("price") or {}).get("unitPrice"))
    breakdowns = list((raw.get("proceeds") or {}).get("breakdowns") or [])
    item_price, item_currency = _sum_breakdowns(breakdowns, "ITEM")
    shipping, ship_currency = _sum_breakdowns(breakdowns, "SHIPPING")
    discount, _ = _sum_breakdowns(breakdowns, "DISCOUNT")
    item_tax, shipping_tax = _split_tax(breakdowns)
    total_currency = _money((raw.get("proceeds") or {}).get("proceedsTotal"))[1]
    fulfillment = raw.get("fulfillment") or {}
    request = (raw.get("cancellation") or {}).get("cancellationRequest") or None
    promotion_ids = sorted(
        {
            p["promotionId"]
            for p in (raw.get("promotion") or {}).get("breakdowns") or []
            if p.get("promotionId")
        }
    )
    condition = (product.get("condition") or {}).get("conditionType")
    return CanonicalItem(
        order_id=order_id,
        order_item_id=required_id(raw, "orderItemId", f"order {order_id}: an item"),
        quantity_ordered=int(raw.get("quantityOrdered") or 0),
        asin=product.get("asin"),
        seller_sku=product.get("sellerSku"),
        title=product.get("title"),
        condition=condition.upper() if isinstance(condition, str) else None,
        quantity_shipped=fulfillment.get("quantityFulfilled"),
        quantity_unshipped=fulfillment.get("quantityUnfulfilled"),
        currency=unit_currency or item_currency or ship_currency or total_currency,
        unit_price=unit_price,
        item_price=fmt(item_price),
        item_tax=fmt(item_tax),
        shipping_price=fmt(shipping),
        shipping_tax=fmt(shipping_tax),
        promotion_discount=absolute(fmt(discount)),
        promotion_ids=tuple(promotion_ids),
        is_buyer_requested_cancel=request is not None and request.get("requester", "BUYER") == "BUYER",
        buyer_cancel_reason=(request or {}).get("cancelReason") or None,
    )


def normalize_package(raw: dict[str, Any], order_id: str) -> CanonicalPackage:
    """One v2026 ``OrderPackage`` (FBM) -> :class:`CanonicalPackage`."""
    status = raw.get("packageStatus") or {}
    return CanonicalPackage(
        order_id=order_id,
        package_reference_id=required_id(raw, "packageReferenceId", f"order {order_id}: a package"),
        carrier=raw.get("carrier"),
        tracking_number=raw.get("trackingNumber"),
        shipping_service=raw.get("shippingService"),
        package_status=status.get("status"),
        package_detailed_status=status.get("detailedStatus"),
        ship_time=parse_amazon_time(raw.get("shipTime")),
    )


def normalize_buyer(raw: dict[str, Any], order_id: str) -> CanonicalBuyer | None:
    """``buyer`` + ``recipient.deliveryAddress`` -> :class:`CanonicalBuyer` (or ``None``)."""
    buyer = raw.get("buyer") or None
    address = (raw.get("recipient") or {}).get("deliveryAddress") or None
    if not buyer and not address:
        return None
    buyer = buyer or {}
    address = address or {}
    return CanonicalBuyer(
        order_id=order_id,
        buyer_name=buyer.get("buyerName"),
        buyer_email=buyer.get("buyerEmail"),
        buyer_company_name=buyer.get("buyerCompanyName") or address.get("companyName"),
        buyer_purchase_order_number=buyer.get("buyerPurchaseOrderNumber"),
        recipient_name=address.get("name"),
        address_line1=address.get("addressLine1"),
        address_line2=address.get("addressLine2"),
        address_line3=address.get("addressLine3"),
        city=address.get("city"),
        state_or_region=address.get("stateOrRegion"),
        postal_code=address.get("postalCode"),
        country_code=address.get("countryCode"),
        phone=address.get("phone"),
    )


def normalize_order(raw: dict[str, Any], *, seller_id: str | None) -> CanonicalOrder:
    """A v2026 ``Order`` (from searchOrders or getOrder) -> :class:`CanonicalOrder`.

    Needs ``includedData`` FULFILLMENT (the status); PROCEEDS, PACKAGES, PROMOTION and CANCELLATION
    fill prices, packages, promotions and cancellations. Raises ``ValueError`` on a malformed order.
    """
    order_id = raw.get("orderId")
    if not order_id:
        raise ValueError("v2026 order without orderId")
    fulfillment = raw.get("fulfillment") or {}
    status = fulfillment.get("fulfillmentStatus")
    if status not in ORDER_STATUSES:
        raise ValueError(
            f"order {order_id}: fulfillmentStatus {status!r} missing or unknown "
            "(request includedData=FULFILLMENT)"
        )
    channel = raw.get("salesChannel") or {}
    created = parse_amazon_time(raw.get("createdTime"))
    updated = parse_amazon_time(raw.get("lastUpdatedTime"))
    if created is None or updated is None:
        raise ValueError(f"order {order_id}: createdTime/lastUpdatedTime missing")
    items = tuple(normalize_item(item, order_id) for item in raw.get("orderItems") or [])
    total, currency = _money((raw.get("proceeds") or {}).get("grandTotal"))
    ship = fulfillment.get("shipByWindow") or {}
    deliver = fulfillment.get("deliverByWindow") or {}
    alias = next(
        (a.get("aliasId") for a in raw.get("orderAliases") or [] if a.get("aliasType") == "SELLER_ORDER_ID"),
        None,
    )
    shipped = [i.quantity_shipped for i in items if i.quantity_shipped is not None]
    unshipped = [i.quantity_unshipped for i in items if i.quantity_unshipped is not None]
    return CanonicalOrder(
        order_id=order_id,
        marketplace_id=channel.get("marketplaceId") or "",
        order_status=status,
        created_time=created,
        last_updated_time=updated,
        seller_id=seller_id,
        sales_channel=channel.get("marketplaceName"),
        fulfilled_by=fulfillment.get("fulfilledBy"),
        fulfillment_service_level=fulfillment.get("fulfillmentServiceLevel"),
        order_type=None,
        seller_order_id=alias,
        currency=currency,  # the currency of order_total (None while the order has no total)
        order_total=total,
        earliest_ship_time=parse_amazon_time(ship.get("earliestDateTime")),
        latest_ship_time=parse_amazon_time(ship.get("latestDateTime")),
        earliest_delivery_time=parse_amazon_time(deliver.get("earliestDateTime")),
        latest_delivery_time=parse_amazon_time(deliver.get("latestDateTime")),
        programs=tuple(sorted(raw.get("programs") or [])),
        items_shipped=sum(shipped) if shipped else None,
        items_unshipped=sum(unshipped) if unshipped else None,
        items=items,
        packages=tuple(normalize_package(p, order_id) for p in raw.get("packages") or []),
        buyer=normalize_buyer(raw, order_id),
        api_version=API_VERSION,
        source="sync",
        complete=True,
    )
