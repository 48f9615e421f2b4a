"""The benchmark runner's merge/result rules and a small end-to-end run of warehouse_upsert."""

from __future__ import annotations

import pytest

from bench import bench_warehouse_upsert as wb
from bench.__main__ import format_table, merge
from bench.common import result, temporary_pg_database


def test_result_ratio_and_pass():
    r = result("x", 300.0, "rows/s", target=10.0, baseline=20.0)
    assert (r["ratio"], r["passed"]) == (15.0, True)
    assert result("y", 5.0, "s", target=10.0, higher_is_better=False)["passed"] is True
    assert result("z", 5.0, "s")["passed"] is None
    assert set(r) == {"name", "value", "unit", "target", "baseline", "ratio", "passed"}


def test_merge_replaces_only_the_benchmarks_run():
    old = [
        {"name": "warehouse_upsert", "value": 1, "benchmark": "warehouse_upsert"},
        {"name": "rate_limiter", "value": 2, "benchmark": "rate_limiter"},
        {"name": "warehouse_upsert.replay", "value": 3, "benchmark": "warehouse_upsert"},
    ]
    new = {"warehouse_upsert": [{"name": "warehouse_upsert", "value": 9, "benchmark": "warehouse_upsert"}]}
    assert [(r["name"], r["value"]) for r in merge(old, new)] == [
        ("rate_limiter", 2),
        ("warehouse_upsert", 9),
    ]
    assert "PASS" in format_table([result("x", 300.0, "rows/s", target=10.0, baseline=20.0)])


def test_synthetic_orders_are_deterministic():
    a, b = wb.build_orders(50), wb.build_orders(50)
    assert a == b and all(len(o.items) == wb.ITEMS_PER_ORDER for o in a)
    assert len({o.order_id for o in a}) == 50


@pytest.mark.integration
def test_both_loaders_write_the_same_rows():
    orders = wb.build_orders(300)
    with temporary_pg_database("sp_test_bench") as dsn:
        assert min(wb._load_with_warehouse(dsn, orders, 100, replay=True)) > 0  # type: ignore[type-var]
        assert wb._load_with_pandas(dsn, orders) > 0
        import psycopg

        with psycopg.connect(dsn) as conn:
            counts = [
                conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("sp_orders", "sp_order_items", "baseline_orders", "baseline_order_items")
            ]
    assert counts == [300, 900, 300, 900]
