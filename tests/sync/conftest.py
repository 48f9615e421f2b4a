"""Shared setup for the sync tests: clean rate-limit buckets per test (``sync_env`` lives in
tests/fixtures/seller.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.seller import conn_json, forget_sync_state

__all__ = ["conn_json", "forget_sync_state"]


@pytest.fixture(autouse=True)
def _fresh_limiter() -> Iterator[None]:
    """Each test talks to a new sandbox (same seller id): forget this process's buckets of the last."""
    from selling_partner.hooks.ratelimit import MemoryRateLimiter

    MemoryRateLimiter.reset_all()
    yield
    MemoryRateLimiter.reset_all()
