"""Assertions of the page's JSON against a :class:`tests.ui.world.World` (shared by the in-process and the
api-server tests)."""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

from tests.ui.world import CONN1, LATENCIES, ORDERS, PII, S1, World, iso


def check_orders(d: dict[str, Any], world: World) -> None:
    got = {
        (g["seller_id"], g["marketplace_id"], s): n for g in d["sellers"] for s, n in g["by_status"].items()
    }
    assert got == world.counts()
    got_1h = {
        (g["seller_id"], g["marketplace_id"], s): n for g in d["sellers"] for s, n in g["changes_1h"].items()
    }
    got_24h = {
        (g["seller_id"], g["marketplace_id"], s): n for g in d["sellers"] for s, n in g["changes_24h"].items()
    }
    assert got_1h == world.changes(60)
    assert got_24h == world.changes(24 * 60)
    assert d["total"] == len(ORDERS)
    fbm = d["fbm_awaiting_shipment"]
    waiting = world.fbm_waiting()
    assert fbm["orders"] == len(waiting)
    assert [r["order_id"] for r in fbm["first_to_ship"]] == [oid for oid, _ in waiting]
    soonest = waiting[0][1]
    assert soonest is not None
    assert fbm["oldest_ship_by"] == iso(world.now + timedelta(minutes=soonest))
    assert fbm["first_to_ship"][0]["ship_by_in_seconds"] < 0  # the first one is overdue


def check_freshness(d: dict[str, Any], world: World) -> None:
    (seller,) = d["notifications"]
    assert (seller["conn_id"], seller["seller_id"], seller["notifications"]) == (
        CONN1,
        S1,
        len(LATENCIES) + 1,
    )
    assert seller["newest_received_at"] == iso(world.now - timedelta(minutes=5))
    assert seller["age_seconds"] >= 300
    lat = d["publish_to_status"]
    cuts = statistics.quantiles(LATENCIES, n=100, method="inclusive")
    assert lat["samples"] == len(LATENCIES)
    assert lat["p50_seconds"] == round(cuts[49], 3)
    assert lat["p95_seconds"] == round(cuts[94], 3)
    assert lat["max_seconds"] == max(LATENCIES)
    assert sum(b["count"] for b in lat["histogram"]) == len(LATENCIES)
    (sweep,) = d["sweep_cursors"]
    assert sweep["conn_id"] == CONN1
    assert sweep["cursor"] == iso(world.now - timedelta(minutes=7))
    assert sweep["lag_seconds"] >= 7 * 60
    assert d["missed_by_events"]["orders"] == 2 + 1  # both sweeps of the last day


def check_work(d: dict[str, Any], world: World) -> None:
    (queue,) = d["enrichment"]
    assert (queue["conn_id"], queue["queued"]) == (CONN1, 4)
    assert queue["oldest_queued_at"] == iso(world.now - timedelta(minutes=120))
    oq = d["order_quarantine"]
    assert oq["open"] == 3
    assert {(r["source"], r["reason"]): r["rows"] for r in oq["by_reason"]} == {
        ("sync", "unknown order status"): 2,
        ("enrich", "getOrder 404"): 1,
    }
    newest = oq["newest"]
    assert [r["order_id"] for r in newest] == [
        "444-0000000-0000003",
        "444-0000000-0000002",
        "444-0000000-0000001",
    ]
    assert newest[0]["log_url"] is None  # the enrich row names no task
    assert newest[1]["log_url"].endswith(
        "/dags/sp_api_orders_sync/runs/manual__2026-12-03T10%3A00%3A00%2B00%3A00/tasks/sync_sp_api_ui_one"
    )
    nq = d["notification_quarantine"]
    assert nq["rows"] == 1
    assert (
        nq["by_reason"][0]["reason"]
        == "ORDER_CHANGE does not match Amazon's schema at $.Payload: '…' is not of type '…'"
    )
    ckpts = {c["mode"]: c for c in d["checkpoints"]}
    assert set(ckpts) == {"sweep", "backfill"}
    bf = ckpts["backfill"]
    assert bf["running"] is True and bf["done"] is False
    assert bf["pages_left"] == World.BACKFILL_PAGES_LEFT
    assert bf["eta_seconds"] == World.BACKFILL_ETA_SECONDS
    assert bf["progress"] == World.BACKFILL_PROGRESS
    assert (bf["window_pages"], bf["pages"], bf["orders"]) == (4, 9, 900)
    (history,) = d["history_loads"]
    assert (history["conn_id"], history["windows"], history["finished"], history["in_flight"]) == (
        CONN1,
        4,
        2,
        1,
    )
    assert (history["orders"], history["progress"], history["done"]) == (150, 0.5, False)
    assert history["eta_seconds"] >= World.HISTORY_ETA_SECONDS


def check_quota(d: dict[str, Any], world: World, *, table_buckets: int = 0) -> None:
    runs = {(r["conn_id"], r["mode"]): (r["calls"], r["throttled"]) for r in d["runs"]}
    assert runs == {(CONN1, "sweep"): (7, 1), (CONN1, "backfill"): (5, 0)}  # the 3-hour-old sweep is out
    assert (d["calls"], d["throttled"]) == (12, 1)
    buckets = {(b["seller_id"], b["operation"], b["source"]): b for b in d["buckets"]}
    assert buckets[(S1, "searchOrders", "variable")]["fill"] == 1.0
    assert buckets[(S1, "getOrder", "variable")]["fill"] == 0.25
    assert len(buckets) == 2 + table_buckets


def check_charts(d: dict[str, Any], world: World) -> None:
    series = d["status_changes_by_hour"]["series"]
    assert sum(sum(v) for v in series.values()) == sum(world.changes(23 * 60).values())
    assert all(len(v) == 24 for v in series.values())
    assert d["publish_to_status"]["samples"] == len(LATENCIES)


def assert_no_pii(text: str) -> None:
    for secret in PII:
        assert secret not in text
