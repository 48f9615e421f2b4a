"""
### SP-API order history (`sp_api_orders_history`)

Loads up to two years of orders in minutes instead of days: Amazon's order report
`GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL` carries a whole 30-day window in one request,
where `searchOrders` needs one call (about 3 minutes of quota) per 100 orders.

**Trigger it by hand** (*Trigger DAG w/ config*): `start_date` (at most 730 days back), optional
`end_date` (default now) and optional `marketplace_ids` (default the connection's). Per seller connection
of `SP_API_CONN_IDS`, one task requests one report per marketplace and window of `window_days` (at most
30), waits while Amazon builds them (deferred: no worker slot held), downloads, parses and loads them.
Orders loaded from reports have `source = report`; any later API record of the same `lastUpdatedTime`
or newer replaces them, and a report never overwrites fresher API data.

**The ledger.** Each window's report id and status live in the Airflow Variable
`sp_api_history__<conn_id>__<hash of the range>` (readable JSON). A crashed, retried or deferred run
polls the reports already requested instead of requesting them again; a loaded window is never loaded
again. CANCELLED reports are empty windows; FATAL ones are requested again after
`SP_API_HISTORY_FATAL_RETRY_WAIT_SECONDS` (default 1800), at most `max_fatal_retries` times, then the
window is quarantined (the run fails naming it; everything else is loaded; trigger the same range again
to retry it). Trigger with `reset_ledger = true` to request every window again.

**Then the sweep.** When every window is done, the task starts the sweep checkpoint of
`sp_api_orders_sync` (same connection and marketplaces) at `end_date` minus `SP_API_HISTORY_HANDOVER_HOURS`
(default 2: reports lag behind), or moves an idle sweep whose cursor lies inside the history there.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param
from selling_partner.alerts import on_task_failure
from selling_partner.operators.orders_history import SpApiOrdersHistoryOperator
from selling_partner.operators.orders_sync import ORDERS_ASSET
from selling_partner.settings import env_seconds, seller_conn_ids

WAREHOUSE_CONN_ID = "warehouse_default"
CONN_IDS = seller_conn_ids()
#: How often a report Amazon is building is polled (getReport allows 2/s, so this is about patience).
POLL_SECONDS = env_seconds("SP_API_HISTORY_POLL_SECONDS", 60)
#: Wait before a FATAL report window is requested again.
FATAL_RETRY_WAIT_SECONDS = env_seconds("SP_API_HISTORY_FATAL_RETRY_WAIT_SECONDS", 1800)
#: Waits up to this are waited out in the worker; longer ones defer the task.
DEFER_AFTER_SECONDS = env_seconds("SP_API_HISTORY_DEFER_AFTER_SECONDS", 30)
MIN_DEFERRAL_SECONDS = env_seconds("SP_API_HISTORY_MIN_DEFERRAL_SECONDS", 10)
#: The sweep re-reads this much before the history's end.
HANDOVER_HOURS = env_seconds("SP_API_HISTORY_HANDOVER_HOURS", 2)

with DAG(
    dag_id="sp_api_orders_history",
    description="Load up to two years of Amazon orders from order reports (Reports API), resumably",
    schedule=None,
    start_date=None,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    doc_md=__doc__,
    tags=["selling_partner", "sp-api", "orders", "reports"],
    default_args={
        "owner": "data-engineering",
        "on_failure_callback": on_task_failure,
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
    },
    params={
        "start_date": Param(
            type="string",
            description="First lastUpdatedTime to load, ISO UTC (2025-01-01 or 2025-01-01T00:00:00Z); at "
            "most 730 days back (what Amazon's order reports cover).",
        ),
        "end_date": Param(None, type=["null", "string"], description="End, ISO UTC; empty means now."),
        "marketplace_ids": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            description="Marketplaces to load (one report per marketplace and window); empty means the "
            "connection's marketplace_ids.",
        ),
        "window_days": Param(
            30, type="number", exclusiveMinimum=0, maximum=30, description="Days per report."
        ),
        "max_fatal_retries": Param(
            3, type="integer", minimum=0, description="FATAL reports of one window before it is quarantined."
        ),
        "reset_ledger": Param(False, type="boolean", description="Request every window again."),
        "warehouse_conn_id": Param(WAREHOUSE_CONN_ID, type="string", description="Warehouse connection."),
    },
) as dag:
    for conn_id in CONN_IDS:
        SpApiOrdersHistoryOperator(
            task_id=f"load_history__{conn_id}",
            sp_api_conn_id=conn_id,
            warehouse_conn_id="{{ params.warehouse_conn_id }}",
            start_date_param="{{ params.start_date }}",
            end_date_param="{{ params.end_date }}",
            marketplace_ids="{{ params.marketplace_ids }}",
            window_days="{{ params.window_days }}",
            max_fatal_retries="{{ params.max_fatal_retries }}",
            reset_ledger="{{ params.reset_ledger }}",
            poll_interval_seconds=POLL_SECONDS,
            fatal_retry_wait_seconds=FATAL_RETRY_WAIT_SECONDS,
            handover_hours=HANDOVER_HOURS,
            defer_after_seconds=DEFER_AFTER_SECONDS,
            min_deferral_seconds=MIN_DEFERRAL_SECONDS,
            outlets=[ORDERS_ASSET],
        )
