"""Pure parts of the benchmarks: percentiles and curves of the storm, rate windows, import-time parsing,
the result rule for a target on the value beside a baseline, and the sync's pacing series."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from bench import bench_dag_parse as parse
from bench import bench_events_storm as storm
from bench.common import result


def test_percentile_interpolates_between_ranks():
    values = [4.0, 1.0, 3.0, 2.0]
    assert storm.percentile(values, 0) == 1.0
    assert storm.percentile(values, 100) == 4.0
    assert storm.percentile(values, 50) == pytest.approx(2.5)
    assert storm.percentile(values, 95) == pytest.approx(3.85)
    assert math.isnan(storm.percentile([], 50))


def test_freshness_curve_is_the_cdf_over_all_orders():
    curve = storm.freshness_curve([3.0, 1.0, 2.0], total=4, steps=10)
    assert curve == [[1.0, 0.25], [2.0, 0.5], [3.0, 0.75]]  # the 4th order never became fresh
    long = storm.freshness_curve([float(i) for i in range(1000)], total=1000, steps=50)
    assert len(long) == 51 and long[0] == [0.0, 0.001] and long[-1] == [999.0, 1.0]
    assert storm.freshness_curve([], total=5) == []


def test_bucket_allowance_and_peak_rate():
    assert storm.allowed_calls(30.0, 30, 10.0) == 330.0
    assert storm.allowed_calls(30.0, 30, -1.0) == 30.0
    samples = [[t / 2, n] for t, n in enumerate([0, 0, 10, 25, 40, 55, 60, 60, 60])]
    # 60 calls between t=0.5 and t=3.0; the busiest 2-second window holds 55 - 0 ... (t 0.5 -> 2.5).
    assert storm.peak_rate(samples, 2.0) == pytest.approx(55 / 2.0)
    assert storm.peak_rate(samples[:2], 2.0) == 0.0  # never a full window


def test_enrich_span_and_publish_times():
    samples = [[0.0, 0, 0, 0], [1.0, 5, 5, 0], [2.0, 40, 39, 0], [3.0, 41, 40, 0], [4.0, 41, 40, 0]]
    assert storm.enrich_span(samples) == (1.0, 3.0, 40)
    assert storm.enrich_span([[0.0, 0, 0, 0]]) == (None, None, 0)
    waves = [(0.0, ["a", "b"]), (1.5, ["b", "c"])]
    assert storm.final_publish_times(waves) == {"a": 0.0, "b": 1.5, "c": 1.5}


def test_first_fresh_keeps_the_first_time_only():
    seen: dict[str, float] = {}
    storm.first_fresh(seen, 1.0, {"a": "SHIPPED", "b": "UNSHIPPED"}, {"a": "SHIPPED", "b": "SHIPPED"})
    storm.first_fresh(seen, 2.0, {"a": "SHIPPED", "b": "SHIPPED"}, {"a": "SHIPPED", "b": "SHIPPED"})
    assert seen == {"a": 1.0, "b": 2.0}


def test_downsample_keeps_ends():
    points = [[float(i), i] for i in range(1000)]
    out = storm.downsample(points, limit=11)
    assert len(out) == 11 and out[0] == points[0] and out[-1] == points[-1]
    assert storm.downsample(points[:5], limit=11) == points[:5]


IMPORTTIME = """import time: self [us] | cumulative | imported package
import time:       100 |        100 | airflow.early
##sp-bench-parse-start##
import time:       500 |        500 |       urllib3.util.request
import time:       300 |      90000 |     requests
import time:      2000 |     120000 |   selling_partner.hooks.sp_api
import time:      1000 |     130000 | selling_partner.operators.orders_sync
import time:       100 |       4000 |   json.decoder
import time:       200 |       5000 | airflow.providers.standard.operators.trigger_dagrun
"""


def test_importtime_after_the_marker():
    entries = parse.parse_importtime(IMPORTTIME)
    assert entries[0] == (3, "urllib3.util.request", 0.5)
    assert "airflow.early" not in {name for _level, name, _ms in entries}
    assert parse.outermost(entries) == [
        ("selling_partner.operators.orders_sync", 130.0),
        ("airflow.providers.standard.operators.trigger_dagrun", 5.0),
    ]
    assert parse.third_party(entries) == [("requests", 90.0), ("urllib3", 0.5)]  # json is stdlib
    assert parse.heavy(parse.outermost(entries)) == [
        {"module": "selling_partner.operators.orders_sync", "ms": 130.0}
    ]
    assert parse.parse_importtime("no marker here") == []


def test_target_on_value_beside_a_baseline():
    row = result("f", 12.0, "s", target=20.0, baseline=600.0, target_on="value", higher_is_better=False)
    assert (row["ratio"], row["passed"]) == (0.02, True)
    assert (
        result("g", 30.0, "s", target=20.0, baseline=600.0, target_on="value", higher_is_better=False)[
            "passed"
        ]
        is False
    )
    assert result("h", 30.0, "x", target=0.1, baseline=600.0, higher_is_better=False)["passed"] is True
    with pytest.raises(ValueError, match="target_on"):
        result("i", 1.0, "x", target_on="both")


def test_sync_pacing_series_counts_first_saves_per_page(monkeypatch):
    from bench import bench_sync_backfill as sync

    clock = iter([10.0, 12.5, 15.0, 99.0])
    monkeypatch.setattr(sync, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    store = sync.TimedStore()
    for pages in (1, 2, 3, 3):  # a page saved twice keeps its first time
        store.save("k", {"pages": pages})
    assert store.series() == [[0.0, 1], [2.5, 2], [5.0, 3]]
    assert store.paced_span() == 5.0
