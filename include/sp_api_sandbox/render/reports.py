"""Order reports: ``SimOrder`` -> ``GET_FLAT_FILE_ALL_ORDERS_DATA_*`` tab-separated text, and its encodings.

One row per order item, the columns Amazon documents (reports-notes A1) plus ``order-item-id`` (newer
files) and one column no parser knows (``signature-confirmation-recommended``), in the report's own
vocabulary (A3): ``order-status`` ``Pending``/``Unshipped``/``Shipping`` (some units shipped)/
``Shipped``/``Cancelled``; ``fulfillment-channel`` ``Amazon``/``Merchant``; ``sales-channel`` the
marketplace name (``Amazon.com``); ``ship-service-level`` the v0 category (``Standard``, ``SecondDay``);
times ISO-8601 with an offset (``2025-04-03T12:00:00+00:00``). Money cells are line totals in the
currency's decimals, promotion discounts negative; a Pending order's rows carry no currency and no
money (Amazon prices an order only once it is paid). Ship city/state/postal code/country only while the
order has a shipping address. Agrees with the v2026 renderer on every value both carry.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from sp_api_sandbox.render.formats import amount
from sp_api_sandbox.world import SimItem, SimOrder
from sp_api_sandbox.world_data import SERVICE_LEVELS

COLUMNS = (
    "amazon-order-id",
    "order-item-id",
    "merchant-order-id",
    "purchase-date",
    "last-updated-date",
    "order-status",
    "fulfillment-channel",
    "sales-channel",
    "order-channel",
    "ship-service-level",
    "product-name",
    "sku",
    "asin",
    "item-status",
    "quantity",
    "currency",
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
    "item-promotion-discount",
    "ship-promotion-discount",
    "ship-city",
    "ship-state",
    "ship-postal-code",
    "ship-country",
    "promotion-ids",
    "is-business-order",
    "purchase-order-number",
    "price-designation",
    "signature-confirmation-recommended",
)
#: v0 OrderStatus -> the report's order-status.
ORDER_STATUS = {
    "PendingAvailability": "PendingAvailability",
    "Pending": "Pending",
    "Unshipped": "Unshipped",
    "PartiallyShipped": "Shipping",
    "Shipped": "Shipped",
    "InvoiceUnconfirmed": "Shipped",
    "Canceled": "Cancelled",
    "Unfulfillable": "Unfulfillable",
}
CHANNEL = {"AMAZON": "Amazon", "MERCHANT": "Merchant"}
#: The body Amazon serves (status DONE) for a window longer than 30 days (GH#2591).
DATE_RANGE_EXCEEDED = "Date range exceeded. Report can be requested only upto 30 days\n"
#: Encodings a document is served in: (name, Python codec, BOM, Content-Type).
ENCODINGS = {
    "utf-8": ("utf-8", False, "text/plain;charset=UTF-8"),
    "utf-8-bom": ("utf-8", True, "text/plain"),
    "cp1252": ("cp1252", False, "text/plain;charset=Cp1252"),
    "windows-31j": ("cp932", False, "text/plain;charset=Windows-31J"),
}


def report_time(dt: datetime) -> str:
    """``2025-04-03T12:00:00+00:00``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _clean(value: str | None) -> str:
    """A cell: tabs and line breaks would break the flat file, so Amazon's files carry spaces there."""
    return "" if value is None else value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _item_status(order: SimOrder, item: SimItem) -> str:
    if order.v0_status == "Canceled":
        return "Cancelled"
    return "Shipped" if item.shipped >= item.quantity else "Unshipped"


def _row(order: SimOrder, item: SimItem) -> list[str]:
    cur = order.currency
    priced = order.priced
    business = "AMAZON_BUSINESS" in order.programs
    address = order.has_shipping_address
    buyer = order.buyer

    def money(value: Decimal) -> str:
        return amount(value, cur) if priced else ""

    return [
        order.order_id,
        item.order_item_id,
        order.seller_order_id,
        report_time(order.created_time),
        report_time(order.last_updated_time),
        ORDER_STATUS[order.v0_status],
        CHANNEL[order.fulfilled_by],
        order.marketplace_name,
        "",
        SERVICE_LEVELS[order.service_level][0],
        _clean(item.title),
        item.sku,
        item.asin,
        _item_status(order, item),
        str(item.quantity),
        cur if priced else "",
        money(item.item_price),
        money(item.item_tax),
        money(item.shipping_price),
        money(item.shipping_tax),
        "",
        "",
        money(-item.promotion_discount),
        money(Decimal(0)),
        _clean(buyer.city) if address else "",
        _clean(buyer.state) if address else "",
        _clean(buyer.postal_code) if address else "",
        buyer.country if address else "",
        ",".join(item.promotion_ids) if priced else "",
        "true" if business else "false",
        (buyer.po_number or "") if business else "",
        "BusinessPrice" if business else "",
        "false",
    ]


def render_report(orders: Iterable[SimOrder]) -> str:
    """The flat file: a header row and one row per item, ``\\n`` line ends."""
    lines = ["\t".join(COLUMNS)]
    for order in orders:
        for item in order.items:
            lines.append("\t".join(_row(order, item)))
    return "\n".join(lines) + "\n"


def encode_document(text: str, encoding: str, gzipped: bool) -> tuple[bytes, str]:
    """``(body, Content-Type)`` of a document in one of :data:`ENCODINGS`, gzip-compressed or not."""
    codec, bom, content_type = ENCODINGS[encoding]
    raw = ("\ufeff" if bom else "").encode("utf-8") + text.encode(codec, errors="replace")
    return (gzip.compress(raw, mtime=0) if gzipped else raw), content_type
