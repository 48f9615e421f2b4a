"""One queue, several sellers: each notification routed by its SellerId to its connection.

Two sandboxes (two regions, so two seller ids) publish into the same queue, together with another
seller's notifications that no connection serves. One events run lands them all, each inbox row
naming the connection it was routed to; the foreign ones go to quarantine with a reason naming the
seller. The enrichment has one task per connection: the v2026 connection makes one ``getOrder`` per
order, the v0 connection ``getOrder`` (v0) plus ``getOrderItems`` (paged, 2 items a page here). Each
seller's rows equal its own sandbox's truth (v0 as v0 can carry it).
"""

from __future__ import annotations

import math
import time

import pytest

pytestmark = pytest.mark.integration

NA, EU = "sp_seller_na", "sp_seller_eu_v0"
ITEMS_PAGE = 2  # the sandbox's v0 getOrderItems page size (its default)


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_one_queue_two_sellers_routed_by_seller_id_and_a_foreign_one_quarantined(event_path, backend):
    env = event_path(
        {NA: {"region": "na", "seed": 21}, EU: {"region": "eu", "seed": 22, "items_page_size": ITEMS_PAGE}},
        extra={EU: {"orders_api_version": "v0"}},
        backend=backend,
    )
    na, eu = env.sellers[NA], env.sellers[EU]
    assert na.seller_id != eu.seller_id
    for n in range(2):
        if n:
            time.sleep(1.1)  # an order changes at most once per second
        for seller in (na, eu):
            seller.advance(new_orders=10, changes=12, duplicates=0.3, shuffle=True, foreign_seller=2)

    land = env.run_events()["land"]
    assert land["new"] == len({n["notification_id"] for s in (na, eu) for n in s.notifications()})
    assert land["quarantined"] >= 8  # every foreign notification, duplicates included
    inbox = env.warehouse().fetch_inbox()
    assert {(r["seller_id"], r["conn_id"]) for r in inbox} == {(na.seller_id, NA), (eu.seller_id, EU)}
    assert env.quarantine_diffs() == []

    summaries = env.run_enrich()
    assert summaries[NA]["fetched"] == len(na.order_ids()) and summaries[EU]["fetched"] == len(eu.order_ids())
    assert na.calls("getOrder")["ok"] == len(na.order_ids())
    assert na.calls("getOrderV0")["calls"] == na.calls("getOrderItems")["calls"] == 0
    assert eu.calls("getOrderV0")["ok"] == len(eu.order_ids()) and eu.calls("getOrder")["calls"] == 0
    truth = {o["orderId"]: o for o in eu.sandbox.truth()["orders"]}
    pages = sum(max(1, math.ceil(len(truth[o].get("orderItems") or []) / ITEMS_PAGE)) for o in eu.order_ids())
    assert eu.calls("getOrderItems")["ok"] == pages
    env.assert_equal_to_truth(NA)
    env.assert_equal_to_truth(EU, api_version="v0")
