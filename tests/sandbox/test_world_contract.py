"""Contract: what the sandbox world renders validates against Amazon's models and schemas.

Pure Python (no HTTP): varied worlds (five seeds x three regions) are rendered through every
renderer, evolved with ``advance()`` and their notifications validated with the strict helpers in
``tests/contract.py``. Orders are sampled by kind (status, channel, marketplace, packages,
cancellation requests, promotions, business, replacement) so every shape is covered quickly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sp_api_sandbox.render import orders_v0, orders_v2026
from sp_api_sandbox.render.formats import api_time
from sp_api_sandbox.render.notifications import Notifier
from sp_api_sandbox.routes import admin
from sp_api_sandbox.server import SandboxServer, ServerSettings
from sp_api_sandbox.world import INCLUDED_DATA, TRUTH_INCLUDED_DATA, SimOrder, World, WorldConfig

from tests.contract import (
    ContractError,
    documented_values,
    model_errors,
    notification_errors,
    response_definition,
    validate_model,
    validate_notification,
    validate_notification_times,
    validate_response,
    validate_time_formats,
)

V26 = "orders_2026-01-01"
V0 = "ordersV0"
SEEDS = (1, 2, 3, 7, 42)
REGIONS = ("na", "eu", "fe")
START = datetime(2026, 11, 2, 9, 30, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the world."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_world(seed: int, region: str, orders: int = 400) -> tuple[World, Clock]:
    clock = Clock()
    return World(WorldConfig(seed=seed, orders=orders, days=30, region=region), clock=clock), clock


def kind(order: SimOrder) -> tuple:
    return (
        order.v0_status,
        order.fulfilled_by,
        order.marketplace_id,
        bool(order.packages),
        any(i.cancel_requested for i in order.items),
        any(i.promotion_ids for i in order.items),
        "AMAZON_BUSINESS" in order.programs,
        order.replaced_order_id is not None,
        order.payment_method,
    )


def sample(world: World, per_kind: int = 1) -> list[SimOrder]:
    """Up to ``per_kind`` orders of every kind present in the world."""
    seen: dict[tuple, int] = {}
    out = []
    for order in world:
        k = kind(order)
        if seen.get(k, 0) < per_kind:
            seen[k] = seen.get(k, 0) + 1
            out.append(order)
    return out


def all_v0_docs(order: SimOrder) -> Iterator[tuple[str, object]]:
    yield "Order", orders_v0.render_order(order)
    yield "OrderItemList", orders_v0.render_items(order)
    yield "OrderBuyerInfo", orders_v0.render_buyer_info(order)
    yield "OrderAddress", orders_v0.render_address(order)


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("seed", SEEDS)
def test_every_rendering_validates(seed: int, region: str) -> None:
    world, _ = make_world(seed, region)
    orders = sample(world)
    assert len(orders) >= 30, "a 400-order world should hold many kinds of order"
    for order in orders:
        full = orders_v2026.render_order(order, INCLUDED_DATA)
        validate_model(V26, "Order", full)
        validate_time_formats(V26, "Order", full)
        for definition, doc in all_v0_docs(order):
            validate_model(V0, definition, doc)
            validate_time_formats(V0, definition, doc)
    for order in orders[:8]:
        validate_model(V26, "Order", orders_v2026.render_order(order))
        for value in INCLUDED_DATA:
            validate_model(V26, "Order", orders_v2026.render_order(order, [value]))
    # the response envelopes the server wraps around them
    page = orders[:5]
    validate_model(
        V26,
        "SearchOrdersResponse",
        {
            "orders": [orders_v2026.render_order(o, INCLUDED_DATA) for o in page],
            "pagination": {"nextToken": "opaque"},
            "lastUpdatedBefore": api_time(START - timedelta(minutes=2)),
        },
    )
    validate_model(V26, "GetOrderResponse", {"order": orders_v2026.render_order(page[0], ["FULFILLMENT"])})
    validate_model(
        V0,
        "GetOrdersResponse",
        {"payload": {"Orders": [orders_v0.render_order(o) for o in page], "CreatedBefore": api_time(START)}},
    )
    validate_model(
        V0,
        "GetOrderItemsResponse",
        {"payload": {"AmazonOrderId": page[0].order_id, "OrderItems": orders_v0.render_items(page[0])}},
    )
    validate_response(V0, "getOrderBuyerInfo", 200, {"payload": orders_v0.render_buyer_info(page[0])})
    validate_response(V0, "getOrderAddress", 200, {"payload": orders_v0.render_address(page[0])})
    validate_response(V0, "getOrder", 200, {"payload": orders_v0.render_order(page[0])})


@pytest.mark.parametrize("region", REGIONS)
def test_truth_validates_and_is_the_full_rendering(region: str) -> None:
    world, _ = make_world(7, region, orders=150)
    server = SandboxServer(ServerSettings(region=region), world)
    truth = admin.truth(server, {})
    assert [o["orderId"] for o in truth["orders"]] == sorted(o.order_id for o in world)
    assert truth["bad_records"] == {}
    for doc in truth["orders"]:
        validate_model(V26, "Order", doc)
        assert doc == orders_v2026.render_order(world.get(doc["orderId"]), TRUTH_INCLUDED_DATA)
    with_pii = admin.truth(server, {"include_pii": "true"})["orders"]
    assert with_pii == [orders_v2026.render_order(world.get(o["orderId"]), INCLUDED_DATA) for o in with_pii]


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("seed", SEEDS)
def test_advance_messages_and_changed_orders_validate(seed: int, region: str) -> None:
    world, clock = make_world(seed, region, orders=300)
    notifier = Notifier(world)
    kinds: set[str] = set()
    types: set[str] = set()
    rendered: set[tuple] = set()
    for _ in range(6):
        clock.tick(30)
        for change in world.advance(new_orders=8, changes=40):
            kinds.add(change.kind)
            for message in notifier.messages_for(change):
                body = validate_notification(json.dumps(message))
                assert {"/EventTime", "/NotificationMetadata/PublishTime"} <= set(
                    validate_notification_times(body)
                )
                types.add(body["NotificationType"])
            order = world.get(change.order_id)
            if (change.kind, *kind(order)) in rendered:
                continue  # this shape of changed order was validated already
            rendered.add((change.kind, *kind(order)))
            validate_model(V26, "Order", orders_v2026.render_order(order, INCLUDED_DATA))
            for definition, doc in all_v0_docs(order):
                validate_model(V0, definition, doc)
    assert {"created", "status", "shipped", "cancelled"} <= kinds
    assert types == {"ORDER_CHANGE", "FBA_OUTBOUND_SHIPMENT_STATUS"}


@pytest.mark.parametrize("region", REGIONS)
def test_foreign_seller_messages_are_valid_but_foreign(region: str) -> None:
    world, _ = make_world(5, region, orders=50)
    messages = Notifier(world).foreign_seller_messages(6)
    assert len(messages) == 6
    for message in messages:
        body = validate_notification(message)
        validate_notification_times(body)
        assert body["Payload"]["OrderChangeNotification"]["SellerId"] != world.seller_id
        assert world.get(body["Payload"]["OrderChangeNotification"]["AmazonOrderId"]) is None
    assert len({m["NotificationMetadata"]["NotificationId"] for m in messages}) == 6


def test_poison_messages_are_all_invalid_and_varied() -> None:
    world, _ = make_world(5, "na", orders=50)
    poison = Notifier(world).poison_messages(24)
    assert len(poison) == 24 and all(isinstance(p, str) for p in poison)
    reasons = set()
    for body in poison:
        errors = notification_errors(body)
        assert errors, f"poison body passed validation: {body[:200]}"
        reasons.add(errors[0].split(":")[0].split(" ")[0])
        with pytest.raises(ContractError):
            validate_notification(body)
    assert len(set(poison[:12])) == 12, "the first twelve poison bodies are twelve different kinds"
    assert len(reasons) >= 4


def test_response_definitions_come_from_the_operations() -> None:
    assert response_definition(V26, "searchOrders", 200) == "SearchOrdersResponse"
    assert response_definition(V26, "getOrder", 429) == "ErrorList"
    assert response_definition(V0, "getOrderItems", 400) == "GetOrderItemsResponse"
    assert response_definition("tokens_2021-03-01", "createRestrictedDataToken", 403) == "ErrorList"
    with pytest.raises(KeyError):
        response_definition(V26, "getOrder", 201)
    with pytest.raises(KeyError):
        response_definition(V26, "teleportOrder", 200)
    validate_response(
        V26, "searchOrders", 400, {"errors": [{"code": "InvalidInput", "message": "Invalid Input"}]}
    )
    with pytest.raises(ContractError):
        validate_response(V26, "searchOrders", 400, {"errors": [{"code": "InvalidInput"}]})


def test_validators_are_strict() -> None:
    """The helpers catch unknown keys, prose enums, bad dates, bad money and bad order ids."""
    world, _ = make_world(1, "eu", orders=30)
    order = next(o for o in world if o.priced)
    good = orders_v2026.render_order(order, INCLUDED_DATA)
    assert model_errors(V26, "Order", good) == []
    broken = json.loads(json.dumps(good))
    broken["surprise"] = 1
    broken["salesChannel"]["channelName"] = "EBAY"
    broken["createdTime"] = "yesterday"
    broken["orderItems"][0]["proceeds"]["proceedsTotal"]["amount"] = "12,50"
    del broken["orderItems"][0]["orderItemId"]
    errors = "\n".join(model_errors(V26, "Order", broken))
    for fragment in ("surprise", "EBAY", "yesterday", "12,50", "orderItemId"):
        assert fragment in errors
    assert model_errors(V26, "Order", broken, strict=False) != []  # required fields still checked
    items = orders_v0.render_items(order)
    items[0]["IsGift"] = True
    assert model_errors(V0, "OrderItemList", items)
    notifier = Notifier(world)
    message = notifier.foreign_seller_messages(1)[0]
    message["Payload"]["OrderChangeNotification"]["AmazonOrderId"] = "12-34"
    assert any("AmazonOrderId" in e for e in notification_errors(message))
    double = json.dumps(json.dumps(notifier.foreign_seller_messages(1)[0]))
    assert validate_notification(double)["NotificationType"] == "ORDER_CHANGE"
    assert documented_values("x **Possible values**: `A`, `B`.") == ["A", "B"]


def test_time_format_checks_find_every_date_time_and_reject_other_forms() -> None:
    """The walkers find the schema's date-times, insist on each API's exact form, and flag strings that
    look like times where the schema declares none (so a time cannot slip past unchecked)."""
    world, clock = make_world(2, "na", orders=60)
    order = next(o for o in world if o.packages and o.priced)
    doc = orders_v2026.render_order(order, INCLUDED_DATA)
    times = validate_time_formats(V26, "Order", doc)
    expected = {"/createdTime", "/lastUpdatedTime", "/fulfillment/shipByWindow/earliestDateTime"}
    assert expected | {"/packages/0/shipTime"} <= set(times)
    assert times["/createdTime"] == api_time(order.created_time)
    for broken in ("2026-11-02T09:30:00.000Z", "2026-11-02T09:30:00+00:00", "2026-11-02T09:30Z"):
        with pytest.raises(ContractError, match="createdTime"):
            validate_time_formats(V26, "Order", {**doc, "createdTime": broken})
    with pytest.raises(ContractError, match="declares none"):
        validate_time_formats(
            V26,
            "Order",
            {**doc, "orderAliases": [{"aliasId": "2026-11-02T09:30:00Z", "aliasType": "SELLER_ORDER_ID"}]},
        )
    v0_times = validate_time_formats(V0, "Order", orders_v0.render_order(order))
    assert {"/PurchaseDate", "/LastUpdateDate", "/LatestDeliveryDate"} <= set(v0_times)
    clock.tick(30)
    change = world.advance(new_orders=1, changes=0)[0]
    message = Notifier(world).messages_for(change)[0]
    note_times = validate_notification_times(message)
    assert "/Payload/OrderChangeNotification/OrderChangeTrigger/TimeOfOrderChange" in note_times
    assert "/Payload/OrderChangeNotification/Summary/PurchaseDate" in note_times
    message["EventTime"] = api_time(change.time)  # the Orders APIs' form is wrong in a notification
    with pytest.raises(ContractError, match="EventTime"):
        validate_notification_times(message)
