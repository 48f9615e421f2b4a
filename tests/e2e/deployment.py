"""The deployment both the distributed end-to-end test and ``docker-compose.yaml`` describe.

One definition of the connection ids, Airflow Variables and shared services a distributed deployment
of this package needs; ``tests/e2e/test_distributed.py`` builds its cluster's environment from it and
``tests/test_compose.py`` checks that ``docker-compose.yaml`` sets exactly the same names. Only the
addresses differ (loopback ports here, service names in compose) - and the test's faster clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from selling_partner.settings import (
    DEFAULT_CONN_ID,
    EVENTS_AWS_CONN_ID,
    EVENTS_QUEUE_VARIABLE,
    WAREHOUSE_CONN_ID,
)

#: The one seller connection (``SP_API_CONN_IDS``), the warehouse and the SQS connection.
SELLER_CONN_ID = DEFAULT_CONN_ID
CONN_TYPES: dict[str, str] = {
    SELLER_CONN_ID: "amazon_sp_api",
    WAREHOUSE_CONN_ID: "postgres",
    EVENTS_AWS_CONN_ID: "aws",
}
#: Airflow Variables set from the environment (``AIRFLOW_VAR_*``).
VARIABLES: tuple[str, ...] = (EVENTS_QUEUE_VARIABLE,)
#: The SQS queue the sandbox publishes to and the event DAG reads.
QUEUE_NAME = "sp-api-notifications"
#: The rate-limit backend every worker shares (the connection's ``rate_limit_backend``).
RATE_LIMIT_BACKEND = "redis"
#: The DAGs a deployment turns on (the setup DAG is triggered by hand, once per seller).
DAG_IDS: tuple[str, ...] = ("sp_api_orders_sync", "sp_api_order_events", "sp_api_order_enrich")
SETUP_DAG_ID = "sp_api_notifications_setup"
EXECUTOR = "CeleryExecutor"


def conn_env(conn_id: str) -> str:
    """``AIRFLOW_CONN_<ID>``: the environment variable that defines connection ``conn_id``."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def var_env(key: str) -> str:
    """``AIRFLOW_VAR_<KEY>``: the environment variable that defines Variable ``key``."""
    return f"AIRFLOW_VAR_{key.upper()}"


def aws_connection(endpoint_url: str, region: str = "us-east-1") -> dict[str, Any]:
    """The ``aws`` connection to an SQS-compatible server (moto accepts any key)."""
    return {
        "conn_type": CONN_TYPES[EVENTS_AWS_CONN_ID],
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint_url, "region_name": region},
    }


def airflow_env(
    *,
    seller: Mapping[str, Any],
    warehouse: Mapping[str, Any],
    aws: Mapping[str, Any],
    queue_url: str,
) -> dict[str, str]:
    """The environment that wires the package: ``SP_API_CONN_IDS``, one ``AIRFLOW_CONN_*`` (JSON) per
    connection and one ``AIRFLOW_VAR_*`` per Variable."""
    connections = {SELLER_CONN_ID: seller, WAREHOUSE_CONN_ID: warehouse, EVENTS_AWS_CONN_ID: aws}
    for conn_id, conn in connections.items():
        if conn.get("conn_type") != CONN_TYPES[conn_id]:
            raise ValueError(
                f"{conn_id} must be a {CONN_TYPES[conn_id]} connection, got {conn.get('conn_type')}"
            )
    env = {"SP_API_CONN_IDS": SELLER_CONN_ID}
    env.update({conn_env(conn_id): json.dumps(conn) for conn_id, conn in connections.items()})
    env[var_env(EVENTS_QUEUE_VARIABLE)] = queue_url
    return env
