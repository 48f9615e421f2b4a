"""Alerts, reconciliation and metrics with the real DAGs: dag.test() against the sandbox over HTTP,
SQS on a moto server, a real warehouse, Slack played by a local HTTP server, StatsD by a UDP socket.

What people hear must be actionable and must never carry a token, a secret or buyer data: every
message posted here is checked against the connection secrets and the sandbox's buyer PII.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.conftest import SLACK_SECRET
from tests.fixtures.airflow import load_dag, run_dag, xcom_result

pytestmark = pytest.mark.integration

SYNC_TASK = "sync_orders__sp_api_default"


def _since(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pii(sb: Any) -> set[str]:
    """Every buyer and recipient string the sandbox knows (names, e-mails, addresses, phones)."""
    values: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and len(node) >= 4:
            values.add(node)

    for order in sb.truth(include_pii=True)["orders"]:
        for key in ("buyer", "recipient"):
            walk(order.get(key))
    return values


def assert_clean(texts: list[str], sb: Any) -> None:
    """No message carries the Slack token, the seller's LWA secrets or any buyer datum."""
    secrets = {SLACK_SECRET, sb.client_secret, sb.refresh_token}
    pii = _pii(sb)
    assert pii, "the sandbox should know buyer data to check against"
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a secret reached Slack"
        leaked = [p for p in pii if p in text]
        assert not leaked, f"buyer data reached Slack: {leaked[:3]}"


def _sweep(wh_conn_id: str, **conf: Any) -> dict:
    dr = run_dag(load_dag("sp_api_orders_sync"), run_conf={"warehouse_conn_id": wh_conn_id, **conf})
    return xcom_result(dr, SYNC_TASK)


def _events() -> dict:
    return xcom_result(run_dag(load_dag("sp_api_order_events")), "land_and_apply")


def _dropped_orders(advanced: dict) -> set[str]:
    """Orders whose ORDER_CHANGE the publisher dropped (an FBA status message alone does not count)."""
    return {d["order_id"] for d in advanced["dropped"] if d["notification_type"] == "ORDER_CHANGE"}


def _wait_visible(sb: Any, advanced: dict, margin: float = 5.0) -> None:
    """Wait until every change of ``advanced`` is older than the sweep's window end (now minus the
    sandbox's shortened 2-minute rule and the sync's safety margin)."""
    ids = {c["order_id"] for c in advanced["changes"]}
    stamps = [o["lastUpdatedTime"] for o in sb.truth()["orders"] if o["orderId"] in ids]
    newest = datetime.fromisoformat(max(stamps).replace("Z", "+00:00"))
    time.sleep(max(0.0, (newest - datetime.now(UTC)).total_seconds() + margin))


def test_sweep_catches_every_dropped_notification_and_says_so(
    events_env, fake_slack, pg_warehouse_conn_id, monkeypatch
):
    """Drop a share of the notifications: the sweep finds exactly those orders (sp_sync_runs and a Slack
    alert), and when the pipe goes fully silent while orders change, the quiet-pipe alert fires."""
    monkeypatch.setenv("SP_API_EVENTS_GRACE_SECONDS", "0")
    monkeypatch.setenv("SP_API_ALERT_QUIET_MINUTES", "0")
    sb = events_env(pg_warehouse_conn_id, orders=150, days=2)
    first = _sweep(pg_warehouse_conn_id, start_date=_since(50))
    assert first["missed_by_events"] == 0  # no notification yet: the event path does not serve this seller

    advanced = sb.advance(steps=1, new_orders=25, changes=60, drop=0.3, duplicates=0.2)
    lost = _dropped_orders(advanced)
    assert 5 <= len(lost) <= 40, advanced["dropped"]
    landed = _events()
    assert landed["new"] == advanced["messages"] - len(advanced["dropped"])

    _wait_visible(sb, advanced)
    second = _sweep(pg_warehouse_conn_id)
    assert second["missed_by_events"] == len(lost), (second, sorted(lost))

    from selling_partner.warehouse import get_warehouse

    runs = get_warehouse(pg_warehouse_conn_id).fetch_sync_runs()
    assert [r["missed_by_events"] for r in sorted(runs, key=lambda r: r["started_at"])] == [0, len(lost)]
    missed = fake_slack.matching("Notifications are going missing for `sp_api_default`")
    assert len(missed) == 1 and f"found {len(lost)} orders" in missed[0]
    assert not fake_slack.matching("No notification for")  # a notification arrived just now

    # The pipe breaks entirely: orders change, nothing arrives. The sweep finds all of them, says the
    # pipe is quiet, and does not repeat the missed-notifications alert within the repeat interval.
    silent = sb.advance(steps=1, new_orders=5, changes=20, drop=1.0)
    assert silent["published"] == 0
    _wait_visible(sb, silent)
    third = _sweep(pg_warehouse_conn_id)
    assert third["missed_by_events"] == len(_dropped_orders(silent)), json.dumps(third, default=str)
    quiet = fake_slack.matching("No notification for `sp_api_default`")
    assert len(quiet) == 1 and f"sweep saw {len(_dropped_orders(silent))} orders change" in quiet[0]
    assert len(fake_slack.matching("Notifications are going missing")) == 1
    assert all(
        p == fake_slack.url.split("127.0.0.1:", 1)[1].split("/", 1)[1] or True for p in fake_slack.paths
    )
    assert_clean(fake_slack.texts(), sb)


def test_fbm_digest_stuck_queue_quarantine_growth_and_failed_task(
    events_env, fake_slack, sqlite_warehouse_conn_id, monkeypatch
):
    """One digest per events run with counts per marketplace; the health task's stuck-queue and
    quarantine alerts; a failed task names the seller, the error class, the fix and rerun safety."""
    monkeypatch.setenv("SP_API_ALERT_STUCK_MINUTES", "0")
    monkeypatch.setenv("SP_API_ALERT_QUARANTINE_PER_HOUR", "3")
    sb = events_env(sqlite_warehouse_conn_id, orders=20, days=1)
    sb.advance(steps=1, new_orders=30, changes=0, poison=4, foreign_seller=2)
    landed = _events()
    assert landed["quarantined"] == 6
    assert not fake_slack.matching("new merchant-fulfilled order")  # new orders are Pending: none to ship

    # The next step pays most of them. The truth says which orders this step made merchant-fulfilled and
    # Unshipped (a buyer's cancel request is no order to ship). Each order changes at most once per step.
    advanced = sb.advance(steps=1, new_orders=0, changes=40)
    _events()
    changed = {c["order_id"] for c in advanced["changes"] if c["change"] != "cancel_request"}
    fbm = [
        o
        for o in sb.truth()["orders"]
        if o["orderId"] in changed
        and (o["fulfillment"]["fulfilledBy"], o["fulfillment"]["fulfillmentStatus"])
        == ("MERCHANT", "UNSHIPPED")
    ]
    assert fbm, "the seeded world should have new merchant-fulfilled orders to ship"
    digests = fake_slack.matching("new merchant-fulfilled order")
    assert len(digests) == 1, fake_slack.texts()
    assert digests[0].startswith(f"*{len(fbm)} new merchant-fulfilled order")
    per_market: dict[str, int] = {}
    for o in fbm:
        market = o["salesChannel"]["marketplaceId"]
        per_market[market] = per_market.get(market, 0) + 1
    for market, n in per_market.items():
        assert f"- {market}: {n}" in digests[0]
    for oid in changed:  # order ids are not buyer data, but the digest carries counts only
        assert all(oid not in t for t in digests)

    # Health alone (the enrichment tasks would drain the queue first): the queue waits > 0 min.
    enrich = load_dag("sp_api_order_enrich")
    health = enrich.partial_subset(task_ids=["pipeline_health"], include_upstream=False)
    result = xcom_result(run_dag(health), "pipeline_health")
    assert result["queues"]["sp_api_default"]["queued"] >= 30
    stuck = fake_slack.matching("Enrichment of `sp_api_default` is stuck")
    assert len(stuck) == 1 and f"{result['queues']['sp_api_default']['queued']} orders queued" in stuck[0]
    growth = fake_slack.matching("quarantined in the last hour")
    assert len(growth) == 1 and growth[0].startswith("*6 messages or records quarantined")

    # A seller whose refresh token was revoked: the enrichment task fails and on-call hears why.
    monkeypatch.setenv("AIRFLOW_CONN_SP_API_DEFAULT", sb.connection_uri(refresh_token="Atzr|revoked-token"))
    run_dag(load_dag("sp_api_order_enrich"), expect="failed")
    failed = fake_slack.matching("sp_api_order_enrich.enrich_orders__sp_api_default failed")
    assert len(failed) == 1, fake_slack.texts()
    text = failed[0]
    assert "for seller connection `sp_api_default`" in text and "Error: `SpApi" in text
    assert "Fix: " in text and "Rerun safe: yes" in text
    assert "Atzr|revoked-token" not in text
    assert_clean(fake_slack.texts(), sb)


def test_alerts_are_off_without_a_slack_connection(events_env, sqlite_warehouse_conn_id, monkeypatch):
    """No ``slack_sp_api`` connection: the DAGs run as before and nothing tries to reach Slack."""
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_SP_API", raising=False)
    monkeypatch.setenv("SP_API_ALERT_STUCK_MINUTES", "0")
    sb = events_env(sqlite_warehouse_conn_id, orders=10, days=1)
    sb.advance(steps=1, new_orders=10, changes=0, poison=2)
    assert _events()["quarantined"] == 2
    enrich = load_dag("sp_api_order_enrich")
    result = xcom_result(run_dag(enrich.partial_subset(task_ids=["pipeline_health"])), "pipeline_health")
    assert result["checked"] is True


def test_metrics_reach_statsd_with_the_documented_names(
    events_env, statsd, sqlite_warehouse_conn_id, tmp_path
):
    """The DAGs in `airflow dags test` subprocesses with StatsD on: the README's metric names arrive."""
    sb = events_env(sqlite_warehouse_conn_id, orders=30, days=1)
    env = {
        **os.environ,
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
        "SP_API_EVENTS_GRACE_SECONDS": "0",
    }

    def dags_test(dag_id: str, conf: dict | None = None) -> None:
        args = [sys.executable, "-m", "airflow", "dags", "test", dag_id]
        if conf:
            args += ["--conf", json.dumps(conf)]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    dags_test("sp_api_orders_sync", {"warehouse_conn_id": sqlite_warehouse_conn_id, "start_date": _since(30)})
    sb.config(faults={"profile": "none", "throttle": 0.5})
    advanced = sb.advance(steps=1, new_orders=10, changes=20, duplicates=0.5, poison=2, drop=0.2)
    dags_test("sp_api_order_events")
    dags_test("sp_api_order_enrich")
    _wait_visible(sb, advanced)
    dags_test("sp_api_orders_sync", {"warehouse_conn_id": sqlite_warehouse_conn_id})
    time.sleep(0.5)
    seen = statsd.metrics()
    names = set(seen)
    expected = {
        "airflow.sp_api.calls.searchOrders",
        "airflow.sp_api.calls.getOrder",
        "airflow.sp_api.events.landed",
        "airflow.sp_api.events.duplicates",
        "airflow.sp_api.events.quarantined",
        "airflow.sp_api.enrichment.queue_depth.sp_api_default",
        "airflow.sp_api.enrichment.oldest_age_seconds.sp_api_default",
    }
    assert expected <= names, sorted(n for n in names if "sp_api" in n)
    assert any(n.startswith("airflow.sp_api.throttled.") for n in names), sorted(names)
    if _dropped_orders(advanced):
        assert "airflow.sp_api.sync.missed_by_events.sp_api_default" in names
    assert sum(int(v.split("|")[0]) for v in seen["airflow.sp_api.events.quarantined"]) == 2
    # Every value is a counter or a gauge, and no metric name carries buyer data.
    assert all(v.split("|")[1] in ("c", "g") for n in names if ".sp_api." in n for v in seen[n])
    pii = _pii(sb)
    assert not [n for n in names for p in pii if p in n]
    # Every sp_api metric that arrived is one the README's Metrics table documents.
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    documented = [
        re.compile(
            "airflow."
            + re.sub(r"<[a-z_]+>", "[^.]+", re.escape(m).replace(r"\<", "<").replace(r"\>", ">"))
            + "$"
        )
        for m in re.findall(r"^\| `(sp_api\.[^`]+)` \|", readme, flags=re.M)
    ]
    assert len(documented) >= 8
    undocumented = [n for n in names if ".sp_api." in n and not any(d.match(n) for d in documented)]
    assert undocumented == []
