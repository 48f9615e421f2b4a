"""Notifications: ORDER_CHANGE and FBA_OUTBOUND_SHIPMENT_STATUS bodies, and the noise a queue carries.

Times render as Amazon's notification schemas show them, with milliseconds
(``2020-01-11T00:09:53.109Z``); the world's times are whole seconds, so they end in ``.000Z``.
``EventTime`` and ``PublishTime`` are the change's time. An ORDER_CHANGE ``Summary`` describes the
order as the change left it (``Change.state``), however late the body is rendered.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sp_api_sandbox.render.formats import notification_time
from sp_api_sandbox.world import FOREIGN_SELLER_ID, Change, SimOrder, World, floor_second

NOTIFICATION_TYPES = ("ORDER_CHANGE", "FBA_OUTBOUND_SHIPMENT_STATUS")
#: v2026 program -> ORDER_CHANGE Summary OrderPrograms value.
_PROGRAMS = {"AMAZON_BUSINESS": "Business", "PRIME": "Prime", "PREMIUM": "Premium"}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def summary(order: SimOrder) -> dict[str, Any]:
    """The ORDER_CHANGE ``Summary`` of an order's state."""
    items = []
    mixed = len({i.shipped == i.quantity for i in order.items}) > 1
    for item in order.items:
        entry: dict[str, Any] = {
            "OrderItemId": item.order_item_id,
            "SellerSKU": item.sku,
            "SupplySourceId": None,
            "Quantity": item.quantity,
            "QuantityShipped": item.shipped,
            "IsBuyerRequestedCancel": item.cancel_requested,
        }
        if mixed:
            entry["OrderItemStatus"] = "Shipped" if item.shipped == item.quantity else "Unshipped"
        items.append(entry)
    programs = [_PROGRAMS[p] for p in order.programs if p in _PROGRAMS]
    if order.replaced_order_id:
        programs.append("Replacement")
    return {
        "MarketplaceId": order.marketplace_id,
        "OrderStatus": order.v0_status,
        "PurchaseDate": notification_time(order.created_time),
        "DestinationPostalCode": order.buyer.postal_code,
        "FulfillmentType": order.fulfillment_channel,
        "OrderType": order.order_type,
        "NumberOfItemsShipped": order.units_shipped,
        "NumberOfItemsUnshipped": order.units_unshipped,
        "EarliestShipDate": notification_time(order.ship_by[0]),
        "LatestShipDate": notification_time(order.ship_by[1]),
        "EarliestDeliveryDate": notification_time(order.deliver_by[0]),
        "LatestDeliveryDate": notification_time(order.deliver_by[1]),
        "OrderPrograms": programs,
        "ShippingPrograms": [],
        "OrderItems": items,
    }


class Notifier:
    """Renders one world's notifications: the application and subscription ids stay fixed for a seed,
    NotificationIds are fresh per body (repeatable for a seed and a clock, never across runs on the
    real clock, so an inbox that outlives one sandbox does not take a new run's bodies for duplicates).
    """

    def __init__(self, world: World) -> None:
        self.world = world
        seed = world.config.seed
        ids = random.Random(f"application-{seed}")
        self.application_id = f"amzn1.sellerapps.app.{_uuid(ids)}"
        self.subscription_ids = {name: _uuid(ids) for name in NOTIFICATION_TYPES}
        self._rng = random.Random(f"messages-{seed}-{world.started.isoformat()}")

    def _envelope(self, notification_type: str, when: datetime, payload: dict[str, Any]) -> dict[str, Any]:
        stamp = notification_time(when)
        return {
            "NotificationVersion": "1.0",
            "NotificationType": notification_type,
            "PayloadVersion": "1.0",
            "EventTime": stamp,
            "Payload": payload,
            "NotificationMetadata": {
                "ApplicationId": self.application_id,
                "SubscriptionId": self.subscription_ids[notification_type],
                "PublishTime": stamp,
                "NotificationId": _uuid(self._rng),
            },
        }

    def _order_change(
        self,
        seller_id: str,
        order_id: str,
        change_type: str,
        reason: str,
        when: datetime,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        return self._envelope(
            "ORDER_CHANGE",
            when,
            {
                "OrderChangeNotification": {
                    "NotificationLevel": "OrderLevel",
                    "SellerId": seller_id,
                    "AmazonOrderId": order_id,
                    "OrderChangeType": change_type,
                    "OrderChangeTrigger": {
                        "TimeOfOrderChange": notification_time(when),
                        "ChangeReason": reason,
                    },
                    "Summary": body,
                }
            },
        )

    def messages_for(self, change: Change) -> list[dict[str, Any]]:
        """The bodies of one change: an ORDER_CHANGE, plus an FBA_OUTBOUND_SHIPMENT_STATUS when an AFN
        order's shipment was created or cancelled. Each has a fresh NotificationId."""
        order = change.state if change.state is not None else self.world.get(change.order_id)
        if order is None:
            raise KeyError(f"no order {change.order_id} in the world")
        change_type = "BuyerRequestedChange" if change.kind == "cancel_request" else "OrderStatusChange"
        seller = self.world.seller_id
        messages = [
            self._order_change(
                seller, order.order_id, change_type, change.reason, change.time, summary(order)
            )
        ]
        if change.fba_shipment_status and order.shipment_id:
            payload = {
                "SellerId": seller,
                "AmazonOrderId": order.order_id,
                "AmazonShipmentId": order.shipment_id,
                "ShipmentStatus": change.fba_shipment_status,
            }
            messages.append(
                self._envelope(
                    "FBA_OUTBOUND_SHIPMENT_STATUS",
                    change.time,
                    {"FBAOutboundShipmentStatusNotification": payload},
                )
            )
        return messages

    def foreign_seller_messages(self, n: int) -> list[dict[str, Any]]:
        """Valid ORDER_CHANGE bodies that belong to another seller (a shared queue's noise)."""
        rng = self._rng
        now = floor_second(self.world.now())
        out = []
        for _ in range(n):
            order_id = f"{rng.randrange(100, 1000)}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"
            when = now - timedelta(seconds=rng.randrange(1, 60))
            body = {
                "MarketplaceId": self.world.marketplace_ids[0],
                "OrderStatus": "Unshipped",
                "PurchaseDate": notification_time(when - timedelta(hours=2)),
                "DestinationPostalCode": None,
                "FulfillmentType": "MFN",
                "OrderType": "StandardOrder",
                "NumberOfItemsShipped": 0,
                "NumberOfItemsUnshipped": 1,
                "OrderItems": [
                    {
                        "OrderItemId": str(rng.randrange(10**13, 10**14)),
                        "SellerSKU": "FOREIGN-SKU-1",
                        "SupplySourceId": None,
                        "Quantity": 1,
                        "QuantityShipped": 0,
                    }
                ],
            }
            out.append(
                self._order_change(
                    FOREIGN_SELLER_ID, order_id, "OrderStatusChange", "PaymentAuthorized", when, body
                )
            )
        return out

    def poison_messages(self, n: int) -> list[str]:
        """Raw SQS bodies that are not valid notifications (each kind in turn)."""
        order = next(iter(self.world), None)
        if order is not None:
            base = self._order_change(
                self.world.seller_id,
                order.order_id,
                "OrderStatusChange",
                "Poison",
                order.last_updated_time,
                summary(order),
            )
        else:
            base = self.foreign_seller_messages(1)[0]
            base["Payload"]["OrderChangeNotification"]["SellerId"] = self.world.seller_id

        def variant(mutate: Callable[[dict[str, Any]], Any]) -> str:
            body = json.loads(json.dumps(base))
            body["NotificationMetadata"]["NotificationId"] = _uuid(self._rng)
            mutate(body)
            return json.dumps(body)

        def oc(body: dict[str, Any]) -> dict[str, Any]:
            return body["Payload"]["OrderChangeNotification"]

        full = json.dumps(base)
        makers: list[Callable[[], str]] = [
            lambda: full[: len(full) // 2],
            lambda: variant(lambda b: b.update(EventTime=1764241538)),
            lambda: variant(lambda b: b["NotificationMetadata"].pop("NotificationId")),
            lambda: variant(lambda b: b.update(NotificationType="ORDER_TELEPORTED")),
            lambda: variant(lambda b: oc(b).update(AmazonOrderId="../../etc/passwd")),
            lambda: variant(lambda b: oc(b)["Summary"].update(OrderStatus="Teleported")),
            lambda: variant(lambda b: oc(b)["Summary"].update(NumberOfItemsShipped="two")),
            lambda: variant(lambda b: b.pop("Payload")),
            lambda: "this is not JSON",
            lambda: "[1, 2, 3]",
            lambda: json.dumps(full[: len(full) // 3]),
            lambda: "",
        ]
        return [makers[k % len(makers)]() for k in range(n)]
