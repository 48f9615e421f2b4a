"""Shared setup for the history tests: a sandbox with a long world, its connection, clean Variables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fixtures.airflow import delete_variables

#: Variables the history DAG writes: its ledgers, the sweep checkpoint it hands over to, rate-limit buckets.
PREFIXES = ("sp_api_history__", "sp_api_sync__", "sp_api_rate_limit__")


def _forget() -> None:
    from selling_partner.hooks.ratelimit import MemoryRateLimiter

    MemoryRateLimiter.reset_all()
    for prefix in PREFIXES:
        delete_variables(prefix)


@pytest.fixture
def history_env(airflow_db, sandbox_factory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Start a sandbox (``opts`` as ``serve``'s flags) and point ``sp_api_default`` at it.

    Reports are polled every 0.3 s and any wait over 0.2 s defers, so the tests see deferrals; a FATAL
    window is retried after 0.5 s. Set before ``load_dag`` (the DAG file reads them when parsed).
    """
    _forget()
    for name, value in {
        "SP_API_HISTORY_POLL_SECONDS": "0.3",
        "SP_API_HISTORY_DEFER_AFTER_SECONDS": "0.2",
        "SP_API_HISTORY_MIN_DEFERRAL_SECONDS": "0.2",
        "SP_API_HISTORY_FATAL_RETRY_WAIT_SECONDS": "0.5",
    }.items():
        monkeypatch.setenv(name, value)

    def start(*, extra: dict[str, Any] | None = None, **opts: Any) -> Any:
        opts.setdefault("time_scale", 600)
        sb = sandbox_factory(**opts)
        monkeypatch.setenv("AIRFLOW_CONN_SP_API_DEFAULT", sb.connection_uri(**(extra or {})))
        return sb

    yield start
    _forget()
