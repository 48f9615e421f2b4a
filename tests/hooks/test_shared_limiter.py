"""The shared rate limiter: 4 OS processes spend one SP-API budget (PostgreSQL and Redis backends)."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid

import psycopg
import pytest
import redis
from selling_partner.hooks.ratelimit import (
    PG_DDL,
    PG_TABLE,
    BucketState,
    MemoryRateLimiter,
    PostgresRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)

from tests.hooks._limiter_worker import call_get_order, pid, warm_up

pytestmark = pytest.mark.integration

PG_DSN = "postgresql://root@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
TIME_SCALE = 20  # getOrder: 0.5/s * 20 = 10/s, burst 30
RATE, BURST = 0.5 * TIME_SCALE, 30
PROCESSES, CALLS_EACH = 4, 20


def _clear_buckets(backend: str, seller_prefix: str) -> None:
    if backend == "postgres":
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(PG_DDL)
            conn.execute(f"DELETE FROM {PG_TABLE} WHERE bucket_key LIKE %s", (seller_prefix + ":%",))
    else:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"sp_rate_limit:{seller_prefix}:*"):
            client.delete(key)


@pytest.fixture(scope="module")
def pool():
    """Four OS processes (spawn), with the hook imported once in each (Airflow's import is slow)."""
    with multiprocessing.get_context("spawn").Pool(PROCESSES, initializer=warm_up) as workers:
        assert len(workers.map(pid, range(PROCESSES), chunksize=1)) == PROCESSES
        yield workers


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_four_processes_share_one_budget(backend: str, sandbox_factory, pool) -> None:
    sb = sandbox_factory(seed=21, orders=40, days=5, time_scale=TIME_SCALE)
    _clear_buckets(backend, sb.seller_id)
    ids = [o["orderId"] for o in sb.truth()["orders"]]
    conn = sb.connection_uri(
        rate_limit_backend=backend, rate_limit_dsn=PG_DSN if backend == "postgres" else REDIS_URL
    )
    sb.reset_stats()
    start_at = time.time() + 1.5  # all workers start together
    jobs = [
        pool.apply_async(
            call_get_order, (conn, [ids[(p * 7 + i) % len(ids)] for i in range(CALLS_EACH)], start_at)
        )
        for p in range(PROCESSES)
    ]
    results = [r for job in jobs for r in job.get(timeout=120)]
    stats = sb.stats()["operations"]["getOrder"]
    total = PROCESSES * CALLS_EACH
    assert len(results) == total and stats["calls"] == total
    assert stats["throttled"] <= 0.01 * total, stats  # <= 1% 429s across 4 processes
    # jointly within burst + rate * T (over the whole run and over every sub-span of it)
    sent = sorted(t for t, status in results if status == 200)
    elapsed = sent[-1] - start_at
    assert len(sent) <= BURST + RATE * elapsed + 2
    assert elapsed >= (total - BURST) / RATE * 0.8  # the budget was really waited for, not ignored
    for i in range(len(sent)):
        for j in range(i, len(sent)):
            assert j - i + 1 <= BURST + RATE * (sent[j] - sent[i]) + 3


class DictStore:
    """A BucketStore in a dict: what the ``variable`` backend does with Airflow Variables, minus Airflow."""

    def __init__(self) -> None:
        self.data: dict[str, BucketState] = {}
        self.saves = 0

    def load(self, key: str) -> BucketState | None:
        state = self.data.get(key)
        return None if state is None else BucketState(state.tokens, state.rate, state.burst, state.stamp)

    def save(self, key: str, state: BucketState) -> None:
        self.data[key] = BucketState(state.tokens, state.rate, state.burst, state.stamp)
        self.saves += 1


def _limiter(backend: str, seller: str, overrides: dict, store: DictStore | None = None) -> RateLimiter:
    if backend == "memory":
        return MemoryRateLimiter(seller, "na", overrides, store=store)
    if backend == "postgres":
        return PostgresRateLimiter(seller, "na", PG_DSN, overrides)
    return RedisRateLimiter(seller, "na", REDIS_URL, overrides)


@pytest.mark.parametrize("backend", ["memory", "postgres", "redis"])
def test_a_bucket_outlives_the_process_that_spent_it(backend: str) -> None:
    """A new task process (a retry, a resume after a deferral) continues from the bucket the previous
    process left: spent is spent. The ``memory`` backend keeps that promise only with a store (the
    default ``variable`` backend's Airflow Variables); without one a new process starts full."""
    seller = f"T{uuid.uuid4().hex[:12].upper()}"
    overrides = {"op": (0.01, 3)}
    store = DictStore()
    first = _limiter(backend, seller, overrides, store)
    assert [first.acquire("op", max_wait=0)[0] for _ in range(4)] == [True, True, True, False]
    first.close()
    MemoryRateLimiter.reset_all()  # the process is gone
    second = _limiter(backend, seller, overrides, store)
    try:
        quota = second.quota("op")
        assert quota.tokens < 0.05 and quota.burst == 3 and 95 < quota.wait <= 100  # 1 / 0.01 s
        assert second.acquire("op", max_wait=0) == (False, pytest.approx(quota.wait, abs=1))
        if backend == "memory":
            assert store.saves == 3  # saved after each reservation, before its call is sent
            MemoryRateLimiter.reset_all()
            without_store = MemoryRateLimiter(seller, "na", overrides)
            assert without_store.quota("op").tokens == 3  # what a storeless new process believes
    finally:
        second.close()
        MemoryRateLimiter.reset_all()


@pytest.mark.parametrize("backend", ["memory", "postgres", "redis"])
def test_backends_are_exact_token_buckets(backend: str) -> None:
    seller = f"T{uuid.uuid4().hex[:12].upper()}"
    overrides = {"op": (2.0, 5)}
    limiter = _limiter(backend, seller, overrides)
    try:
        assert limiter.quota("op").tokens == 5 and limiter.quota("op").rate == 2.0
        granted = [limiter.acquire("op", max_wait=0) for _ in range(8)]
        assert [g for g, _ in granted] == [True] * 5 + [False] * 3  # burst 5, nothing spent when refused
        assert 0.3 < granted[-1][1] <= 0.5  # next token in 1/rate s
        assert limiter.seconds_until_available("op") > 0.2
        # reservations: tokens go negative, waits queue up in order
        waits = [limiter.acquire("op", max_wait=10)[1] for _ in range(3)]
        assert waits[0] < waits[1] < waits[2] and abs((waits[2] - waits[1]) - 0.5) < 0.05
        limiter.observe_rate("op", 100.0)  # x-amzn-RateLimit-Limit raised the rate
        time.sleep(0.1)
        assert limiter.seconds_until_available("op") == 0
        limiter.observe_rate("op", 8.0)
        limiter.penalize("op")  # a 429: the bucket is empty, the rate halved (4/s) ...
        assert 0.2 < limiter.seconds_until_available("op") <= 0.25
        limiter.penalize("op")  # ... and halved again (2/s)
        assert 0.45 < limiter.seconds_until_available("op") <= 0.5
        limiter.observe_rate("op", 1.0)  # the header lowered it further
        limiter.penalize("op")  # never below Amazon's default (1/s for an unknown operation)
        assert 0.95 < limiter.seconds_until_available("op") <= 1.0
        assert limiter.acquire("op", max_wait=0)[0] is False
        # threads of one process are serialised too: at 1/s at most one more token in this instant
        results: list[bool] = []
        threads = [
            threading.Thread(target=lambda: results.append(limiter.acquire("op", max_wait=0)[0]))
            for _ in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(results) <= 1
    finally:
        limiter.close()


def test_postgres_backend_from_an_airflow_connection(monkeypatch) -> None:
    """``rate_limit_conn_id`` names a postgres connection instead of a DSN (no request is sent)."""
    import json

    from selling_partner.hooks.errors import SpApiRateLimitWait
    from selling_partner.hooks.orders import SellingPartnerOrdersHook

    seller = f"T{uuid.uuid4().hex[:12].upper()}"
    monkeypatch.setenv("AIRFLOW_CONN_SP_LIMITS_PG", "postgresql://root@127.0.0.1:5432/test")
    extra = {
        "refresh_token": "Atzr|unused",
        "region": "eu",
        "marketplace_ids": "A1PA6795UKMFR9",
        "seller_id": seller,
        "rate_limit_backend": "postgres",
        "rate_limit_conn_id": "sp_limits_pg",
    }
    conn = {"conn_type": "amazon_sp_api", "login": "cid", "password": "secret", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SP_PG_LIMITED", json.dumps(conn))
    hook = SellingPartnerOrdersHook("sp_pg_limited", max_wait=0)
    try:
        assert isinstance(hook.limiter, PostgresRateLimiter)
        assert hook.seconds_until_available("searchOrders") == 0
        for _ in range(20):
            hook._throttle("searchOrders", 0)  # spend the burst as 20 calls would
        with pytest.raises(SpApiRateLimitWait, match=r"next searchOrders token in 1[78]\d"):
            hook._throttle("searchOrders", 0)
        with psycopg.connect(PG_DSN) as pg:
            (row,) = pg.execute(
                f"SELECT rate, burst FROM {PG_TABLE} WHERE bucket_key = %s", (f"{seller}:eu:searchOrders",)
            )
        assert row == (0.0056, 20.0)
    finally:
        hook.close()


def test_fast_buckets_lease_tokens_ahead_and_never_save_a_fuller_bucket() -> None:
    """getOrder-like rates: a save leases up to half a second of tokens ahead, so 40 calls cost a few
    Variable writes instead of 40; what is saved is never fuller than the real bucket, so a process
    killed mid-lease leaves its successor a short wait, never a 429; close() saves the exact state."""
    seller = f"T{uuid.uuid4().hex[:12].upper()}"
    store = DictStore()
    limiter = MemoryRateLimiter(seller, "na", {"op": (30.0, 40)}, store=store)
    key = limiter.key("op")
    for _ in range(40):
        assert limiter.acquire("op", max_wait=10)[0]
        real = MemoryRateLimiter._buckets[key]
        saved = store.data[key]
        assert saved.tokens <= real.tokens + (real.stamp - saved.stamp) * real.rate + 1e-9
    assert 2 <= store.saves <= 5  # a lease of 15 tokens per save
    killed = store.load(key)
    MemoryRateLimiter.reset_all()  # killed: no close()
    successor = MemoryRateLimiter(seller, "na", {"op": (30.0, 40)}, store=store)
    assert successor.quota("op").tokens <= 1  # it believes no more than the real bucket holds
    MemoryRateLimiter.reset_all()
    assert killed is not None
    exact = MemoryRateLimiter(seller, "na", {"op": (30.0, 40)}, store=store)
    for _ in range(20):
        exact.acquire("op", max_wait=10)
    real = MemoryRateLimiter._buckets[key]
    exact.close()
    assert store.data[key] == real  # close gave the lease back
    MemoryRateLimiter.reset_all()
