"""SellingPartnerHook against the SP-API sandbox over real HTTP (no mocks of the hook)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from selling_partner.hooks.errors import (
    SpApiForbidden,
    SpApiNotFound,
    SpApiPageTokenExpired,
    SpApiRateLimitWait,
)
from selling_partner.hooks.notifications import SellingPartnerNotificationsHook
from selling_partner.hooks.sp_api import SellingPartnerHook
from selling_partner.orders.canonical import CanonicalOrder
from selling_partner.orders.v0 import FIELDS_NOT_IN_V0, FIELDS_NOT_IN_V2026
from selling_partner.validation import ValidationError, parse_amazon_time

from tests.hooks.conftest import scaled_limits

pytestmark = pytest.mark.integration

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _all_pages(hook, **kwargs) -> tuple[list[CanonicalOrder], list]:
    orders: list[CanonicalOrder] = []
    pages = list(hook.iter_order_pages(last_updated_after=EPOCH, **kwargs))
    for page in pages:
        orders.extend(page.orders)
    return orders, pages


def _throttle_share(stats: dict) -> float:
    totals = stats["totals"]
    return totals["throttled"] / max(1, totals["calls"])


def _op_calls(sandbox, operation: str) -> int:
    return sandbox.stats()["operations"].get(operation, {}).get("calls", 0)


def test_test_connection_says_what_works_and_what_is_wrong(sandbox, hook_for, monkeypatch) -> None:
    search, get = _op_calls(sandbox, "searchOrders"), _op_calls(sandbox, "getOrder")
    ok, message = hook_for(sandbox, hook_class=SellingPartnerHook).test_connection()
    assert ok and "seller A1SANDBOXSELLERNA" in message and "x-amzn-RequestId" in message
    assert "Orders role is granted" in message
    # the probe is one getOrder (0.5/s, burst 30), never the scarce searchOrders budget
    assert (_op_calls(sandbox, "searchOrders"), _op_calls(sandbox, "getOrder")) == (search, get + 1)
    v0_get = _op_calls(sandbox, "getOrderV0")
    ok, message = hook_for(sandbox, orders_api_version="v0").test_connection()
    assert ok and "Orders API v0" in message and _op_calls(sandbox, "getOrderV0") == v0_get + 1
    ok, message = hook_for(sandbox, refresh_token="Atzr|revoked").test_connection()
    assert not ok and "invalid_grant" in message and "re-authorize" in message
    assert "Atzr|revoked" not in message
    # a wrong client secret: invalid_client, with the rotation hint and without the secret itself
    conn = json.loads(sandbox.connection_uri()) | {"password": "wrong-secret"}
    monkeypatch.setenv("AIRFLOW_CONN_SP_WRONG_SECRET", json.dumps(conn))
    ok, message = SellingPartnerHook("sp_wrong_secret").test_connection()
    assert not ok and "invalid_client" in message and "rotate" in message and "wrong-secret" not in message
    # the default connection id, stored the way the UI form stores it (strings, comma list)
    ui = json.loads(sandbox.connection_uri())
    ui["extra"] |= {
        "marketplace_ids": ",".join(sandbox.marketplace_ids),
        "include_pii": "false",
        "region": "na",
    }
    monkeypatch.setenv("AIRFLOW_CONN_SP_API_DEFAULT", json.dumps(ui))
    default = SellingPartnerHook()
    assert default.test_connection()[0] and default.config.marketplace_ids == tuple(sandbox.marketplace_ids)
    ok, message = hook_for(sandbox, marketplace_ids=["A1PA6795UKMFR9"]).test_connection()
    assert not ok and "not served by region 'na'" in message


def test_v2026_pages_every_order_equal_to_truth_without_429(sandbox, hook_for) -> None:
    hook = hook_for(sandbox)
    before = sandbox.stats()["totals"]
    orders, pages = _all_pages(hook, max_results_per_page=50)
    after = sandbox.stats()["totals"]
    truth = sandbox.truth(lastUpdatedBefore=pages[0].window_end.isoformat().replace("+00:00", "Z"))
    # Field-by-field equality with the truth is the warehouse oracle's job (tests/oracle.py); here: every
    # order once, with the raw truth's version and status, and nothing rejected.
    expected = {
        o["orderId"]: (parse_amazon_time(o["lastUpdatedTime"]), o["fulfillment"]["fulfillmentStatus"])
        for o in truth["orders"]
    }
    assert len(orders) == len({o.order_id for o in orders}) == len(expected) > 0
    assert {o.order_id: (o.last_updated_time, o.order_status) for o in orders} == expected
    assert all(p.rejected == [] for p in pages)
    assert all(p.window_end == pages[0].window_end for p in pages)
    assert [p.page_token for p in pages[1:]] == [p.next_token for p in pages[:-1]] and pages[
        -1
    ].next_token is None
    assert sum(p.calls for p in pages) == len(pages)
    assert after["throttled"] - before["throttled"] == 0


def test_v0_and_v2026_give_the_same_records(sandbox, hook_for) -> None:
    """The same sandbox orders via v0 (getOrders + getOrderItems) and v2026 normalise to equal records,
    except api_version and the fields one version lacks (FIELDS_NOT_IN_V0 / FIELDS_NOT_IN_V2026)."""
    window_end = datetime.now(UTC) - timedelta(minutes=5)
    before = sandbox.stats()["totals"]
    v26 = hook_for(sandbox)
    v0 = hook_for(sandbox, orders_api_version="v0")
    by_v26 = {
        o.order_id: o
        for p in v26.iter_order_pages(last_updated_after=EPOCH, last_updated_before=window_end)
        for o in p.orders
    }
    by_v0 = {
        o.order_id: o
        for p in v0.iter_order_pages(last_updated_after=EPOCH, last_updated_before=window_end)
        for o in p.orders
    }
    assert by_v0.keys() == by_v26.keys() and len(by_v0) > 100
    blank = {name: None for name in FIELDS_NOT_IN_V2026} | {"packages": (), "api_version": "-"}
    assert set(blank) == {*FIELDS_NOT_IN_V0, *FIELDS_NOT_IN_V2026, "api_version"}
    differing = [oid for oid in by_v0 if by_v0[oid].replace(**blank) != by_v26[oid].replace(**blank)]
    assert differing == []
    assert any(o.packages for o in by_v26.values())  # FBM packages only exist in v2026
    assert {o.api_version for o in by_v0.values()} == {"v0"}
    assert v0.stats.calls["getOrderItems"] >= len(by_v0)  # every order's items, all pages
    after = sandbox.stats()["totals"]
    calls, throttled = after["calls"] - before["calls"], after["throttled"] - before["throttled"]
    assert calls > len(by_v0) and throttled <= 0.01 * calls  # 429s under 1% while paging both versions


def test_pii_in_both_versions_and_refusal_without_rdt(sandbox, hook_for) -> None:
    v26 = hook_for(sandbox, include_pii=True)
    v0 = hook_for(sandbox, include_pii=True, orders_api_version="v0")
    truth = sandbox.truth()["orders"]
    fbm = next(
        o
        for o in truth
        if o["fulfillment"]["fulfilledBy"] == "MERCHANT"
        and o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    )
    a, b = v26.get_canonical_order(fbm["orderId"]), v0.get_canonical_order(fbm["orderId"])
    assert a.buyer is not None and a.buyer.buyer_email and a.buyer.postal_code
    assert a.buyer == b.buyer
    assert v0.stats.calls["createRestrictedDataToken"] == 2  # one per path template, then cached
    v0.get_canonical_order(truth[1]["orderId"])
    assert v0.stats.calls["createRestrictedDataToken"] == 2
    # Without an RDT the restricted call is refused for a missing role, and not retried
    calls = v0.stats.calls["getOrderBuyerInfo"]
    with pytest.raises(SpApiForbidden) as refused:
        v0.call("getOrderBuyerInfo", "GET", f"/orders/v0/orders/{fbm['orderId']}/buyerInfo")
    assert refused.value.reason == "role" and refused.value.request_id and "include_pii" in str(refused.value)
    assert v0.stats.calls["getOrderBuyerInfo"] == calls + 1
    no_pii = hook_for(sandbox).get_canonical_order(fbm["orderId"])
    assert no_pii.buyer is None


def test_bad_ids_never_reach_a_url_and_404_is_typed(sandbox, hook_for) -> None:
    hook = hook_for(sandbox)
    calls = sandbox.stats()["totals"]["calls"]
    for bad in ("123", "../../_sandbox/config", "123-1234567-1234567/address"):
        with pytest.raises(ValidationError):
            hook.get_order(bad)
    with pytest.raises(ValidationError, match="later than now - 120 s"):
        next(hook.search_orders(last_updated_after=EPOCH, last_updated_before=datetime.now(UTC)))
    with pytest.raises(ValidationError, match="no timezone"):
        next(hook.iter_order_pages(last_updated_after=datetime(2026, 1, 1)))
    assert sandbox.stats()["totals"]["calls"] == calls
    with pytest.raises(SpApiNotFound) as missing:
        hook.get_order("999-9999999-9999999")
    assert missing.value.request_id and hook.stats.calls["getOrder"] == 1  # 404 is not retried


def test_token_expiry_mid_run_refreshes_once(sandbox_factory, hook_for) -> None:
    sb = sandbox_factory(seed=3, orders=120, days=10, time_scale=600)
    hook = hook_for(sb)
    pages = hook.iter_order_pages(last_updated_after=EPOCH, max_results_per_page=20)
    seen = [o.order_id for o in next(pages).orders]
    sb.expire_access_tokens()
    for page in pages:
        seen.extend(o.order_id for o in page.orders)
    assert len(set(seen)) == len(seen) == 120
    stats = sb.stats()["operations"]
    assert stats["searchOrders"]["errors"] == 1  # exactly one 403 for the expired token, then refreshed
    # v0 with PII: the LWA token and both cached RDTs expire; each is replaced once
    v0 = hook_for(sb, orders_api_version="v0", include_pii=True)
    ids = [o["orderId"] for o in sb.truth()["orders"][:4]]
    first = [v0.get_canonical_order(i) for i in ids[:2]]
    sb.expire_access_tokens()
    second = [v0.get_canonical_order(i) for i in ids[2:]]
    assert all(o.buyer is not None for o in first + second)
    assert v0.stats.calls["createRestrictedDataToken"] == 4  # 2 templates, issued twice
    assert v0.stats.retries == {}  # the refresh happened inside the call, no retry was needed


def test_page_token_expiry_is_typed_and_the_window_restarts(sandbox_factory, hook_for) -> None:
    sb = sandbox_factory(seed=4, orders=80, days=10, time_scale=600)
    hook = hook_for(sb)
    pages = hook.iter_order_pages(last_updated_after=EPOCH, max_results_per_page=20)
    first = next(pages)
    sb.expire_page_tokens()
    with pytest.raises(SpApiPageTokenExpired) as expired:
        next(pages)
    assert "Restart the window" in str(expired.value) and hook.stats.calls["searchOrders"] == 2
    # resume exactly as an operator does: same window end, no token
    again = list(hook.iter_order_pages(last_updated_after=EPOCH, last_updated_before=first.window_end))
    assert sum(len(p.orders) for p in again) == 80


def test_rate_limit_wait_is_raised_before_sending(sandbox_factory, hook_for) -> None:
    sb = sandbox_factory(seed=5, orders=10, days=5, time_scale=1)
    hook = hook_for(sb, hook_kwargs={"max_wait": 5})
    order_id = sb.truth()["orders"][0]["orderId"]
    window = {"last_updated_after": EPOCH}
    for _ in range(20):  # the searchOrders burst
        next(hook.search_orders(**window, max_results_per_page=1, max_pages=1))
    calls = sb.stats()["totals"]["calls"]
    assert hook.seconds_until_available("searchOrders") > 100  # 0.0056/s: about 178 s per token
    with pytest.raises(SpApiRateLimitWait) as wait:
        next(hook.search_orders(**window))
    assert wait.value.operation == "searchOrders" and 100 < wait.value.wait_seconds < 200
    assert sb.stats()["totals"]["calls"] == calls and sb.stats()["totals"]["throttled"] == 0
    assert hook.get_canonical_order(order_id).order_id == order_id  # other operations are unaffected


def test_flaky_profile_every_order_arrives_and_failures_are_retried(sandbox_factory, hook_for) -> None:
    sb = sandbox_factory(seed=11, orders=150, days=15, time_scale=600, faults="flaky")
    for version in ("2026-01-01", "v0"):
        hook = hook_for(sb, orders_api_version=version, rate_limits=scaled_limits(600))
        window_end = datetime.now(UTC) - timedelta(minutes=3)
        got: dict[str, CanonicalOrder] = {}
        restarts = 0
        token = None
        while True:  # the operator's loop: resume from the page token, restart the window if it expired
            try:
                for page in hook.iter_order_pages(
                    last_updated_after=EPOCH,
                    last_updated_before=window_end,
                    page_token=token,
                    max_results_per_page=25,
                ):
                    got.update((o.order_id, o) for o in page.orders)
                    token = page.next_token
                break
            except SpApiPageTokenExpired:
                restarts += 1
                token = None
                assert restarts < 20
        truth = sb.truth(lastUpdatedBefore=window_end.isoformat().replace("+00:00", "Z"))["orders"]
        assert got.keys() == {o["orderId"] for o in truth}, version
        assert sum(hook.stats.retries.values()) > 0, version  # faults happened and were retried
    assert sb.stats()["totals"]["faults"] > 0


def test_tokens_are_cached_per_credential_across_threads(sandbox_factory, hook_for) -> None:
    import threading

    sb = sandbox_factory(seed=6, orders=20, days=3, time_scale=1)  # tokens live an hour here
    ids = [o["orderId"] for o in sb.truth()["orders"]]
    hooks = [hook_for(sb), hook_for(sb)]  # two hooks, one credential: one process-wide cache
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            hooks[k % 2].get_order(ids[k % len(ids)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ops = sb.stats()["operations"]
    assert ops["getOrder"]["ok"] == 16 and ops["lwaToken"]["calls"] == 1
    notifications = hook_for(sb, hook_class=SellingPartnerNotificationsHook)
    notifications.get_destinations()  # a grantless call needs its own client_credentials token
    assert sb.stats()["operations"]["lwaToken"]["calls"] == 2


def test_throttling_without_rate_headers_converges_on_the_real_rate(sandbox_factory, hook_for) -> None:
    """No x-amzn-RateLimit-Limit and a configured rate 8x too high: 429s halve the bucket's rate until
    it fits, every call still succeeds (retried), and the 429s stay few."""
    sb = sandbox_factory(seed=8, orders=30, days=3, time_scale=20, rate_limit_header=False)
    hook = hook_for(sb, rate_limits={"getOrder": [80, 30]})  # the sandbox allows 10/s, burst 30
    ids = [o["orderId"] for o in sb.truth()["orders"]]
    for k in range(90):
        assert hook.get_order(ids[k % len(ids)], included_data=[])["orderId"]
    stats = sb.stats()["operations"]["getOrder"]
    assert stats["ok"] == 90 and hook.stats.throttled["getOrder"] == stats["throttled"]
    assert 1 <= stats["throttled"] <= 9  # about log2(80/10) + a few, not one per call
    assert hook.seconds_until_available("getOrder") >= 0


def test_logs_carry_no_tokens_secrets_or_buyer_data(sandbox_factory, hook_for, caplog) -> None:
    import logging

    sb = sandbox_factory(seed=9, orders=40, days=5, time_scale=600, faults="flaky")
    caplog.set_level(logging.DEBUG)
    hook = hook_for(sb, orders_api_version="v0", include_pii=True, rate_limits=scaled_limits(600))
    orders = []
    for order_id in [o["orderId"] for o in sb.truth()["orders"][:15]]:
        orders.append(hook.get_canonical_order(order_id))
        if len(orders) == 5:
            sb.expire_access_tokens()
    assert not hook_for(sb, refresh_token="Atzr|revoked-for-this-test").test_connection()[0]
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "SP-API" in text  # the hook did log (retries, refreshes)
    for secret in (sb.client_secret, sb.refresh_token, "Atzr|revoked-for-this-test", "Atza|", "Atz.sprdt|"):
        assert secret not in text
    buyers = [o.buyer for o in orders if o.buyer is not None]
    assert buyers
    for buyer in buyers:
        for value in (buyer.buyer_name, buyer.buyer_email, buyer.address_line1, buyer.phone):
            assert not value or value not in text


def test_search_filters_created_window_statuses_and_marketplaces(sandbox, hook_for) -> None:
    hook = hook_for(sandbox)
    truth = sandbox.truth()["orders"]
    created = sorted(o["createdTime"] for o in truth)
    since = created[len(created) // 2]
    pages = list(
        hook.search_orders(
            created_after=since,
            fulfillment_statuses=["SHIPPED", "UNSHIPPED"],
            marketplace_ids=sandbox.marketplace_ids[:1],
            included_data=["FULFILLMENT"],
        )
    )
    got = {o["orderId"] for p in pages for o in p.orders}
    expected = {
        o["orderId"]
        for o in truth
        if o["createdTime"] >= since
        and o["fulfillment"]["fulfillmentStatus"] in ("SHIPPED", "UNSHIPPED")
        and o["salesChannel"]["marketplaceId"] == sandbox.marketplace_ids[0]
    }
    assert got == expected and got
    assert pages[0].created_before is not None and pages[0].last_updated_before is None
    with pytest.raises(ValidationError, match="exactly one"):
        next(hook.search_orders(created_after=since, last_updated_after=since))
