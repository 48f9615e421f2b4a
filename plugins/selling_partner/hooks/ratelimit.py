"""Proactive token-bucket rate limiting for SP-API, per (seller, region, operation).

SP-API limits are token buckets (rate r per second, burst B): over any span T at most ``B + r*T`` calls
are admitted. The limiter mirrors that bucket on the client so calls wait for a token instead of
provoking a 429:

* ``acquire(op, max_wait)`` refills the bucket, and - if the wait for one token is at most
  ``max_wait`` - *reserves* it (tokens may go negative, so waiting callers are served in order) and
  returns ``(True, wait)``; the caller sleeps ``wait`` then sends. Otherwise nothing is spent and it
  returns ``(False, wait)`` so the caller can defer.
* ``observe_rate(op, rate)`` applies the rate from ``x-amzn-RateLimit-Limit`` (up or down).
* ``penalize(op)`` empties the bucket after a 429 (which carries no rate header) and halves the rate,
  never below Amazon's documented default (:func:`rate_floor`); the next ``x-amzn-RateLimit-Limit``
  restores the applied rate. Without headers the bucket thus converges on the real rate.
* ``seconds_until_available(op)`` tells how long until the next token, without spending.

Backends: :class:`MemoryRateLimiter` (one process, ``threading.Lock``), :class:`PostgresRateLimiter`
(one row per bucket, one atomic SQL statement per operation, refill from the database clock) and
:class:`RedisRateLimiter` (Lua script with Redis ``TIME``). The shared backends let every worker and
DAG spend one budget.
"""

from __future__ import annotations

import hashlib
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

#: Amazon's default usage plans (rate per second, burst). Source: the models / D-RL (DESIGN.md).
DEFAULT_LIMITS: dict[str, tuple[float, float]] = {
    # Orders v2026-01-01
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    # Orders v0
    "getOrders": (0.0167, 20),
    "getOrderV0": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "getOrderBuyerInfo": (0.5, 30),
    "getOrderAddress": (0.5, 30),
    # Tokens
    "createRestrictedDataToken": (1.0, 10),
    # Notifications
    "createDestination": (1.0, 5),
    "getDestinations": (1.0, 5),
    "getDestination": (1.0, 5),
    "deleteDestination": (1.0, 5),
    "createSubscription": (1.0, 5),
    "getSubscription": (1.0, 5),
    "getSubscriptionById": (1.0, 5),
    "deleteSubscriptionById": (1.0, 5),
}
#: Used for an operation missing from the table (conservative).
FALLBACK_LIMIT = (1.0, 5.0)
MIN_RATE = 1e-6


@dataclass
class BucketState:
    """Tokens in one bucket at time ``stamp`` (seconds on the backend's clock)."""

    tokens: float
    rate: float
    burst: float
    stamp: float


def refill(state: BucketState, now: float) -> BucketState:
    """Return ``state`` refilled up to ``now`` at its rate, capped at its burst (pure)."""
    elapsed = max(0.0, now - state.stamp)
    tokens = min(state.burst, state.tokens + elapsed * state.rate)
    return BucketState(tokens, state.rate, state.burst, max(now, state.stamp))


def wait_for(tokens: float, rate: float, cost: float = 1.0) -> float:
    """Seconds until ``tokens`` reaches ``cost`` at ``rate`` (0 if already there)."""
    if tokens >= cost:
        return 0.0
    return (cost - tokens) / max(rate, MIN_RATE)


def reserve(
    state: BucketState, now: float, *, max_wait: float, cost: float = 1.0
) -> tuple[BucketState, bool, float]:
    """The reservation step (pure): refill, then spend ``cost`` if the wait is <= ``max_wait``.

    Returns ``(new_state, granted, wait)``. When granted the tokens may become negative and ``wait`` is
    the time until this reservation is covered; when refused nothing is spent.
    """
    state = refill(state, now)
    wait = wait_for(state.tokens, state.rate, cost)
    if wait <= max_wait:
        state.tokens -= cost
        return state, True, wait
    return state, False, wait


def rate_floor(operation: str) -> float:
    """Lowest rate a 429 may push a bucket to: Amazon's documented default for ``operation``."""
    return float(DEFAULT_LIMITS.get(operation, FALLBACK_LIMIT)[0])


def penalized(state: BucketState, now: float, floor: float) -> BucketState:
    """The bucket after a 429 (pure): refilled, emptied (reservations kept), rate halved down to ``floor``."""
    state = refill(state, now)
    state.tokens = min(state.tokens, 0.0)
    state.rate = max(min(state.rate, floor), state.rate / 2)
    return state


def bucket_key(seller_id: str, region: str, operation: str) -> str:
    """Key of one bucket: ``seller:region:operation``."""
    return f"{seller_id or '-'}:{region or '-'}:{operation}"


def default_limit(operation: str, overrides: dict[str, Any] | None = None) -> tuple[float, float]:
    """(rate, burst) for ``operation``: ``overrides`` (connection extra) first, then Amazon's defaults."""
    if overrides and operation in overrides:
        rate, burst = overrides[operation]
        return float(rate), float(burst)
    rate, burst = DEFAULT_LIMITS.get(operation, FALLBACK_LIMIT)
    return float(rate), float(burst)


class RateLimiter(ABC):
    """A set of token buckets for one (seller, region); operations name the buckets."""

    def __init__(self, seller_id: str, region: str, overrides: dict[str, Any] | None = None) -> None:
        self.seller_id = seller_id
        self.region = region
        self.overrides = dict(overrides or {})

    def key(self, operation: str) -> str:
        """Backend key of ``operation``'s bucket."""
        return bucket_key(self.seller_id, self.region, operation)

    def limit(self, operation: str) -> tuple[float, float]:
        """Seed (rate, burst) of ``operation``."""
        return default_limit(operation, self.overrides)

    @abstractmethod
    def acquire(self, operation: str, max_wait: float = float("inf")) -> tuple[bool, float]:
        """Reserve one token if the wait is <= ``max_wait``; return ``(granted, wait_seconds)``."""

    @abstractmethod
    def seconds_until_available(self, operation: str) -> float:
        """Seconds until one token is available (0 if now); spends nothing."""

    @abstractmethod
    def observe_rate(self, operation: str, rate: float) -> None:
        """Apply the rate Amazon reported in ``x-amzn-RateLimit-Limit``."""

    @abstractmethod
    def penalize(self, operation: str) -> None:
        """A 429 arrived: empty the bucket (keep queued reservations), halve the rate (``penalized``)."""

    def refund(self, operation: str) -> None:  # noqa: B027 - optional hook for backends
        """Give back a reserved token that was not used (default: nothing)."""

    def close(self) -> None:  # noqa: B027 - only backends with connections need it
        """Release backend resources."""


class MemoryRateLimiter(RateLimiter):
    """In-process buckets shared by every hook of this process (``threading.Lock``)."""

    _lock = threading.Lock()
    _buckets: dict[str, BucketState] = {}

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _state(self, operation: str, now: float) -> BucketState:
        key = self.key(operation)
        state = self._buckets.get(key)
        if state is None:
            rate, burst = self.limit(operation)
            state = BucketState(burst, rate, burst, now)
            self._buckets[key] = state
        return state

    def acquire(self, operation: str, max_wait: float = float("inf")) -> tuple[bool, float]:
        with self._lock:
            now = self._now()
            new, granted, wait = reserve(self._state(operation, now), now, max_wait=max_wait)
            self._buckets[self.key(operation)] = new
            return granted, wait

    def seconds_until_available(self, operation: str) -> float:
        with self._lock:
            now = self._now()
            state = refill(self._state(operation, now), now)
            return wait_for(state.tokens, state.rate)

    def observe_rate(self, operation: str, rate: float) -> None:
        if rate <= 0:
            return
        with self._lock:
            now = self._now()
            state = refill(self._state(operation, now), now)
            state.rate = float(rate)
            self._buckets[self.key(operation)] = state

    def penalize(self, operation: str) -> None:
        with self._lock:
            now = self._now()
            self._buckets[self.key(operation)] = penalized(
                self._state(operation, now), now, rate_floor(operation)
            )

    def refund(self, operation: str) -> None:
        with self._lock:
            now = self._now()
            state = refill(self._state(operation, now), now)
            state.tokens = min(state.burst, state.tokens + 1.0)
            self._buckets[self.key(operation)] = state

    @classmethod
    def reset_all(cls) -> None:
        """Forget every bucket of this process (tests)."""
        with cls._lock:
            cls._buckets.clear()


# --- PostgreSQL -------------------------------------------------------------------------------------

PG_TABLE = "sp_rate_limit_buckets"
PG_DDL = f"""
CREATE TABLE IF NOT EXISTS {PG_TABLE} (
    bucket_key   text PRIMARY KEY,
    tokens       double precision NOT NULL,
    rate         double precision NOT NULL,
    burst        double precision NOT NULL,
    updated_at   timestamptz NOT NULL,
    last_wait    double precision NOT NULL DEFAULT 0,
    last_granted boolean NOT NULL DEFAULT true
)
"""
# Refill from the database clock, capped at burst. ``clock_timestamp()`` is read once per statement
# in the CTE; ``GREATEST`` keeps the stamp monotonic if statements commit out of order.
_PG_NOW = "(SELECT clock_timestamp() AS ts)"
_PG_REFILLED = "LEAST(b.burst, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM (n.ts - b.updated_at))) * b.rate)"
PG_SEED = f"""
INSERT INTO {PG_TABLE} (bucket_key, tokens, rate, burst, updated_at)
VALUES (%(key)s, %(burst)s, %(rate)s, %(burst)s, clock_timestamp())
ON CONFLICT (bucket_key) DO NOTHING
"""
#: One atomic statement: row lock, refill, reserve if the wait is <= max_wait, record the wait.
PG_ACQUIRE = f"""
UPDATE {PG_TABLE} AS b SET
    tokens = {_PG_REFILLED} - CASE WHEN {_PG_REFILLED} >= 1
                                     OR (1 - {_PG_REFILLED}) / GREATEST(b.rate, 1e-6) <= %(max_wait)s
                                   THEN 1 ELSE 0 END,
    last_wait = CASE WHEN {_PG_REFILLED} >= 1 THEN 0
                     ELSE (1 - {_PG_REFILLED}) / GREATEST(b.rate, 1e-6) END,
    last_granted = ({_PG_REFILLED} >= 1
                    OR (1 - {_PG_REFILLED}) / GREATEST(b.rate, 1e-6) <= %(max_wait)s),
    updated_at = GREATEST(b.updated_at, n.ts)
FROM {_PG_NOW} AS n
WHERE b.bucket_key = %(key)s
RETURNING b.last_granted, b.last_wait
"""
PG_PEEK = f"""
SELECT CASE WHEN {_PG_REFILLED} >= 1 THEN 0 ELSE (1 - {_PG_REFILLED}) / GREATEST(b.rate, 1e-6) END
FROM {PG_TABLE} AS b, {_PG_NOW} AS n WHERE b.bucket_key = %(key)s
"""
PG_OBSERVE = f"""
UPDATE {PG_TABLE} AS b SET tokens = {_PG_REFILLED}, rate = %(rate)s, updated_at = GREATEST(b.updated_at, n.ts)
FROM {_PG_NOW} AS n WHERE b.bucket_key = %(key)s AND b.rate <> %(rate)s
"""
PG_PENALIZE = f"""
UPDATE {PG_TABLE} AS b
SET tokens = LEAST({_PG_REFILLED}, 0), rate = GREATEST(LEAST(b.rate, %(floor)s), b.rate / 2),
    updated_at = GREATEST(b.updated_at, n.ts)
FROM {_PG_NOW} AS n WHERE b.bucket_key = %(key)s
"""
PG_REFUND = f"""
UPDATE {PG_TABLE} AS b
SET tokens = LEAST(b.burst, {_PG_REFILLED} + 1), updated_at = GREATEST(b.updated_at, n.ts)
FROM {_PG_NOW} AS n WHERE b.bucket_key = %(key)s
"""


class PostgresRateLimiter(RateLimiter):
    """Buckets in a PostgreSQL table shared by every process (psycopg 3, autocommit).

    :param dsn: libpq connection string or URI (e.g. the warehouse database)
    """

    _ddl_done: set[str] = set()
    _ddl_lock = threading.Lock()

    def __init__(
        self, seller_id: str, region: str, dsn: str, overrides: dict[str, Any] | None = None
    ) -> None:
        super().__init__(seller_id, region, overrides)
        self.dsn = dsn
        self._conn: Any = None
        self._seeded: set[str] = set()
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
            self._seeded.clear()
            dsn_key = hashlib.sha256(self.dsn.encode()).hexdigest()
            with self._ddl_lock:
                if dsn_key not in self._ddl_done:
                    # Serialise concurrent CREATE TABLE IF NOT EXISTS across processes.
                    with self._conn.transaction():
                        self._conn.execute("SELECT pg_advisory_xact_lock(72656931)")
                        self._conn.execute(PG_DDL)
                    self._ddl_done.add(dsn_key)
        return self._conn

    def _execute(self, sql: str, operation: str, **params: Any) -> Any:
        """Run one statement on ``operation``'s bucket (seeding the row first); return its row or None."""
        with self._lock:
            conn = self._connection()
            key = self.key(operation)
            for _ in range(2):
                if key not in self._seeded:
                    rate, burst = self.limit(operation)
                    conn.execute(PG_SEED, {"key": key, "rate": rate, "burst": burst})
                    self._seeded.add(key)
                cursor = conn.execute(sql, {"key": key, **params})
                if cursor.description is None:
                    return None
                row = cursor.fetchone()
                if row is not None:
                    return row
                self._seeded.discard(key)  # the row was removed meanwhile: seed it again
            raise RuntimeError(f"rate limit bucket {key!r} could not be created")

    def acquire(self, operation: str, max_wait: float = float("inf")) -> tuple[bool, float]:
        max_wait = min(max_wait, 1e12)
        granted, wait = self._execute(PG_ACQUIRE, operation, max_wait=max_wait)
        return bool(granted), float(wait)

    def seconds_until_available(self, operation: str) -> float:
        (wait,) = self._execute(PG_PEEK, operation)
        return float(wait)

    def observe_rate(self, operation: str, rate: float) -> None:
        if rate > 0:
            self._execute(PG_OBSERVE, operation, rate=float(rate))

    def penalize(self, operation: str) -> None:
        self._execute(PG_PENALIZE, operation, floor=rate_floor(operation))

    def refund(self, operation: str) -> None:
        self._execute(PG_REFUND, operation)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# --- Redis ------------------------------------------------------------------------------------------

#: KEYS[1] bucket hash; ARGV: mode, rate, burst, max_wait, new_rate (the floor for 'penalize').
#: Uses Redis TIME (the server's clock).
REDIS_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local h = redis.call('HMGET', KEYS[1], 'tokens', 'rate', 'burst', 'stamp')
local tokens, rate, burst, stamp = tonumber(h[1]), tonumber(h[2]), tonumber(h[3]), tonumber(h[4])
if tokens == nil then
  rate = tonumber(ARGV[2]); burst = tonumber(ARGV[3]); tokens = burst; stamp = now
end
local elapsed = now - stamp
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
if now > stamp then stamp = now end
local mode = ARGV[1]
local granted = 1
local wait = 0
if tokens < 1 then wait = (1 - tokens) / math.max(rate, 1e-6) end
if mode == 'acquire' then
  if wait <= tonumber(ARGV[4]) then tokens = tokens - 1 else granted = 0 end
elseif mode == 'rate' then
  rate = tonumber(ARGV[5])
elseif mode == 'penalize' then
  tokens = math.min(tokens, 0)
  rate = math.max(math.min(rate, tonumber(ARGV[5])), rate / 2)
elseif mode == 'refund' then
  tokens = math.min(burst, tokens + 1)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'rate', tostring(rate), 'burst', tostring(burst),
           'stamp', tostring(stamp))
redis.call('EXPIRE', KEYS[1], 86400)
return {granted, tostring(wait)}
"""


class RedisRateLimiter(RateLimiter):
    """Buckets in Redis hashes (``sp_rate_limit:<key>``), updated by one Lua script using ``TIME``.

    :param dsn: Redis URL, e.g. ``redis://127.0.0.1:6379/0``
    """

    prefix = "sp_rate_limit:"

    def __init__(
        self, seller_id: str, region: str, dsn: str, overrides: dict[str, Any] | None = None
    ) -> None:
        super().__init__(seller_id, region, overrides)
        import redis

        self.dsn = dsn
        self._client = redis.Redis.from_url(dsn, socket_timeout=10, socket_connect_timeout=10)
        self._script = self._client.register_script(REDIS_LUA)

    def _run(
        self, mode: str, operation: str, max_wait: float = 0.0, new_rate: float = 0.0
    ) -> tuple[bool, float]:
        rate, burst = self.limit(operation)
        granted, wait = self._script(
            keys=[self.prefix + self.key(operation)],
            args=[mode, repr(rate), repr(burst), repr(min(max_wait, 1e12)), repr(new_rate)],
        )
        return bool(int(granted)), float(wait)

    def acquire(self, operation: str, max_wait: float = float("inf")) -> tuple[bool, float]:
        return self._run("acquire", operation, max_wait=max_wait)

    def seconds_until_available(self, operation: str) -> float:
        return self._run("peek", operation)[1]

    def observe_rate(self, operation: str, rate: float) -> None:
        if rate > 0:
            self._run("rate", operation, new_rate=float(rate))

    def penalize(self, operation: str) -> None:
        self._run("penalize", operation, new_rate=rate_floor(operation))

    def refund(self, operation: str) -> None:
        self._run("refund", operation)

    def close(self) -> None:
        self._client.close()


def build_limiter(
    backend: str,
    *,
    seller_id: str,
    region: str,
    dsn: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> RateLimiter:
    """Build the limiter named by a connection's ``rate_limit_backend`` (memory, postgres, redis)."""
    backend = (backend or "memory").lower()
    if backend == "memory":
        return MemoryRateLimiter(seller_id, region, overrides)
    if backend in ("postgres", "postgresql", "redis"):
        if not dsn:
            raise ValueError(f"rate_limit_backend {backend!r} needs rate_limit_dsn (or rate_limit_conn_id)")
        if backend == "redis":
            return RedisRateLimiter(seller_id, region, dsn, overrides)
        return PostgresRateLimiter(seller_id, region, dsn, overrides)
    raise ValueError(f"unknown rate_limit_backend {backend!r}; expected memory, postgres or redis")
