"""Newest event wins: late, older notifications never move a status back or wipe details.

The sandbox publishes into a holding queue, so the test decides the delivery order (SQS standard
queues guarantee none): first each order's newest notification, enriched; then every older one,
newest first. The second delivery changes no ``sp_orders`` / items / packages row (not even its
``loaded_at``), adds every observed status to the history and costs no ``getOrder`` (the orders are
already as fresh as those events). A newer summary over a complete record moves the status and
keeps every detail until the enrichment brings the new ones.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest

from tests import oracle

pytestmark = pytest.mark.integration


def _nid(body: str) -> str:
    return str(json.loads(body)["NotificationMetadata"]["NotificationId"])


def _newest_first(notes: list[dict[str, Any]]) -> tuple[set[str], list[dict[str, Any]]]:
    """(ids of each order's newest ORDER_CHANGE and each shipment's newest FBA status, the rest newest
    first)."""
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    for n in notes:
        key = (n["order_id"], n["notification_type"], n.get("shipment_id") or "")
        if key not in best or n["time"] > best[key]["time"]:
            best[key] = n
    newest = {n["notification_id"] for n in best.values()}
    older = sorted(
        (n for n in notes if n["notification_id"] not in newest), key=lambda n: n["time"], reverse=True
    )
    return newest, older


def _by_order(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["order_id"], []).append(row)
    return out


def test_older_notifications_after_newer_change_nothing_but_history(event_path):
    env = event_path({"sp_api_default": {"orders": 20, "days": 2}}, hold=True)
    seller = env.seller
    for n in range(3):
        if n:
            time.sleep(1.1)  # an order changes at most once per second
        seller.advance(new_orders=8, changes=14)
    notes = seller.notifications()
    bodies = {_nid(b): b for b in env.held()}
    assert set(bodies) == {n["notification_id"] for n in notes}
    newest, older = _newest_first(notes)
    assert len(older) >= 10, "too few orders changed twice: nothing would be proven"

    env.deliver([bodies[i] for i in sorted(newest)])
    assert env.run_events()["land"]["new"] == len(newest)
    env.run_enrich()
    fetched = seller.calls("getOrder")["calls"]
    assert fetched == len(seller.order_ids())
    env.assert_equal_to_truth(notifications=[n for n in notes if n["notification_id"] in newest])
    wh = env.warehouse()
    before = {"orders": wh.fetch_orders(), "items": wh.fetch_items(), "packages": wh.fetch_packages()}

    env.deliver([bodies[n["notification_id"]] for n in older])
    land = env.run_events()["land"]
    assert (land["new"], land["duplicate"], land["quarantined"]) == (len(older), 0, 0)
    after = {"orders": wh.fetch_orders(), "items": wh.fetch_items(), "packages": wh.fetch_packages()}
    assert after == before  # no status moved back, no detail wiped, no row even rewritten
    queued = wh.enrichment_backlog()["sp_api_default"][0]
    assert queued == len({n["order_id"] for n in older})
    enriched = env.run_enrich()["sp_api_default"]
    assert enriched["skipped"] == queued and enriched["fetched"] == 0
    assert seller.calls("getOrder")["calls"] == fetched
    env.assert_equal_to_truth()  # the history now holds every status each order was observed in
    history = _by_order(wh.fetch_status_history())
    assert any(len({r["order_status"] for r in rows}) >= 3 for rows in history.values())

    # A newer summary over a complete record: the status moves on, every detail stays.
    time.sleep(1.1)
    change = seller.advance(new_orders=0, changes=10)
    changed = {c["order_id"]: c for c in change["changes"] if c["notification_type"] == oracle.ORDER_CHANGE}
    assert changed
    env.deliver(env.held())
    env.run_events()
    old_orders = {r["order_id"]: r for r in before["orders"]}
    old_items = _by_order(before["items"])
    items = _by_order(wh.fetch_items())
    details = [c for c in oracle.TABLES[oracle.ORDERS].kinds if c not in oracle.STATUS_COLUMNS]
    for row in wh.fetch_orders():
        if row["order_id"] not in changed:
            continue
        note = changed[row["order_id"]]
        assert (row["order_status"], row["source"], row["status_from_complete"]) == (
            note["order_status"],
            "summary",
            False,
        )
        assert (
            row["last_updated_time"]
            == oracle.parse_time(note["time"])
            > old_orders[row["order_id"]]["last_updated_time"]
        )
        assert {c: row[c] for c in details} == {c: old_orders[row["order_id"]][c] for c in details}
        assert items.get(row["order_id"]) == old_items.get(row["order_id"])
    env.run_enrich()
    assert seller.calls("getOrder")["calls"] == fetched + len(changed)
    env.assert_equal_to_truth()
    assert all(isinstance(r["details_updated_time"], datetime) for r in wh.fetch_orders())
