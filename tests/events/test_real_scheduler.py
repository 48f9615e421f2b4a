"""The event path as production runs it: real scheduler, triggerer and dag-processor, a fresh process
per task try and per resume (``tests/fixtures/airflow_cluster.py``), not ``dag.test()``.

The sandbox publishes a storm (every notification twice, shuffled, double-encoded, poison, another
seller's) before the DAGs are turned on; then both are unpaused with the scheduler creating the runs,
as in production: ``sp_api_order_events`` runs continuously, its land task's Asset event starts
``sp_api_order_enrich``. The sandbox's time runs at a quarter of real time, so after getOrder's burst of
30 a token comes every 8 s, and every quota wait of the enrichment defers
(``SP_API_ENRICH_DEFER_AFTER_SECONDS=0``): each resume is a new process that must know Amazon's bucket
is still empty. The proof is in the sandbox's own counters: no getOrder 429, one getOrder per order;
the queue drained (every message deleted), nothing left to enrich, and the warehouse equal to the
truth through the oracle. The DAG files run unchanged: the sensor returns with its first batch and the
land task's drain (30 s) takes the rest in the same run.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from tests import oracle
from tests.events.conftest import (
    AWS_CONN_ID,
    ENRICH_DAG,
    EVENTS_DAG,
    WAREHOUSE_CONN_ID,
    Seller,
    aws_conn_json,
)
from tests.hooks.conftest import scaled_limits
from tests.sync.conftest import conn_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONN_ID = "sp_api_default"
#: getOrder refills 0.5 x 0.25 = 0.125/s: a token every 8 s, long enough for a deferral cycle under
#: Airflow 3.3.2 (see tests/sync/test_real_scheduler.py, apache/airflow#72716).
TIME_SCALE = 0.25
CONVERGE_TIMEOUT = 150.0


def _enrich_summaries(cluster: Any) -> list[dict[str, Any]]:
    runs = cluster.api("GET", f"dags/{ENRICH_DAG}/dagRuns", params={"limit": 20})["dag_runs"]
    out = []
    for run in runs:
        summary = cluster.xcom(ENRICH_DAG, run["dag_run_id"], f"enrich_orders__{CONN_ID}")
        if summary:
            out.append({**summary, "run_id": run["dag_run_id"], "run_type": run["run_type"]})
    return out


def test_events_and_deferring_enrichment_under_the_real_scheduler(
    airflow_cluster_factory, sandbox_factory, moto_sqs, pg_warehouse_conn_id, monkeypatch, record_property
):
    started = time.monotonic()
    queue_url = moto_sqs.queue_url(visibility_timeout=900)
    sb = sandbox_factory(
        orders=4,
        days=1,
        time_scale=TIME_SCALE,
        min_before_lag=1,
        sqs_endpoint=moto_sqs.endpoint,
        queue_url=queue_url,
    )
    seller = Seller(CONN_ID, sb)
    seller.advance(new_orders=30, changes=4, duplicates=1.0, shuffle=True, double_encoded=0.3, poison=3)
    time.sleep(1.1)  # an order changes at most once per second
    seller.advance(
        new_orders=0, changes=30, duplicates=1.0, shuffle=True, double_encoded=0.3, foreign_seller=2
    )
    published = sum(r["published"] for r in seller.reports)
    orders = seller.order_ids()
    assert published > 100 and 30 < len(orders) <= 36, (published, len(orders))

    warehouse_uri = os.environ[f"AIRFLOW_CONN_{pg_warehouse_conn_id.upper()}"]
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}", warehouse_uri)
    extra = {"min_before_lag_seconds": 1, "rate_limits": scaled_limits(TIME_SCALE)}
    env = {
        "SP_API_CONN_IDS": CONN_ID,
        f"AIRFLOW_CONN_{CONN_ID.upper()}": conn_json(sb, **extra),
        f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": aws_conn_json(moto_sqs.endpoint),
        f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}": warehouse_uri,
        "AIRFLOW_VAR_SP_API_EVENTS_QUEUE_URL": queue_url,
        "SP_API_ENRICH_DEFER_AFTER_SECONDS": "0",
        "SP_API_ENRICH_MIN_DEFERRAL_SECONDS": "1",
    }
    cluster = airflow_cluster_factory(env=env, use_job_schedule=True)  # continuous + Asset schedules
    for dag_id in (EVENTS_DAG, ENRICH_DAG):
        cluster.wait_for_dag(dag_id)
    ready = time.monotonic()
    for dag_id in (ENRICH_DAG, EVENTS_DAG):
        cluster.unpause(dag_id)

    from selling_partner.warehouse import get_warehouse

    warehouse = get_warehouse(WAREHOUSE_CONN_ID)
    sqs = moto_sqs.client()

    def differences() -> list[str]:
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depth = int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )
        if depth:
            return [f"{depth} messages still on the queue"]
        try:
            backlog = warehouse.enrichment_backlog()
        except Exception as exc:  # the schema is created by the first land task
            return [f"warehouse not ready: {type(exc).__name__}"]
        if backlog:
            return [f"orders waiting for enrichment: {backlog}"]
        return oracle.compare_events(
            sb.truth(), seller.notifications(), warehouse, seller_id=seller.seller_id, conn_id=CONN_ID
        )

    diffs: list[str] = ["not checked yet"]
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while diffs and time.monotonic() < deadline:
        time.sleep(2.0)
        diffs = differences()
    converged = time.monotonic()
    for dag_id in (EVENTS_DAG, ENRICH_DAG):
        cluster.pause(dag_id)
    enrich = _enrich_summaries(cluster)
    get_order = seller.calls("getOrder")
    figures = {
        "published_messages": published,
        "notifications": len({n["notification_id"] for n in seller.notifications()}),
        "orders": len(orders),
        "get_order": get_order,
        "enrich_runs": [
            {k: e.get(k) for k in ("run_type", "fetched", "skipped", "deferrals")} for e in enrich
        ],
        "cluster_ready_s": round(ready - started, 1),
        "unpause_to_converged_s": round(converged - ready, 1),
    }
    report = json.dumps(figures, indent=2)
    print(report)
    record_property("figures", report)
    assert diffs == [], "\n".join(diffs[:20]) + "\n" + report + "\n" + cluster.diagnostics()
    assert get_order["throttled"] == 0, report
    assert get_order["calls"] == len(orders), report  # one getOrder per order, however many notifications
    assert sum(int(e.get("deferrals") or 0) for e in enrich) >= 2, report  # the quota waits did defer
    noise = {"poison": [], "foreign_seller": []}
    for r in seller.reports:
        noise["poison"] += r["noise"]["poison"]
        noise["foreign_seller"] += r["noise"]["foreign_seller"]
    served = [seller.seller_id]
    assert (
        oracle.compare_notification_quarantine(noise, warehouse.fetch_quarantine(), served_sellers=served)
        == []
    )
