"""
### SP-API order enrichment (`sp_api_order_enrich`)

The event DAG writes each order's status from its notification in seconds and queues the order in
`sp_enrichment_queue`; this DAG fetches the details (`getOrder`: items, prices, packages; `getOrder` +
`getOrderItems` for v0 connections) at Amazon's rate, one task per seller connection (`SP_API_CONN_IDS`).

It runs whenever the land task queued orders (the Asset `sp_api://warehouse/sp_enrichment_queue`) and
every 30 minutes as a safety net, one run at a time. Each task drains its seller's queue oldest event
first: **one getOrder per order** however many notifications it had; orders whose stored details are
already as new as their newest event (a sweep loaded them) leave the queue without a call. Waits for
quota longer than `SP_API_ENRICH_DEFER_AFTER_SECONDS` defer the task; it stops after
`SP_API_ENRICH_TIME_BUDGET_SECONDS` and leaves the rest queued for the next run. An order that fails
`SP_API_ENRICH_MAX_ATTEMPTS` times (404, errors) or cannot be mapped goes to `sp_order_quarantine`
(source `enrich`) with the reason and the attempt count.

A `pipeline_health` task beside them sets the queue gauges and sends the stuck-queue and quarantine
alerts (Slack, when `slack_sp_api` exists).

**Reruns are safe**: claims have a lease, loads are monotonic, a claimed order is released or done
in the same transaction that loads it.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable
from selling_partner.alerts import on_task_failure
from selling_partner.operators.enrich import SpApiEnrichOrdersOperator
from selling_partner.operators.events import ENRICHMENT_QUEUE_ASSET
from selling_partner.operators.health import SpApiPipelineHealthOperator
from selling_partner.operators.orders_sync import ORDERS_ASSET
from selling_partner.settings import WAREHOUSE_CONN_ID, env_seconds, seller_conn_ids

TIME_BUDGET_SECONDS = env_seconds("SP_API_ENRICH_TIME_BUDGET_SECONDS", 900)
DEFER_AFTER_SECONDS = env_seconds("SP_API_ENRICH_DEFER_AFTER_SECONDS", 30)
MIN_DEFERRAL_SECONDS = env_seconds("SP_API_ENRICH_MIN_DEFERRAL_SECONDS", 10)
MAX_ATTEMPTS = int(env_seconds("SP_API_ENRICH_MAX_ATTEMPTS", 5))
#: How long claimed orders stay off other runs: after a crashed worker, its claims free up after this.
LEASE_SECONDS = env_seconds("SP_API_ENRICH_LEASE_SECONDS", 600)

with DAG(
    dag_id="sp_api_order_enrich",
    description="getOrder for every order the event path queued, at Amazon's rate",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/30 * * * *", timezone="UTC"), assets=ENRICHMENT_QUEUE_ASSET
    ),
    start_date=None,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["selling_partner", "sp-api", "orders", "events"],
    default_args={
        "owner": "data-engineering",
        "on_failure_callback": on_task_failure,
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
    },
) as dag:
    SpApiPipelineHealthOperator(
        task_id="pipeline_health",
        sp_api_conn_ids=seller_conn_ids(),
        warehouse_conn_id=WAREHOUSE_CONN_ID,
        doc_md="Queue depth/age gauges; stuck-queue and quarantine-growth alerts. Never calls SP-API.",
    )
    for conn_id in seller_conn_ids():
        SpApiEnrichOrdersOperator(
            task_id=f"enrich_orders__{conn_id}",
            sp_api_conn_id=conn_id,
            warehouse_conn_id=WAREHOUSE_CONN_ID,
            time_budget_seconds=TIME_BUDGET_SECONDS,
            defer_after_seconds=DEFER_AFTER_SECONDS,
            min_deferral_seconds=MIN_DEFERRAL_SECONDS,
            max_attempts=MAX_ATTEMPTS,
            lease_seconds=LEASE_SECONDS,
            outlets=[ORDERS_ASSET],
        )
