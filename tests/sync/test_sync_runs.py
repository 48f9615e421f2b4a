"""What on-call reads about sync runs: sp_sync_runs against the sandbox's own counters, failed tries,
clean stops at the time budget, reset on the first try only, and Airflow's Backfill refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from selling_partner.checkpoint import MemoryCheckpointStore

from tests.fixtures.airflow import load_dag, run_dag, task_states
from tests.sync.test_sync_dag import TASK, _backfill, _since, _sync

pytestmark = pytest.mark.integration


def _sp_api_calls(stats: dict) -> tuple[int, int]:
    """(calls, 429s) the sandbox counted over SP-API operations (LWA's token endpoint is not SP-API)."""
    ops = {op: st for op, st in stats["operations"].items() if op != "lwaToken"}
    return sum(st["calls"] for st in ops.values()), sum(st["throttled"] for st in ops.values())


def test_sync_runs_row_tells_the_truth(sync_env, pg_warehouse_conn_id, monkeypatch):
    """Every column of the run's row against what the sandbox saw: the seller, HTTP calls of every
    operation (v0: getOrders + getOrderItems), 429s (the flaky profile injects them), retries, pages,
    deferrals, the try number."""
    monkeypatch.setenv("SP_API_SYNC_MIN_DEFERRAL_SECONDS", "0.2")
    monkeypatch.setenv("SP_API_SYNC_DEFER_AFTER_SECONDS", "0.2")
    sb = sync_env(
        orders=250,
        days=4,
        seed=41,
        faults="flaky",
        rate_limit_header=False,
        extra={
            "orders_api_version": "v0",
            "rate_limits": {"getOrders": [0.1, 1], "getOrderItems": [300, 30]},
        },
    )
    summary = _backfill(pg_warehouse_conn_id, 5, window_days=10)
    from selling_partner.warehouse import get_warehouse

    (row,) = get_warehouse(pg_warehouse_conn_id).fetch_sync_runs()
    calls, throttled = _sp_api_calls(sb.stats())
    getorders = sb.stats()["operations"]["getOrders"]
    assert throttled > 0 or sb.stats()["totals"]["errors"] > 0, "no fault injected: the test proves nothing"
    assert (
        row["seller_id"] == sb.seller_id and row["api_version"] == "v0" and row["conn_id"] == "sp_api_default"
    )
    assert (row["calls"], row["throttled"]) == (calls, throttled)
    assert row["pages"] == summary["pages"] == getorders["ok"]  # every page committed once
    assert (
        row["orders"] == summary["orders"] == len(sb.truth(lastUpdatedBefore=summary["window_end"])["orders"])
    )
    assert row["retries"] == summary["retries"] >= throttled
    assert row["deferrals"] == summary["deferrals"] >= 1 and row["deferred_seconds"] > 0
    assert (row["status"], row["try_number"], row["quarantined"], row["error"]) == ("success", 1, 0, None)
    assert row["dag_id"] == "sp_api_orders_sync" and row["task_id"] == TASK


def test_a_failed_try_is_recorded_with_its_error(sync_env, sqlite_warehouse_conn_id):
    sync_env(orders=20, days=2, seed=42, extra={"refresh_token": "Atzr|revoked"})
    dr = run_dag(
        load_dag("sp_api_orders_sync"),
        run_conf={"warehouse_conn_id": sqlite_warehouse_conn_id, "mode": "backfill", "start_date": _since(3)},
        expect="failed",
    )
    assert task_states(dr) == {TASK: "failed"}
    from selling_partner.warehouse import get_warehouse

    (row,) = get_warehouse(sqlite_warehouse_conn_id).fetch_sync_runs()
    assert row["status"] == "failed" and row["try_number"] == 1 and row["pages"] == 0
    assert (
        row["error"].startswith("SpApiAuthError: LWA refresh_token failed")
        and "invalid_grant" in row["error"]
    )
    assert "Atzr|revoked" not in row["error"]


def test_time_budget_near_a_quota_wait_stops_cleanly(sync_env, sqlite_warehouse_conn_id, monkeypatch):
    """The limiter makes the next page wait 10 s with less than 6 s of budget left: the run stops
    cleanly (success, checkpoint kept) instead of failing, and the next run continues."""
    monkeypatch.setenv("SP_API_SYNC_MIN_DEFERRAL_SECONDS", "0.5")
    monkeypatch.setenv("SP_API_SYNC_DEFER_AFTER_SECONDS", "0")
    sb = sync_env(
        orders=200,
        days=3,
        seed=43,
        rate_limit_header=False,
        extra={"rate_limits": {"searchOrders": [0.1, 1]}},
    )
    first = _sync(sqlite_warehouse_conn_id, start_date=_since(4), window_days=10, time_budget_minutes=0.1)
    assert first["pages"] == 1 and first["deferrals"] == 0
    assert (
        first["stop_reason"].startswith("the time budget")
        and "would be spent waiting" in first["stop_reason"]
    )
    second = _sync(sqlite_warehouse_conn_id, window_days=10, time_budget_minutes=None)
    assert second["resumed_at_page"] == 1 and second["stop_reason"] == "caught up"
    assert sb.stats()["operations"]["searchOrders"]["calls"] == first["pages"] + second["pages"]


def test_reset_checkpoint_applies_to_the_first_try_only(sync_env, sqlite_warehouse_conn_id):
    """A retry of a run triggered with reset_checkpoint = true resumes what the first try saved instead
    of deleting it again (make demo triggers that way)."""
    from selling_partner.operators.orders_sync import SpApiOrdersSyncOperator

    sync_env(orders=10, days=2, seed=44)
    store = MemoryCheckpointStore()
    op = SpApiOrdersSyncOperator(
        task_id="t",
        warehouse_conn_id=sqlite_warehouse_conn_id,
        mode="backfill",
        updated_after=_since(3),
        reset_checkpoint=True,
        checkpoint_store=store,
    )
    settings = op._settings()
    saved = {"version": 1, "mode": "backfill", "requested": settings.requested, "done": False, "pages": 7}
    for try_number, expect_pages in ((2, 7), (1, 0)):
        store.save(settings.key, saved)
        ti = SimpleNamespace(try_number=try_number, dag_id="d", task_id="t")
        ckpt = op._prepare_checkpoint(settings, store, {"ti": ti, "run_id": "r"})
        assert ckpt.get("pages", 0) == expect_pages, try_number
    op.close_hook()


def test_airflow_backfill_runs_are_refused_with_the_way_to_do_it():
    from airflow.sdk.exceptions import AirflowFailException
    from selling_partner.operators.orders_sync import _refuse_airflow_backfill

    run = SimpleNamespace(
        run_type="backfill", data_interval_start="2026-10-01T00:00:00Z", data_interval_end=None
    )
    with pytest.raises(AirflowFailException, match="mode = backfill, start_date and end_date") as refused:
        _refuse_airflow_backfill({"dag_run": run})
    assert "2026-10-01T00:00:00Z" in str(refused.value)
    _refuse_airflow_backfill({"dag_run": SimpleNamespace(run_type="manual")})  # other runs go on
