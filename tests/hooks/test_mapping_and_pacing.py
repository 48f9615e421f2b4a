"""Pure pieces of the sync path: record-by-record mapping with rejections, pacing, the bounded RDT cache."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
from selling_partner.hooks.auth import TokenCache
from selling_partner.orders.mapping import PII_KEYS, map_one, map_records, redact
from selling_partner.orders.v2026 import normalize_order
from selling_partner.pacing import decide, inline_limit

MODEL = Path(__file__).resolve().parents[2] / "include/sp_api_sandbox/models/orders_2026-01-01.json"


def example_order() -> dict:
    """Amazon's own getOrder example from the bundled Orders v2026-01-01 model."""
    model = json.loads(MODEL.read_text())
    responses = model["paths"]["/orders/2026-01-01/orders/{orderId}"]["get"]["responses"]
    return copy.deepcopy(responses["200"]["examples"]["application/json"]["order"])


def _normalize(raw: dict) -> object:
    return normalize_order(raw, seller_id="A1SANDBOXSELLERNA")


def _broken(raw: dict, kind: str) -> dict:
    bad = copy.deepcopy(raw)
    if kind == "status":
        bad["fulfillment"]["fulfillmentStatus"] = "ON_HOLD"
    elif kind == "updated":
        del bad["lastUpdatedTime"]
    elif kind == "item_id":
        del bad["orderItems"][0]["orderItemId"]
    elif kind == "sku":
        bad["orderItems"][0]["product"]["sellerSku"] = "S" * 10_000
    elif kind == "order_id":
        bad["orderId"] = "../../admin"
    elif kind == "price":
        bad["orderItems"][0]["product"]["price"]["unitPrice"]["amount"] = "twelve"
    return bad


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("status", "fulfillmentStatus 'ON_HOLD' missing or unknown"),
        ("updated", "createdTime/lastUpdatedTime missing"),
        ("item_id", "an item has no orderItemId"),
        ("sku", "seller_sku is 10000 characters long (the limit is 200)"),
        ("order_id", "is not an Amazon order id"),
        ("price", "not a decimal amount"),
    ],
)
def test_a_record_that_cannot_be_mapped_is_rejected_and_the_page_goes_on(kind: str, reason: str) -> None:
    good = example_order()
    assert good["buyer"]["buyerName"] and good["recipient"]["deliveryAddress"]["addressLine1"]
    other = copy.deepcopy(good)
    other["orderId"] = "902-0000000-0000001"
    bad = _broken(good, kind)
    orders, rejected = map_records([other, bad, good], _normalize)
    assert [o.order_id for o in orders] == ["902-0000000-0000001", good["orderId"]]
    assert len(rejected) == 1 and reason in rejected[0].reason
    assert rejected[0].order_id == (bad["orderId"] if kind != "order_id" else "../../admin")
    # the kept raw record carries no buyer PII, and the reason is one line
    text = rejected[0].raw_json
    for pii in (good["buyer"]["buyerName"], good["buyer"]["buyerEmail"], "123 High Street", "M1 2AB"):
        assert pii not in text
    assert "\n" not in rejected[0].reason
    assert json.loads(text)["orderId"] == bad["orderId"]
    with pytest.raises(ValueError, match="cannot be mapped"):
        map_one(bad, _normalize)


def test_redact_drops_every_pii_key_at_any_depth() -> None:
    raw = {"a": 1, "buyer": {"buyerName": "x"}, "items": [{"BuyerInfo": {"BuyerEmail": "e"}, "k": 2}]}
    assert redact(raw) == {"a": 1, "items": [{"k": 2}]}
    assert {"buyer", "recipient", "BuyerInfo", "ShippingAddress"} <= PII_KEYS


@pytest.mark.parametrize(
    ("wait", "budget_left", "committed", "action"),
    [
        (0.0, None, True, "go"),
        (0.5, None, True, "wait"),  # shorter than the minimum deferral: waited out
        (8.0, None, True, "wait"),  # still under min_deferral (10)
        (25.0, None, True, "wait"),  # under defer_after (30)
        (31.0, None, True, "defer"),
        (178.0, 1000.0, True, "defer"),
        (178.0, 100.0, True, "stop"),  # the budget cannot afford the wait: stop cleanly
        (20.0, 10.0, True, "stop"),  # even a short wait, once the budget is spent
        (178.0, 100.0, False, "defer"),  # a run that committed nothing is never stopped by its budget
    ],
)
def test_one_decision_for_every_wait(wait: float, budget_left, committed: bool, action: str) -> None:
    pace = decide(wait, defer_after=30, min_deferral=10, budget_left=budget_left, committed=committed)
    assert pace.action == action and pace.reason
    assert pace.seconds == (wait if action in ("wait", "defer") else 0.0)


def test_forced_deferral_still_waits_out_waits_shorter_than_the_minimum() -> None:
    assert inline_limit(0, 1) == 1
    assert decide(0.4, defer_after=0, min_deferral=1).action == "wait"
    assert decide(1.5, defer_after=0, min_deferral=1).action == "defer"


def test_rdt_cache_is_bounded_and_forgets_expired_tokens_first() -> None:
    cache = TokenCache(max_entries=3)
    fetched: list[str] = []

    def fetch(name: str, lifetime: float):
        def go() -> tuple[str, float]:
            fetched.append(name)
            return f"token-{name}", lifetime

        return go

    cache.get("old", fetch("old", 0.001))  # expires at once
    time.sleep(0.01)
    for name in ("a", "b", "c"):
        cache.get(name, fetch(name, 3600))
    assert len(cache) == 3  # the expired one made room first
    assert cache.get("a", fetch("a", 3600)) == "token-a" and fetched.count("a") == 1  # a is recent again
    cache.get("d", fetch("d", 3600))  # full: the least recently used (b) goes
    assert len(cache) == 3
    cache.get("b", fetch("b", 3600))
    assert fetched.count("b") == 2 and len(cache) == 3
    assert len(cache._key_locks) <= 4
