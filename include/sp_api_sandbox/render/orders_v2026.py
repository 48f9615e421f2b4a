"""Orders API v2026-01-01: a ``SimOrder`` as an ``Order`` (``searchOrders``, ``getOrder``, the truth).

The basic order and item data are always there; each ``includedData`` value adds its section
(BUYER and RECIPIENT are buyer PII). Conventions (shared with the v0 renderer, which agrees on every
amount, time, status, item and quantity):

* times are whole seconds, ``2026-11-01T22:20:55Z``;
* item proceeds carry ITEM (unit price x quantity), SHIPPING, TAX with ``detailedBreakdowns`` ITEM
  and SHIPPING, and DISCOUNT (the promotion discount, negative); the order's ``grandTotal`` is the
  sum of the items' ``proceedsTotal``;
* Pending orders carry no ``product.price``, ``proceeds``, ``promotion``, ``expense`` or ``payment``;
* buyer e-mail and recipient phone only for merchant-fulfilled orders.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

from sp_api_sandbox.render import bad_records as bad
from sp_api_sandbox.render.formats import amount, api_time
from sp_api_sandbox.world import SimItem, SimOrder
from sp_api_sandbox.world_data import INCLUDED_DATA, PAYMENT_DETAILS

_ZERO = Decimal(0)


def money(value: Decimal, currency: str) -> dict[str, str]:
    return {"amount": amount(value, currency), "currencyCode": currency}


def buyer(order: SimOrder) -> dict[str, str]:
    """The BUYER section."""
    person = order.buyer
    data = {"buyerName": person.name}
    if order.merchant_fulfilled:
        data["buyerEmail"] = person.email
    if person.company:
        data["buyerCompanyName"] = person.company
    if person.po_number:
        data["buyerPurchaseOrderNumber"] = person.po_number
    return data


def delivery_address(order: SimOrder) -> dict[str, Any] | None:
    """The RECIPIENT section's ``deliveryAddress`` (None while the order has no shipping address).

    The v0 ``ShippingAddress`` is the same address with capitalised keys (see ``orders_v0``).
    """
    if not order.has_shipping_address:
        return None
    person = order.buyer
    fields: list[tuple[str, str | None]] = [
        ("name", person.name),
        ("companyName", person.company),
        ("addressLine1", person.line1),
        ("addressLine2", person.line2),
        ("city", person.city),
        ("stateOrRegion", person.state),
        ("postalCode", person.postal_code),
        ("countryCode", person.country),
        ("phone", person.phone if order.merchant_fulfilled else None),
        ("addressType", person.address_type),
    ]
    return {key: value for key, value in fields if value}


def render_order(
    order: SimOrder, included_data: Collection[str] = (), corruption: str | None = None
) -> dict[str, Any]:
    """An ``Order``: basic order and item data plus each ``includedData`` section; ``corruption`` is a
    ``bad_records`` kind to serve the order with (None: as it is)."""
    inc = set(included_data)
    unknown = inc - set(INCLUDED_DATA)
    if unknown:
        raise ValueError(f"unknown includedData values: {sorted(unknown)}")
    cur = order.currency
    out: dict[str, Any] = {
        "orderId": order.order_id,
        "orderAliases": [{"aliasId": order.seller_order_id, "aliasType": "SELLER_ORDER_ID"}],
        "createdTime": api_time(order.created_time),
        "lastUpdatedTime": api_time(order.last_updated_time),
        "programs": list(order.programs),
    }
    if order.replaced_order_id:
        out["associatedOrders"] = [
            {"orderId": order.replaced_order_id, "associationType": "REPLACEMENT_ORIGINAL_ID"}
        ]
    out["salesChannel"] = {
        "channelName": "AMAZON",
        "marketplaceId": order.marketplace_id,
        "marketplaceName": order.marketplace_name,
    }
    if "BUYER" in inc:
        out["buyer"] = buyer(order)
    if "RECIPIENT" in inc and (address := delivery_address(order)) is not None:
        out["recipient"] = {"deliveryAddress": address}
    if "PROCEEDS" in inc and order.priced:
        items = order.items
        breakdowns = [
            ("ITEM", sum((i.item_price for i in items), _ZERO)),
            ("SHIPPING", sum((i.shipping_price for i in items), _ZERO)),
            ("TAX", sum((i.item_tax + i.shipping_tax for i in items), _ZERO)),
            ("DISCOUNT", -sum((i.promotion_discount for i in items), _ZERO)),
        ]
        out["proceeds"] = {
            "grandTotal": money(order.total, cur),
            "breakdowns": [{"type": t, "subtotal": money(v, cur)} for t, v in breakdowns],
        }
    if "PAYMENT" in inc and order.priced and order.payment_method != "Other":
        out["payment"] = {
            "paymentExecutions": [
                {
                    "paymentMethod": PAYMENT_DETAILS[order.payment_method],
                    "paymentAmount": money(order.total, cur),
                }
            ]
        }
    if "FULFILLMENT" in inc:
        out["fulfillment"] = {
            "fulfillmentStatus": order.status,
            "fulfilledBy": order.fulfilled_by,
            "fulfillmentServiceLevel": order.service_level,
            "shipByWindow": {
                "earliestDateTime": api_time(order.ship_by[0]),
                "latestDateTime": api_time(order.ship_by[1]),
            },
            "deliverByWindow": {
                "earliestDateTime": api_time(order.deliver_by[0]),
                "latestDateTime": api_time(order.deliver_by[1]),
            },
        }
    out["orderItems"] = [_render_item(order, item, inc) for item in order.items]
    if "PACKAGES" in inc and order.merchant_fulfilled and order.packages:
        out["packages"] = [
            {
                "packageReferenceId": p.reference_id,
                "createdTime": api_time(p.created_time),
                "packageStatus": {"status": p.status, "detailedStatus": p.detailed_status},
                "carrier": p.carrier,
                "shipTime": api_time(p.ship_time),
                "shippingService": p.shipping_service,
                "trackingNumber": p.tracking_number,
                "packageItems": [{"orderItemId": item_id, "quantity": qty} for item_id, qty in p.items],
            }
            for p in order.packages
        ]
    return corrupt(out, corruption) if corruption else out


def _render_item(order: SimOrder, item: SimItem, inc: set[str]) -> dict[str, Any]:
    cur = order.currency
    product: dict[str, Any] = {
        "asin": item.asin,
        "title": item.title,
        "sellerSku": item.sku,
        "condition": {"conditionType": item.condition[0], "conditionSubtype": item.condition[1]},
    }
    priced = order.priced
    if priced:
        product["price"] = {"unitPrice": money(item.unit_price, cur)}
        if "AMAZON_BUSINESS" in order.programs:
            product["price"]["priceDesignation"] = "BUSINESS_PRICE"
    out: dict[str, Any] = {
        "orderItemId": item.order_item_id,
        "quantityOrdered": item.quantity,
        "product": product,
    }
    if "PROCEEDS" in inc and priced:
        out["proceeds"] = {
            "proceedsTotal": money(item.total, cur),
            "breakdowns": [
                {"type": "ITEM", "subtotal": money(item.item_price, cur)},
                {"type": "SHIPPING", "subtotal": money(item.shipping_price, cur)},
                {
                    "type": "TAX",
                    "subtotal": money(item.item_tax + item.shipping_tax, cur),
                    "detailedBreakdowns": [
                        {"subtype": "ITEM", "value": money(item.item_tax, cur)},
                        {"subtype": "SHIPPING", "value": money(item.shipping_tax, cur)},
                    ],
                },
                {
                    "type": "DISCOUNT",
                    "subtotal": money(-item.promotion_discount, cur),
                    "detailedBreakdowns": [
                        {"subtype": "ITEM", "value": money(-item.promotion_discount, cur)}
                    ],
                },
            ],
        }
    if "EXPENSE" in inc and priced and item.points:
        out["expense"] = {
            "pointsCost": {
                "pointsGranted": {
                    "pointsNumber": item.points,
                    "pointsMonetaryValue": money(Decimal(item.points), cur),
                }
            }
        }
    if "PROMOTION" in inc and priced and item.promotion_ids:
        out["promotion"] = {"breakdowns": [{"promotionId": p} for p in item.promotion_ids]}
    if "CANCELLATION" in inc and (item.cancel_requested or order.v0_status == "Canceled"):
        cancellation: dict[str, Any] = {}
        if item.cancel_requested:
            cancellation["cancellationRequest"] = {"requester": "BUYER", "cancelReason": item.cancel_reason}
        if order.v0_status == "Canceled":
            cancellation["cancellationExecution"] = {
                "cancelledBy": order.cancelled_by,
                "cancelReason": order.cancel_reason,
            }
        out["cancellation"] = cancellation
    if "FULFILLMENT" in inc:
        fulfillment: dict[str, Any] = {
            "quantityFulfilled": item.shipped,
            "quantityUnfulfilled": order.item_unshipped(item),
        }
        if item.is_gift and priced:
            fulfillment["packing"] = {"giftOption": {"giftWrapLevel": "STANDARD"}}
        out["fulfillment"] = fulfillment
    if "TAX" in inc and order.country == "US":
        out["tax"] = {
            "taxCollections": [
                {"model": "MARKETPLACE_FACILITATOR", "responsibleParty": "Amazon Services, Inc."}
            ]
        }
    return out


# ---------------------------------------------------------------------------------- bad records


def _unknown_status(doc: dict[str, Any]) -> None:
    if "fulfillment" in doc:  # the status is part of the FULFILLMENT section
        doc["fulfillment"]["fulfillmentStatus"] = bad.UNKNOWN_STATUS


def _missing_last_updated(doc: dict[str, Any]) -> None:
    del doc["lastUpdatedTime"]


def _missing_item_id(doc: dict[str, Any]) -> None:
    del doc["orderItems"][0]["orderItemId"]


def _huge_sku(doc: dict[str, Any]) -> None:
    product = doc["orderItems"][0]["product"]
    product["sellerSku"] = bad.huge(product["sellerSku"], bad.HUGE_SKU_LENGTH)


def _missing_optional(doc: dict[str, Any]) -> None:
    del doc["orderAliases"]
    del doc["salesChannel"]["marketplaceName"]
    for key in ("fulfillmentServiceLevel", "shipByWindow", "deliverByWindow"):
        doc.get("fulfillment", {}).pop(key, None)
    for item in doc["orderItems"]:
        del item["product"]["title"]


def _unknown_optional_enum(doc: dict[str, Any]) -> None:
    doc["programs"].append(bad.UNKNOWN_PROGRAM)
    for package in doc.get("packages", ()):
        package["packageStatus"]["detailedStatus"] = bad.UNKNOWN_DETAILED_STATUS


def _odd_unicode(doc: dict[str, Any]) -> None:
    for item in doc["orderItems"]:
        item["product"]["title"] = bad.odd_unicode(item["product"]["title"])


def _huge_title(doc: dict[str, Any]) -> None:
    product = doc["orderItems"][0]["product"]
    product["title"] = bad.huge(product["title"], bad.HUGE_TITLE_LENGTH)


_CORRUPTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "unknown_status": _unknown_status,
    "missing_last_updated": _missing_last_updated,
    "missing_item_id": _missing_item_id,
    "huge_sku": _huge_sku,
    "missing_optional": _missing_optional,
    "unknown_optional_enum": _unknown_optional_enum,
    "odd_unicode": _odd_unicode,
    "huge_title": _huge_title,
}
assert set(_CORRUPTIONS) == set(bad.KINDS)


def corrupt(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """Apply a ``bad_records`` kind to a freshly rendered ``Order`` (in place; returned for chaining)."""
    _CORRUPTIONS[kind](doc)
    return doc
