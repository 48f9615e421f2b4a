"""
### SP-API orders sync (`sp_api_orders_sync`)

Keeps the warehouse's order tables (`sp_orders`, `sp_order_items`, ...) equal to what Amazon's
Selling Partner API reports, for every seller connection listed in the environment variable
`SP_API_CONN_IDS` (comma-separated, default `sp_api_default`; the same list every DAG of the package
uses): one task per connection.

**Sweep (the schedule, every 15 minutes).** Each task reads the orders whose `lastUpdatedTime` is
newer than its saved cursor, up to *now minus 2 minutes* (Amazon's rule; the connection's
`min_before_lag_seconds`), page by page, and upserts them. The next sweep starts a few minutes before
where this one ended (`lookback_minutes`), so late updates are caught. It is also the safety net for
ORDER_CHANGE notifications that never arrived.

**Backfill (from the trigger form).** Trigger with `mode = backfill`, a `start_date` and optionally an
`end_date` (default: now). The range is read in windows of `window_days`. A backfill keeps its own
checkpoint and never moves the sweep's cursor. It runs until it is done, deferring (no worker slot held)
while it waits for `searchOrders` quota (any wait over `SP_API_SYNC_DEFER_AFTER_SECONDS`, default 30,
and at least `SP_API_SYNC_MIN_DEFERRAL_SECONDS`, default 10). The token buckets live in Airflow Variables
`sp_api_rate_limit__<seller>__<region>__<operation>` (or the connection's shared PostgreSQL/Redis
backend), so a resumed task spends exactly what Amazon's bucket holds.
Amazon allows about one page of 100 orders every 3 minutes after a burst of 20, so 10,000 orders take
roughly 4 hours. While it runs, scheduled sweeps wait
(`max_active_runs=1`): both would spend the same quota.

**Checkpoints.** After every committed page the task saves its position in an Airflow Variable
`sp_api_sync__<conn_id>__<marketplace hash>__<sweep|backfill>` (readable JSON: window, page token,
pages and orders so far, last committed `lastUpdatedTime`). Delete it, or trigger with
`reset_checkpoint = true`, to start that mode over. Never define these keys as `AIRFLOW_VAR_*`.

**Reruns are safe.** Every write is an idempotent upsert that keeps the newest `lastUpdatedTime`, and
the checkpoint is saved only after the page's warehouse transaction commits. A failed or killed task
resumes at the first uncommitted page; at worst one page is read twice. Clear the task or rerun the
DAG run: nothing is duplicated and nothing is lost.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param
from selling_partner.alerts import on_task_failure
from selling_partner.operators.orders_sync import ORDERS_ASSET, SpApiOrdersSyncOperator
from selling_partner.settings import env_seconds, seller_conn_ids

#: The default warehouse connection (override per run in the trigger form).
WAREHOUSE_CONN_ID = "warehouse_default"
#: One sync task per seller connection; set SP_API_CONN_IDS="seller_a,seller_b" on the scheduler
#: and dag-processor to add sellers.
CONN_IDS = seller_conn_ids()
#: A sweep stops after this long (it is scheduled every 15 minutes) and the next one continues.
SWEEP_TIME_BUDGET_MINUTES = 13
#: Rate-limit waits up to this many seconds are waited out in the worker; longer ones defer the task.
DEFER_AFTER_SECONDS = env_seconds("SP_API_SYNC_DEFER_AFTER_SECONDS", 30)
#: The shortest deferral; shorter waits are waited out in the worker.
MIN_DEFERRAL_SECONDS = env_seconds("SP_API_SYNC_MIN_DEFERRAL_SECONDS", 10)
#: A change older than this that a sweep finds missing from the warehouse counts as a notification the
#: event path never received (sp_sync_runs.missed_by_events).
EVENTS_GRACE_SECONDS = env_seconds("SP_API_EVENTS_GRACE_SECONDS", 300)

TASK_DOC = """
#### Sync orders for one seller connection

Fetch a page (`searchOrders`, items included; `getOrders` + `getOrderItems` for `v0` connections) ->
upsert it into the warehouse (one transaction) and quarantine the records that cannot be mapped
(`sp_order_quarantine`) -> save the checkpoint with the next page token. Logs read like:
`window 2026-..->2026-.. page 3: 100 orders (total 300); searchOrders quota 17/20 at 0.0056/s, next
token now; about 2 pages left (~0 s at the current rate)`.

**When it fails**, the log's last lines name the cause:
* `SpApiAuthError` (invalid_grant / invalid_client): the refresh token or LWA app credentials in the
  connection are wrong or revoked; fix the connection, then rerun.
* `SpApiForbidden`: the app lacks the Orders role for this seller/marketplace.
* `SpApiServerError` after retries: Amazon had an outage; rerun later.
* page tokens rejected repeatedly: the window restarts by itself; if it persists check the endpoint.
* `created by Airflow's Backfill`: use *Trigger DAG w/ config* with `mode = backfill` instead.

A record Amazon serves that cannot be mapped (unknown status, missing required field) does not fail the
task: it is quarantined with its reason and counted in `sp_sync_runs.quarantined`.

**A plain rerun is always safe**: it resumes from the checkpoint, and upserts are idempotent.
"""

with DAG(
    dag_id="sp_api_orders_sync",
    description="Sweep and backfill Amazon SP-API orders into the warehouse, checkpointed per page",
    schedule=timedelta(minutes=15),
    start_date=None,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    doc_md=__doc__,
    tags=["selling_partner", "sp-api", "orders"],
    default_args={
        "owner": "data-engineering",
        "on_failure_callback": on_task_failure,
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
    },
    params={
        "mode": Param(
            "sweep",
            enum=["sweep", "backfill"],
            description="sweep: continue from the saved cursor up to now (the schedule). "
            "backfill: read start_date..end_date with its own checkpoint.",
        ),
        "start_date": Param(
            None,
            type=["null", "string"],
            description="Backfill start, ISO UTC (2026-01-01 or 2026-01-01T00:00:00Z); required for a "
            "backfill. For a first sweep without a checkpoint: where it starts (default one day ago).",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            description="Backfill end, ISO UTC; empty means now (minus Amazon's 2-minute lag).",
        ),
        "marketplace_ids": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            description="Marketplace ids to read, e.g. ATVPDKIKX0DER; empty means the connection's "
            "marketplace_ids. Each marketplace set has its own checkpoint.",
        ),
        "window_days": Param(
            7,
            type="number",
            exclusiveMinimum=0,
            description="Largest lastUpdated window per searchOrders pagination, in days.",
        ),
        "lookback_minutes": Param(
            5,
            type="number",
            minimum=0,
            description="How far each sweep re-reads before the previous sweep's end (late updates).",
        ),
        "reset_checkpoint": Param(
            False,
            type="boolean",
            description="Forget this mode's checkpoint and start over (safe: upserts are idempotent).",
        ),
        "sp_api_conn_ids": Param(
            CONN_IDS,
            type="array",
            items={"type": "string"},
            description=f"Seller connections to run (subset of {CONN_IDS}); the others skip.",
        ),
        "warehouse_conn_id": Param(
            WAREHOUSE_CONN_ID,
            type="string",
            description="Warehouse connection (postgres or sqlite).",
        ),
        "time_budget_minutes": Param(
            SWEEP_TIME_BUDGET_MINUTES,
            type=["null", "number"],
            description="Sweep only: stop after this long and let the next run continue. A backfill "
            "runs until done.",
        ),
    },
) as dag:
    for conn_id in CONN_IDS:
        SpApiOrdersSyncOperator(
            task_id=f"sync_orders__{conn_id}",
            doc_md=TASK_DOC,
            sp_api_conn_id=conn_id,
            warehouse_conn_id="{{ params.warehouse_conn_id }}",
            mode="{{ params.mode }}",
            updated_after="{{ params.start_date }}",
            updated_before="{{ params.end_date }}",
            marketplace_ids="{{ params.marketplace_ids }}",
            window_days="{{ params.window_days }}",
            lookback_minutes="{{ params.lookback_minutes }}",
            reset_checkpoint="{{ params.reset_checkpoint }}",
            time_budget_seconds=(
                "{{ params.time_budget_minutes * 60 "
                "if params.mode == 'sweep' and params.time_budget_minutes else None }}"
            ),
            selected_conn_ids="{{ params.sp_api_conn_ids }}",
            defer_after_seconds=DEFER_AFTER_SECONDS,
            min_deferral_seconds=MIN_DEFERRAL_SECONDS,
            events_grace_seconds=EVENTS_GRACE_SECONDS,
            outlets=[ORDERS_ASSET],
        )
