"""Unit tests for the sandbox server's pure parts: buckets, faults, tokens, validation, delivery."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sp_api_sandbox.auth import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    LwaError,
    TokenRejected,
    TokenStore,
    validate_rdt_request,
)
from sp_api_sandbox.faults import PROFILES, FaultInjector, parse_faults
from sp_api_sandbox.pagetokens import PageTokenCodec, PageTokenError, filters_hash
from sp_api_sandbox.publisher import DeliveryOptions, build_bodies, split_dropped
from sp_api_sandbox.ratelimit import RateLimiter, format_rate
from sp_api_sandbox.validation import InvalidInput, format_time, list_param, parse_window


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# -- rate limits ---------------------------------------------------------------------------------
def test_bucket_admits_burst_then_refills_at_scaled_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(time_scale=60, clock=clock)
    admitted = sum(limiter.try_acquire("searchOrders") for _ in range(50))
    assert admitted == 20
    assert limiter.rate("searchOrders") == pytest.approx(0.336)
    clock.now += 10  # 3.36 tokens
    assert sum(limiter.try_acquire("searchOrders") for _ in range(10)) == 3
    clock.now += 1000  # refill is capped at the burst
    assert sum(limiter.try_acquire("searchOrders") for _ in range(50)) == 20


def test_buckets_are_per_operation_and_unlisted_operations_are_free() -> None:
    limiter = RateLimiter(time_scale=1, clock=FakeClock())
    assert sum(limiter.try_acquire("createRestrictedDataToken") for _ in range(20)) == 10
    assert sum(limiter.try_acquire("getDestinations") for _ in range(20)) == 5
    assert all(limiter.try_acquire("lwaToken") for _ in range(100))


def test_format_rate() -> None:
    assert format_rate(0.0056 * 60) == "0.336"
    assert format_rate(0.5 * 600) == "300"
    assert format_rate(0.0167) == "0.0167"


# -- faults --------------------------------------------------------------------------------------
def test_faults_are_repeatable_per_operation_sequence() -> None:
    a = FaultInjector.from_profile(7, "hostile")
    b = FaultInjector.from_profile(7, "hostile")
    seq_a = [a.decide("getOrder") for _ in range(200)]
    for _ in range(50):  # other operations in between do not change getOrder's sequence
        b.decide("searchOrders")
    seq_b = [b.decide("getOrder") for _ in range(200)]
    assert seq_a == seq_b
    c = FaultInjector.from_profile(8, "hostile")
    assert [c.decide("getOrder") for _ in range(200)] != seq_a


@pytest.mark.parametrize("profile", ["flaky", "hostile"])
def test_fault_rates_match_the_profile(profile: str) -> None:
    injector = FaultInjector.from_profile(3, profile)
    n = 20000
    decisions = [injector.decide("getOrder") for _ in range(n)]
    rates = PROFILES[profile]
    for kind in ("drop", "error500", "error503", "throttle"):
        observed = sum(d.outcome == kind for d in decisions) / n
        assert observed == pytest.approx(getattr(rates, kind), abs=0.01), kind
    slow = [d.delay for d in decisions if d.delay > 0]
    assert len(slow) / n == pytest.approx(rates.slow, abs=0.01)
    assert min(slow) >= rates.slow_min and max(slow) <= rates.slow_max
    assert sum(d.invalidate_page_token for d in decisions) / n == pytest.approx(rates.page_token, abs=0.01)


def test_hostile_has_slow_calls_beyond_five_seconds_and_flaky_does_not() -> None:
    hostile = [FaultInjector.from_profile(1, "hostile").decide(f"op{i}").delay for i in range(3000)]
    flaky = [FaultInjector.from_profile(1, "flaky").decide(f"op{i}").delay for i in range(3000)]
    assert any(d > 5 for d in hostile)
    assert max(flaky) < 5


def test_none_profile_never_faults_and_overrides_are_validated() -> None:
    none = FaultInjector.from_profile(1, "none")
    assert not any(none.decide("getOrder").injected for _ in range(1000))
    custom = parse_faults({"profile": "none", "error503": 1.0}, 1)
    assert all(custom.decide("getOrder").outcome == "error503" for _ in range(20))
    with pytest.raises(ValueError):
        parse_faults("nasty", 1)
    with pytest.raises(ValueError):
        parse_faults({"profile": "none", "drop": 2}, 1)
    with pytest.raises(ValueError):
        parse_faults({"profile": "none", "bogus": 0.1}, 1)


# -- LWA and RDT ---------------------------------------------------------------------------------
def _form(**kw: str) -> dict[str, str]:
    return {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, **kw}


def test_lwa_tokens_expire_after_the_scaled_lifetime() -> None:
    clock = FakeClock()
    store = TokenStore(time_scale=60, clock=clock)
    body = store.exchange(_form(grant_type="refresh_token", refresh_token=DEFAULT_REFRESH_TOKEN))
    assert body["expires_in"] == 60 and body["token_type"] == "bearer"
    token = str(body["access_token"])
    assert token.startswith("Atza|") and store.check(token).kind == "seller"
    clock.now += 59
    store.check(token)
    clock.now += 2
    with pytest.raises(TokenRejected, match="expired"):
        store.check(token)
    with pytest.raises(TokenRejected, match="revoked, malformed or invalid"):
        store.check("Atza|forged")
    with pytest.raises(TokenRejected):
        store.check(None)


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (_form(grant_type="refresh_token", refresh_token="Atzr|wrong"), 400, "invalid_grant"),
        (
            {**_form(grant_type="refresh_token", refresh_token=DEFAULT_REFRESH_TOKEN), "client_secret": "x"},
            401,
            "invalid_client",
        ),
        (_form(grant_type="password"), 400, "unsupported_grant_type"),
        (_form(grant_type="client_credentials", scope="sellingpartnerapi::orders"), 400, "invalid_scope"),
    ],
)
def test_lwa_errors(form: dict[str, str], status: int, error: str) -> None:
    with pytest.raises(LwaError) as info:
        TokenStore().exchange(form)
    assert (info.value.status, info.value.error) == (status, error)


def test_grantless_tokens_and_expire_all() -> None:
    store = TokenStore()
    body = store.exchange(_form(grant_type="client_credentials", scope="sellingpartnerapi::notifications"))
    token = store.check(str(body["access_token"]))
    assert token.kind == "grantless" and token.scope == "sellingpartnerapi::notifications"
    assert store.expire_all() == 1
    with pytest.raises(TokenRejected, match="expired"):
        store.check(str(body["access_token"]))


def test_rdt_covers_only_its_paths() -> None:
    store = TokenStore()
    resources = validate_rdt_request(
        {
            "restrictedResources": [
                {"method": "GET", "path": "/orders/v0/orders/{orderId}/buyerInfo"},
                {
                    "method": "GET",
                    "path": "/orders/v0/orders/111-1234567-1234567",
                    "dataElements": ["buyerInfo"],
                },
            ]
        }
    )
    token = store.check(str(store.issue_rdt(resources)["restrictedDataToken"]))
    assert token.covers("GET", "/orders/v0/orders/222-1234567-1234567/buyerInfo") == frozenset()
    assert token.covers("GET", "/orders/v0/orders/111-1234567-1234567") == {"buyerInfo"}
    assert token.covers("GET", "/orders/v0/orders/222-1234567-1234567") is None
    assert token.covers("GET", "/orders/v0/orders/222-1234567-1234567/address") is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"restrictedResources": []},
        {"restrictedResources": [{"method": "POST", "path": "/orders/v0/orders"}]},
        {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders/../../etc"}]},
        {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders", "dataElements": ["ssn"]}]},
        {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders"}] * 51},
    ],
)
def test_rdt_request_validation(body: dict) -> None:
    with pytest.raises(ValueError):
        validate_rdt_request(body)


# -- page tokens ---------------------------------------------------------------------------------
def test_page_tokens_bind_filters_expire_and_resist_tampering() -> None:
    clock = FakeClock()
    codec = PageTokenCodec(ttl=100, clock=clock)
    fhash = filters_hash({"after": "2026-01-01T00:00:00Z", "statuses": ["SHIPPED"]})
    token = codec.encode("searchOrders", fhash, ["2026-01-02T00:00:00Z", "111-1234567-1234567"])
    body = codec.decode(token, "searchOrders")
    codec.check_filters(body, fhash)
    assert body["p"] == ["2026-01-02T00:00:00Z", "111-1234567-1234567"]
    with pytest.raises(PageTokenError, match="different filters"):
        codec.check_filters(body, filters_hash({"after": "2026-01-01T00:00:00Z", "statuses": []}))
    with pytest.raises(PageTokenError):
        codec.decode(token, "getOrders")
    with pytest.raises(PageTokenError, match="malformed"):
        codec.decode(token[:-3] + "AAA", "searchOrders")
    with pytest.raises(PageTokenError, match="malformed"):
        codec.decode("not a token", "searchOrders")
    clock.now += 101
    with pytest.raises(PageTokenError, match="expired"):
        codec.decode(token, "searchOrders")
    fresh = codec.encode("searchOrders", fhash, 1)
    codec.expire_all()
    with pytest.raises(PageTokenError, match="expired"):
        codec.decode(fresh, "searchOrders")


def test_v0_style_tokens_use_standard_base64() -> None:
    codec = PageTokenCodec(ttl=100)
    tokens = [codec.encode("getOrders", "f", [i, "x" * i], standard_base64=True) for i in range(30)]
    assert all(t.endswith("==") for t in tokens) and any("+" in t or "/" in t for t in tokens)
    assert [codec.decode(t, "getOrders")["p"] for t in tokens] == [[i, "x" * i] for i in range(30)]
    with pytest.raises(PageTokenError, match="malformed"):
        codec.decode(next(t for t in tokens if "+" in t).replace("+", " "), "getOrders")


# -- validation ----------------------------------------------------------------------------------
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_window_defaults_before_to_now_minus_lag() -> None:
    w = parse_window({"lastUpdatedAfter": "2026-05-01T00:00:00Z"}, NOW, 120)
    assert w.mode == "lastUpdated" and w.before == NOW - timedelta(seconds=120)
    assert w.echo() == ("lastUpdatedBefore", "2026-06-01T11:58:00Z")
    w = parse_window({"createdAfter": "2026-05-01", "createdBefore": "2026-05-02T00:00:00+02:00"}, NOW, 120)
    assert w.before == datetime(2026, 5, 1, 22, tzinfo=UTC) and w.before_given


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, "Exactly one"),
        ({"createdAfter": "2026-05-01T00:00:00Z", "lastUpdatedAfter": "2026-05-01T00:00:00Z"}, "Only one"),
        (
            {"createdAfter": "2026-05-01T00:00:00Z", "lastUpdatedBefore": "2026-05-02T00:00:00Z"},
            "cannot be used",
        ),
        (
            {"lastUpdatedAfter": "2026-05-01T00:00:00Z", "lastUpdatedBefore": "2026-06-01T11:59:00Z"},
            "120 seconds",
        ),
        (
            {"lastUpdatedAfter": "2026-05-02T00:00:00Z", "lastUpdatedBefore": "2026-05-01T00:00:00Z"},
            "later than",
        ),
        ({"lastUpdatedAfter": "2026-06-01T11:59:00Z"}, "120 seconds"),
        ({"createdAfter": "yesterday"}, "ISO-8601"),
    ],
)
def test_window_rules(params: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse_window(params, NOW, 120)


def test_window_lag_is_settable() -> None:
    w = parse_window(
        {"lastUpdatedAfter": "2026-06-01T11:59:00Z", "lastUpdatedBefore": "2026-06-01T11:59:55Z"}, NOW, 5
    )
    assert w.before == datetime(2026, 6, 1, 11, 59, 55, tzinfo=UTC)


def test_list_params_and_time_format() -> None:
    assert list_param(["A,B", "C", " D , "]) == ["A", "B", "C", "D"]
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2026-01-02T03:04:05.12Z"


# -- delivery ------------------------------------------------------------------------------------
def test_build_bodies_applies_every_delivery_option() -> None:
    messages = [{"NotificationMetadata": {"NotificationId": str(i)}} for i in range(200)]
    options = DeliveryOptions(duplicates=0.25, shuffle=True, double_encoded=0.3)
    bodies = build_bodies(messages, options, random.Random(1), poison=["{not json", ""], foreign=[{"x": 1}])
    decoded = []
    double = 0
    for body in bodies:
        try:
            value = json.loads(body)
        except json.JSONDecodeError:
            continue
        if isinstance(value, str):
            double += 1
            value = json.loads(value)
        decoded.append(value)
    ids = [
        d.get("NotificationMetadata", {}).get("NotificationId")
        for d in decoded
        if "NotificationMetadata" in d
    ]
    assert set(ids) == {str(i) for i in range(200)}
    assert 0.15 < (len(ids) - 200) / 200 < 0.35
    assert 0.2 < double / len(bodies) < 0.4
    assert "{not json" in bodies and {"x": 1} in decoded
    assert ids != sorted(ids, key=int)  # shuffled
    assert (
        build_bodies(messages, options, random.Random(1), poison=["{not json", ""], foreign=[{"x": 1}])
        == bodies
    )
    plain = build_bodies(messages[:3], DeliveryOptions(), random.Random(1))
    assert [json.loads(b) for b in plain] == messages[:3]


def test_drop_loses_the_share_asked_for_repeatably_and_keeps_order() -> None:
    messages = [{"n": i} for i in range(1000)]
    delivered, dropped = split_dropped(messages, 0.2, random.Random("seed"))
    again = split_dropped(messages, 0.2, random.Random("seed"))
    assert (delivered, dropped) == again
    assert 150 <= len(dropped) <= 250
    assert sorted([*delivered, *dropped], key=lambda m: m["n"]) == messages
    assert delivered == sorted(delivered, key=lambda m: m["n"])
    assert split_dropped(messages, 0.0, random.Random(1)) == (messages, [])
    with pytest.raises(ValueError, match="drop"):
        DeliveryOptions(drop=1.5)
