"""Deployment settings shared by the package's DAGs (read by the dag-processor and scheduler).

One list of seller connections serves every DAG: ``SP_API_CONN_IDS`` (comma-separated; the older
``SP_API_SYNC_CONN_IDS`` is still read), default ``sp_api_default``.
"""

from __future__ import annotations

import os

DEFAULT_CONN_ID = "sp_api_default"
WAREHOUSE_CONN_ID = "warehouse_default"
#: The Airflow Variable holding the notifications' SQS queue URL (``AIRFLOW_VAR_SP_API_EVENTS_QUEUE_URL``).
EVENTS_QUEUE_VARIABLE = "sp_api_events_queue_url"
#: The ``aws`` connection to SQS (its extra ``endpoint_url`` may point at any SQS-compatible server).
EVENTS_AWS_CONN_ID = "aws_sp_api_events"


def seller_conn_ids(environ: dict[str, str] | None = None) -> list[str]:
    """The seller connections every DAG serves, in the order given, without duplicates."""
    env = os.environ if environ is None else environ
    raw = env.get("SP_API_CONN_IDS") or env.get("SP_API_SYNC_CONN_IDS") or DEFAULT_CONN_ID
    return list(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))


def env_seconds(name: str, default: float, environ: dict[str, str] | None = None) -> float:
    """A number of seconds from the environment (the DAGs' tunables), ``default`` when unset."""
    env = os.environ if environ is None else environ
    value = env.get(name, "")
    try:
        return float(value) if value.strip() else default
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
