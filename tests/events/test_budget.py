"""An enrichment run stops at its time budget and leaves the rest queued; the next runs finish it.

getOrder refills 10/s after its burst of 30 (sandbox time x20) and a run may take 1.5 s
(``SP_API_ENRICH_TIME_BUDGET_SECONDS``), so one run cannot fetch 50 orders: it stops with the rest
still queued, and later runs take up where it stopped, each order fetched exactly once.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_a_run_stops_at_its_budget_and_the_next_runs_finish_without_refetching(event_path):
    env = event_path(
        {"sp_api_default": {"orders": 30, "time_scale": 20}}, env={"SP_API_ENRICH_TIME_BUDGET_SECONDS": "1.5"}
    )
    seller = env.seller
    seller.advance(new_orders=40, changes=20)
    env.run_events()
    orders = len(seller.order_ids())
    assert orders >= 50

    first = env.run_enrich()["sp_api_default"]
    assert first["stop_reason"] != "queue empty" and first["queued"] > 0, first
    assert first["done"] + first["queued"] == orders
    runs = [first]
    while runs[-1]["queued"] and len(runs) < 8:
        runs.append(env.run_enrich()["sp_api_default"])
    assert runs[-1]["queued"] == 0 and runs[-1]["stop_reason"] == "queue empty", runs
    assert sum(r["fetched"] for r in runs) == seller.calls("getOrder")["ok"] == orders
    env.assert_equal_to_truth()
