"""SQS message bodies -> notifications, or a quarantine reason (pure functions, no I/O).

A body is Amazon's raw notification JSON (no SNS wrapper); some arrive double-encoded (a JSON string
holding the JSON), which is decoded once more. Each body is checked against Amazon's schema for its
``NotificationType`` (bundled in ``schemas/``), its ids are checked before they are used anywhere, and
it is routed by ``SellerId`` to the seller connection configured for it. Anything else - not JSON, too
large or too deep, an unknown type, a schema violation, a malformed id, a seller no connection serves -
becomes a :class:`Rejected` with a one-line reason, and the rest of the batch goes on.

An ORDER_CHANGE becomes a *summary*: a partial :class:`~selling_partner.orders.canonical.CanonicalOrder`
(``complete=False``) whose version is ``OrderChangeTrigger.TimeOfOrderChange`` (else ``EventTime``).
The warehouse lets it move the order's status and never lets it wipe details of a complete record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from selling_partner.orders.canonical import (
    MARKETPLACE_ID_RE,
    ORDER_ID_RE,
    V0_CHANNEL_TO_FULFILLED_BY,
    V0_STATUS_TO_V2026,
    CanonicalItem,
    CanonicalOrder,
)
from selling_partner.validation import parse_amazon_time

ORDER_CHANGE = "ORDER_CHANGE"
FBA_OUTBOUND_SHIPMENT_STATUS = "FBA_OUTBOUND_SHIPMENT_STATUS"
#: NotificationType -> (schema file, payload key).
SCHEMAS = {
    ORDER_CHANGE: ("OrderChangeNotification.json", "OrderChangeNotification"),
    FBA_OUTBOUND_SHIPMENT_STATUS: (
        "FBAOutboundShipmentStatusNotification.json",
        "FBAOutboundShipmentStatusNotification",
    ),
}
#: SQS's largest message; a larger body cannot be Amazon's.
MAX_BODY_BYTES = 256 * 1024
#: Deepest JSON nesting accepted (Amazon's notifications are 5 levels deep).
MAX_DEPTH = 12
SELLER_ID_RE = re.compile(r"^[A-Z0-9]{8,20}$", re.ASCII)
#: NotificationId, shipment ids: printable ASCII without separators, as a key and a log value.
SAFE_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$", re.ASCII)
#: ORDER_CHANGE ``OrderPrograms`` / ``ShippingPrograms`` -> v2026 program names (the rest has none).
PROGRAMS = {
    "Business": "AMAZON_BUSINESS",
    "Prime": "PRIME",
    "Premium": "PREMIUM",
    "ISPU": "IN_STORE_PICK_UP",
    "EasyShip": "AMAZON_EASY_SHIP",
}
#: Summary fields dropped before a payload is stored: the buyer's postal code is location PII.
PII_SUMMARY_FIELDS = ("DestinationPostalCode",)


@dataclass(frozen=True)
class Message:
    """One SQS message as received (what ``receive_message`` and ``SqsSensor`` return)."""

    message_id: str
    receipt_handle: str
    body: str

    @classmethod
    def from_sqs(cls, raw: Mapping[str, Any]) -> Message:
        return cls(
            str(raw.get("MessageId") or ""), str(raw.get("ReceiptHandle") or ""), str(raw.get("Body") or "")
        )


@dataclass(frozen=True)
class Notification:
    """A valid notification for a configured seller."""

    notification_id: str
    notification_type: str
    seller_id: str
    conn_id: str
    order_id: str
    event_time: datetime  # the change's time: the version of what it says about the order
    publish_time: datetime | None
    payload: dict[str, Any]  # the notification without PII fields, as stored in the inbox
    message: Message
    summary: CanonicalOrder | None = None  # ORDER_CHANGE
    shipment_id: str | None = None  # FBA_OUTBOUND_SHIPMENT_STATUS
    shipment_status: str | None = None
    change_type: str | None = None  # ORDER_CHANGE: OrderStatusChange, BuyerRequestedChange, DeliveryTipChange

    @property
    def payload_json(self) -> str:
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Rejected:
    """A message that cannot be used, with the reason (no PII in it) and what id it had, if any."""

    message: Message
    reason: str
    notification_id: str | None = None
    seller_id: str | None = None


class _Poison(ValueError):
    def __init__(self, reason: str, notification_id: str | None = None, seller_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.notification_id, self.seller_id = reason, notification_id, seller_id


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of decoded JSON, stopping at ``limit + 1``."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        nxt: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                nxt.extend(node.values())
            elif isinstance(node, list):
                nxt.extend(node)
        level = [n for n in nxt if isinstance(n, dict | list)]
    return depth


def decode_body(body: str) -> dict[str, Any]:
    """The notification object of an SQS body: raw JSON, or JSON encoded twice; ``ValueError`` if neither."""
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise _Poison(f"body is larger than SQS's {MAX_BODY_BYTES // 1024} KiB: not a notification")
    value: Any = body
    for _ in range(2):  # a double-encoded body is a JSON string holding the JSON
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except RecursionError:
            raise _Poison("body is nested too deeply to be a notification") from None
        except ValueError as exc:
            raise _Poison(f"body is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise _Poison(f"body is JSON but not an object ({type(value).__name__})")
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise _Poison(f"body is nested deeper than {MAX_DEPTH} levels: not a notification")
    return value


@cache
def _validator(notification_type: str) -> Any:
    from jsonschema import Draft7Validator

    schema_file = SCHEMAS[notification_type][0]
    text = (
        resources.files("selling_partner.notifications").joinpath("schemas", schema_file).read_text("utf-8")
    )
    return Draft7Validator(json.loads(text))


def _schema_error(notification_type: str, doc: dict[str, Any]) -> str | None:
    errors = sorted(_validator(notification_type).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
    return f"{notification_type} does not match Amazon's schema at {where}: {first.message[:160]}"


def _time(value: Any, name: str, *, required: bool = False) -> datetime | None:
    if value is None and not required:
        return None
    try:
        parsed = parse_amazon_time(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise _Poison(f"{name} {str(value)[:40]!r} is not an ISO-8601 time")
    return parsed


def _summary(payload: dict[str, Any], *, order_id: str, seller_id: str, version: datetime) -> CanonicalOrder:
    """An ORDER_CHANGE ``Summary`` as a partial canonical order (``complete=False``)."""
    s = payload["Summary"]
    marketplace_id = s["MarketplaceId"]
    if not MARKETPLACE_ID_RE.fullmatch(marketplace_id):
        raise _Poison(f"Summary.MarketplaceId {marketplace_id[:40]!r} is malformed")
    items: list[CanonicalItem] = []
    if payload.get("NotificationLevel") == "OrderLevel":  # item-level messages carry one item only
        for raw in s["OrderItems"]:
            quantity, shipped = int(raw["Quantity"]), raw.get("QuantityShipped")
            items.append(
                CanonicalItem(
                    order_id=order_id,
                    order_item_id=str(raw["OrderItemId"]),
                    quantity_ordered=quantity,
                    seller_sku=raw["SellerSKU"],
                    quantity_shipped=shipped,
                    quantity_unshipped=quantity - shipped if shipped is not None else None,
                    is_buyer_requested_cancel=raw.get("IsBuyerRequestedCancel"),
                )
            )
    programs = {
        PROGRAMS[p]
        for p in (s.get("OrderPrograms") or []) + (s.get("ShippingPrograms") or [])
        if p in PROGRAMS
    }
    if s.get("OrderType") == "Preorder":
        programs.add("PREORDER")
    return CanonicalOrder(
        order_id=order_id,
        marketplace_id=marketplace_id,
        order_status=V0_STATUS_TO_V2026[s["OrderStatus"]],
        # A summary without PurchaseDate records the change time until getOrder brings the real one.
        created_time=_time(s.get("PurchaseDate"), "Summary.PurchaseDate") or version,
        last_updated_time=version,
        seller_id=seller_id,
        fulfilled_by=V0_CHANNEL_TO_FULFILLED_BY.get(s["FulfillmentType"]),
        order_type=s.get("OrderType"),
        earliest_ship_time=_time(s.get("EarliestShipDate"), "Summary.EarliestShipDate"),
        latest_ship_time=_time(s.get("LatestShipDate"), "Summary.LatestShipDate"),
        earliest_delivery_time=_time(s.get("EarliestDeliveryDate"), "Summary.EarliestDeliveryDate"),
        latest_delivery_time=_time(s.get("LatestDeliveryDate"), "Summary.LatestDeliveryDate"),
        programs=tuple(sorted(programs)),
        items_shipped=s.get("NumberOfItemsShipped"),
        items_unshipped=s.get("NumberOfItemsUnshipped"),
        items=tuple(items),
        api_version="notification",
        source="summary",
        complete=False,
    )


def _redact(doc: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    summary = ((out.get("Payload") or {}).get("OrderChangeNotification") or {}).get("Summary")
    if isinstance(summary, dict):
        for name in PII_SUMMARY_FIELDS:
            summary.pop(name, None)
    return out


def _parse(message: Message, sellers: Mapping[str, str]) -> Notification:
    doc = decode_body(message.body)
    notification_type = doc.get("NotificationType")
    metadata = doc.get("NotificationMetadata")
    notification_id = metadata.get("NotificationId") if isinstance(metadata, dict) else None
    nid = (
        notification_id
        if isinstance(notification_id, str) and SAFE_ID_RE.fullmatch(notification_id)
        else None
    )
    if notification_type not in SCHEMAS:
        raise _Poison(f"unknown notification type {str(notification_type)[:60]!r}", nid)
    error = _schema_error(notification_type, doc)
    if error:
        raise _Poison(error, nid)
    if nid is None:
        raise _Poison(f"NotificationId {str(notification_id)[:60]!r} is malformed")
    payload = doc["Payload"][SCHEMAS[notification_type][1]]
    seller_id, order_id = payload["SellerId"], payload["AmazonOrderId"]
    if not SELLER_ID_RE.fullmatch(seller_id):
        raise _Poison(f"SellerId {seller_id[:40]!r} is malformed", nid)
    conn_id = sellers.get(seller_id)
    if conn_id is None:
        raise _Poison(f"seller {seller_id} is not served by any configured seller connection", nid, seller_id)
    if not ORDER_ID_RE.fullmatch(order_id):
        raise _Poison(f"AmazonOrderId {order_id[:40]!r} is not an Amazon order id", nid, seller_id)
    event_time = _time(doc["EventTime"], "EventTime", required=True)
    assert event_time is not None
    publish_time = _time(doc["NotificationMetadata"]["PublishTime"], "NotificationMetadata.PublishTime")
    common = {
        "notification_id": nid,
        "notification_type": notification_type,
        "seller_id": seller_id,
        "conn_id": conn_id,
        "order_id": order_id,
        "publish_time": publish_time,
        "payload": _redact(doc),
        "message": message,
    }
    if notification_type == ORDER_CHANGE:
        changed = payload["OrderChangeTrigger"].get("TimeOfOrderChange")
        version = _time(changed, "OrderChangeTrigger.TimeOfOrderChange") or event_time
        summary = _summary(payload, order_id=order_id, seller_id=seller_id, version=version)
        return Notification(
            event_time=version, summary=summary, change_type=payload["OrderChangeType"], **common
        )
    shipment_id = payload["AmazonShipmentId"]
    if not SAFE_ID_RE.fullmatch(shipment_id):
        raise _Poison(f"AmazonShipmentId {shipment_id[:40]!r} is malformed", nid, seller_id)
    return Notification(
        event_time=event_time,
        shipment_id=shipment_id,
        shipment_status=payload["ShipmentStatus"][:64],
        **common,
    )


def parse_message(message: Message, sellers: Mapping[str, str]) -> Notification | Rejected:
    """One SQS message -> a :class:`Notification` for a configured seller, or a :class:`Rejected`.

    :param sellers: seller id (merchant token) -> the ``amazon_sp_api`` connection that serves it
    """
    try:
        return _parse(message, sellers)
    except _Poison as poison:
        return Rejected(message, poison.reason, poison.notification_id, poison.seller_id)
    except (KeyError, TypeError, ValueError) as exc:  # a shape the schema allows but the mapping cannot use
        return Rejected(message, f"cannot be mapped: {type(exc).__name__}: {str(exc)[:160]}")
