"""Pure parts of the hook: validation, connection config, error parsing, retry policy, limiter maths."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
from selling_partner.hooks.config import config_from_connection, parse_bool
from selling_partner.hooks.errors import (
    SpApiForbidden,
    SpApiInvalidInput,
    SpApiNotFound,
    SpApiPageTokenExpired,
    SpApiRateLimitWait,
    SpApiServerError,
    SpApiThrottled,
)
from selling_partner.hooks.ratelimit import BucketState, refill, reserve, wait_for
from selling_partner.hooks.responses import (
    backoff_seconds,
    error_for_response,
    is_retryable,
    rate_limit_from_headers,
)
from selling_partner.validation import (
    ValidationError,
    format_amazon_time,
    latest_allowed_before,
    parse_marketplace_ids,
    to_utc,
    validate_marketplace_ids,
    validate_order_id,
    validate_path_segment,
    validate_window,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("good", ["123-1234567-1234567", "902-1845936-5435065"])
def test_order_id_accepted(good: str) -> None:
    assert validate_order_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "123-1234567-123456",
        "../../orders",
        "123-1234567-1234567/address",
        "\uff1123-1234567-1234567",  # a full-width digit
        None,
        5,
    ],
)
def test_order_id_refused_before_any_url(bad: object) -> None:
    with pytest.raises(ValidationError, match="order id"):
        validate_order_id(bad, operation="getOrder")


def test_path_segments_refuse_traversal_and_queries() -> None:
    assert validate_path_segment("ORDER_CHANGE", name="t") == "ORDER_CHANGE"
    for bad in ("../x", "a/b", "a?b=1", "a b", ""):
        with pytest.raises(ValidationError):
            validate_path_segment(bad, name="destination id")


def test_marketplace_ids_region_check_and_form_strings() -> None:
    assert parse_marketplace_ids("ATVPDKIKX0DER, A2EUQ1WTGCTBG2") == ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]
    assert validate_marketplace_ids(["ATVPDKIKX0DER", "ATVPDKIKX0DER"], region="na") == ["ATVPDKIKX0DER"]
    with pytest.raises(ValidationError, match="belongs to region 'eu'"):
        validate_marketplace_ids("ATVPDKIKX0DER,A1PA6795UKMFR9", region="na")
    with pytest.raises(ValidationError, match="not a known marketplace"):
        validate_marketplace_ids(["AAAAAAAAAAAAA"], region="fe")
    with pytest.raises(ValidationError, match="malformed"):
        validate_marketplace_ids(["x&y=1"], region="na")
    with pytest.raises(ValidationError, match="at least one"):
        validate_marketplace_ids([], region="na")


def test_timestamps_are_utc_and_the_two_minute_rule_holds() -> None:
    assert to_utc("2026-01-01T01:00:00+01:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert to_utc(datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))).hour == 0
    with pytest.raises(ValidationError, match="no timezone"):
        to_utc(datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="ISO-8601"):
        to_utc("yesterday")
    assert format_amazon_time(datetime(2026, 1, 1, 0, 0, 1, 250000, tzinfo=UTC)) == "2026-01-01T00:00:01.250Z"
    assert latest_allowed_before(NOW, 120) == NOW - timedelta(minutes=2)
    after = NOW - timedelta(hours=1)
    assert validate_window(after, NOW - timedelta(seconds=120), now=NOW)[1] == NOW - timedelta(seconds=120)
    with pytest.raises(ValidationError, match="later than now - 120 s"):
        validate_window(after, NOW - timedelta(seconds=119), now=NOW)
    with pytest.raises(ValidationError, match="later than now - 30 s"):
        validate_window(after, NOW - timedelta(seconds=10), now=NOW, lag_seconds=30)
    with pytest.raises(ValidationError, match="is after"):
        validate_window(NOW - timedelta(minutes=5), NOW - timedelta(minutes=10), now=NOW)


def _extra(**over: object) -> dict:
    base = {
        "refresh_token": "Atzr|x",
        "region": "na",
        "marketplace_ids": ["ATVPDKIKX0DER"],
        "seller_id": "A1SANDBOXSELLERNA",
    }
    return {**base, **over}


def test_connection_config_defaults_from_region() -> None:
    cfg = config_from_connection("cid", "secret", _extra())
    assert cfg.endpoint == "https://sellingpartnerapi-na.amazon.com"
    assert cfg.lwa_endpoint == "https://api.amazon.com/auth/o2/token"
    assert (cfg.orders_api_version, cfg.include_pii, cfg.rate_limit_backend) == (
        "2026-01-01",
        False,
        "variable",  # buckets outlive the task process (Airflow Variables), no extra service needed
    )
    assert cfg.min_before_lag_seconds == 120
    assert "secret" not in repr(cfg) and "Atzr" not in repr(cfg)


def test_connection_config_from_ui_form_strings() -> None:
    cfg = config_from_connection(
        "cid",
        "secret",
        _extra(
            region="EU",
            marketplace_ids="A1PA6795UKMFR9, A13V1IB3VIYZZH",
            include_pii="true",
            orders_api_version="v0",
            min_before_lag_seconds="30",
            endpoint="http://127.0.0.1:8765/",
            rate_limit_backend="postgres",
            rate_limit_conn_id="warehouse",
            rate_limits='{"searchOrders": [0.5, 20]}',
        ),
    )
    assert cfg.region == "eu" and cfg.marketplace_ids == ("A1PA6795UKMFR9", "A13V1IB3VIYZZH")
    assert cfg.include_pii is True and cfg.orders_api_version == "v0" and cfg.min_before_lag_seconds == 30
    assert cfg.endpoint == "http://127.0.0.1:8765" and cfg.rate_limits == {"searchOrders": (0.5, 20.0)}


@pytest.mark.parametrize(
    ("login", "extra", "match"),
    [
        (None, _extra(), "client id"),
        ("cid", _extra(region="us"), "unknown region"),
        ("cid", _extra(marketplace_ids=["A1PA6795UKMFR9"]), "not served by region 'na'"),
        ("cid", _extra(seller_id=""), "seller_id"),
        ("cid", _extra(orders_api_version="2021"), "orders_api_version"),
        ("cid", _extra(rate_limit_backend="redis"), "rate_limit_dsn"),
        ("cid", _extra(endpoint="ftp://x"), "http"),
        ("cid", _extra(endpoint="http://sellingpartnerapi-na.amazon.com"), "travel in clear"),
        ("cid", _extra(lwa_endpoint="http://10.0.0.5:8765/auth/o2/token"), "lwa_endpoint .* plain http"),
        ("cid", _extra(include_pii="maybe"), "include_pii"),
        ("cid", _extra(min_before_lag_seconds="soon"), "min_before_lag_seconds must be a number"),
        ("cid", _extra(rate_limit_backend="sqlite"), "rate_limit_backend must be one of"),
    ],
)
def test_connection_config_errors_name_the_field(login: str | None, extra: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        config_from_connection(login, "secret", extra, conn_id="sp")
    assert parse_bool("0", name="x") is False


def test_plain_http_only_for_loopback_unless_explicitly_allowed() -> None:
    for url in ("http://127.0.0.1:8765", "http://localhost:9", "http://[::1]:8765", "http://127.1.2.3"):
        assert config_from_connection("cid", "s", _extra(endpoint=url)).endpoint == url
    lan = "http://sp-api-sandbox:8765"
    assert (
        config_from_connection("cid", "s", _extra(endpoint=lan, allow_insecure_http="true")).endpoint == lan
    )
    # a null lag (a UI form left empty) means Amazon's default, in the hook and therefore everywhere
    assert (
        config_from_connection("cid", "s", _extra(min_before_lag_seconds=None)).min_before_lag_seconds == 120
    )


def _response(status: int, body: object = None, headers: dict | None = None) -> requests.Response:
    import json

    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else b""
    response.headers.update({"x-amzn-RequestId": "req-1", **(headers or {})})
    return response


def _errors(code: str, message: str, details: str = "") -> dict:
    return {"errors": [{"code": code, "message": message, "details": details}]}


def test_error_mapping_names_operation_request_id_and_fix() -> None:
    err = error_for_response("getOrder", _response(404, _errors("NotFound", "Order not found")))
    assert isinstance(err, SpApiNotFound) and err.request_id == "req-1" and err.code == "NotFound"
    assert (
        "getOrder failed (HTTP 404, NotFound)" in str(err)
        and "req-1" in str(err)
        and "What to do" in str(err)
    )
    role = error_for_response("getOrder", _response(403, _errors("Unauthorized", "Access denied.", "")))
    token = error_for_response(
        "getOrder",
        _response(
            403, _errors("Unauthorized", "Access denied.", "The access token you provided has expired.")
        ),
    )
    assert isinstance(role, SpApiForbidden) and role.reason == "role" and "role" in role.hint
    assert token.reason == "token"
    page = _errors("InvalidInput", "The pagination token has expired. Start the search again without it.")
    assert isinstance(
        error_for_response("searchOrders", _response(400, page), sent_page_token=True), SpApiPageTokenExpired
    )
    plain = error_for_response("searchOrders", _response(400, page), sent_page_token=False)
    assert type(plain) is SpApiInvalidInput
    assert isinstance(
        error_for_response("x", _response(429, _errors("QuotaExceeded", "quota"))), SpApiThrottled
    )
    assert isinstance(error_for_response("x", _response(503)), SpApiServerError)


def test_errors_survive_pickling_between_processes() -> None:
    err = error_for_response("getOrder", _response(403, _errors("Unauthorized", "denied")))
    back = pickle.loads(pickle.dumps(err))  # noqa: S301
    assert type(back) is SpApiForbidden and back.reason == "role" and str(back) == str(err)
    wait = pickle.loads(pickle.dumps(SpApiRateLimitWait("searchOrders", 178.5)))  # noqa: S301
    assert wait.wait_seconds == 178.5 and wait.operation == "searchOrders"


def test_retry_policy() -> None:
    assert is_retryable(SpApiServerError("x")) and is_retryable(SpApiThrottled("x"))
    assert is_retryable(requests.exceptions.ChunkedEncodingError()) and is_retryable(requests.Timeout())
    for never in (
        SpApiInvalidInput("x"),
        SpApiNotFound("x"),
        SpApiForbidden("x"),
        SpApiRateLimitWait("op", 5),
    ):
        assert not is_retryable(never)
    rng = random.Random(1)
    waits = [backoff_seconds(n, rng=rng) for n in range(1, 12)]
    assert all(0.25 <= w <= 30.25 for w in waits)
    assert max(backoff_seconds(1, rng=random.Random(s)) for s in range(50)) <= 0.75


def test_rate_limit_header() -> None:
    assert rate_limit_from_headers({"x-amzn-RateLimit-Limit": "0.336"}) == 0.336
    assert rate_limit_from_headers({"x-amzn-RateLimit-Limit": "junk"}) is None
    assert rate_limit_from_headers({}) is None


def test_bucket_maths_refill_cap_and_reservations_in_order() -> None:
    state = BucketState(tokens=0.0, rate=0.5, burst=3.0, stamp=0.0)
    assert refill(state, 100.0).tokens == 3.0  # capped at burst
    assert wait_for(0.5, 0.5) == 1.0
    state = BucketState(tokens=1.0, rate=1.0, burst=5.0, stamp=0.0)
    waits = []
    for _ in range(4):
        state, granted, wait = reserve(state, 0.0, max_wait=10)
        assert granted
        waits.append(wait)
    assert waits == [0.0, 1.0, 2.0, 3.0]  # reservations queue: tokens went negative
    state2, granted, wait = reserve(state, 0.0, max_wait=2.5)
    assert not granted and wait == 4.0 and state2.tokens == state.tokens == -3.0  # refused: nothing spent


def test_bucket_never_admits_more_than_burst_plus_rate_times_t() -> None:
    rng = random.Random(7)
    state = BucketState(tokens=20, rate=0.0056, burst=20, stamp=0.0)
    now, admitted = 0.0, 0
    while now < 3600:
        now += rng.uniform(0, 30)
        state, granted, _ = reserve(state, now, max_wait=0)
        admitted += granted
    assert admitted <= 20 + 0.0056 * 3600 + 1e-9
    assert admitted >= 20 + int(0.0056 * 3600) - 1


def test_send_margin_is_a_quarter_token_capped() -> None:
    from selling_partner.hooks.ratelimit import SEND_MARGIN_SECONDS, send_margin

    assert send_margin(0.5) == SEND_MARGIN_SECONDS  # getOrder at Amazon's rate: 2 s per token
    assert send_margin(2.0) == 0.125
    assert send_margin(10.0) == pytest.approx(0.025)
    assert send_margin(300.0) == 0.02  # a time-scaled sandbox: at least the network's jitter
