"""Rate limits and fault injection over real HTTP (high time scales keep the waits short)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from sp_api_sandbox.launcher import SandboxProcess

from tests.fixtures.sandbox import SandboxClient

pytestmark = pytest.mark.integration

SEARCH = "/orders/2026-01-01/orders"
UNKNOWN = f"{SEARCH}/999-0000000-0000000"  # a 404 still spends a token: a cheap call to count with


def test_search_orders_admits_exactly_the_burst_then_throttles(sandbox_factory) -> None:
    sb = sandbox_factory(orders=10, time_scale=1)  # Amazon's real rate: 0.0056/s, burst 20
    api = SandboxClient(sb)
    responses = [
        api.get(SEARCH, params={"createdAfter": "2026-01-01T00:00:00Z"}, retry_throttled=False)
        for _ in range(26)
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 20 + [429] * 6
    assert all(r.headers["x-amzn-RateLimit-Limit"] == "0.0056" for r in responses[:20])
    for throttled in responses[20:]:
        assert "x-amzn-RateLimit-Limit" not in throttled.headers and throttled.headers["x-amzn-RequestId"]
        assert throttled.json() == {
            "errors": [
                {
                    "code": "QuotaExceeded",
                    "message": "You exceeded your quota for the requested resource.",
                    "details": "",
                }
            ]
        }
    stats = sb.stats()["operations"]["searchOrders"]
    assert stats == {"calls": 26, "ok": 20, "throttled": 6, "errors": 0, "faults": 0}


def test_bucket_refills_at_the_scaled_rate(sandbox_factory) -> None:
    sb = sandbox_factory(orders=10, time_scale=20)  # getOrder: 0.5/s x 20 = 10/s, burst 30
    api = SandboxClient(sb)
    drained = 0
    while api.get(UNKNOWN, retry_throttled=False).status_code != 429:
        drained += 1
        assert drained < 60
    assert 30 <= drained <= 33  # the burst, plus what trickled in while draining
    admitted = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < 2.0:
        response = api.get(UNKNOWN, retry_throttled=False)
        if response.status_code == 404:
            admitted += 1
            assert response.headers["x-amzn-RateLimit-Limit"] == "10"
    elapsed = time.monotonic() - started
    assert abs(admitted - 10 * elapsed) <= 3, (admitted, elapsed)
    stats = sb.stats()["operations"]["getOrder"]
    assert stats["errors"] == drained + admitted  # 404s count as errors
    assert stats["throttled"] == stats["calls"] - drained - admitted


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """One sandbox for the fault tests; a huge time scale keeps real throttling out of the way."""
    log = tmp_path_factory.mktemp("faults") / "sandbox.log"
    with SandboxProcess(options={"seed": 5, "orders": 30, "time_scale": 3600}, log_path=log) as sb:
        yield sb


@pytest.fixture
def fapi(faulty: SandboxProcess) -> SandboxClient:
    faulty.config(faults="none")
    faulty.reset_stats()
    return SandboxClient(faulty)


def test_dropped_connections_reach_the_client_as_connection_errors(fapi: SandboxClient) -> None:
    sb = fapi.sandbox
    sb.config(faults={"profile": "none", "drop": 1.0})
    for _ in range(3):
        with pytest.raises(requests.exceptions.ConnectionError):
            fapi.get(UNKNOWN)
    assert sb.health()["status"] == "ok"  # admin endpoints are never faulted
    assert fapi.lwa(grant_type="refresh_token", refresh_token=sb.refresh_token).status_code == 200
    assert sb.stats()["operations"]["getOrder"]["faults"] == 3
    sb.config(faults="none")
    assert fapi.get(UNKNOWN).status_code == 404


def test_slow_responses_are_delayed(fapi: SandboxClient) -> None:
    fapi.sandbox.config(faults={"profile": "none", "slow": 1.0, "slow_min": 0.4, "slow_max": 0.4})
    fapi.token()
    started = time.monotonic()
    assert fapi.get(UNKNOWN).status_code == 404
    assert time.monotonic() - started >= 0.4


def test_page_token_invalidation_fault(fapi: SandboxClient) -> None:
    sb = fapi.sandbox
    params = {"createdAfter": "2026-01-01T00:00:00Z", "maxResultsPerPage": "5"}
    token = fapi.get(SEARCH, params=params).json()["pagination"]["nextToken"]
    sb.config(faults={"profile": "none", "page_token": 1.0})
    assert fapi.get(SEARCH, params=params).status_code == 200  # only requests carrying a token suffer
    rejected = fapi.get(SEARCH, params={**params, "paginationToken": token})
    assert rejected.status_code == 400 and "expired" in rejected.json()["errors"][0]["message"]
    assert sb.stats()["operations"]["searchOrders"]["faults"] == 1


def _outcomes(api: SandboxClient, n: int) -> list[str]:
    out = []
    for _ in range(n):
        try:
            response = api.get(UNKNOWN, retry_throttled=False)
        except requests.exceptions.ConnectionError:
            out.append("drop")
            continue
        assert response.status_code in (404, 429, 500, 503)
        if response.status_code == 429:
            assert "x-amzn-RateLimit-Limit" not in response.headers
        out.append(str(response.status_code))
    return out


def test_fault_profiles_are_seeded_and_hit_their_rates(fapi: SandboxClient) -> None:
    sb = fapi.sandbox
    faults = {"profile": "hostile", "slow": 0.0}  # hostile without the long delays
    n = 240
    sb.config(faults=faults)
    first = _outcomes(fapi, n)
    sb.config(faults=faults)  # a fresh injector starts the seeded sequence again
    assert _outcomes(fapi, n) == first
    for kind, rate in (("drop", 0.05), ("500", 0.08), ("503", 0.08), ("429", 0.10)):
        expected = rate * n
        assert abs(first.count(kind) - expected) <= 4 * (expected * (1 - rate)) ** 0.5 + 1, (
            kind,
            first.count(kind),
        )
    assert sb.stats()["operations"]["getOrder"]["faults"] == 2 * (n - first.count("404"))
