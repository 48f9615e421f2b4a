"""Behaviour of the sandbox over real HTTP: auth, the rules Amazon enforces, PII, notifications, admin."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sp_api_sandbox.launcher import SandboxProcess

from tests.fixtures.sandbox import SandboxClient

pytestmark = pytest.mark.integration

SEARCH = "/orders/2026-01-01/orders"
V0 = "/orders/v0/orders"
RDT = "/tokens/2021-03-01/restrictedDataToken"
DESTINATIONS = "/notifications/v1/destinations"
SUBSCRIPTIONS = "/notifications/v1/subscriptions"
TOKEN_DENIED = "Access to requested resource is denied."


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def ago(**kw: float) -> str:
    return iso(datetime.now(UTC) - timedelta(**kw))


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A sandbox this module may reconfigure (each test sets what it relies on)."""
    log = Path(tmp_path_factory.mktemp("rules")) / "sandbox.log"
    with SandboxProcess(
        options={"seed": 11, "orders": 300, "days": 20, "time_scale": 600}, log_path=log
    ) as sb:
        yield sb


@pytest.fixture
def api(rules: SandboxProcess) -> SandboxClient:
    rules.config(min_before_lag=120, page_token_ttl=None, faults="none", rate_limit_header=True)
    return SandboxClient(rules)


def error_of(response: requests.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    return body["errors"][0]


# -- LWA -----------------------------------------------------------------------------------------
def test_lwa_refresh_grant_issues_a_bearer_token_with_the_scaled_lifetime(api: SandboxClient) -> None:
    response = api.lwa(grant_type="refresh_token", refresh_token=api.sandbox.refresh_token)
    assert response.status_code == 200 and response.headers["x-amzn-RequestId"]
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("Atza|")
    assert body["expires_in"] == 6  # 3600 s / time scale 600


def test_lwa_accepts_json_bodies_too(api: SandboxClient) -> None:
    sb = api.sandbox
    body = {
        "grant_type": "refresh_token",
        "refresh_token": sb.refresh_token,
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
    }
    ok = requests.post(sb.lwa_endpoint, json=body, timeout=10)
    assert ok.status_code == 200 and ok.json()["access_token"].startswith("Atza|")
    bad = requests.post(sb.lwa_endpoint, data=b"{", headers={"Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "refresh_token", "refresh_token": "Atzr|not-the-one"}, 400, "invalid_grant"),
        (
            {"grant_type": "refresh_token", "refresh_token": "x", "client_secret": "wrong"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "someone-else"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
        (
            {"grant_type": "client_credentials", "scope": "sellingpartnerapi::everything"},
            400,
            "invalid_scope",
        ),
    ],
)
def test_lwa_errors_use_lwa_shape(api: SandboxClient, form: dict[str, str], status: int, error: str) -> None:
    response = api.lwa(**form)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error


def test_access_tokens_expire_after_the_scaled_lifetime(sandbox_factory) -> None:
    sb = sandbox_factory(orders=20, time_scale=3600)  # tokens live 1 s
    api = SandboxClient(sb)
    token = api.lwa(grant_type="refresh_token", refresh_token=sb.refresh_token).json()["access_token"]
    assert api.get(f"{SEARCH}?lastUpdatedAfter={ago(days=1)}", token=token).status_code == 200
    time.sleep(1.2)
    response = api.get(f"{SEARCH}?lastUpdatedAfter={ago(days=1)}", token=token)
    assert response.status_code == 403
    assert error_of(response) == {
        "code": "Unauthorized",
        "message": TOKEN_DENIED,
        "details": "The access token you provided has expired.",
    }
    assert "x-amzn-RateLimit-Limit" not in response.headers and response.headers["x-amzn-RequestId"]


def test_revoked_unknown_and_missing_tokens_are_refused(api: SandboxClient) -> None:
    token = api.token()
    path = f"{SEARCH}?lastUpdatedAfter={ago(days=1)}"
    assert api.get(path, token=token).status_code == 200
    api.sandbox.expire_access_tokens()
    expired = api.get(path, token=token)
    assert expired.status_code == 403 and "expired" in error_of(expired)["details"]
    forged = api.get(path, token="Atza|forged")
    assert forged.status_code == 403 and "revoked, malformed or invalid" in error_of(forged)["details"]
    missing = api.get(path, token="")
    assert missing.status_code == 403 and error_of(missing)["code"] == "Unauthorized"
    fresh = api.lwa(grant_type="refresh_token", refresh_token=api.sandbox.refresh_token).json()[
        "access_token"
    ]
    assert api.get(path, token=fresh).status_code == 200


# -- Orders v2026: rules -------------------------------------------------------------------------
def test_two_minute_rule_with_settable_lag(api: SandboxClient) -> None:
    after = ago(days=2)
    too_recent = api.get(SEARCH, params={"lastUpdatedAfter": after, "lastUpdatedBefore": ago(seconds=60)})
    assert too_recent.status_code == 400
    err = error_of(too_recent)
    assert err["code"] == "InvalidInput" and "120 seconds" in err["message"]
    assert too_recent.headers["x-amzn-RateLimit-Limit"] == "3.36"
    ok = api.get(SEARCH, params={"lastUpdatedAfter": after, "lastUpdatedBefore": ago(seconds=130)})
    assert ok.status_code == 200
    api.sandbox.config(min_before_lag=30)
    assert api.get(SEARCH, params={"lastUpdatedAfter": after, "lastUpdatedBefore": ago(seconds=60)}).ok
    # without a Before the response echoes now - lag as the effective bound
    started = datetime.now(UTC)
    body = api.get(SEARCH, params={"createdAfter": after}).json()
    echoed = datetime.fromisoformat(body["createdBefore"])
    assert started - timedelta(seconds=32) <= echoed <= datetime.now(UTC) - timedelta(seconds=29)
    assert "lastUpdatedBefore" not in body


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"createdAfter": "2026-01-01T00:00:00Z", "lastUpdatedAfter": "2026-01-01T00:00:00Z"},
        {"createdAfter": "2026-01-01T00:00:00Z", "lastUpdatedBefore": "2026-01-02T00:00:00Z"},
        {"lastUpdatedAfter": "2026-01-02T00:00:00Z", "lastUpdatedBefore": "2026-01-01T00:00:00Z"},
        {"lastUpdatedAfter": "last tuesday"},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "maxResultsPerPage": "0"},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "maxResultsPerPage": "101"},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "fulfillmentStatuses": "SHIPPED,TELEPORTED"},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "fulfilledBy": "SOMEONE"},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "includedData": "EVERYTHING"},
        {
            "lastUpdatedAfter": "2026-01-01T00:00:00Z",
            "marketplaceIds": "A1PA6795UKMFR9",
        },  # DE: not an NA seller's
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "marketplaceIds": ",".join(["ATVPDKIKX0DER"] * 51)},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "paginationToken": "garbage"},
    ],
)
def test_search_orders_rejects_invalid_input(api: SandboxClient, params: dict[str, str]) -> None:
    response = api.get(SEARCH, params=params)
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "InvalidInput"


def test_list_params_accept_commas_and_repetition(api: SandboxClient) -> None:
    after = ago(days=30)
    comma = api.get(SEARCH, params={"createdAfter": after, "fulfillmentStatuses": "SHIPPED,UNSHIPPED"}).json()
    repeated = api.get(
        SEARCH,
        params=[
            ("createdAfter", after),
            ("fulfillmentStatuses", "SHIPPED"),
            ("fulfillmentStatuses", "UNSHIPPED"),
        ],
    ).json()
    assert [o["orderId"] for o in comma["orders"]] == [o["orderId"] for o in repeated["orders"]]


def test_get_order_validates_the_id_and_answers_404(api: SandboxClient) -> None:
    bad = api.get(f"{SEARCH}/not-an-order-id")
    assert bad.status_code == 400 and error_of(bad)["code"] == "InvalidInput"
    missing = api.get(f"{SEARCH}/999-0000000-0000000")
    assert missing.status_code == 404 and error_of(missing)["code"] == "NotFound"
    assert missing.headers["x-amzn-RateLimit-Limit"] == "300"


def _pages(api: SandboxClient, params: dict[str, str], size: int) -> tuple[list[dict], str, int]:
    orders: list[dict] = []
    token = None
    calls = 0
    while True:
        query = {**params, "maxResultsPerPage": str(size)}
        if token:
            query["paginationToken"] = token
        response = api.get(SEARCH, params=query)
        assert response.status_code == 200, response.text
        calls += 1
        body = response.json()
        orders += body["orders"]
        echoed = body["lastUpdatedBefore"]
        token = body.get("pagination", {}).get("nextToken")
        if not token:
            return orders, echoed, calls


def test_pagination_returns_exactly_the_window_of_the_truth(api: SandboxClient) -> None:
    after = ago(days=10)
    orders, echoed, calls = _pages(api, {"lastUpdatedAfter": after}, size=17)
    truth = api.sandbox.truth(lastUpdatedAfter=after, lastUpdatedBefore=echoed)["orders"]
    ids = [o["orderId"] for o in orders]
    assert len(ids) == len(set(ids))
    assert set(ids) == {o["orderId"] for o in truth}
    assert calls == max(1, -(-len(truth) // 17))
    assert all(parse(after) <= parse(o["lastUpdatedTime"]) < parse(echoed) for o in orders)


def test_page_token_is_bound_to_its_filters(api: SandboxClient) -> None:
    params = {"createdAfter": ago(days=20), "maxResultsPerPage": "5"}
    first = api.get(SEARCH, params=params).json()
    token = first["pagination"]["nextToken"]
    same = api.get(
        SEARCH, params={**params, "paginationToken": token, "maxResultsPerPage": "7", "includedData": "TAX"}
    )
    assert same.status_code == 200
    assert {o["orderId"] for o in same.json()["orders"]}.isdisjoint(o["orderId"] for o in first["orders"])
    every = ",".join(reversed(api.sandbox.marketplace_ids))  # the default, spelled out in another order
    assert (
        api.get(SEARCH, params={**params, "paginationToken": token, "marketplaceIds": every}).status_code
        == 200
    )
    for changed in (
        {"createdAfter": ago(days=19)},
        {"fulfillmentStatuses": "SHIPPED"},
        {"marketplaceIds": "ATVPDKIKX0DER"},
        {"fulfilledBy": "AMAZON"},
    ):
        response = api.get(SEARCH, params={**params, **changed, "paginationToken": token})
        assert response.status_code == 400, changed
        assert error_of(response)["code"] == "InvalidInput"
    other_op = api.get(V0, params={"NextToken": token, "MarketplaceIds": "ATVPDKIKX0DER"})
    assert other_op.status_code == 400


def test_page_tokens_expire_after_their_ttl_and_on_demand(api: SandboxClient) -> None:
    params = {"createdAfter": ago(days=20), "maxResultsPerPage": "5"}
    api.sandbox.config(page_token_ttl=0.5)
    token = api.get(SEARCH, params=params).json()["pagination"]["nextToken"]
    time.sleep(0.7)
    expired = api.get(SEARCH, params={**params, "paginationToken": token})
    assert expired.status_code == 400 and "expired" in error_of(expired)["message"]
    api.sandbox.config(page_token_ttl=None)
    assert api.sandbox.config()["page_token_ttl"] == pytest.approx(86400 / 600)
    token = api.get(SEARCH, params=params).json()["pagination"]["nextToken"]
    assert api.get(SEARCH, params={**params, "paginationToken": token}).status_code == 200
    api.sandbox.expire_page_tokens()
    assert api.get(SEARCH, params={**params, "paginationToken": token}).status_code == 400


def test_page_token_resumes_by_key_when_the_world_changes(sandbox_factory) -> None:
    sb = sandbox_factory(orders=120, time_scale=600, min_before_lag=2)
    api = SandboxClient(sb)
    params = {"createdAfter": ago(days=40), "maxResultsPerPage": "10"}
    first = api.get(SEARCH, params=params).json()
    bound = first["createdBefore"]
    expected = {o["orderId"] for o in sb.truth()["orders"] if parse(o["createdTime"]) < parse(bound)}
    sb.advance(new_orders=10, changes=30)  # new orders and changed ones, all stamped after the bound
    token = first["pagination"]["nextToken"]
    seen = [o["orderId"] for o in first["orders"]]
    while token:
        body = api.get(SEARCH, params={**params, "paginationToken": token}).json()
        assert body["createdBefore"] == bound  # later pages keep the first page's bound
        seen += [o["orderId"] for o in body["orders"]]
        token = body.get("pagination", {}).get("nextToken")
    assert len(seen) == len(set(seen)) and set(seen) == expected and len(expected) >= 110


# -- PII -----------------------------------------------------------------------------------------
def _some_order(api: SandboxClient, fulfilled_by: str = "MERCHANT", status: str = "SHIPPED") -> str:
    body = api.get(
        SEARCH,
        params={"createdAfter": ago(days=20), "fulfilledBy": fulfilled_by, "fulfillmentStatuses": status},
    ).json()
    assert body["orders"], "the world should have such an order"
    return str(body["orders"][0]["orderId"])


def test_v2026_pii_only_with_included_data(api: SandboxClient) -> None:
    order_id = _some_order(api)
    plain = api.get(f"{SEARCH}/{order_id}").json()["order"]
    assert "buyer" not in plain and "recipient" not in plain
    full = api.get(f"{SEARCH}/{order_id}", params={"includedData": "BUYER,RECIPIENT,PACKAGES"}).json()[
        "order"
    ]
    assert full["buyer"] and full["recipient"]["deliveryAddress"] and full["packages"]
    searched = api.get(SEARCH, params={"createdAfter": ago(days=20), "maxResultsPerPage": "3"}).json()[
        "orders"
    ]
    assert all("buyer" not in o and "recipient" not in o for o in searched)


def test_v0_pii_needs_a_restricted_data_token(api: SandboxClient) -> None:
    order_id = _some_order(api)
    for suffix in ("buyerInfo", "address"):
        refused = api.get(f"{V0}/{order_id}/{suffix}")
        assert refused.status_code == 403
        assert error_of(refused) == {"code": "Unauthorized", "message": TOKEN_DENIED, "details": ""}
    rdt_response = api.post(
        RDT,
        json={
            "restrictedResources": [
                {"method": "GET", "path": f"{V0}/{order_id}/buyerInfo"},
                {"method": "GET", "path": f"{V0}/{{orderId}}/address"},
                {
                    "method": "GET",
                    "path": f"{V0}/{order_id}",
                    "dataElements": ["buyerInfo", "shippingAddress"],
                },
            ]
        },
    )
    assert rdt_response.status_code == 200, rdt_response.text
    body = rdt_response.json()
    assert body["restrictedDataToken"].startswith("Atz.sprdt|") and body["expiresIn"] == 6
    rdt = body["restrictedDataToken"]
    buyer = api.get(f"{V0}/{order_id}/buyerInfo", token=rdt)
    assert buyer.status_code == 200 and buyer.json()["payload"]["AmazonOrderId"] == order_id
    address = api.get(f"{V0}/{order_id}/address", token=rdt)
    assert address.status_code == 200 and address.json()["payload"]["ShippingAddress"]
    order = api.get(f"{V0}/{order_id}", token=rdt).json()["payload"]
    assert order["BuyerInfo"] and order["ShippingAddress"]
    plain = api.get(f"{V0}/{order_id}").json()["payload"]
    assert "BuyerInfo" not in plain and "ShippingAddress" not in plain
    other = _some_order(api, status="UNSHIPPED")
    assert api.get(f"{V0}/{other}/buyerInfo", token=rdt).status_code == 403  # not covered
    assert api.get(f"{V0}/{other}/address", token=rdt).status_code == 200  # generic path covers it
    assert api.get(f"{SEARCH}/{order_id}", token=rdt).status_code == 403  # an RDT is not an LWA token


@pytest.mark.parametrize(
    "body",
    [
        {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders/1/../../admin"}]},
        {"restrictedResources": [{"method": "PUT", "path": "/orders/v0/orders"}]},
        {"restrictedResources": []},
    ],
)
def test_rdt_request_validation(api: SandboxClient, body: dict) -> None:
    response = api.post(RDT, json=body)
    assert response.status_code == 400 and error_of(response)["code"] == "InvalidInput"


def test_malformed_json_bodies_are_invalid_input_and_counted(api: SandboxClient) -> None:
    before = api.sandbox.stats()["operations"].get("createRestrictedDataToken", {}).get("errors", 0)
    response = api.post(RDT, data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_of(response)["code"] == "InvalidInput"
    assert response.headers["x-amzn-RateLimit-Limit"] == "600"
    assert api.sandbox.stats()["operations"]["createRestrictedDataToken"]["errors"] == before + 1


# -- Orders v0 -----------------------------------------------------------------------------------
def test_v0_get_orders_pages_with_next_token_alone_or_with_filters(api: SandboxClient) -> None:
    params = {"LastUpdatedAfter": ago(days=20), "MarketplaceIds": ",".join(api.sandbox.marketplace_ids)}
    first = api.get(V0, params={**params, "MaxResultsPerPage": "4"})
    assert first.status_code == 200
    payload = first.json()["payload"]
    assert len(payload["Orders"]) == 4 and payload["LastUpdatedBefore"]
    token = payload["NextToken"]
    alone = api.get(V0, params={"NextToken": token}).json()["payload"]
    assert len(alone["Orders"]) == 4  # the token keeps its page size
    with_filters = api.get(V0, params={**params, "NextToken": token, "MaxResultsPerPage": "4"}).json()[
        "payload"
    ]
    assert [o["AmazonOrderId"] for o in alone["Orders"]] == [
        o["AmazonOrderId"] for o in with_filters["Orders"]
    ]
    assert {o["AmazonOrderId"] for o in alone["Orders"]}.isdisjoint(
        o["AmazonOrderId"] for o in payload["Orders"]
    )
    bulk = api.post(
        RDT,
        json={
            "restrictedResources": [
                {"method": "GET", "path": V0, "dataElements": ["buyerInfo", "shippingAddress"]}
            ]
        },
    ).json()["restrictedDataToken"]
    with_pii = api.get(V0, params={**params, "MaxResultsPerPage": "4"}, token=bulk).json()["payload"][
        "Orders"
    ]
    assert [o["AmazonOrderId"] for o in with_pii] == [o["AmazonOrderId"] for o in payload["Orders"]]
    assert all("BuyerInfo" in o for o in with_pii) and not any("BuyerInfo" in o for o in payload["Orders"])
    assert any("ShippingAddress" in o for o in with_pii)
    changed = api.get(V0, params={**params, "OrderStatuses": "Shipped", "NextToken": token})
    assert changed.status_code == 400
    missing = api.get(V0, params={"LastUpdatedAfter": ago(days=2)})
    assert missing.status_code == 400 and "MarketplaceIds" in error_of(missing)["message"]
    statuses = api.get(V0, params={**params, "OrderStatuses": "Canceled,Pending"}).json()["payload"]["Orders"]
    assert statuses and {o["OrderStatus"] for o in statuses} <= {"Canceled", "Pending"}
    picked = [o["AmazonOrderId"] for o in payload["Orders"][:2]]
    by_id = api.get(V0, params={**params, "AmazonOrderIds": ",".join(picked)}).json()["payload"]["Orders"]
    assert sorted(o["AmazonOrderId"] for o in by_id) == sorted(picked)
    seller_order_id = payload["Orders"][0]["SellerOrderId"]
    by_seller_id = api.get(V0, params={**params, "SellerOrderId": seller_order_id}).json()["payload"][
        "Orders"
    ]
    assert [o["SellerOrderId"] for o in by_seller_id] == [seller_order_id]
    easy_ship = api.get(V0, params={**params, "EasyShipShipmentStatuses": "Delivered"}).json()["payload"]
    assert easy_ship["Orders"] == []  # the sandbox seller has no Easy Ship orders


def test_v0_next_token_must_be_url_encoded(api: SandboxClient) -> None:
    params = {
        "CreatedAfter": ago(days=20),
        "MarketplaceIds": api.sandbox.marketplace_ids[0],
        "MaxResultsPerPage": "1",
    }
    payload = api.get(V0, params=params).json()["payload"]
    for _ in range(10):  # v0 tokens are standard base64; find one with a '+' in it
        if "+" in payload["NextToken"]:
            break
        payload = api.get(V0, params={"NextToken": payload["NextToken"]}).json()["payload"]
    token = payload["NextToken"]
    assert "+" in token
    raw = api.get(f"{V0}?NextToken={token}")  # '+' arrives as a space (GH#1420)
    assert raw.status_code == 400 and error_of(raw)["code"] == "InvalidInput"
    assert api.get(V0, params={"NextToken": token}).status_code == 200


def test_v0_order_items_are_paged(api: SandboxClient) -> None:
    body = api.get(SEARCH, params={"createdAfter": ago(days=20)}).json()
    order = next(o for o in body["orders"] if len(o["orderItems"]) >= 3)
    items: list[dict] = []
    token = None
    calls = 0
    while True:
        params = {"NextToken": token} if token else {}
        response = api.get(f"{V0}/{order['orderId']}/orderItems", params=params)
        assert response.status_code == 200
        payload = response.json()["payload"]
        calls += 1
        assert payload["AmazonOrderId"] == order["orderId"] and len(payload["OrderItems"]) <= 2
        items += payload["OrderItems"]
        token = payload.get("NextToken")
        if not token:
            break
    assert calls >= 2
    assert sorted(i["OrderItemId"] for i in items) == sorted(i["orderItemId"] for i in order["orderItems"])
    first_token = api.get(f"{V0}/{order['orderId']}/orderItems").json()["payload"]["NextToken"]
    other = next(o["orderId"] for o in body["orders"] if o["orderId"] != order["orderId"])
    assert api.get(f"{V0}/{other}/orderItems", params={"NextToken": first_token}).status_code == 400


# -- Notifications -------------------------------------------------------------------------------
def test_destinations_and_subscriptions_lifecycle(sandbox_factory) -> None:
    sb = sandbox_factory(orders=10, time_scale=600)
    api = SandboxClient(sb)
    arn = "arn:aws:sqs:us-east-1:123456789012:sp-api-notifications"
    spec = {"name": "orders", "resourceSpecification": {"sqs": {"arn": arn}}}
    assert api.post(DESTINATIONS, json=spec).status_code == 403  # seller token on a grantless operation
    created = api.post(DESTINATIONS, json=spec, grantless=True)
    assert created.status_code == 200
    dest = created.json()["payload"]
    assert dest["resource"]["sqs"]["arn"] == arn and dest["name"] == "orders"
    duplicate = api.post(DESTINATIONS, json={**spec, "name": "again"}, grantless=True)
    assert duplicate.status_code == 409 and error_of(duplicate)["code"] == "Conflict"
    bad = api.post(
        DESTINATIONS, json={"name": "x", "resourceSpecification": {"sqs": {"arn": "nope"}}}, grantless=True
    )
    assert bad.status_code == 400
    assert api.get(DESTINATIONS, grantless=True).json()["payload"] == [dest]
    assert api.get(f"{DESTINATIONS}/{dest['destinationId']}", grantless=True).json()["payload"] == dest
    assert api.get(f"{DESTINATIONS}/unknown-id", grantless=True).status_code == 404

    sub_body = {
        "payloadVersion": "1.0",
        "destinationId": dest["destinationId"],
        "processingDirective": {
            "eventFilter": {"eventFilterType": "ORDER_CHANGE", "orderChangeTypes": ["OrderStatusChange"]}
        },
    }
    assert api.post(f"{SUBSCRIPTIONS}/ORDER_CHANGE", json=sub_body, grantless=True).status_code == 403
    made = api.post(f"{SUBSCRIPTIONS}/ORDER_CHANGE", json=sub_body)
    assert made.status_code == 200
    sub = made.json()["payload"]
    assert (
        sub["destinationId"] == dest["destinationId"]
        and sub["processingDirective"] == sub_body["processingDirective"]
    )
    again = api.post(f"{SUBSCRIPTIONS}/ORDER_CHANGE", json=sub_body)
    assert again.status_code == 409 and sub["subscriptionId"] in error_of(again)["details"]
    wrong_filter = {
        **sub_body,
        "processingDirective": {"eventFilter": {"eventFilterType": "ANY_OFFER_CHANGED"}},
    }
    assert api.post(f"{SUBSCRIPTIONS}/FBA_OUTBOUND_SHIPMENT_STATUS", json=wrong_filter).status_code == 400
    fba = api.post(
        f"{SUBSCRIPTIONS}/FBA_OUTBOUND_SHIPMENT_STATUS",
        json={"payloadVersion": "1.0", "destinationId": dest["destinationId"]},
    )
    assert fba.status_code == 200
    assert api.get(f"{SUBSCRIPTIONS}/ORDER_CHANGE").json()["payload"] == sub
    assert (
        api.get(f"{SUBSCRIPTIONS}/ORDER_CHANGE/{sub['subscriptionId']}", grantless=True).json()["payload"]
        == sub
    )
    assert api.get(f"{SUBSCRIPTIONS}/NOT_A_TYPE").status_code == 400
    assert (
        api.delete(f"{SUBSCRIPTIONS}/ORDER_CHANGE/{sub['subscriptionId']}", grantless=True).status_code == 200
    )
    assert api.get(f"{SUBSCRIPTIONS}/ORDER_CHANGE").status_code == 404
    assert api.delete(f"{DESTINATIONS}/{dest['destinationId']}", grantless=True).status_code == 200
    assert api.get(DESTINATIONS, grantless=True).json()["payload"] == []


# -- admin ---------------------------------------------------------------------------------------
def test_health_truth_and_stats(sandbox_factory) -> None:
    sb = sandbox_factory(orders=40, time_scale=600, region="fe", seed=3)
    health = sb.health()
    assert health["status"] == "ok" and health["orders"] == 40 and health["region"] == "fe"
    assert health["seller_id"] == "A1SANDBOXSELLERFE" and health["time_scale"] == 600
    assert set(health["marketplace_ids"]) == {"A1VC38T7YXB528", "A39IBJ37TRP1C6", "A19VAU5U5O7RUS"}
    truth = sb.truth()
    assert truth["seller_id"] == "A1SANDBOXSELLERFE" and len(truth["orders"]) == 40
    assert all("buyer" not in o and "recipient" not in o and o["orderItems"] for o in truth["orders"])
    assert truth["bad_records"] == {}  # the fault is off by default
    api = SandboxClient(sb)
    api.get(f"{SEARCH}?createdAfter={ago(days=40)}")
    api.get(f"{SEARCH}/bad-id")
    api.get(f"{SEARCH}/{truth['orders'][0]['orderId']}")
    stats = sb.stats()["operations"]
    assert stats["searchOrders"] == {"calls": 1, "ok": 1, "throttled": 0, "errors": 0, "faults": 0}
    assert stats["getOrder"] == {"calls": 2, "ok": 1, "throttled": 0, "errors": 1, "faults": 0}
    assert sb.stats()["totals"]["calls"] >= 3
    sb.reset_stats()
    assert sb.stats()["operations"] == {}
    for path in ("/_sandbox/health", "/_sandbox/stats", "/no/such/path"):
        assert requests.get(f"{sb.url}{path}", timeout=10).headers["x-amzn-RequestId"]


def test_truth_with_buyer_data_is_what_search_orders_serves(api: SandboxClient) -> None:
    sb = api.sandbox
    sb.config(min_before_lag=0)  # the search window reaches now: it covers every order of the truth
    params = {"createdAfter": ago(days=30), "includedData": "BUYER,RECIPIENT", "maxResultsPerPage": "100"}
    served: dict[str, dict] = {}
    while True:
        body = api.get(SEARCH, params=params).json()
        served.update({o["orderId"]: o for o in body["orders"]})
        if "pagination" not in body:
            break
        params["paginationToken"] = body["pagination"]["nextToken"]
    with_pii = sb.truth(include_pii=True)["orders"]
    assert len(with_pii) == len(served) == sb.health()["orders"]
    for order in with_pii:
        searched = served[order["orderId"]]
        assert order["buyer"] == searched["buyer"]
        assert order.get("recipient") == searched.get("recipient")
    assert sum("recipient" in o for o in with_pii) > len(with_pii) / 2  # most orders have an address
    assert any("buyerEmail" in o["buyer"] for o in with_pii)
    without = sb.truth()["orders"]
    assert [o["orderId"] for o in without] == [o["orderId"] for o in with_pii]
    for plain, full in zip(without, with_pii, strict=True):
        assert {k: v for k, v in full.items() if k not in ("buyer", "recipient")} == plain
    refused = requests.get(f"{sb.url}/_sandbox/truth", params={"include_pii": "maybe"}, timeout=10)
    assert refused.status_code == 400 and "include_pii" in refused.json()["error"]


def test_rate_limit_header_can_be_omitted(sandbox_factory) -> None:
    sb = sandbox_factory(orders=10, time_scale=600, rate_limit_header=False)
    api = SandboxClient(sb)
    response = api.get(f"{SEARCH}?createdAfter={ago(days=2)}")
    assert response.status_code == 200 and "x-amzn-RateLimit-Limit" not in response.headers
    sb.config(rate_limit_header=True)
    assert api.get(f"{SEARCH}?createdAfter={ago(days=2)}").headers["x-amzn-RateLimit-Limit"] == "3.36"


def test_shared_sandbox_and_connection_uri(sandbox) -> None:
    from airflow.models.connection import Connection

    health = sandbox.health()
    assert (health["orders"], health["time_scale"], health["region"]) == (500, 600, "na")
    assert sandbox.config()["faults"]["profile"] == "none"
    conn = Connection.from_json(sandbox.connection_uri(orders_api_version="v0"), conn_id="sp_api_default")
    assert conn.conn_type == "amazon_sp_api"
    assert (conn.login, conn.password) == (sandbox.client_id, sandbox.client_secret)
    extra = conn.extra_dejson
    assert extra["endpoint"] == sandbox.url and extra["lwa_endpoint"] == f"{sandbox.url}/auth/o2/token"
    assert extra["marketplace_ids"] == sandbox.marketplace_ids and extra["seller_id"] == "A1SANDBOXSELLERNA"
    assert extra["refresh_token"] == sandbox.refresh_token and extra["orders_api_version"] == "v0"
    api = SandboxClient(sandbox)
    token = api.lwa(grant_type="refresh_token", refresh_token=extra["refresh_token"]).json()["access_token"]
    assert api.get(f"{SEARCH}?createdAfter={ago(days=1)}", token=token).status_code == 200
