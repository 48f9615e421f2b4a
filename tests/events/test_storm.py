"""A storm through the real DAGs: duplicates, shuffled order, double-encoded bodies, poison, foreign.

The sandbox moves its world on four times (about a second apart, so orders change more than once)
and publishes every notification into SQS with duplicates, shuffled, partly double-encoded, plus
poison bodies and another seller's notifications. ``sp_api_order_events`` (dag.test) lands it all,
then ``sp_api_order_enrich`` fetches each order once. The warehouse must equal the truth through the
oracle's event-path view; then a sweep loads every order and a later storm's orders, already as fresh
as their events, leave the enrichment queue without a call.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.airflow import load_dag, run_dag, xcom_result

pytestmark = pytest.mark.integration

STORM = {"duplicates": 0.5, "shuffle": True, "double_encoded": 0.3, "poison": 3, "foreign_seller": 3}


def _storm(seller, rounds: int, *, new_orders: int, changes: int) -> None:
    for n in range(rounds):
        if n:
            time.sleep(1.1)  # an order changes at most once per second: let it change again
        seller.advance(new_orders=new_orders, changes=changes, **STORM)


def test_storm_lands_once_and_enriches_each_order_once(event_path):
    env = event_path()
    seller = env.seller
    _storm(seller, 4, new_orders=25, changes=30)
    published = sum(r["published"] for r in seller.reports)
    notes = seller.notifications()
    distinct = {n["notification_id"] for n in notes}
    orders = seller.order_ids()
    per_order = [sum(n["order_id"] == o for n in notes) for o in orders]
    assert any(n["notification_type"] == "FBA_OUTBOUND_SHIPMENT_STATUS" for n in notes)
    assert len(notes) >= 200 and published > len(notes) and max(per_order) >= 3, (len(notes), published)

    events = env.run_events()
    land, ack = events["land"], events["ack"]
    assert land["messages"] == published
    assert land["new"] == len(distinct)
    noise = sum(len(r["noise"]["poison"]) + len(r["noise"]["foreign_seller"]) for r in seller.reports)
    assert land["new"] + land["duplicate"] + land["quarantined"] == published
    assert land["duplicate"] > 0 and land["quarantined"] >= noise
    assert ack == {"deleted": published, "failed": 0}
    assert env.queue_depth() == (0, 0)
    # Status in seconds: before any getOrder, every order shows its newest notification's status.
    assert seller.calls("getOrder")["calls"] == 0
    env.assert_equal_to_truth(enriched=False)

    enriched = env.run_enrich()["sp_api_default"]
    get_order = seller.calls("getOrder")
    assert (get_order["calls"], get_order["ok"], get_order["throttled"]) == (len(orders), len(orders), 0)
    assert enriched["fetched"] == enriched["done"] == len(orders) and enriched["queued"] == 0
    env.assert_equal_to_truth()
    inbox = env.warehouse().fetch_inbox()
    assert len(inbox) == len(distinct) and all(r["processed_at"] is not None for r in inbox)
    assert env.quarantine_diffs() == []
    assert env.warehouse().enrichment_backlog() == {}


def test_orders_a_sweep_already_loaded_leave_the_queue_without_a_call(event_path):
    env = event_path()
    seller = env.seller
    _storm(seller, 2, new_orders=15, changes=20)
    env.run_events()
    queued = env.warehouse().enrichment_backlog()["sp_api_default"][0]
    assert queued == len(seller.order_ids())
    time.sleep(1.5)  # past the 2-minute rule (1 s here): the sweep sees every change
    start = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sync = run_dag(
        load_dag("sp_api_orders_sync"),
        run_conf={
            "mode": "backfill",
            "start_date": start,
            "window_days": 5,
            "warehouse_conn_id": env.warehouse_conn_id,
        },
    )
    swept = xcom_result(sync, "sync_orders__sp_api_default")
    assert swept["done"] is True
    before = seller.calls("getOrder")["calls"]
    enriched = env.run_enrich()["sp_api_default"]
    assert seller.calls("getOrder")["calls"] == before == 0
    assert enriched["skipped"] == queued and enriched["fetched"] == 0 and enriched["queued"] == 0
    truth = seller.sandbox.truth(lastUpdatedBefore=swept["window_end"])
    assert len(truth["orders"]) == len(seller.sandbox.truth()["orders"])  # the sweep saw everything
    env.assert_equal_to_truth(source="sync", order_ids=[o["orderId"] for o in truth["orders"]])
