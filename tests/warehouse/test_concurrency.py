"""Concurrent writers (sync and event DAGs at once) neither deadlock nor lose the newest version."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from selling_partner.warehouse import LATEST_VERSION, get_warehouse

from tests.warehouse.factories import at, item, order

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgres", "sqlite"])
def empty_conn_id(request) -> str:
    return request.getfixturevalue(
        "pg_warehouse_conn_id" if request.param == "postgres" else "sqlite_warehouse_conn_id"
    )


def test_concurrent_ensure_schema(empty_conn_id):
    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(lambda _: get_warehouse(empty_conn_id).ensure_schema(), range(4)))
    assert versions == [LATEST_VERSION] * 4
    assert get_warehouse(empty_conn_id).schema_version() == LATEST_VERSION


def test_concurrent_overlapping_batches_converge(empty_conn_id):
    get_warehouse(empty_conn_id).ensure_schema()
    ids = [f"111-{n:07d}-0000001" for n in range(60)]

    def batch(worker: int):
        # Each worker writes every order, in a different order, with its own version minute.
        order_ids = ids if worker % 2 else list(reversed(ids))
        return [order(oid, status="SHIPPED" if worker == 3 else "UNSHIPPED", updated=at(worker),
                      items=(item(oid, worker),)) for oid in order_ids]  # fmt: skip

    def run(worker: int):
        wh = get_warehouse(empty_conn_id)
        return [wh.upsert_orders(batch(worker)) for _ in range(3)]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, range(4)))
    wh = get_warehouse(empty_conn_id)
    rows = wh.fetch_orders()
    assert len(rows) == 60 and {(r["order_status"], r["last_updated_time"]) for r in rows} == {
        ("SHIPPED", at(3))
    }
    assert {i["order_item_id"] for i in wh.fetch_items()} == {f"{oid}-I3" for oid in ids}
    history = [(h["order_id"], h["order_status"], h["last_updated_time"]) for h in wh.fetch_status_history()]
    assert sorted(history) == sorted(
        (oid, "SHIPPED" if worker == 3 else "UNSHIPPED", at(worker)) for oid in ids for worker in range(4)
    )
