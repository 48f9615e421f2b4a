"""The ``bad_records`` fault over real HTTP: a seeded share of orders every read serves corrupted.

The corruptions are recognised here independently of the sandbox's code (by what is served), and
compared with what the truth says: the same orders, the same kind, on every read operation.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sp_api_sandbox import models
from sp_api_sandbox.launcher import SandboxError, SandboxProcess

from tests.fixtures.sandbox import SandboxClient

pytestmark = pytest.mark.integration

SEARCH = "/orders/2026-01-01/orders"
V0 = "/orders/v0/orders"
ALL_INCLUDED = ",".join(
    next(
        p
        for p in models.load("orders_2026-01-01")["paths"][SEARCH]["get"]["parameters"]
        if p["name"] == "includedData"
    )["items"]["enum"]
)
TRUTH_INCLUDED = ",".join(v for v in ALL_INCLUDED.split(",") if v not in ("BUYER", "RECIPIENT"))
EXPECT = {
    "unknown_status": "quarantine",
    "missing_last_updated": "quarantine",
    "missing_item_id": "quarantine",
    "huge_sku": "quarantine",
    "missing_optional": "load",
    "unknown_optional_enum": "load",
    "odd_unicode": "load",
    "huge_title": "load",
}
V0_ORDER_KINDS = {"unknown_status", "missing_last_updated", "missing_optional"}
V0_ITEM_KINDS = {"missing_item_id", "huge_sku", "missing_optional", "odd_unicode", "huge_title"}
OPTIONS = {"seed": 5, "orders": 240, "days": 20, "time_scale": 3600, "bad_records": 0.25}


def long_ago() -> str:
    return (datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")


def odd_title(title: str) -> bool:
    """A title with every kind of odd Unicode the fault promises, and exactly one NUL."""
    return (
        title.count("\x00") == 1
        and "\u200d" in title  # zero-width joiner: an emoji ZWJ sequence
        and "\u200b" in title  # zero-width space
        and any(unicodedata.combining(c) for c in title)
        and any(unicodedata.bidirectional(c) in ("R", "AL") for c in title)
        and any(ord(c) > 0xFFFF for c in title)
    )


def v2026_kind(order: dict[str, Any]) -> str | None:
    """The corruption a served v2026 Order shows (None: a normal order)."""
    items = order["orderItems"]
    products = [i["product"] for i in items]
    fulfillment = order.get("fulfillment", {})
    if fulfillment.get("fulfillmentStatus") == "ON_HOLD":
        return "unknown_status"
    if "lastUpdatedTime" not in order:
        return "missing_last_updated"
    if any("orderItemId" not in i for i in items):
        return "missing_item_id"
    if any(len(p["sellerSku"]) == 10_000 for p in products):
        return "huge_sku"
    if "orderAliases" not in order:
        assert "marketplaceName" not in order["salesChannel"]
        assert not {"fulfillmentServiceLevel", "shipByWindow", "deliverByWindow"} & set(fulfillment)
        assert not any("title" in p for p in products)
        return "missing_optional"
    if "FUTURE_PROGRAM" in order["programs"]:
        assert all(p["packageStatus"]["detailedStatus"] == "TELEPORTED" for p in order.get("packages", []))
        return "unknown_optional_enum"
    if any("\x00" in p["title"] for p in products):
        assert all(odd_title(p["title"]) for p in products)
        return "odd_unicode"
    if any(len(p["title"]) == 100_000 for p in products):
        return "huge_title"
    assert all(p["packageStatus"].get("detailedStatus") != "TELEPORTED" for p in order.get("packages", []))
    return None


def v0_order_kind(order: dict[str, Any]) -> str | None:
    if order["OrderStatus"] == "OnHold":
        return "unknown_status"
    if "LastUpdateDate" not in order:
        return "missing_last_updated"
    if "SalesChannel" not in order:
        assert not {"ShipmentServiceLevelCategory", "EarliestShipDate", "LatestDeliveryDate"} & set(order)
        return "missing_optional"
    return None


def v0_items_kind(items: list[dict[str, Any]]) -> str | None:
    if any("OrderItemId" not in i for i in items):
        return "missing_item_id"
    if any(len(i["SellerSKU"]) == 10_000 for i in items):
        return "huge_sku"
    if all("Title" not in i for i in items):
        return "missing_optional"
    if all(odd_title(i["Title"]) for i in items):
        return "odd_unicode"
    if any(len(i["Title"]) == 100_000 for i in items):
        return "huge_title"
    return None


def search_all(api: SandboxClient, included: str) -> list[dict[str, Any]]:
    params = {"createdAfter": long_ago(), "includedData": included, "maxResultsPerPage": "100"}
    orders: list[dict[str, Any]] = []
    while True:
        response = api.get(SEARCH, params=params)
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        orders += body["orders"]
        if "pagination" not in body:
            return orders
        params["paginationToken"] = body["pagination"]["nextToken"]


def v0_items(api: SandboxClient, order_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, str] = {}
    while True:
        payload = api.get(f"{V0}/{order_id}/orderItems", params=params).json()["payload"]
        items += payload["OrderItems"]
        if "NextToken" not in payload:
            return items
        params = {"NextToken": payload["NextToken"]}


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A sandbox serving a quarter of its orders corrupted (tests may change bad_records, then restore)."""
    log = Path(tmp_path_factory.mktemp("bad-records")) / "sandbox.log"
    with SandboxProcess(options=dict(OPTIONS), log_path=log) as sb:
        yield sb


def test_truth_names_a_seeded_share_of_orders_spread_evenly_over_the_kinds(corrupt: SandboxProcess) -> None:
    truth = corrupt.truth()
    bad = truth["bad_records"]
    assert corrupt.config()["bad_records"] == 0.25
    assert 0.15 < len(bad) / len(truth["orders"]) < 0.35
    per_kind = Counter(entry["kind"] for entry in bad.values())
    assert set(per_kind) == set(EXPECT)
    assert max(per_kind.values()) - min(per_kind.values()) <= 1, per_kind
    for entry in bad.values():
        assert entry["expect"] == EXPECT[entry["kind"]]
        assert entry["detail"] and "\n" not in entry["detail"]
    served = {o["orderId"]: v2026_kind(o) for o in truth["orders"]}
    assert {oid: kind for oid, kind in served.items() if kind} == {oid: e["kind"] for oid, e in bad.items()}


def test_every_read_serves_the_same_corruption_as_the_truth(corrupt: SandboxProcess) -> None:
    api = SandboxClient(corrupt)
    truth = corrupt.truth()
    kinds = {oid: entry["kind"] for oid, entry in truth["bad_records"].items()}
    searched = search_all(api, ALL_INCLUDED)
    assert {o["orderId"]: v2026_kind(o) for o in searched} == {
        o["orderId"]: kinds.get(o["orderId"]) for o in searched
    }
    # the truth is the orders as served
    as_served = {o["orderId"]: o for o in search_all(api, TRUTH_INCLUDED)}
    assert {o["orderId"]: o for o in truth["orders"]} == as_served
    normal = [oid for oid in as_served if oid not in kinds][:5]
    for order_id in [*kinds, *normal]:
        expected = kinds.get(order_id)
        got = api.get(f"{SEARCH}/{order_id}", params={"includedData": ALL_INCLUDED}).json()["order"]
        assert v2026_kind(got) == expected, order_id
        v0_order = api.get(f"{V0}/{order_id}").json()["payload"]
        assert v0_order_kind(v0_order) == (expected if expected in V0_ORDER_KINDS else None), order_id
        assert v0_items_kind(v0_items(api, order_id)) == (expected if expected in V0_ITEM_KINDS else None), (
            order_id
        )
    # getOrders serves the order-level corruptions too
    params = {"CreatedAfter": long_ago(), "MarketplaceIds": ",".join(corrupt.marketplace_ids)}
    v0_kinds: dict[str, str | None] = {}
    while True:
        payload = api.get(V0, params=params).json()["payload"]
        v0_kinds.update({o["AmazonOrderId"]: v0_order_kind(o) for o in payload["Orders"]})
        if "NextToken" not in payload:
            break
        params = {"NextToken": payload["NextToken"]}
    expected_v0 = {oid: (k if k in V0_ORDER_KINDS else None) for oid, k in kinds.items()}
    assert v0_kinds == {oid: expected_v0.get(oid) for oid in v0_kinds} and len(v0_kinds) == len(as_served)


def test_corrupted_orders_stay_corrupted_as_the_world_moves_on(corrupt: SandboxProcess) -> None:
    before = corrupt.truth()["bad_records"]
    corrupt.advance(new_orders=40, changes=60)
    after = corrupt.truth()
    assert {oid: after["bad_records"][oid]["kind"] for oid in before} == {
        oid: e["kind"] for oid, e in before.items()
    }
    new = set(after["bad_records"]) - set(before)
    assert new, "some of the 40 new orders are corrupted too"
    served = {o["orderId"]: v2026_kind(o) for o in after["orders"]}
    assert {oid: k for oid, k in served.items() if k} == {
        oid: e["kind"] for oid, e in after["bad_records"].items()
    }


def test_the_choice_is_seeded(sandbox_factory) -> None:
    small = {**OPTIONS, "orders": 80}
    first = sandbox_factory(**small).truth()["bad_records"]
    again = sandbox_factory(**small).truth()["bad_records"]
    other = sandbox_factory(**{**small, "seed": 6}).truth()["bad_records"]
    assert first and first == again
    assert set(other) != set(first)
    # the same choice whether set at start or at run time
    late = sandbox_factory(**{**small, "bad_records": 0.0})
    assert late.truth()["bad_records"] == {}
    assert late.config(bad_records=0.25)["bad_records"] == 0.25
    assert late.truth()["bad_records"] == first


def test_zero_means_none_and_bad_values_are_refused(corrupt: SandboxProcess) -> None:
    api = SandboxClient(corrupt)
    try:
        assert corrupt.config(bad_records=0)["bad_records"] == 0
        truth = corrupt.truth()
        assert truth["bad_records"] == {}
        assert not any(v2026_kind(o) for o in truth["orders"])
        assert not any(v2026_kind(o) for o in search_all(api, ALL_INCLUDED))
        for bad_value in (1.5, -0.1, "lots"):
            with pytest.raises(SandboxError, match="400"):
                corrupt.config(bad_records=bad_value)
        assert corrupt.config()["bad_records"] == 0
    finally:
        corrupt.config(bad_records=OPTIONS["bad_records"])
