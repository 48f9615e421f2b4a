"""Orders API v0: a ``SimOrder`` as ``Order``, ``OrderItem`` list, ``OrderBuyerInfo`` and ``OrderAddress``.

v0 agrees with the v2026 rendering on every amount, time, status, item and quantity: times are whole
seconds; ``ItemPrice`` is unit price x quantity; ``ItemTax``/``ShippingTax`` are v2026's TAX
``detailedBreakdowns``; ``PromotionDiscount`` is v2026's DISCOUNT as a positive amount; Pending
orders carry no ``OrderTotal`` and no item prices. Buyer info and the shipping address are
restricted data: the server adds them only under a Restricted Data Token.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sp_api_sandbox.render import bad_records as bad
from sp_api_sandbox.render.formats import amount, api_time
from sp_api_sandbox.render.orders_v2026 import buyer, delivery_address
from sp_api_sandbox.world import SimOrder
from sp_api_sandbox.world_data import PAYMENT_DETAILS, SERVICE_LEVELS

_ZERO = Decimal(0)
_CONDITION = {"NEW": "New", "USED": "Used", "REFURBISHED": "Refurbished", "COLLECTIBLE": "Collectible"}
_SUBCONDITION = {
    "NEW": "New",
    "VERY_GOOD": "Very Good",
    "GOOD": "Good",
    "ACCEPTABLE": "Acceptable",
    "REFURBISHED": "Refurbished",
}
_ADDRESS_TYPES = {"COMMERCIAL": "Commercial", "RESIDENTIAL": "Residential"}
#: v2026 BUYER field -> v0 OrderBuyerInfo field
_BUYER_INFO = {
    "buyerName": "BuyerName",
    "buyerEmail": "BuyerEmail",
    "buyerPurchaseOrderNumber": "PurchaseOrderNumber",
}


def money(value: Decimal, currency: str) -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": amount(value, currency)}


def render_order(order: SimOrder, corruption: str | None = None) -> dict[str, Any]:
    """An ``Order`` without the restricted ``BuyerInfo`` and ``ShippingAddress``; ``corruption`` is a
    ``bad_records`` kind to serve it with (None: as it is)."""
    programs = order.programs
    level = SERVICE_LEVELS[order.service_level]
    out: dict[str, Any] = {
        "AmazonOrderId": order.order_id,
        "SellerOrderId": order.seller_order_id,
        "PurchaseDate": api_time(order.created_time),
        "LastUpdateDate": api_time(order.last_updated_time),
        "OrderStatus": order.v0_status,
        "FulfillmentChannel": order.fulfillment_channel,
        "SalesChannel": order.marketplace_name,
        "ShipServiceLevel": level[1],
    }
    if order.priced:
        out["OrderTotal"] = money(order.total, order.currency)
    out.update(
        {
            "NumberOfItemsShipped": order.units_shipped,
            "NumberOfItemsUnshipped": order.units_unshipped,
            "PaymentMethod": order.payment_method,
            "PaymentMethodDetails": [PAYMENT_DETAILS[order.payment_method]],
            "MarketplaceId": order.marketplace_id,
            "ShipmentServiceLevelCategory": level[0],
            "OrderType": order.order_type,
            "EarliestShipDate": api_time(order.ship_by[0]),
            "LatestShipDate": api_time(order.ship_by[1]),
            "EarliestDeliveryDate": api_time(order.deliver_by[0]),
            "LatestDeliveryDate": api_time(order.deliver_by[1]),
            "IsBusinessOrder": "AMAZON_BUSINESS" in programs,
            "IsPrime": "PRIME" in programs,
            "IsPremiumOrder": "PREMIUM" in programs,
            "IsGlobalExpressEnabled": False,
            "IsReplacementOrder": order.replaced_order_id is not None,
            "IsSoldByAB": False,
            "IsIBA": False,
            "IsISPU": False,
            "IsAccessPointOrder": False,
            "HasRegulatedItems": False,
        }
    )
    if order.replaced_order_id:
        out["ReplacedOrderId"] = order.replaced_order_id
    if corruption:
        _ORDER_CORRUPTIONS.get(corruption, _unchanged)(out)
    return out


def render_items(order: SimOrder, corruption: str | None = None) -> list[dict[str, Any]]:
    """The order's ``OrderItem`` list (the server pages it); ``corruption`` as for ``render_order``."""
    cur = order.currency
    out = []
    for item in order.items:
        data: dict[str, Any] = {
            "ASIN": item.asin,
            "SellerSKU": item.sku,
            "OrderItemId": item.order_item_id,
            "Title": item.title,
            "QuantityOrdered": item.quantity,
            "QuantityShipped": item.shipped,
            "ProductInfo": {"NumberOfItems": "1"},
        }
        if order.priced:
            data.update(
                {
                    "ItemPrice": money(item.item_price, cur),
                    "ShippingPrice": money(item.shipping_price, cur),
                    "ItemTax": money(item.item_tax, cur),
                    "ShippingTax": money(item.shipping_tax, cur),
                    "ShippingDiscount": money(_ZERO, cur),
                    "ShippingDiscountTax": money(_ZERO, cur),
                    "PromotionDiscount": money(item.promotion_discount, cur),
                    "PromotionDiscountTax": money(_ZERO, cur),
                }
            )
            if item.promotion_ids:
                data["PromotionIds"] = list(item.promotion_ids)
            if item.points:
                data["PointsGranted"] = {
                    "PointsNumber": item.points,
                    "PointsMonetaryValue": money(Decimal(item.points), cur),
                }
            data["IsGift"] = "true" if item.is_gift else "false"
        data["ConditionId"] = _CONDITION[item.condition[0]]
        data["ConditionSubtypeId"] = _SUBCONDITION[item.condition[1]]
        if order.country == "US":
            data["TaxCollection"] = {
                "Model": "MarketplaceFacilitator",
                "ResponsibleParty": "Amazon Services, Inc.",
            }
        data["IsTransparency"] = False
        data["SerialNumberRequired"] = False
        if order.priced and "AMAZON_BUSINESS" in order.programs:
            data["PriceDesignation"] = "BusinessPrice"
        data["BuyerRequestedCancel"] = (
            {"IsBuyerRequestedCancel": "true", "BuyerCancelReason": item.cancel_reason}
            if item.cancel_requested
            else {"IsBuyerRequestedCancel": "false"}
        )
        out.append(data)
    if corruption:
        _ITEM_CORRUPTIONS.get(corruption, _unchanged)(out)
    return out


def render_buyer_info(order: SimOrder) -> dict[str, Any]:
    """``OrderBuyerInfo`` (restricted): v2026's BUYER section under v0 names, without the company
    (which v0 puts in ``OrderAddress``)."""
    data = buyer(order)
    return {
        "AmazonOrderId": order.order_id,
        **{v0: data[v26] for v26, v0 in _BUYER_INFO.items() if v26 in data},
    }


def shipping_address(order: SimOrder) -> dict[str, Any] | None:
    """v0 ``Address``: v2026's ``deliveryAddress`` with capitalised keys (None without an address)."""
    address = delivery_address(order)
    if address is None:
        return None
    out = {key[0].upper() + key[1:]: value for key, value in address.items()}
    out["AddressType"] = _ADDRESS_TYPES[address["addressType"]]
    return out


def render_address(order: SimOrder) -> dict[str, Any]:
    """``OrderAddress`` (restricted)."""
    out: dict[str, Any] = {"AmazonOrderId": order.order_id}
    company = buyer(order).get("buyerCompanyName")
    if company:
        out["BuyerCompanyName"] = company
    address = shipping_address(order)
    if address is not None:
        out["ShippingAddress"] = address
    return out


# ---------------------------------------------------------------------------------- bad records
# v0 twins of the v2026 corruptions: order-level kinds touch the Order, item-level kinds the
# getOrderItems list; unknown_optional_enum has no v0 twin (v0 has no open enumerations there).


def _unchanged(doc: Any) -> None:
    return None


def _unknown_status(doc: dict[str, Any]) -> None:
    doc["OrderStatus"] = bad.UNKNOWN_STATUS_V0


def _missing_last_updated(doc: dict[str, Any]) -> None:
    del doc["LastUpdateDate"]


def _missing_optional_order(doc: dict[str, Any]) -> None:
    # the v0 twins of what the v2026 renderer drops (orderAliases is v0's SellerOrderId)
    for key in (
        "SalesChannel",
        "SellerOrderId",
        "ShipmentServiceLevelCategory",
        "EarliestShipDate",
        "LatestShipDate",
        "EarliestDeliveryDate",
        "LatestDeliveryDate",
    ):
        del doc[key]


def _missing_item_id(items: list[dict[str, Any]]) -> None:
    del items[0]["OrderItemId"]


def _huge_sku(items: list[dict[str, Any]]) -> None:
    items[0]["SellerSKU"] = bad.huge(items[0]["SellerSKU"], bad.HUGE_SKU_LENGTH)


def _missing_optional_items(items: list[dict[str, Any]]) -> None:
    for item in items:
        del item["Title"]


def _odd_unicode(items: list[dict[str, Any]]) -> None:
    for item in items:
        item["Title"] = bad.odd_unicode(item["Title"])


def _huge_title(items: list[dict[str, Any]]) -> None:
    items[0]["Title"] = bad.huge(items[0]["Title"], bad.HUGE_TITLE_LENGTH)


_ORDER_CORRUPTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "unknown_status": _unknown_status,
    "missing_last_updated": _missing_last_updated,
    "missing_optional": _missing_optional_order,
}
_ITEM_CORRUPTIONS: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "missing_item_id": _missing_item_id,
    "huge_sku": _huge_sku,
    "missing_optional": _missing_optional_items,
    "odd_unicode": _odd_unicode,
    "huge_title": _huge_title,
}
assert (set(_ORDER_CORRUPTIONS) | set(_ITEM_CORRUPTIONS) | {"unknown_optional_enum"}) == set(bad.KINDS)
