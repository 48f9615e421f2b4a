"""The history backfill with ``include_pii`` and no PII key connection fails before requesting a report,
naming the fix, and writes nothing (tests/warehouse/test_pii.py has the rest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.airflow import load_dag, run_dag
from tests.fixtures.warehouse import PII_KEY_ENV

pytestmark = pytest.mark.integration


def test_history_with_pii_and_no_key_fails_before_any_report(
    history_env, sqlite_warehouse_conn_id, monkeypatch
):
    from selling_partner.warehouse import get_warehouse

    sb = history_env(orders=10, days=3, seed=5, extra={"include_pii": True})
    monkeypatch.delenv(PII_KEY_ENV)
    now = datetime.now(UTC).replace(microsecond=0)
    conf = {"start_date": (now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_date": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "warehouse_conn_id": sqlite_warehouse_conn_id}  # fmt: skip
    run_dag(load_dag("sp_api_orders_history"), run_conf=conf, expect="failed")
    assert sb.stats()["operations"].get("createReport", {}).get("calls", 0) == 0
    wh = get_warehouse(sqlite_warehouse_conn_id)
    assert wh.fetch_orders() == [] and wh.fetch_buyers(decrypt=False) == []
    (run,) = wh.fetch_sync_runs()
    assert run["status"] == "failed" and "PiiKeyError" in run["error"] and "sp_api_pii_key" in run["error"]
