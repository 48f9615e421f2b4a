"""The canonical order record: one shape for Orders API v2026-01-01 and v0.

Both API adapters (``orders.v2026`` and ``orders.v0``) turn Amazon's JSON into these records and the
warehouse loads only these, so every write path (sync, events, summaries) speaks one language.

Conventions:

* times are timezone-aware UTC ``datetime`` objects (``None`` when Amazon does not say);
* money is a decimal string (``"19.99"``) plus an ISO-4217 currency code - never a float;
* ``order_status`` uses the v2026 fulfillment statuses (``ORDER_STATUSES``); v0 statuses are mapped
  by ``V0_STATUS_TO_V2026``;
* ``last_updated_time`` is the version of the record: the warehouse replaces a stored row only with
  a record of the same or a newer ``last_updated_time`` (items and packages follow their order);
* buyer PII lives only in ``buyer`` and is loaded only when the connection enables it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ORDER_STATUSES = (
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
)

#: v0 ``OrderStatus`` (also used by ORDER_CHANGE summaries) -> v2026 fulfillment status.
#: v2026 has no InvoiceUnconfirmed: such orders have shipped and wait for an invoice upload.
V0_STATUS_TO_V2026 = {
    "PendingAvailability": "PENDING_AVAILABILITY",
    "Pending": "PENDING",
    "Unshipped": "UNSHIPPED",
    "PartiallyShipped": "PARTIALLY_SHIPPED",
    "Shipped": "SHIPPED",
    "InvoiceUnconfirmed": "SHIPPED",
    "Canceled": "CANCELLED",
    "Unfulfillable": "UNFULFILLABLE",
}

#: v0 ``FulfillmentChannel`` / notification ``FulfillmentType`` -> v2026 ``fulfilledBy``.
V0_CHANNEL_TO_FULFILLED_BY = {"MFN": "MERCHANT", "AFN": "AMAZON"}

Source = Literal["sync", "event", "summary", "report"]


@dataclass(frozen=True, slots=True)
class CanonicalItem:
    """One line of an order."""

    order_id: str
    order_item_id: str
    quantity_ordered: int
    asin: str | None = None
    seller_sku: str | None = None
    title: str | None = None
    condition: str | None = None
    quantity_shipped: int | None = None
    quantity_unshipped: int | None = None
    currency: str | None = None
    unit_price: str | None = None  # price of one unit
    item_price: str | None = None  # unit price x quantity (proceeds ITEM / v0 ItemPrice)
    item_tax: str | None = None
    shipping_price: str | None = None
    shipping_tax: str | None = None
    promotion_discount: str | None = None  # a positive amount taken off
    promotion_ids: tuple[str, ...] = ()
    is_buyer_requested_cancel: bool | None = None
    buyer_cancel_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CanonicalPackage:
    """One FBM shipment package with its tracking data."""

    order_id: str
    package_reference_id: str
    carrier: str | None = None
    tracking_number: str | None = None
    shipping_service: str | None = None
    package_status: str | None = None  # PENDING, IN_TRANSIT, SHIPPED, DELIVERED, CANCELLED, UNDELIVERABLE
    package_detailed_status: str | None = None
    ship_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class CanonicalBuyer:
    """Buyer PII (restricted). Loaded only with ``include_pii``; never logged."""

    order_id: str
    buyer_name: str | None = None
    buyer_email: str | None = None
    buyer_company_name: str | None = None
    buyer_purchase_order_number: str | None = None
    recipient_name: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    address_line3: str | None = None
    city: str | None = None
    state_or_region: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class CanonicalOrder:
    """Current state of one order, as one API version reported it at ``last_updated_time``."""

    order_id: str
    marketplace_id: str
    order_status: str  # one of ORDER_STATUSES
    created_time: datetime
    last_updated_time: datetime
    seller_id: str | None = None
    sales_channel: str | None = None  # marketplace name, e.g. "Amazon.com"
    fulfilled_by: str | None = None  # MERCHANT (FBM) or AMAZON (FBA)
    fulfillment_service_level: str | None = None
    order_type: str | None = None
    seller_order_id: str | None = None
    currency: str | None = None
    order_total: str | None = None
    earliest_ship_time: datetime | None = None
    latest_ship_time: datetime | None = None
    earliest_delivery_time: datetime | None = None
    latest_delivery_time: datetime | None = None
    programs: tuple[str, ...] = ()  # v2026 program names (PRIME, AMAZON_BUSINESS, ...)
    items_shipped: int | None = None  # units
    items_unshipped: int | None = None  # units
    items: tuple[CanonicalItem, ...] = ()
    packages: tuple[CanonicalPackage, ...] = ()
    buyer: CanonicalBuyer | None = None
    api_version: str = "2026-01-01"  # which API produced the record: "2026-01-01", "v0" or "notification"
    source: Source = "sync"
    #: False when the record is partial (an ORDER_CHANGE summary): items carry no prices then.
    complete: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def replace(self, **changes: Any) -> CanonicalOrder:
        """Return a copy with ``changes`` applied (records are immutable)."""
        return dataclasses.replace(self, **changes)


def as_dict(record: CanonicalOrder | CanonicalItem | CanonicalPackage | CanonicalBuyer) -> dict[str, Any]:
    """Flat column dict of one record, without nested children (items, packages, buyer, extra)."""
    skip = {"items", "packages", "buyer", "extra"}
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name not in skip}


ORDER_ID_RE = re.compile(r"^\d{3}-\d{7}-\d{7}$", re.ASCII)
MARKETPLACE_ID_RE = re.compile(r"^[A-Z0-9]{8,20}$", re.ASCII)
#: Longest identifiers accepted (Amazon's own limits are lower: SKU 40, ASIN 10). Longer values are
#: garbage, and would not fit a B-tree index entry anyway (PostgreSQL: about 2.7 kB).
MAX_ID_LENGTHS = {"order_item_id": 64, "asin": 20, "seller_sku": 200, "package_reference_id": 128}


def _check_length(what: str, name: str, value: str | None) -> None:
    limit = MAX_ID_LENGTHS[name]
    if value is not None and len(value) > limit:
        raise ValueError(f"{what}: {name} is {len(value)} characters long (the limit is {limit})")


def validate_order(order: CanonicalOrder) -> CanonicalOrder:
    """Check a mapped record's identifiers before it reaches the warehouse; ``ValueError`` names the field.

    Order and marketplace ids must have Amazon's format, child ids must be present and of sane length,
    and the status must be one of :data:`ORDER_STATUSES` (the adapters already map to it).
    """
    if not ORDER_ID_RE.fullmatch(order.order_id or ""):
        raise ValueError(f"order id {str(order.order_id)[:40]!r} is not an Amazon order id (3-7-7 digits)")
    what = f"order {order.order_id}"
    if not MARKETPLACE_ID_RE.fullmatch(order.marketplace_id or ""):
        raise ValueError(f"{what}: marketplace id {str(order.marketplace_id)[:40]!r} is missing or malformed")
    if order.order_status not in ORDER_STATUSES:
        raise ValueError(f"{what}: unknown order status {order.order_status!r}")
    for item in order.items:
        if not item.order_item_id or item.order_item_id == "None":
            raise ValueError(f"{what}: an item has no order item id")
        _check_length(what, "order_item_id", item.order_item_id)
        _check_length(what, "asin", item.asin)
        _check_length(what, "seller_sku", item.seller_sku)
    for package in order.packages:
        _check_length(what, "package_reference_id", package.package_reference_id)
    return order
