"""Contract: every operation's responses, and every published notification, validate against Amazon's models.

Each case starts its own sandbox (a different seed and region, so different worlds), walks every
order through every read operation, provokes the error responses, moves the world on with every
delivery option and validates what lands in SQS. Validation is ``tests/contract.py`` (strict), and
every date-time must have the exact form its API renders (Orders APIs: whole seconds;
notifications: milliseconds). One case serves bad records: the orders the truth names as corrupted
are left out of model validation (they are not model-valid by design), every other order is checked.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sp_api_sandbox import models

from tests.contract import (
    decode_body,
    model_errors,
    validate_model,
    validate_notification,
    validate_notification_times,
    validate_time_formats,
    without_orders,
)
from tests.fixtures.sandbox import SandboxClient

pytestmark = pytest.mark.integration

V26 = "orders_2026-01-01"
V0M = "ordersV0"
NOTIF = "notifications"
TOKENS = "tokens_2021-03-01"
SEARCH = "/orders/2026-01-01/orders"
V0 = "/orders/v0/orders"
#: every includedData value Amazon's model lists for searchOrders
ALL_INCLUDED = ",".join(
    next(p for p in models.load(V26)["paths"][SEARCH]["get"]["parameters"] if p["name"] == "includedData")[
        "items"
    ]["enum"]
)
#: (seed, region, bad_records)
CASES = [(1, "na", 0.0), (2, "eu", 0.0), (3, "fe", 0.0), (4, "na", 0.3)]
#: bad-record kinds whose corruption no model allows (the others are odd but model-valid)
MODEL_INVALID_KINDS = {"unknown_status", "missing_last_updated", "missing_item_id", "unknown_optional_enum"}


def long_ago() -> str:
    return (datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")


def check(
    response: requests.Response,
    status: int,
    model: str,
    definition: str,
    *,
    strict: bool = True,
    corrupted: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The body, after checking status, request id, model and time formats; orders in ``corrupted``
    are left out of the checks."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers.get("x-amzn-RequestId")
    body = response.json()
    checked = without_orders(body, corrupted)
    if checked is not None:
        validate_model(model, definition, checked, strict=strict)
        validate_time_formats(model, definition, checked)
    return body


#: EventFilter is an ``allOf`` of objects; the strict validator closes each part on its own and then
#: rejects every filter key, so subscription bodies carrying a filter are checked non-strictly.
FILTER_STRICT = False


def _walk_v2026(api: SandboxClient, corrupted: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    params: dict[str, str] = {
        "createdAfter": long_ago(),
        "includedData": ALL_INCLUDED,
        "maxResultsPerPage": "40",
    }
    while True:
        body = check(api.get(SEARCH, params=params), 200, V26, "SearchOrdersResponse", corrupted=corrupted)
        orders += body["orders"]
        token = body.get("pagination", {}).get("nextToken")
        if not token:
            return orders
        params["paginationToken"] = token


def _walk_v0(api: SandboxClient, corrupted: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    params = {"CreatedAfter": long_ago(), "MarketplaceIds": ",".join(api.sandbox.marketplace_ids)}
    while True:
        payload = check(api.get(V0, params=params), 200, V0M, "GetOrdersResponse", corrupted=corrupted)[
            "payload"
        ]
        orders += payload["Orders"]
        if "NextToken" not in payload:
            return orders
        params = {"NextToken": payload["NextToken"]}


@pytest.mark.parametrize(("seed", "region", "bad_records"), CASES)
def test_every_operation_validates(
    sandbox_factory, moto_sqs, seed: int, region: str, bad_records: float
) -> None:
    queue_url = moto_sqs.queue_url()
    sb = sandbox_factory(
        seed=seed,
        region=region,
        orders=90,
        days=20,
        time_scale=600,
        min_before_lag=0,
        sqs_endpoint=moto_sqs.endpoint,
        queue_url=queue_url,
        bad_records=bad_records,
    )
    api = SandboxClient(sb)
    bad = sb.truth()["bad_records"]
    corrupted = frozenset(bad)
    assert bool(corrupted) == (bad_records > 0)

    # Orders v2026: the whole world with every includedData, then getOrder for a spread of orders
    orders = _walk_v2026(api, corrupted)
    assert len(orders) == 90
    assert {o["salesChannel"]["marketplaceId"] for o in orders} <= set(sb.marketplace_ids)
    for order in orders:  # the skipped orders are skipped because they are corrupted, not by chance
        errors = model_errors(V26, "Order", order)
        if order["orderId"] not in corrupted or bad[order["orderId"]]["kind"] in MODEL_INVALID_KINDS:
            assert bool(errors) == (order["orderId"] in corrupted), (order["orderId"], errors[:3])
    for order in orders[::6]:
        check(
            api.get(f"{SEARCH}/{order['orderId']}", params={"includedData": ALL_INCLUDED}),
            200,
            V26,
            "GetOrderResponse",
            corrupted=corrupted,
        )
        check(api.get(f"{SEARCH}/{order['orderId']}"), 200, V26, "GetOrderResponse", corrupted=corrupted)
    check(api.get(SEARCH, params={"lastUpdatedAfter": "soon"}), 400, V26, "ErrorList")
    check(api.get(f"{SEARCH}/123-1234567-7654321"), 404, V26, "ErrorList")
    check(api.get(SEARCH, params={"createdAfter": long_ago()}, token="Atza|nope"), 403, V26, "ErrorList")

    # Orders v0: getOrders over the world, per-order reads with an RDT, errors
    v0_orders = _walk_v0(api, corrupted)
    assert {o["AmazonOrderId"] for o in v0_orders} == {o["orderId"] for o in orders}
    resources = [
        {"method": "GET", "path": f"{V0}/{{orderId}}/buyerInfo"},
        {"method": "GET", "path": f"{V0}/{{orderId}}/address"},
        {"method": "GET", "path": f"{V0}/{{orderId}}", "dataElements": ["buyerInfo", "shippingAddress"]},
        {"method": "GET", "path": f"{V0}/{{orderId}}/orderItems", "dataElements": ["buyerInfo"]},
        {"method": "GET", "path": V0, "dataElements": ["buyerInfo", "shippingAddress"]},
    ]
    rdt_body = check(
        api.post("/tokens/2021-03-01/restrictedDataToken", json={"restrictedResources": resources}),
        200,
        TOKENS,
        "CreateRestrictedDataTokenResponse",
    )
    rdt = rdt_body["restrictedDataToken"]
    bulk = {"CreatedAfter": long_ago(), "MarketplaceIds": ",".join(sb.marketplace_ids)}
    pii_page = check(api.get(V0, params=bulk, token=rdt), 200, V0M, "GetOrdersResponse", corrupted=corrupted)[
        "payload"
    ]["Orders"]
    assert all("BuyerInfo" in o for o in pii_page)
    for order in v0_orders[::8]:
        oid = order["AmazonOrderId"]
        check(api.get(f"{V0}/{oid}"), 200, V0M, "GetOrderResponse", corrupted=corrupted)
        check(api.get(f"{V0}/{oid}", token=rdt), 200, V0M, "GetOrderResponse", corrupted=corrupted)
        token = None
        while True:
            params = {"NextToken": token} if token else {}
            payload = check(
                api.get(f"{V0}/{oid}/orderItems", params=params),
                200,
                V0M,
                "GetOrderItemsResponse",
                corrupted=corrupted,
            )["payload"]
            token = payload.get("NextToken")
            if not token:
                break
        check(api.get(f"{V0}/{oid}/buyerInfo", token=rdt), 200, V0M, "GetOrderBuyerInfoResponse")
        check(api.get(f"{V0}/{oid}/address", token=rdt), 200, V0M, "GetOrderAddressResponse")
        check(api.get(f"{V0}/{oid}/buyerInfo"), 403, V0M, "GetOrderBuyerInfoResponse")  # v0 errors ride in it
    check(api.get(V0, params={"CreatedAfter": long_ago()}), 400, V0M, "GetOrdersResponse")
    check(api.get(f"{V0}/123-1234567-7654321"), 404, V0M, "GetOrderResponse")
    check(
        api.post("/tokens/2021-03-01/restrictedDataToken", json={"restrictedResources": []}),
        400,
        TOKENS,
        "ErrorList",
    )

    # Notifications
    arn = moto_sqs.queue_arn(queue_url)
    spec = {"name": f"sandbox-{seed}", "resourceSpecification": {"sqs": {"arn": arn}}}
    dest = check(
        api.post("/notifications/v1/destinations", json=spec, grantless=True),
        200,
        NOTIF,
        "CreateDestinationResponse",
    )["payload"]
    check(
        api.post("/notifications/v1/destinations", json=spec, grantless=True),
        409,
        NOTIF,
        "CreateDestinationResponse",
    )
    check(api.get("/notifications/v1/destinations", grantless=True), 200, NOTIF, "GetDestinationsResponse")
    check(
        api.get(f"/notifications/v1/destinations/{dest['destinationId']}", grantless=True),
        200,
        NOTIF,
        "GetDestinationResponse",
    )
    sub_body = {
        "payloadVersion": "1.0",
        "destinationId": dest["destinationId"],
        "processingDirective": {
            "eventFilter": {"eventFilterType": "ORDER_CHANGE", "marketplaceIds": sb.marketplace_ids}
        },
    }
    sub = check(
        api.post("/notifications/v1/subscriptions/ORDER_CHANGE", json=sub_body),
        200,
        NOTIF,
        "CreateSubscriptionResponse",
        strict=FILTER_STRICT,
    )["payload"]
    check(
        api.post("/notifications/v1/subscriptions/ORDER_CHANGE", json=sub_body),
        409,
        NOTIF,
        "CreateSubscriptionResponse",
        strict=FILTER_STRICT,
    )
    check(
        api.get("/notifications/v1/subscriptions/ORDER_CHANGE"),
        200,
        NOTIF,
        "GetSubscriptionResponse",
        strict=FILTER_STRICT,
    )
    by_id = f"/notifications/v1/subscriptions/ORDER_CHANGE/{sub['subscriptionId']}"
    check(api.get(by_id, grantless=True), 200, NOTIF, "GetSubscriptionByIdResponse", strict=FILTER_STRICT)
    check(api.delete(by_id, grantless=True), 200, NOTIF, "DeleteSubscriptionByIdResponse")
    check(
        api.delete(f"/notifications/v1/destinations/{dest['destinationId']}", grantless=True),
        200,
        NOTIF,
        "DeleteDestinationResponse",
    )

    # Advance: every published notification validates (double-encoded and duplicated ones included)
    result = sb.advance(new_orders=8, changes=25, duplicates=0.3, shuffle=True, double_encoded=0.3)
    assert result["messages"] >= 8 and result["published"] >= result["messages"]
    received = moto_sqs.receive_all(queue_url)
    assert len(received) == result["published"]
    ids = set()
    for message in received:
        body = validate_notification(
            message["Body"]
        )  # bad records are an API fault: notifications stay valid
        validate_notification_times(body)
        ids.add(body["NotificationMetadata"]["NotificationId"])
        assert decode_body(message["Body"]) == body
    assert ids == {c["notification_id"] for c in result["changes"]}
    # the world moved on and the truth agrees with a fresh walk (once the changes are a second old:
    # a window without Before ends at now - lag, truncated to the second)
    time.sleep(1.1)
    after = _walk_v2026(api, frozenset(sb.truth()["bad_records"]))
    assert len(after) == 98
    truth = sb.truth()
    assert {o["orderId"]: o.get("lastUpdatedTime") for o in after} == {
        o["orderId"]: o.get("lastUpdatedTime") for o in truth["orders"]
    }
    assert set(truth["bad_records"]) >= corrupted  # corrupted orders stay corrupted as the world moves


def test_throttled_and_fault_responses_validate(sandbox_factory) -> None:
    sb = sandbox_factory(orders=10, time_scale=1)
    api = SandboxClient(sb)
    statuses = []
    for _ in range(22):
        response = api.get(SEARCH, params={"createdAfter": long_ago()}, retry_throttled=False)
        statuses.append(response.status_code)
        if response.status_code == 429:
            validate_model(V26, "ErrorList", response.json())
    assert statuses.count(429) == 2
    v0_params = {"CreatedAfter": long_ago(), "MarketplaceIds": sb.marketplace_ids[0]}
    v0_statuses = [api.get(V0, params=v0_params, retry_throttled=False) for _ in range(21)]
    assert [r.status_code for r in v0_statuses].count(429) == 1
    check(v0_statuses[-1], 429, V0M, "GetOrdersResponse")
    check(
        api.get("/notifications/v1/destinations/no-such-id", grantless=True),
        404,
        NOTIF,
        "GetDestinationResponse",
    )
    bad_type = api.post("/notifications/v1/subscriptions/NOT_A_TYPE", json={"payloadVersion": "1.0"})
    check(bad_type, 400, NOTIF, "CreateSubscriptionResponse")
    check(
        api.delete("/notifications/v1/destinations/no-such-id", grantless=True),
        404,
        NOTIF,
        "DeleteDestinationResponse",
    )
    sb.config(faults={"profile": "none", "error500": 0.5, "error503": 0.5})
    for _ in range(6):
        response = api.get(f"{SEARCH}/123-1234567-7654321")
        assert response.status_code in (500, 503)
        validate_model(V26, "ErrorList", response.json())
        assert json.loads(response.text)["errors"][0]["code"] in ("InternalFailure", "ServiceUnavailable")
