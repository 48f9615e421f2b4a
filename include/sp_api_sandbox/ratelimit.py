"""Token buckets with Amazon's default usage plans, scaled by the sandbox's time scale.

A bucket holds at most ``burst`` tokens and refills at ``rate * time_scale`` tokens per second;
a request takes one token or is throttled (HTTP 429). Buckets start full, as a fresh SP-API
application's do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: operation -> (requests per second, burst): Amazon's default usage plans (usage-plans-and-rate-limits).
USAGE_PLANS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "getOrders": (0.0167, 20),
    "getOrderV0": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "getOrderBuyerInfo": (0.5, 30),
    "getOrderAddress": (0.5, 30),
    "createRestrictedDataToken": (1.0, 10),
    "getDestinations": (1.0, 5),
    "createDestination": (1.0, 5),
    "getDestination": (1.0, 5),
    "deleteDestination": (1.0, 5),
    "getSubscription": (1.0, 5),
    "createSubscription": (1.0, 5),
    "getSubscriptionById": (1.0, 5),
    "deleteSubscriptionById": (1.0, 5),
    # Reports 2021-06-30
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReports": (0.0222, 10),
    "cancelReport": (0.0222, 10),
    "getReportDocument": (0.0167, 15),
}


def format_rate(rate: float) -> str:
    """Render a rate for ``x-amzn-RateLimit-Limit`` (``0.336``, ``300``)."""
    return f"{rate:.6g}"


@dataclass
class TokenBucket:
    """One operation's bucket. Not thread-safe on its own; ``RateLimiter`` locks around it."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, now: float) -> bool:
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Per-operation token buckets; ``time_scale`` multiplies every rate (burst unchanged)."""

    def __init__(
        self,
        time_scale: float = 1.0,
        plans: dict[str, tuple[float, int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._plans = dict(plans or USAGE_PLANS)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}

    def rate(self, operation: str) -> float:
        """The scaled rate of ``operation`` in requests per second."""
        return self._plans[operation][0] * self.time_scale

    def burst(self, operation: str) -> int:
        return self._plans[operation][1]

    def limited(self, operation: str) -> bool:
        return operation in self._plans

    def try_acquire(self, operation: str) -> bool:
        """Take one token for ``operation``; False means the caller must answer 429."""
        if operation not in self._plans:
            return True
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(operation)
            if bucket is None:
                bucket = TokenBucket(
                    self.rate(operation), self.burst(operation), float(self.burst(operation)), now
                )
                self._buckets[operation] = bucket
            return bucket.try_take(now)

    def reset(self) -> None:
        """Refill every bucket (used by tests through the admin API)."""
        with self._lock:
            self._buckets.clear()
