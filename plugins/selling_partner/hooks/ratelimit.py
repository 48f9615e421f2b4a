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
* ``quota(op)`` tells how full the bucket is and how long until the next token, without spending.

The bucket must outlive the process: in a deployment every task try and every resume after a deferral
is a new process, and a bucket that starts full there while Amazon's is empty earns a 429. Backends:

* :class:`MemoryRateLimiter` with a :class:`BucketStore` - the default (``variable``): buckets live in
  process memory and are saved to an Airflow Variable per bucket after every change, and loaded from it
  when a process first uses the bucket. No extra service; right when one task at a time spends a
  (seller, operation) budget, which the package's DAGs guarantee (``max_active_runs=1``).
* :class:`MemoryRateLimiter` without a store (``memory``): one process only (scripts, tests).
* :class:`PostgresRateLimiter` (one row per bucket, one atomic SQL statement per operation, refill
  from the database clock) and :class:`RedisRateLimiter` (Lua script with Redis ``TIME``): shared by
  every worker and DAG at once.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Amazon's default usage plans (rate per second, burst): the models and
#: developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits.
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
    # Reports 2021-06-30
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReports": (0.0222, 10),
    "cancelReport": (0.0222, 10),
    "getReportDocument": (0.0167, 15),
}
#: Used for an operation missing from the table (conservative).
FALLBACK_LIMIT = (1.0, 5.0)
MIN_RATE = 1e-6


@dataclass
class BucketState:
    """Tokens in one bucket at time ``stamp`` (seconds since the epoch on the backend's clock)."""

    tokens: float
    rate: float
    burst: float
    stamp: float


@dataclass(frozen=True)
class Quota:
    """A bucket seen from outside: tokens now (negative = reserved ahead), its size and rate, the wait."""

    tokens: float
    burst: float
    rate: float
    wait: float

    def describe(self, operation: str) -> str:
        """``searchOrders quota 12/20 at 0.0056/s, next token now`` (for progress logs)."""
        left = max(0, math.floor(self.tokens))
        when = (
            "now"
            if self.wait <= 0
            else f"in {self.wait:.0f} s"
            if self.wait >= 1
            else f"in {self.wait:.1f} s"
        )
        return f"{operation} quota {left}/{math.floor(self.burst)} at {self.rate:g}/s, next token {when}"


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


#: At most / at least this long after a refilled token a request is sent (see :func:`send_margin`).
SEND_MARGIN_SECONDS = 0.25
MIN_SEND_MARGIN_SECONDS = 0.02


def send_margin(rate: float) -> float:
    """Extra wait before a request that waited for a refilled token: a quarter of a token's refill
    time, within [:data:`MIN_SEND_MARGIN_SECONDS`, :data:`SEND_MARGIN_SECONDS`]. It shifts every later
    request equally (a late request finds its next token earlier), so the rate the bucket allows is kept
    while arrivals never run ahead of Amazon's bucket by the network's jitter (the floor matters for
    time-scaled sandboxes, whose tokens refill in milliseconds)."""
    return min(SEND_MARGIN_SECONDS, max(MIN_SEND_MARGIN_SECONDS, 0.25 / max(rate, MIN_RATE)))


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
    def quota(self, operation: str) -> Quota:
        """The bucket now (tokens, burst, rate, seconds until one token); spends nothing."""

    def seconds_until_available(self, operation: str) -> float:
        """Seconds until one token is available (0 if now); spends nothing."""
        return self.quota(operation).wait

    @abstractmethod
    def observe_rate(self, operation: str, rate: float) -> None:
        """Apply the rate Amazon reported in ``x-amzn-RateLimit-Limit``."""

    @abstractmethod
    def penalize(self, operation: str) -> None:
        """A 429 arrived: empty the bucket (keep queued reservations), halve the rate (``penalized``)."""

    def close(self) -> None:  # noqa: B027 - only backends with connections need it
        """Release backend resources."""


# --- in-process buckets, optionally persisted -------------------------------------------------------


class BucketStore(Protocol):
    """Where a process keeps its buckets between processes (load when first used, save after changes)."""

    def load(self, key: str) -> BucketState | None:
        """The saved bucket, or ``None``."""
        ...

    def save(self, key: str, state: BucketState) -> None:
        """Persist the bucket."""
        ...


def dumps_bucket(state: BucketState) -> str:
    """A bucket as the JSON kept in a Variable (readable in the Variables view)."""
    return json.dumps(
        {
            "tokens": round(state.tokens, 6),
            "rate": state.rate,
            "burst": state.burst,
            "stamp": round(state.stamp, 6),
            "stamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.stamp)),
        },
        sort_keys=True,
    )


def loads_bucket(raw: str | None) -> BucketState | None:
    """Parse :func:`dumps_bucket` output; ``None`` (start full) for anything unreadable."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        state = BucketState(
            float(data["tokens"]), float(data["rate"]), float(data["burst"]), float(data["stamp"])
        )
    except (ValueError, KeyError, TypeError):
        return None
    if not all(math.isfinite(v) for v in (state.tokens, state.rate, state.burst, state.stamp)):
        return None
    if state.rate <= 0 or state.burst < 1:
        return None
    return state


def in_task_process() -> bool:
    """True inside a running Airflow task (the Task SDK can read and write Variables there)."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover - Airflow without the Task SDK
        return False
    return hasattr(task_runner, "SUPERVISOR_COMMS")


VARIABLE_PREFIX = "sp_api_rate_limit__"
VARIABLE_DESCRIPTION = (
    "SP-API token bucket of one (seller, region, operation), saved by the selling_partner hook after every "
    "call so the next task process (a retry, or a resume after a deferral) starts where Amazon's bucket "
    "is. Safe to delete: the next call then assumes a full bucket."
)


def variable_key(bucket: str) -> str:
    """Variable key of a bucket key ``seller:region:operation``."""
    return VARIABLE_PREFIX + bucket.replace(":", "__")


class VariableBucketStore:
    """Buckets in Airflow Variables, one per bucket (``sp_api_rate_limit__<seller>__<region>__<op>``).

    Variables can be read and written only inside a running task; elsewhere (the API server's connection
    test, scripts) the store does nothing and the buckets stay in process memory.
    """

    def __init__(self) -> None:
        self._enabled: bool | None = None

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            self._enabled = in_task_process()
            if not self._enabled:
                log.debug("rate limiter: not inside an Airflow task; buckets are kept in this process only")
        return self._enabled

    def load(self, key: str) -> BucketState | None:
        if not self.enabled:
            return None
        from airflow.sdk import Variable

        return loads_bucket(Variable.get(variable_key(key), default=None))

    def save(self, key: str, state: BucketState) -> None:
        if not self.enabled:
            return
        from airflow.sdk import Variable

        Variable.set(variable_key(key), dumps_bucket(state), description=VARIABLE_DESCRIPTION)


class MemoryRateLimiter(RateLimiter):
    """Buckets in this process, shared by every hook of the process (``threading.Lock``).

    With a ``store`` a bucket is loaded from it when the process first uses it and saved before a call
    it admits is sent, so the next process continues from the same state. To keep fast operations fast
    (getOrder at 0.5/s and above), a save may *lease* up to half a second of tokens ahead: it records
    the bucket as if that many more calls had already been made. What is saved is therefore never fuller
    than the real bucket (a process killed with a lease outstanding leaves its successor a short wait,
    never a 429), and ``close()`` saves the exact state.
    """

    _lock = threading.Lock()
    _buckets: dict[str, BucketState] = {}
    #: What the store holds for each bucket of this process (a lower bound of the real bucket).
    _saved: dict[str, BucketState] = {}
    #: Seconds of tokens a save may lease ahead; at most this many tokens.
    LEASE_SECONDS = 0.5
    MAX_LEASE = 15

    def __init__(
        self,
        seller_id: str,
        region: str,
        overrides: dict[str, Any] | None = None,
        *,
        store: BucketStore | None = None,
    ) -> None:
        super().__init__(seller_id, region, overrides)
        self.store = store

    @staticmethod
    def _now() -> float:
        return time.time()

    def _state(self, operation: str, now: float) -> BucketState:
        key = self.key(operation)
        state = self._buckets.get(key)
        if state is None:
            state = self.store.load(key) if self.store is not None else None
            if state is None:
                rate, burst = self.limit(operation)
                state = BucketState(burst, rate, burst, now)
            else:
                self._saved[key] = BucketState(state.tokens, state.rate, state.burst, state.stamp)
            self._buckets[key] = state
        return state

    def _leased(self, key: str, state: BucketState) -> bool | None:
        """Whether the store holds less than ``state`` (a lease is outstanding): True; the same: None;
        more than the real bucket (must save now), or nothing saved yet: False."""
        saved = self._saved.get(key)
        if saved is None or saved.rate != state.rate:
            return False
        held = refill(saved, state.stamp).tokens
        if held > state.tokens + 1e-9:
            return False
        return True if held < state.tokens - 1e-9 else None

    def _save(self, key: str, state: BucketState, lease: float = 0.0) -> None:
        saved = BucketState(state.tokens - lease, state.rate, state.burst, state.stamp)
        assert self.store is not None
        self.store.save(key, saved)
        self._saved[key] = saved

    def _put(self, operation: str, state: BucketState, *, spent: bool = False) -> None:
        """Keep ``state``; persist it unless a lease already covers it (``spent``: a reservation)."""
        key = self.key(operation)
        self._buckets[key] = state
        if self.store is None:
            return
        if spent and self._leased(key, state) is not False:
            return  # what the store holds is still no fuller than the real bucket
        lease = min(float(self.MAX_LEASE), math.floor(state.rate * self.LEASE_SECONDS)) if spent else 0.0
        self._save(key, state, lease)

    def acquire(self, operation: str, max_wait: float = float("inf")) -> tuple[bool, float]:
        with self._lock:
            now = self._now()
            new, granted, wait = reserve(self._state(operation, now), now, max_wait=max_wait)
            if granted:
                self._put(operation, new, spent=True)
            else:
                self._buckets[self.key(operation)] = new
            return granted, wait

    def quota(self, operation: str) -> Quota:
        with self._lock:
            now = self._now()
            state = refill(self._state(operation, now), now)
            return Quota(state.tokens, state.burst, state.rate, wait_for(state.tokens, state.rate))

    def observe_rate(self, operation: str, rate: float) -> None:
        if rate <= 0:
            return
        with self._lock:
            now = self._now()
            state = refill(self._state(operation, now), now)
            if state.rate != rate:
                state.rate = float(rate)
                self._put(operation, state)

    def penalize(self, operation: str) -> None:
        with self._lock:
            now = self._now()
            self._put(operation, penalized(self._state(operation, now), now, rate_floor(operation)))

    def close(self) -> None:
        """Give back what leases hold: save the exact state of this limiter's buckets."""
        if self.store is None:
            return
        prefix = self.key("")
        with self._lock:
            for key, state in self._buckets.items():
                if key.startswith(prefix) and key in self._saved and self._leased(key, state) is not None:
                    self._save(key, state)

    @classmethod
    def reset_all(cls) -> None:
        """Forget every bucket of this process (tests)."""
        with cls._lock:
            cls._buckets.clear()
            cls._saved.clear()


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
_PG_WAIT = f"CASE WHEN {_PG_REFILLED} >= 1 THEN 0 ELSE (1 - {_PG_REFILLED}) / GREATEST(b.rate, 1e-6) END"
PG_SEED = f"""
INSERT INTO {PG_TABLE} (bucket_key, tokens, rate, burst, updated_at)
VALUES (%(key)s, %(burst)s, %(rate)s, %(burst)s, clock_timestamp())
ON CONFLICT (bucket_key) DO NOTHING
"""
#: One atomic statement: row lock, refill, reserve if the wait is <= max_wait, record the wait.
PG_ACQUIRE = f"""
UPDATE {PG_TABLE} AS b SET
    tokens = {_PG_REFILLED} - CASE WHEN {_PG_WAIT} <= %(max_wait)s THEN 1 ELSE 0 END,
    last_wait = {_PG_WAIT},
    last_granted = ({_PG_WAIT} <= %(max_wait)s),
    updated_at = GREATEST(b.updated_at, n.ts)
FROM {_PG_NOW} AS n
WHERE b.bucket_key = %(key)s
RETURNING b.last_granted, b.last_wait
"""
PG_QUOTA = f"""
SELECT {_PG_REFILLED}, b.burst, b.rate, {_PG_WAIT}
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
#: Arbitrary constant key of the advisory lock that serialises the table's creation across processes.
PG_DDL_LOCK_KEY = 72656931


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
            with self._ddl_lock:
                if self.dsn not in self._ddl_done:
                    with self._conn.transaction():
                        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_DDL_LOCK_KEY,))
                        self._conn.execute(PG_DDL)
                    self._ddl_done.add(self.dsn)
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
        granted, wait = self._execute(PG_ACQUIRE, operation, max_wait=min(max_wait, 1e12))
        return bool(granted), float(wait)

    def quota(self, operation: str) -> Quota:
        tokens, burst, rate, wait = self._execute(PG_QUOTA, operation)
        return Quota(float(tokens), float(burst), float(rate), float(wait))

    def observe_rate(self, operation: str, rate: float) -> None:
        if rate > 0:
            self._execute(PG_OBSERVE, operation, rate=float(rate))

    def penalize(self, operation: str) -> None:
        self._execute(PG_PENALIZE, operation, floor=rate_floor(operation))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# --- Redis ------------------------------------------------------------------------------------------

#: KEYS[1] bucket hash; ARGV: mode, rate, burst, max_wait, new_rate (the floor for 'penalize').
#: Uses Redis TIME (the server's clock). Returns {granted, wait, tokens, burst, rate}.
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
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'rate', tostring(rate), 'burst', tostring(burst),
           'stamp', tostring(stamp))
redis.call('EXPIRE', KEYS[1], 86400)
return {granted, tostring(wait), tostring(tokens), tostring(burst), tostring(rate)}
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

    def _run(self, mode: str, operation: str, max_wait: float = 0.0, new_rate: float = 0.0) -> list[Any]:
        rate, burst = self.limit(operation)
        return list(
            self._script(
                keys=[self.prefix + self.key(operation)],
                args=[mode, repr(rate), repr(burst), repr(min(max_wait, 1e12)), repr(new_rate)],
            )
        )

    def acquire(self, operation: str, max_wait: float = float("inf")) -> tuple[bool, float]:
        granted, wait, *_ = self._run("acquire", operation, max_wait=max_wait)
        return bool(int(granted)), float(wait)

    def quota(self, operation: str) -> Quota:
        _, wait, tokens, burst, rate = self._run("peek", operation)
        return Quota(float(tokens), float(burst), float(rate), float(wait))

    def observe_rate(self, operation: str, rate: float) -> None:
        if rate > 0:
            self._run("rate", operation, new_rate=float(rate))

    def penalize(self, operation: str) -> None:
        self._run("penalize", operation, new_rate=rate_floor(operation))

    def close(self) -> None:
        self._client.close()


BACKENDS = ("variable", "memory", "postgres", "redis")


def build_limiter(
    backend: str,
    *,
    seller_id: str,
    region: str,
    dsn: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> RateLimiter:
    """Build the limiter a connection's ``rate_limit_backend`` names (see :data:`BACKENDS`)."""
    if backend == "variable":
        return MemoryRateLimiter(seller_id, region, overrides, store=VariableBucketStore())
    if backend == "memory":
        return MemoryRateLimiter(seller_id, region, overrides)
    if backend in ("postgres", "redis"):
        if not dsn:
            raise ValueError(f"rate_limit_backend {backend!r} needs rate_limit_dsn (or rate_limit_conn_id)")
        if backend == "redis":
            return RedisRateLimiter(seller_id, region, dsn, overrides)
        return PostgresRateLimiter(seller_id, region, dsn, overrides)
    raise ValueError(f"unknown rate_limit_backend {backend!r}; expected one of {', '.join(BACKENDS)}")
