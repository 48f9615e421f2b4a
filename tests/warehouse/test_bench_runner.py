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


def _table(dsn: str, table: str, columns: tuple[str, ...]) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}, {columns[1]}"
        ).fetchall()


@pytest.mark.integration
def test_both_loaders_write_the_same_rows():
    """The loader (with its replay) and the fair to_sql baseline end with identical tables, matching the
    synthetic records; the plain baseline holds the same orders and items."""
    from decimal import Decimal

    from selling_partner.warehouse import schema

    orders = wb.build_orders(300)
    with temporary_pg_database("sp_test_bench") as ours, temporary_pg_database("sp_test_bench") as fair:
        wb._load_with_warehouse(ours, orders, 100, replay=True)
        wb._load_with_pandas_same_tables(fair, orders)
        wb._load_with_pandas(ours, orders)
        for name in wb.SAME_TABLES:
            table = getattr(schema, name)
            cols = tuple(c for c in table.column_names if c not in ("loaded_at", "observed_at"))
            assert _table(ours, table.name, cols) == _table(fair, table.name, cols), table.name
        got_orders = _table(
            ours, "sp_orders", ("order_id", "order_status", "order_total", "last_updated_time")
        )
        got_items = _table(
            ours, "sp_order_items", ("order_id", "order_item_id", "quantity_ordered", "unit_price")
        )
        plain_orders = _table(ours, "baseline_orders", ("order_id", "order_status"))
        plain_items = _table(ours, "baseline_order_items", ("order_id", "order_item_id"))
    expected_orders = sorted(
        (o.order_id, o.order_status, Decimal(o.order_total), o.last_updated_time) for o in orders
    )
    expected_items = sorted(
        (i.order_id, i.order_item_id, i.quantity_ordered, Decimal(i.unit_price))
        for o in orders
        for i in o.items
    )
    assert got_orders == expected_orders and len(expected_orders) == 300
    assert got_items == expected_items and len(expected_items) == 900
    assert plain_orders == [r[:2] for r in expected_orders]
    assert plain_items == [r[:2] for r in expected_items]
