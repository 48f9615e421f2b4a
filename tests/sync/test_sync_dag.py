"""The sync DAG end to end: dag.test() against the sandbox over HTTP into real Postgres and SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.airflow import get_variable, load_dag, run_dag, xcom_result
from tests.oracle import compare

pytestmark = pytest.mark.integration

TASK = "sync_orders__sp_api_default"


def _since(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sync(wh_conn_id: str, **conf) -> dict:
    """Run the DAG once with ``conf`` (``dag.test()``, state asserted) and return the task's summary."""
    dr = run_dag(load_dag("sp_api_orders_sync"), run_conf={"warehouse_conn_id": wh_conn_id, **conf})
    return xcom_result(dr, TASK)


def _backfill(wh_conn_id: str, since_days: int, **conf) -> dict:
    """A backfill from ``since_days`` ago up to now; returns the task's summary."""
    return _sync(wh_conn_id, mode="backfill", start_date=_since(since_days), **conf)


def _check_equal(
    sb, wh_conn_id: str, until: str, *, api_version: str = "2026-01-01", observed: list[dict] | None = None
) -> dict:
    """Every table of the warehouse equals the sandbox's truth up to ``until`` (tests/oracle.py).

    ``observed`` are the truth snapshots taken after earlier syncs (their versions are in the status
    history). Returns the truth compared against, to pass on as the next check's ``observed``.
    """
    from selling_partner.warehouse import get_warehouse

    truth = sb.truth(lastUpdatedBefore=until)
    assert truth["orders"], "the truth window is empty: the test would prove nothing"
    diffs = compare(truth, get_warehouse(wh_conn_id), api_version=api_version, observed=observed)
    assert diffs == [], "the warehouse differs from the sandbox's truth:\n" + "\n".join(diffs)
    return truth


@pytest.mark.parametrize(
    ("api_version", "backend"),
    [("2026-01-01", "postgres"), ("2026-01-01", "sqlite"), ("v0", "postgres")],
)
def test_backfill_equals_truth(sync_env, request, api_version, backend):
    sb = sync_env(orders=400, days=12, seed=11, extra={"orders_api_version": api_version})
    wh_conn = request.getfixturevalue(f"{'pg' if backend == 'postgres' else 'sqlite'}_warehouse_conn_id")
    summary = _backfill(wh_conn, 13, window_days=4)
    assert summary["done"] is True and summary["stop_reason"] == "caught up"
    assert summary["windows"] == 4  # 13 days in windows of 4
    _check_equal(sb, wh_conn, summary["window_end"], api_version=api_version)
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


def test_sweep_is_incremental_and_backfill_keeps_its_own_checkpoint(sync_env, pg_warehouse_conn_id):
    import time

    sb = sync_env(orders=300, days=4, seed=12)
    first = _sync(pg_warehouse_conn_id, start_date=_since(5))
    assert first["mode"] == "sweep" and first["stop_reason"] == "caught up" and first["pages"] >= 3
    seen_first = _check_equal(sb, pg_warehouse_conn_id, first["window_end"])
    sweep_key = first["checkpoint_key"]

    # Orders change and new ones arrive; once they are older than the (shortened) 2-minute rule, the next
    # sweep picks them up from its cursor (minus the lookback) without re-reading the history.
    changed = sb.advance(steps=1, new_orders=20, changes=30)
    assert changed["changes"]
    time.sleep(4)
    second = _sync(pg_warehouse_conn_id)
    assert second["pages"] <= 2 < first["pages"]
    assert second["window_start"] < first["window_end"] < second["window_end"]
    _check_equal(sb, pg_warehouse_conn_id, second["window_end"], observed=[seen_first])

    # A backfill over part of the history has its own checkpoint and leaves the sweep's alone.
    before = get_variable(sweep_key)
    bf = _backfill(pg_warehouse_conn_id, 2, end_date=_since(1))
    assert bf["checkpoint_key"] != sweep_key and bf["done"]
    assert get_variable(sweep_key) == before
    _check_equal(sb, pg_warehouse_conn_id, second["window_end"], observed=[seen_first])


def test_rate_limit_waits_defer_and_resume_from_the_checkpoint(
    sync_env, sqlite_warehouse_conn_id, monkeypatch
):
    # One searchOrders call per 2 s after a burst of 1: each later page waits about 2 s (less the time the
    # page itself took), longer than the 0.5 s this test lets the worker wait, so the task defers.
    # (dag.test() resumes in the same process; tests/sync/test_real_scheduler.py does it for real.)
    monkeypatch.setenv("SP_API_SYNC_DEFER_AFTER_SECONDS", "0.5")
    monkeypatch.setenv("SP_API_SYNC_MIN_DEFERRAL_SECONDS", "0.5")
    sb = sync_env(
        orders=400,
        days=5,
        seed=13,
        rate_limit_header=False,
        extra={"rate_limits": {"searchOrders": [0.5, 1]}},
    )
    summary = _backfill(sqlite_warehouse_conn_id, 6, window_days=10)
    assert summary["deferrals"] >= 2 and summary["done"] and summary["pages"] == 4
    assert summary["pages"] == sb.stats()["operations"]["searchOrders"]["calls"]  # no page read twice
    _check_equal(sb, sqlite_warehouse_conn_id, summary["window_end"])


def test_time_budget_ends_cleanly_and_next_run_continues(sync_env, sqlite_warehouse_conn_id):
    sb = sync_env(orders=450, days=3, seed=14)
    first = _sync(sqlite_warehouse_conn_id, window_days=10, start_date=_since(4), time_budget_minutes=0.0001)
    assert first["pages"] == 1 and first["stop_reason"].startswith("time budget")
    ckpt = json.loads(get_variable(first["checkpoint_key"]))
    assert ckpt["page_token"] and ckpt["window_pages"] == 1
    second = _sync(sqlite_warehouse_conn_id, window_days=10)
    assert second["stop_reason"] == "caught up" and second["resumed_at_page"] == 1
    assert sb.stats()["operations"]["searchOrders"]["calls"] == first["pages"] + second["pages"]
    _check_equal(sb, sqlite_warehouse_conn_id, second["window_end"])


def test_flaky_api_429s_and_5xx_still_give_exactly_the_truth(sync_env, pg_warehouse_conn_id):
    sb = sync_env(orders=700, days=6, seed=31, faults="flaky")
    summary = _backfill(pg_warehouse_conn_id, 7, window_days=2)
    assert summary["done"]
    stats = sb.stats()["operations"]["searchOrders"]
    assert stats["throttled"] + stats["errors"] > 0, (
        "the flaky profile injected nothing: the test proves nothing"
    )
    _check_equal(sb, pg_warehouse_conn_id, summary["window_end"])


def test_expired_page_tokens_restart_the_window_and_lose_nothing(sync_env, sqlite_warehouse_conn_id):
    # Page tokens live 0.2 s but calls are paced 0.5 s apart: every token has expired when it is used.
    sb = sync_env(
        orders=500,
        days=5,
        seed=32,
        page_token_ttl=0.2,
        rate_limit_header=False,
        extra={"rate_limits": {"searchOrders": [2.0, 1]}},
    )
    summary = _backfill(sqlite_warehouse_conn_id, 6, window_days=10)
    assert summary["done"] and summary["restarts"] >= 2
    _check_equal(sb, sqlite_warehouse_conn_id, summary["window_end"])


def test_unselected_seller_connection_skips(sync_env, sqlite_warehouse_conn_id):
    from tests.fixtures.airflow import task_states

    sb = sync_env(orders=100, days=2, seed=15)
    dr = run_dag(
        load_dag("sp_api_orders_sync"),
        run_conf={"sp_api_conn_ids": ["another_seller"], "warehouse_conn_id": sqlite_warehouse_conn_id},
    )
    assert task_states(dr) == {TASK: "skipped"}
    assert sb.stats()["operations"].get("searchOrders", {}).get("calls", 0) == 0
