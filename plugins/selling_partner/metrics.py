"""The package's metrics, sent through Airflow's stats (StatsD when ``[metrics] statsd_on`` is set).

Every name starts with ``sp_api.``; Airflow's ``[metrics] statsd_prefix`` (default ``airflow``) comes
before it. Names carry the operation or seller connection as their last part, since plain StatsD has
no tags. The full list is in the README (Metrics). Metrics never carry buyer data.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "sp_api"
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def _name(*parts: str) -> str:
    return ".".join([PREFIX, *(_UNSAFE.sub("_", p) for p in parts)])


def _stats() -> Any:
    from airflow.sdk.observability.stats import Stats

    return Stats


def incr(*parts: str, count: int = 1) -> None:
    """Add ``count`` to the counter ``sp_api.<parts>`` (nothing when ``count`` is 0)."""
    if count:
        try:
            _stats().incr(_name(*parts), count)
        except Exception:  # metrics must never break a task
            log.debug("metric %s not sent", _name(*parts), exc_info=True)


def gauge(*parts: str, value: float) -> None:
    """Set the gauge ``sp_api.<parts>`` to ``value``."""
    try:
        _stats().gauge(_name(*parts), value)
    except Exception:
        log.debug("metric %s not sent", _name(*parts), exc_info=True)
