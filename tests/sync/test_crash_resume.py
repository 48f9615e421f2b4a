"""A real process kill mid-window, then a rerun: resume at the saved page, exactly the truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.airflow import airflow_env, get_variable, load_dag, run_dag, xcom_result
from tests.sync.test_sync_dag import TASK, _check_equal

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_for_committed_pages(key: str, proc: subprocess.Popen, pages: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = get_variable(key)
        if raw:
            ckpt = json.loads(raw)
            if ckpt.get("window_pages", 0) >= pages and ckpt.get("page_token"):
                return ckpt
        assert proc.poll() is None, "the sync finished before it could be killed: slow the pacing down"
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint with {pages} committed pages after {timeout}s")


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite: every other sync test
def test_kill_9_mid_window_then_rerun_resumes_at_saved_page(sync_env, request, backend, tmp_path):
    # searchOrders paced at one call per 2 s (burst 1) so the kill lands mid-window; 8 pages in one window.
    sb = sync_env(
        orders=800,
        days=6,
        seed=21,
        rate_limit_header=False,
        extra={"rate_limits": {"searchOrders": [0.5, 1]}},
    )
    wh_conn = request.getfixturevalue(f"{'pg' if backend == 'postgres' else 'sqlite'}_warehouse_conn_id")
    start = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conf = {"mode": "backfill", "start_date": start, "window_days": 30, "warehouse_conn_id": wh_conn}
    key_prefix = "sp_api_sync__sp_api_default__"
    from selling_partner.sync import checkpoint_key

    key = checkpoint_key("sp_api_default", sb.marketplace_ids, "backfill")
    assert key.startswith(key_prefix)

    log = open(tmp_path / "killed-run.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", "sp_api_orders_sync", "-c", json.dumps(conf)],
        env=airflow_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        at_kill = _wait_for_committed_pages(key, proc, pages=2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        log.close()
    assert proc.returncode == -signal.SIGKILL
    saved = json.loads(get_variable(key))
    assert 2 <= saved["window_pages"] < 8 and saved["page_token"] and not saved.get("done")
    assert saved["window_pages"] >= at_kill["window_pages"]
    calls_before_rerun = sb.stats()["operations"]["searchOrders"]["calls"]

    dr = run_dag(load_dag("sp_api_orders_sync"), run_conf=conf)
    summary = xcom_result(dr, TASK)
    assert summary["resumed_at_page"] == saved["pages"]
    assert summary["done"] and summary["pages"] == 8 - saved["window_pages"]
    # The rerun asked only for the pages after the saved one; at most one page (fetched but not yet
    # committed when the process died) was requested twice over both runs.
    total_calls = sb.stats()["operations"]["searchOrders"]["calls"]
    assert total_calls - calls_before_rerun == summary["pages"]
    assert total_calls <= 8 + 1
    truth = _check_equal(sb, wh_conn, summary["window_end"])
    assert len(truth["orders"]) == 800
