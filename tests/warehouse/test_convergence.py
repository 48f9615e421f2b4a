"""Property: any permutation of any multiset of versions of the same orders converges to the newest.

Runs on real PostgreSQL and SQLite. Versions differ in status, items, packages and prices, and mix
complete records with partial ORDER_CHANGE summaries; they arrive shuffled, repeated and split into
arbitrary batches. The expected state is computed from the documented rule, not from the loader:
status from the newest version (complete first at equal times), details/items/packages from the
newest complete version (or the newest summary when no complete version exists).
"""

from __future__ import annotations

import os
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selling_partner.orders.canonical import CanonicalOrder

from tests.fixtures.warehouse import pg_conn_uri, sqlite_conn_uri
from tests.warehouse.factories import at, item, order, package

pytestmark = pytest.mark.integration

ORDER_IDS = ("111-0000001-0000001", "111-0000002-0000002", "111-0000003-0000003")
STATUSES = ("PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED")


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def shared_warehouse(request, pg_dsn, tmp_path_factory):
    """One warehouse per backend for the whole module (hypothesis examples truncate it)."""
    import psycopg
    from selling_partner.warehouse import get_warehouse

    conn_id = f"sp_warehouse_prop_{request.param}"
    var = f"AIRFLOW_CONN_{conn_id.upper()}"
    if request.param == "postgres":
        schema = "wh_property"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
        os.environ[var] = pg_conn_uri(pg_dsn, schema)
    else:
        os.environ[var] = sqlite_conn_uri(tmp_path_factory.mktemp("prop") / "wh.db")
    wh = get_warehouse(conn_id)
    wh.ensure_schema()
    yield wh
    os.environ.pop(var, None)


def _version(oid: str, minute: int, complete: bool, status: str, variant: int) -> CanonicalOrder:
    """A version's content is a function of its key, as it is for the real API."""
    if not complete:
        return order(
            oid,
            status=status,
            updated=at(minute),
            total=None,
            items=tuple(item(oid, n, qty=n + 1, price=None) for n in range(1, variant + 1)),
            complete=False,
            source="summary",
        )
    pkg_status = "DELIVERED" if status == "SHIPPED" and variant % 2 else "IN_TRANSIT"
    return order(
        oid,
        status=status,
        updated=at(minute),
        total=f"{10 * variant + minute}.{minute:02d}",
        items=tuple(
            item(oid, n, qty=n + minute % 3, price=f"{n + variant}.99") for n in range(variant, variant + 2)
        ),
        packages=tuple(package(oid, n, status=pkg_status) for n in range(variant % 3)),
    )


@st.composite
def histories(draw):
    """(all distinct versions, the arrival sequence as batches)."""
    versions: list[CanonicalOrder] = []
    for oid in draw(st.lists(st.sampled_from(ORDER_IDS), min_size=1, max_size=3, unique=True)):
        keys = draw(
            st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=5, unique=True)
        )
        for minute, complete in keys:
            status = draw(st.sampled_from(STATUSES))
            versions.append(_version(oid, minute, complete, status, draw(st.integers(1, 3))))
    arrivals = draw(st.lists(st.sampled_from(versions), min_size=1, max_size=14))
    arrivals += versions  # every version arrives at least once
    arrivals = draw(st.permutations(arrivals))
    cuts = sorted(draw(st.lists(st.integers(1, len(arrivals) - 1), max_size=4)) if len(arrivals) > 1 else [])
    bounds = [0, *cuts, len(arrivals)]
    batches = [arrivals[a:b] for a, b in pairwise(bounds) if b > a]
    return versions, batches


def _expected(versions: list[CanonicalOrder]):
    orders, items, packages = {}, set(), set()
    for oid in {v.order_id for v in versions}:
        mine = [v for v in versions if v.order_id == oid]
        newest = max(mine, key=lambda v: (v.last_updated_time, v.complete))
        richest = max(mine, key=lambda v: (v.complete, v.last_updated_time))
        orders[oid] = (
            newest.order_status,
            newest.last_updated_time,
            newest.source,
            richest.complete,
            richest.last_updated_time,
            None if richest.order_total is None else Decimal(richest.order_total),
        )
        items |= {
            (i.order_id, i.order_item_id, i.quantity_ordered, i.unit_price and Decimal(i.unit_price))
            for i in richest.items
        }
        packages |= {(p.order_id, p.package_reference_id, p.package_status) for p in richest.packages}
    history = {(v.order_id, v.order_status, v.last_updated_time) for v in versions}
    delivered = {
        (v.order_id, v.order_status, v.last_updated_time)
        for v in versions
        if v.packages and all(p.package_status == "DELIVERED" for p in v.packages)
    }
    return orders, items, packages, history, delivered


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=histories())
def test_any_arrival_order_converges_to_the_newest(shared_warehouse, data):
    versions, batches = data
    wh = shared_warehouse
    wh.truncate_all()
    for batch in batches:
        wh.upsert_orders(batch)
    exp_orders, exp_items, exp_packages, exp_history, exp_delivered = _expected(versions)
    got = {
        r["order_id"]: (
            r["order_status"],
            r["last_updated_time"],
            r["source"],
            r["is_complete"],
            r["details_updated_time"],
            r["order_total"],
        )
        for r in wh.fetch_orders()
    }
    assert got == exp_orders
    assert {
        (i["order_id"], i["order_item_id"], i["quantity_ordered"], i["unit_price"]) for i in wh.fetch_items()
    } == exp_items
    assert {
        (p["order_id"], p["package_reference_id"], p["package_status"]) for p in wh.fetch_packages()
    } == exp_packages
    hist = wh.fetch_status_history()
    assert {(h["order_id"], h["order_status"], h["last_updated_time"]) for h in hist} == exp_history
    assert {
        (h["order_id"], h["order_status"], h["last_updated_time"]) for h in hist if h["packages_delivered"]
    } == exp_delivered
    # Replaying everything once more is a no-op for the analytical state.
    before = (wh.fetch_orders(), wh.fetch_items(), wh.fetch_packages())
    wh.upsert_orders([v for b in batches for v in b])
    after = (wh.fetch_orders(), wh.fetch_items(), wh.fetch_packages())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "loaded_at"} for r in rows]  # noqa: E731
    assert [strip(x) for x in after] == [strip(x) for x in before]
