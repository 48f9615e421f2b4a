"""The history DAG end to end: dag.test() against the sandbox's Reports API over HTTP into PostgreSQL.

The warehouse must equal the sandbox's truth as order reports carry it (``report_oracle``, which shares
no code with the product); a crashed run must reuse the reports it requested; an API record must win over
a report row of the same version, and a reloaded report must not overwrite it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.fixtures.airflow import get_variable, load_dag, run_dag, task_states, xcom_result
from tests.reports.report_oracle import compare, expected_rows

pytestmark = pytest.mark.integration

TASK = "load_history__sp_api_default"
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _range(days_back: int) -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(days=days_back), now - timedelta(minutes=5)


def _truth_in(sb, start: datetime, end: datetime, marketplaces: set[str]) -> dict:
    truth = sb.truth(lastUpdatedAfter=_iso(start), lastUpdatedBefore=_iso(end))
    truth["orders"] = [o for o in truth["orders"] if o["salesChannel"]["marketplaceId"] in marketplaces]
    assert truth["orders"], "the history window is empty: the test would prove nothing"
    return truth


def _reports(sb) -> dict:
    return requests.get(f"{sb.url}/_sandbox/reports", timeout=30).json()


def _config(sb, **cfg) -> None:
    response = requests.post(f"{sb.url}/_sandbox/reports/config", json=cfg, timeout=30)
    assert response.status_code == 200, response.text


def test_history_equals_truth_defers_retries_fatal_and_hands_over(history_env, pg_warehouse_conn_id):
    from selling_partner.warehouse import get_warehouse

    sb = history_env(orders=300, days=30, seed=21)
    # One FATAL report (retried after the wait) and one expired document URL (a new one is fetched).
    _config(sb, fatal_next=1, expire_next_urls=1)
    start, end = _range(70)  # the first 30-day windows are older than the world: CANCELLED, no data
    conf = {"start_date": _iso(start), "end_date": _iso(end), "marketplace_ids": [US, CA],
            "warehouse_conn_id": pg_warehouse_conn_id}  # fmt: skip
    dr = run_dag(load_dag("sp_api_orders_history"), run_conf=conf)
    summary = xcom_result(dr, TASK)

    truth = _truth_in(sb, start, end, {US, CA})
    diffs = compare(expected_rows(truth), get_warehouse(pg_warehouse_conn_id))
    assert diffs == [], "the warehouse differs from the truth as reports carry it:\n" + "\n".join(diffs[:30])

    windows = 6  # 70 days in windows of 30 -> 3 per marketplace
    assert summary["windows"]["LOADED"] + summary["windows"]["EMPTY"] == windows
    assert summary["windows"]["EMPTY"] >= 2 and summary["orders"] == len(truth["orders"])
    assert summary["run_deferrals"] >= 1  # waited for Amazon to build the reports without a worker slot
    stats = sb.stats()["operations"]
    assert stats["createReport"]["calls"] == windows + 1  # the FATAL window was requested once more
    assert (
        stats["getReportDocument"]["calls"] >= summary["windows"]["LOADED"] + 2
    )  # + error doc + expired URL
    listed = _reports(sb)
    assert sorted(r["processingStatus"] for r in listed["reports"]).count("FATAL") == 1
    ledger = json.loads(get_variable(summary["ledger_key"]))
    fatal = [w for w in ledger["windows"] if w["attempts"]]
    assert len(fatal) == 1 and "FATAL" in fatal[0]["error"] and fatal[0]["status"] in ("LOADED", "EMPTY")

    # The try is recorded for on-call like a sync run.
    [run] = get_warehouse(pg_warehouse_conn_id).fetch_sync_runs()
    assert (run["mode"], run["status"], run["pages"], run["orders"]) == (
        "history", "success", summary["windows"]["LOADED"], summary["orders"],
    )  # fmt: skip
    sp_api_calls = {op: n["calls"] for op, n in sb.stats()["operations"].items() if op != "lwaToken"}
    assert run["calls"] == sum(sp_api_calls.values())  # every SP-API call of every process of the try
    assert run["deferrals"] == summary["run_deferrals"] >= 1

    # The hand-over: the sweep of sp_api_orders_sync starts 2 hours before the history's end.
    assert summary["handover"]["action"] == "create"
    sweep = json.loads(get_variable(summary["handover"]["sweep_checkpoint"]))
    assert sweep["mode"] == "sweep" and sweep["cursor"] == _iso(end - timedelta(hours=2))


def test_crash_rerun_reuses_reports_and_api_record_wins(history_env, pg_warehouse_conn_id):
    from selling_partner.hooks.orders import SellingPartnerOrdersHook
    from selling_partner.warehouse import get_warehouse

    sb = history_env(orders=250, days=25, seed=22)
    start, end = _range(40)
    conf = {"start_date": _iso(start), "end_date": _iso(end), "marketplace_ids": [US], "window_days": 10}
    dag = load_dag("sp_api_orders_history")
    # The first run crashes when it first loads a report: its warehouse connection does not exist.
    failed = run_dag(dag, run_conf={**conf, "warehouse_conn_id": "no_such_warehouse"}, expect="failed")
    assert task_states(failed)[TASK] == "failed"
    first = sb.stats()["operations"]["createReport"]["calls"]
    assert first >= 1
    dr = run_dag(dag, run_conf={**conf, "warehouse_conn_id": pg_warehouse_conn_id})
    summary = xcom_result(dr, TASK)
    assert summary["windows"].get("LOADED", 0) + summary["windows"].get("EMPTY", 0) == 4
    # Every window was requested exactly once, across both runs: the rerun polled the reports in flight.
    assert sb.stats()["operations"]["createReport"]["calls"] == 4 == len(_reports(sb)["reports"])
    assert summary["run_created"] == 4 - first

    warehouse = get_warehouse(pg_warehouse_conn_id)
    truth = _truth_in(sb, start, end, {US})
    assert compare(expected_rows(truth), warehouse) == []

    # An API record of the same lastUpdatedTime wins over the report row, field by field...
    shipped = next(
        o for o in truth["orders"] if o.get("packages") and o["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    )
    oid = shipped["orderId"]
    hook = SellingPartnerOrdersHook("sp_api_default")
    record = hook.get_canonical_order(oid)
    hook.close()
    warehouse.upsert_orders([record])

    def api_row() -> tuple:
        row = next(r for r in warehouse.fetch_orders() if r["order_id"] == oid)
        packages = [p for p in warehouse.fetch_packages() if p["order_id"] == oid]
        return row["source"], row["api_version"], row["latest_ship_time"], len(packages)

    before = api_row()
    assert before[0] == "sync" and before[1] == "2026-01-01" and before[2] is not None and before[3] >= 1
    # ... and loading the same reports again (a new ledger) leaves it alone; the other orders stay equal.
    run_dag(dag, run_conf={**conf, "warehouse_conn_id": pg_warehouse_conn_id, "reset_ledger": True})
    assert api_row() == before
    others = [o["orderId"] for o in truth["orders"] if o["orderId"] != oid]
    assert compare(expected_rows(truth, order_ids=others), warehouse, order_ids=others) == []


def test_dag_wiring(airflow_db):
    dag = load_dag("sp_api_orders_history")
    assert dag.schedule is None and dag.max_active_runs == 1 and dag.catchup is False
    for name in ("start_date", "end_date", "marketplace_ids", "window_days", "max_fatal_retries",
                 "reset_ledger", "warehouse_conn_id"):  # fmt: skip
        assert dag.params.get_param(name).description, name
    assert dag.params.get_param("window_days").schema["maximum"] == 30
    assert [t.task_id for t in dag.tasks] == [TASK]
    assert [o.uri for o in dag.tasks[0].outlets] == ["sp_api://warehouse/sp_orders"]
    assert "ledger" in dag.doc_md and "sweep" in dag.doc_md


def test_request_interrupted_before_its_report_id_was_saved_is_found_again(history_env, pg_warehouse_conn_id):
    """A crash between Amazon accepting ``createReport`` and the ledger saving the report id leaves the
    window CREATING: the next run finds the report with ``getReports`` instead of requesting it again."""
    from airflow.models.variable import Variable as VariableModel
    from selling_partner.checkpoint import dumps_checkpoint
    from selling_partner.hooks.reports import SellingPartnerReportsHook
    from selling_partner.reports import ledger as lg
    from selling_partner.reports.parsing import REPORT_TYPE
    from selling_partner.warehouse import get_warehouse

    sb = history_env(orders=150, days=10, seed=23)
    start, end = _range(15)
    requested = {"start": _iso(start), "end": _iso(end), "marketplace_ids": [US], "window_days": 10.0}
    windows = lg.plan_windows(start, end, [US], 10.0)
    ledger = lg.new_ledger(
        conn_id="sp_api_default", requested=requested, report_type=REPORT_TYPE, windows=windows, now=start
    )
    ledger.update(end=_iso(end), run={"run_id": "the crashed run"})
    first = windows[0]
    lg.mark_creating(ledger, first["id"], now=datetime.now(UTC))
    hook = SellingPartnerReportsHook("sp_api_default")  # the request Amazon accepted before the crash
    hook.create_report(REPORT_TYPE, [US], data_start_time=start, data_end_time=start + timedelta(days=10))
    hook.close()
    VariableModel.set(lg.ledger_key("sp_api_default", requested), dumps_checkpoint(ledger))

    conf = {"start_date": _iso(start), "end_date": _iso(end), "marketplace_ids": [US], "window_days": 10,
            "warehouse_conn_id": pg_warehouse_conn_id}  # fmt: skip
    summary = xcom_result(run_dag(load_dag("sp_api_orders_history"), run_conf=conf), TASK)
    assert summary["run_reused"] == 1 and summary["run_created"] == 1
    assert sb.stats()["operations"]["createReport"]["calls"] == 2 == len(windows)
    assert sb.stats()["operations"]["getReports"]["calls"] >= 1
    truth = _truth_in(sb, start, end, {US})
    assert compare(expected_rows(truth), get_warehouse(pg_warehouse_conn_id)) == []


def test_repeated_fatal_quarantines_the_window_a_new_run_retries_it_and_pii_is_opt_in(
    history_env, pg_warehouse_conn_id
):
    from selling_partner.warehouse import get_warehouse

    sb = history_env(orders=120, days=6, seed=24, extra={"include_pii": True})
    _config(sb, fatal_next=10)
    start, end = _range(8)
    conf = {"start_date": _iso(start), "end_date": _iso(end), "marketplace_ids": [US], "window_days": 10,
            "max_fatal_retries": 1, "warehouse_conn_id": pg_warehouse_conn_id}  # fmt: skip
    dag = load_dag("sp_api_orders_history")
    failed = run_dag(dag, run_conf=conf, expect="failed")
    assert task_states(failed)[TASK] == "failed"
    ledger_key = next(k for k in _variables("sp_api_history__"))
    [window] = json.loads(get_variable(ledger_key))["windows"]
    assert (
        window["status"] == "QUARANTINED" and window["attempts"] == 2 and "FATAL 2 times" in window["error"]
    )
    assert "seeded FATAL fault" in window["error"]  # the error document's reason
    assert sb.stats()["operations"]["createReport"]["calls"] == 2
    warehouse = get_warehouse(pg_warehouse_conn_id)
    warehouse.ensure_schema()
    assert warehouse.fetch_orders() == []

    _config(sb, fatal_next=0)
    summary = xcom_result(run_dag(dag, run_conf=conf), TASK)  # a new run tries the quarantined window again
    assert summary["windows"] == {"LOADED": 1} and summary["quarantined_windows"] == []
    runs = sorted(warehouse.fetch_sync_runs(), key=lambda r: r["started_at"])
    assert [(r["mode"], r["status"]) for r in runs] == [("history", "failed"), ("history", "success")]
    assert runs[0]["error"].startswith("AirflowFailException: 1 report window(s) were quarantined")
    # PII enabled on the connection: the report's ship city/state/postal code/country go to sp_order_buyers
    truth = sb.truth(lastUpdatedAfter=_iso(start), lastUpdatedBefore=_iso(end), include_pii=True)
    addresses = {
        o["orderId"]: o["recipient"]["deliveryAddress"]
        for o in truth["orders"]
        if o["salesChannel"]["marketplaceId"] == US and o.get("recipient")
    }
    buyers = {b["order_id"]: b for b in warehouse.fetch_buyers() if b["city"]}
    assert addresses and set(buyers) == set(addresses)
    for oid, address in addresses.items():
        b = buyers[oid]
        assert (b["city"], b["state_or_region"], b["postal_code"], b["country_code"]) == (
            address["city"], address["stateOrRegion"], address["postalCode"], address["countryCode"],
        )  # fmt: skip
        assert b["buyer_name"] is None and b["address_line1"] is None  # a report has no more than that


def _variables(prefix: str) -> list[str]:
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return [v.key for v in session.query(VariableModel).filter(VariableModel.key.startswith(prefix))]
