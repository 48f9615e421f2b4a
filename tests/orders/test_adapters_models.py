"""The adapters on the x-amzn-api-sandbox examples of Amazon's own models (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from selling_partner.orders import v0, v2026
from selling_partner.orders.canonical import ORDER_STATUSES, V0_STATUS_TO_V2026
from sp_api_sandbox import models


def _static_cases(model: str, operation_id: str) -> list[dict]:
    spec = models.load(model)
    for ops in spec["paths"].values():
        for op in ops.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return [case["response"] for case in op["responses"]["200"]["x-amzn-api-sandbox"]["static"]]
    raise AssertionError(f"{operation_id} not in {model}")


def _v2026_orders() -> list[dict]:
    orders = [o for r in _static_cases("orders_2026-01-01", "searchOrders") for o in r["orders"]]
    orders += [r["order"] for r in _static_cases("orders_2026-01-01", "getOrder")]
    return orders


@pytest.mark.parametrize("raw", _v2026_orders(), ids=lambda o: o["orderId"])
def test_v2026_examples_normalise(raw: dict) -> None:
    order = v2026.normalize_order(raw, seller_id="A1SELLER")
    assert order.order_id == raw["orderId"]
    assert order.order_status in ORDER_STATUSES
    assert order.created_time.tzinfo is UTC and order.last_updated_time >= order.created_time
    assert order.marketplace_id == raw["salesChannel"]["marketplaceId"]
    assert order.order_total == raw["proceeds"]["grandTotal"]["amount"]
    assert order.currency == raw["proceeds"]["grandTotal"]["currencyCode"]
    assert [i.order_item_id for i in order.items] == [i["orderItemId"] for i in raw["orderItems"]]
    assert all(i.order_id == order.order_id for i in order.items)
    assert order.api_version == "2026-01-01" and order.seller_id == "A1SELLER"


def test_v2026_jp_example_field_by_field() -> None:
    raw = next(o for o in _v2026_orders() if o["orderId"] == "250-1234567-8901234")
    order = v2026.normalize_order(raw, seller_id="S")
    assert order.created_time == datetime(2024, 12, 25, 2, 30, tzinfo=UTC)
    assert order.seller_order_id == "JP-ORDER-2024-001"
    assert order.sales_channel == "Amazon.co.jp"
    assert (order.fulfilled_by, order.fulfillment_service_level, order.order_status) == (
        "AMAZON",
        "STANDARD",
        "SHIPPED",
    )
    assert order.programs == ("PRIME",)
    assert order.earliest_ship_time == datetime(2024, 12, 25, tzinfo=UTC)
    assert order.latest_delivery_time is None
    assert (order.items_shipped, order.items_unshipped) == (3, 0)
    first, second = order.items
    assert (first.asin, first.seller_sku, first.condition) == ("B08C1W5N87", "ECHO-DOT-4-JP-CHARCOAL", "NEW")
    assert (first.unit_price, first.item_price, first.currency) == ("5980", "5980", "JPY")
    assert first.promotion_ids == ("JP-WINTER-SALE-2024",)
    assert (second.quantity_ordered, second.unit_price, second.item_price) == (2, "6980", "13960")
    assert first.is_buyer_requested_cancel is False
    # BUYER and RECIPIENT were requested in that example: PII lands only in ``buyer``
    assert order.buyer is not None and order.buyer.buyer_name == "John Smith"
    assert order.buyer.city == "Tokyo" and order.buyer.country_code == "JP"


def test_v2026_fbm_packages_and_tax_split() -> None:
    uk = next(o for o in _v2026_orders() if o["orderId"] == "202-7654321-1098765")
    order = v2026.normalize_order(uk, seller_id=None)
    (package,) = order.packages
    assert package.package_reference_id == "UK-PKG-CONSUMER-2024-002"
    assert (package.carrier, package.package_status, package.package_detailed_status) == (
        "DPD",
        "IN_TRANSIT",
        "OUT_FOR_DELIVERY",
    )
    assert package.ship_time == datetime(2024, 12, 25, 14, tzinfo=UTC)
    us = next(o for o in _v2026_orders() if o["orderId"] == "114-9876543-1234567")
    (item,) = v2026.normalize_order(us, seller_id=None).items
    assert (item.item_price, item.item_tax, item.shipping_tax) == ("39.99", "10.00", None)


def test_v2026_discount_detailed_tax_and_cancellation() -> None:
    raw = {
        "orderId": "111-1111111-1111111",
        "createdTime": "2026-01-01T10:00:00Z",
        "lastUpdatedTime": "2026-01-02T10:00:00.5+01:00",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "orderItems": [
            {
                "orderItemId": "1",
                "quantityOrdered": 3,
                "product": {"asin": "B0", "price": {"unitPrice": {"amount": "10.00", "currencyCode": "USD"}}},
                "proceeds": {
                    "breakdowns": [
                        {"type": "ITEM", "subtotal": {"amount": "30.00", "currencyCode": "USD"}},
                        {"type": "SHIPPING", "subtotal": {"amount": "4.99", "currencyCode": "USD"}},
                        {"type": "DISCOUNT", "subtotal": {"amount": "-5.00", "currencyCode": "USD"}},
                        {
                            "type": "TAX",
                            "subtotal": {"amount": "2.90", "currencyCode": "USD"},
                            "detailedBreakdowns": [
                                {"subtype": "ITEM", "value": {"amount": "2.40", "currencyCode": "USD"}},
                                {"subtype": "SHIPPING", "value": {"amount": "0.50", "currencyCode": "USD"}},
                            ],
                        },
                    ]
                },
                "cancellation": {
                    "cancellationRequest": {"requester": "BUYER", "cancelReason": "Changed mind"}
                },
            }
        ],
    }
    order = v2026.normalize_order(raw, seller_id="S")
    assert order.last_updated_time == datetime(2026, 1, 2, 9, 0, 0, 500000, tzinfo=UTC)
    (item,) = order.items
    assert (item.item_price, item.shipping_price, item.promotion_discount) == ("30.00", "4.99", "5.00")
    assert (item.item_tax, item.shipping_tax) == ("2.40", "0.50")
    assert item.is_buyer_requested_cancel is True and item.buyer_cancel_reason == "Changed mind"
    # currency is the currency of order_total (data dictionary): no total, no currency (items keep theirs)
    assert order.order_total is None and order.currency is None and order.buyer is None
    assert item.currency == "USD"


def test_v2026_refuses_order_without_status() -> None:
    raw = _v2026_orders()[0] | {"fulfillment": None}
    with pytest.raises(ValueError, match="FULFILLMENT"):
        v2026.normalize_order(raw, seller_id="S")


def test_v0_example_with_items_and_pii() -> None:
    (order_raw,) = _static_cases("ordersV0", "getOrder")[:1]
    order_raw = order_raw["payload"]
    items = _static_cases("ordersV0", "getOrderItems")[0]["payload"]["OrderItems"]
    buyer = _static_cases("ordersV0", "getOrderBuyerInfo")[0]["payload"]
    address = _static_cases("ordersV0", "getOrderAddress")[0]["payload"]
    order = v0.normalize_order(order_raw, items, seller_id="S", buyer_info=buyer, address=address)
    assert order.order_id == "902-1845936-5435065"
    assert order.order_status == "UNSHIPPED" and order.fulfilled_by == "MERCHANT"
    assert (order.order_total, order.currency) == ("11.01", "USD")
    assert order.fulfillment_service_level == "STANDARD" and order.order_type == "StandardOrder"
    assert (order.items_shipped, order.items_unshipped) == (0, 1)
    assert order.programs == () and order.packages == () and order.api_version == "v0"
    (item,) = order.items
    assert (item.asin, item.seller_sku, item.condition) == ("B00551Q3CS", "NABetaASINB00551Q3CS", "NEW")
    assert (item.unit_price, item.item_price, item.item_tax, item.promotion_discount) == (
        "10.00",
        "10.00",
        "1.01",
        "0.00",
    )
    assert (item.quantity_shipped, item.quantity_unshipped) == (0, 1)
    assert (
        item.is_buyer_requested_cancel is True and item.buyer_cancel_reason == "Found cheaper somewhere else."
    )
    assert order.buyer.buyer_email == "fzyrv6gwkhbb15c@example.com"
    assert order.buyer.postal_code == "98121-2778" and order.buyer.city == "SEATTLE"


def test_v0_flags_become_v2026_programs() -> None:
    iba = next(r["payload"] for r in _static_cases("ordersV0", "getOrder") if r["payload"]["IsIBA"])
    order = v0.normalize_order(iba, [], seller_id="S")
    # IsIBA ("bought and re-sold by Amazon Business EU", the v0 model) is not v2026's INVOICE_BY_AMAZON
    assert order.programs == ("AMAZON_BUSINESS",)
    assert order.order_status == "SHIPPED" and order.fulfilled_by == "AMAZON"
    assert order.created_time == datetime(2019, 5, 7, 15, 42, 57, 58000, tzinfo=UTC)


@pytest.mark.parametrize(("v0_status", "expected"), sorted(V0_STATUS_TO_V2026.items()))
def test_v0_status_mapping(v0_status: str, expected: str) -> None:
    raw = {
        "AmazonOrderId": "123-1234567-1234567",
        "PurchaseDate": "2026-01-01T00:00:00Z",
        "LastUpdateDate": "2026-01-01T00:00:00Z",
        "OrderStatus": v0_status,
    }
    assert v0.normalize_order(raw, [], seller_id=None).order_status == expected


def test_v0_unknown_status_and_unit_price_rounding() -> None:
    raw = {"AmazonOrderId": "1", "PurchaseDate": "x", "LastUpdateDate": "x", "OrderStatus": "Lost"}
    with pytest.raises(ValueError, match="Lost"):
        v0.normalize_order(raw, [], seller_id=None)
    item = v0.normalize_item(
        {
            "OrderItemId": "9",
            "ASIN": "B0",
            "QuantityOrdered": 3,
            "ItemPrice": {"Amount": "10.00", "CurrencyCode": "EUR"},
        },
        "123-1234567-1234567",
    )
    assert item.unit_price == "3.33" and item.item_price == "10.00" and item.quantity_shipped is None
    assert v2026.divide("13960", 2) == "6980" and v2026.divide(None, 2) is None
