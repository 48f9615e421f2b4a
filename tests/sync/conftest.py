"""Shared setup for the sync tests: clean rate-limit buckets and checkpoints, the sync DAG's connections."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fixtures.airflow import delete_variables

#: Variables the sync writes: checkpoints and (default ``variable`` backend) rate-limit buckets.
SYNC_VARIABLE_PREFIXES = ("sp_api_sync__", "sp_api_rate_limit__")


def forget_sync_state() -> None:
    """Forget checkpoints and buckets (in this process and in the metadata DB) of an earlier sandbox."""
    from selling_partner.hooks.ratelimit import MemoryRateLimiter

    MemoryRateLimiter.reset_all()
    for prefix in SYNC_VARIABLE_PREFIXES:
        delete_variables(prefix)


@pytest.fixture(autouse=True)
def _fresh_limiter() -> Iterator[None]:
    """Each test talks to a new sandbox (same seller id): forget this process's buckets of the last."""
    from selling_partner.hooks.ratelimit import MemoryRateLimiter

    MemoryRateLimiter.reset_all()
    yield
    MemoryRateLimiter.reset_all()


@pytest.fixture
def sync_env(airflow_db, sandbox_factory, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Start a sandbox and point ``sp_api_default`` at it; returns the sandbox.

    ``extra`` goes into the connection (``orders_api_version``, ``rate_limits``, ...); the sandbox's
    2-minute rule is shortened to ``lag`` seconds on both sides so fresh changes are visible quickly.
    Checkpoints and rate-limit buckets of an earlier sandbox are forgotten first.
    """
    forget_sync_state()

    def start(*, lag: float = 1.0, extra: dict[str, Any] | None = None, **opts: Any) -> Any:
        opts.setdefault("time_scale", 600)
        sb = sandbox_factory(min_before_lag=lag, **opts)
        conn_extra = {"min_before_lag_seconds": lag, **(extra or {})}
        monkeypatch.setenv("AIRFLOW_CONN_SP_API_DEFAULT", sb.connection_uri(**conn_extra))
        return sb

    yield start
    forget_sync_state()


def conn_json(sb: Any, **extra: Any) -> str:
    """The sandbox connection as ``AIRFLOW_CONN_*`` JSON (for subprocess environments)."""
    return json.dumps(json.loads(sb.connection_uri(**extra)))
