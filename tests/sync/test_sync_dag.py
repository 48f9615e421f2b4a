"""The sync DAG end to end: dag.test() against the sandbox over HTTP into real Postgres and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from demo.truth import compare_with_truth
from tests.fixtures.airflow import get_variable, load_dag, run_dag, xcom_result

pytestmark = pytest.mark.integration

TASK = "sync_orders__sp_api_default"


def _since(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_equal(sb, wh_conn_id: str, until: str) -> list[dict]:
    from selling_partner.warehouse import get_warehouse

    wh = get_warehouse(wh_conn_id)
    truth = sb.truth(lastUpdatedBefore=until)
    orders, items = wh.fetch_orders(), wh.fetch_items()
    assert truth["orders"], "the truth window is empty: the test would prove nothing"
    assert compare_with_truth(truth, orders, items) == []
    assert len(orders) == len({o["order_id"] for o in orders}) == len(truth["orders"])
    return orders


@pytest.mark.parametrize(
    ("api_version", "backend"),
    [("2026-01-01", "postgres"), ("2026-01-01", "sqlite"), ("v0", "postgres")],
)
def test_backfill_equals_truth(sync_env, request, api_version, backend):
    sb = sync_env(orders=400, days=12, seed=11, extra={"orders_api_version": api_version})
    wh_conn = request.getfixturevalue(f"{'pg' if backend == 'postgres' else 'sqlite'}_warehouse_conn_id")
    dag = load_dag("sp_api_orders_sync")
    dr = run_dag(
        dag,
        run_conf={
            "mode": "backfill",
            "start_date": _since(13),
            "window_days": 4,
            "warehouse_conn_id": wh_conn,
        },
    )
    summary = xcom_result(dr, TASK)
    assert summary["done"] is True and summary["stop_reason"] == "caught up"
    assert summary["windows"] == 4  # 13 days in windows of 4
    _check_equal(sb, wh_conn, summary["window_end"])
    stats = sb.stats()["operations"]
    op = "searchOrders" if api_version == "2026-01-01" else "getOrders"
    assert summary["calls"] >= stats[op]["calls"] == summary["pages"]
    # The run is recorded in the warehouse; the checkpoint is a readable JSON Variable.
    from selling_partner.warehouse import get_warehouse

    runs = get_warehouse(wh_conn).fetch_sync_runs()
    assert [(r["mode"], r["pages"], r["orders"]) for r in runs] == [
        ("backfill", summary["pages"], summary["orders"])
    ]
    raw = get_variable(summary["checkpoint_key"])
    assert raw is not None and '\n  "done": true' in raw
