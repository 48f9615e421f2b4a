"""Pure parts of the ``history_backfill`` benchmark: the searchOrders bound, the minimum of report
requests, the Amazon-time conversion, the truth's chunks and the warehouse rows selected per chunk."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from bench import bench_history_backfill as hb


def test_search_orders_bound_paces_pages_after_the_burst():
    # 200,000 orders = 2,000 pages; 20 free, 1,980 at 0.0056/s -> about 98 hours.
    assert hb.search_orders_bound(200_000, rate=0.0056, burst=20) == pytest.approx(1980 / 0.0056)
    assert hb.search_orders_bound(200_001, rate=0.0056, burst=20) == pytest.approx(1981 / 0.0056)
    assert hb.search_orders_bound(1_500, rate=0.0056, burst=20) == 0.0  # within the burst


def test_minimum_requests_is_windows_times_marketplaces():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert hb.minimum_requests(start, start + timedelta(days=729), 30, 2) == 50  # 25 windows
    assert hb.minimum_requests(start, start + timedelta(days=720), 30, 2) == 48  # exactly 24
    assert hb.minimum_requests(start, start + timedelta(days=720, seconds=1), 30, 1) == 25
    assert hb.minimum_requests(start, start + timedelta(hours=1), 30, 3) == 3


def test_amazon_seconds_bound_and_estimate():
    bound, estimate = hb.amazon_seconds(120.0, 90.0, 100.0)
    assert bound == 12_000.0  # everything scaled
    assert estimate == 90.0 * 100 + 30.0  # sleeps scaled, local work at its speed
    assert hb.amazon_seconds(10.0, 12.0, 2.0) == (20.0, 24.0)  # never negative local work


def test_world_orders_cover_the_two_marketplaces_share():
    assert hb.world_orders(200_000) == 218_580
    assert hb.world_orders(92, share=0.92) == 100


def test_chunk_ranges_cover_the_range_without_gaps():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=65, hours=3)
    chunks = hb.chunk_ranges(start, end, 30)
    assert [hi - lo for lo, hi in chunks] == [timedelta(days=30)] * 2 + [timedelta(days=5, hours=3)]
    assert chunks[0][0] == start and chunks[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    assert hb.chunk_ranges(start, start, 30) == []


def test_rows_grouped_by_order_selected_per_chunk_and_orphans_named():
    tables = {
        "sp_orders": [{"order_id": "a"}, {"order_id": "b"}, {"order_id": "x"}],
        "sp_order_items": [{"order_id": "b", "order_item_id": "1"}, {"order_id": "b", "order_item_id": "2"}],
    }
    grouped = hb.group_rows(tables)
    assert hb.select_rows(grouped, ["a"]) == {"sp_orders": [{"order_id": "a"}], "sp_order_items": []}
    assert [r["order_item_id"] for r in hb.select_rows(grouped, ["b", "zz"])["sp_order_items"]] == ["1", "2"]
    assert hb.orphans(grouped, {"a", "b"}) == ["sp_orders x"]
    assert hb.orphans(grouped, {"a", "b", "x"}) == []


def test_counting_sleeps_sums_this_threads_sleeps_and_restores():
    real = time.sleep
    with hb.counting_sleeps() as slept:
        time.sleep(0.01)
        time.sleep(0.02)
    assert time.sleep is real
    assert slept["calls"] == 2 and slept["seconds"] == pytest.approx(0.03)
