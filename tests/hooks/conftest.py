"""Helpers for hook tests: a connection for a sandbox, fresh in-process limiter and token caches."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selling_partner.hooks.auth import ACCESS_TOKENS, RESTRICTED_DATA_TOKENS
from selling_partner.hooks.orders import SellingPartnerOrdersHook
from selling_partner.hooks.ratelimit import DEFAULT_LIMITS, MemoryRateLimiter
from selling_partner.hooks.sp_api import SellingPartnerHook


def scaled_limits(time_scale: float) -> dict[str, list[float]]:
    """``rate_limits`` extra for a sandbox at ``time_scale``: Amazon's rates times the scale, same bursts.

    Without it the hook starts from Amazon's real rates and only learns the scaled ones from the
    ``x-amzn-RateLimit-Limit`` header, so a 429 before the first header would cost a real-time wait.
    """
    return {op: [rate * time_scale, burst] for op, (rate, burst) in DEFAULT_LIMITS.items()}


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Every test starts with full in-process buckets and no cached tokens (sandboxes differ per test)."""
    MemoryRateLimiter.reset_all()
    ACCESS_TOKENS.clear()
    RESTRICTED_DATA_TOKENS.clear()
    yield
    MemoryRateLimiter.reset_all()


@pytest.fixture
def hook_for(monkeypatch: pytest.MonkeyPatch) -> Callable[..., SellingPartnerHook]:
    """``hook_for(sandbox, **extra)``: a hook (``hook_class``, default the Orders hook) on an
    ``AIRFLOW_CONN_*`` connection to ``sandbox``; ``extra`` goes into the connection's extra."""
    hooks: list[SellingPartnerHook] = []

    def make(
        sandbox: Any,
        hook_kwargs: dict[str, Any] | None = None,
        hook_class: type[SellingPartnerHook] = SellingPartnerOrdersHook,
        **extra: Any,
    ) -> Any:
        conn_id = f"sp_test_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", sandbox.connection_uri(**extra))
        hook = hook_class(conn_id, **(hook_kwargs or {}))
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()
