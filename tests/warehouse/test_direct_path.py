"""The PostgreSQL direct path: children of orders a batch inserts are COPYed straight into their tables.

These tests pin what must not change when that path is taken instead of staging + upsert: the final
tables (mixed batches, orphaned children, repeats, concurrent writers) and atomicity (a bad item price
raised while COPY streams rolls the whole batch back). Shared behaviour runs on both backends; SQLite
always takes the staged path and so is the reference the direct path must agree with.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from selling_partner.warehouse import get_warehouse
from selling_partner.warehouse.postgres import PostgresWarehouse

from tests.warehouse.factories import at, item, order, package, summary

pytestmark = pytest.mark.integration


def oid(n: int) -> str:
    return f"111-{n:07d}-0000001"


def _strip(rows: list[dict[str, Any]], *cols: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in cols} for r in rows]


def _state(wh, *, drop: tuple[str, ...] = ()) -> tuple:
    """Orders, items, packages, history and buyers (all columns except ``drop``)."""
    return tuple(
        _strip(rows, *drop)
        for rows in (
            wh.fetch_orders(),
            wh.fetch_items(),
            wh.fetch_packages(),
            wh.fetch_status_history(),
            wh.fetch_buyers(),
        )
    )


def _items(wh) -> list[tuple]:
    return sorted(
        (
            i["order_id"],
            i["order_item_id"],
            i["quantity_ordered"],
            i["unit_price"],
            i["order_last_updated_time"],
        )
        for i in wh.fetch_items()
    )


def _packages(wh) -> list[tuple]:
    return sorted(
        (p["order_id"], p["package_reference_id"], p["package_status"]) for p in wh.fetch_packages()
    )


def _history(wh) -> list[tuple]:
    return sorted(
        (h["order_id"], h["order_status"], h["last_updated_time"], h["packages_delivered"])
        for h in wh.fetch_status_history()
    )


def _execute(wh, sql: str, params: tuple[Any, ...]) -> None:
    """Run one statement through the warehouse's own connection (``%s`` placeholders)."""
    with wh._transaction() as cur:
        cur.execute(sql.replace("%s", wh.placeholder), params)


def _spy(wh, monkeypatch: pytest.MonkeyPatch, method: str) -> list[Any]:
    """Record what ``wh.<method>`` returns on each call (the method still runs)."""
    calls: list[Any] = []
    real = getattr(wh, method)

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(result)
        return result

    monkeypatch.setattr(wh, method, spy)
    return calls


@pytest.fixture
def pg_wh(pg_warehouse_conn_id: str) -> PostgresWarehouse:
    wh = get_warehouse(pg_warehouse_conn_id)
    assert isinstance(wh, PostgresWarehouse)
    wh.ensure_schema()
    return wh


# --------------------------------------------------------------------------- 1. mixed batches
def test_mixed_batch_of_new_and_existing_orders(warehouse):
    a, b, c, n1, n2 = oid(1), oid(2), oid(3), oid(4), oid(5)
    warehouse.upsert_orders(
        [
            order(a, updated=at(5), items=(item(a, 1), item(a, 2)), packages=(package(a, 1),)),
            order(b, status="SHIPPED", updated=at(5), items=(item(b, 1),)),
            order(c, updated=at(5), items=(item(c, 1, qty=3),)),
        ]
    )
    res = warehouse.upsert_orders(
        [
            # a: newer complete version -> items/packages replaced (I1 and P1 go, I2 changes, I3 arrives)
            order(
                a,
                status="SHIPPED",
                updated=at(10),
                items=(item(a, 2, qty=5, price="7.50"), item(a, 3)),
                packages=(package(a, 2, status="DELIVERED"),),
            ),
            # b: older version -> stale, only its history row is new
            order(b, status="UNSHIPPED", updated=at(1), items=(item(b, 9),)),
            # c: newer partial summary -> status follows, details (items) stay the complete version's
            summary(c, status="SHIPPED", updated=at(8)),
            # n1: new, two versions in the batch -> the newer one's children, both history rows
            order(n1, updated=at(2), items=(item(n1, 1), item(n1, 2))),
            order(
                n1, status="SHIPPED", updated=at(3), items=(item(n1, 2, qty=4),), packages=(package(n1, 1),)
            ),
            # n2: new, with a duplicate item line (the last one wins)
            order(n2, updated=at(4), items=(item(n2, 1), item(n2, 1, qty=6), item(n2, 2))),
        ]
    )
    assert (res.orders_written, res.orders_stale) == (4, 1)
    assert res.items_written == 2 + 1 + 2  # a's two, n1's one, n2's two (c's details were not accepted)
    assert res.packages_written == 2  # a's P2, n1's P1
    assert res.history_rows == 6  # a, b, c once each, n1 twice, n2 once

    assert [(o["order_id"], o["order_status"], o["last_updated_time"], o["is_complete"]) for o in
            warehouse.fetch_orders()] == [
        (a, "SHIPPED", at(10), True),
        (b, "SHIPPED", at(5), True),
        (c, "SHIPPED", at(8), True),
        (n1, "SHIPPED", at(3), True),
        (n2, "UNSHIPPED", at(4), True),
    ]  # fmt: skip
    ten = Decimal("10.00")
    assert _items(warehouse) == [
        (a, f"{a}-I2", 5, Decimal("7.50"), at(10)),
        (a, f"{a}-I3", 1, ten, at(10)),
        (b, f"{b}-I1", 1, ten, at(5)),
        (c, f"{c}-I1", 3, ten, at(5)),
        (n1, f"{n1}-I2", 4, ten, at(3)),
        (n2, f"{n2}-I1", 6, ten, at(4)),
        (n2, f"{n2}-I2", 1, ten, at(4)),
    ]
    assert _packages(warehouse) == [(a, f"{a}-P2", "DELIVERED"), (n1, f"{n1}-P1", "IN_TRANSIT")]
    assert _history(warehouse) == sorted(
        [
            (a, "SHIPPED", at(10), True),
            (a, "UNSHIPPED", at(5), False),
            (b, "UNSHIPPED", at(1), False),
            (b, "SHIPPED", at(5), False),
            (c, "UNSHIPPED", at(5), False),
            (c, "SHIPPED", at(8), False),
            (n1, "UNSHIPPED", at(2), False),
            (n1, "SHIPPED", at(3), False),
            (n2, "UNSHIPPED", at(4), False),
        ]
    )


def test_mixed_batch_takes_the_direct_path_only_for_inserted_orders(pg_wh, monkeypatch):
    """The new orders' children go straight in; the existing order's children are not touched twice."""
    old, new = oid(1), oid(2)
    pg_wh.upsert_orders([order(old, updated=at(1), items=(item(old, 1),))])
    direct = _spy(pg_wh, monkeypatch, "_insert_new_children")
    pg_wh.upsert_orders(
        [
            order(old, updated=at(2), items=(item(old, 2),)),
            order(new, updated=at(2), items=(item(new, 1), item(new, 2)), packages=(package(new, 1),)),
        ]
    )
    assert len(direct) == 1 and direct[0] is not None
    assert {t.name: n for t, n in direct[0].items()} == {
        "sp_order_items": 2,
        "sp_order_packages": 1,
        "sp_order_status_history": 1,
    }
    assert [(i[0], i[1]) for i in _items(pg_wh)] == [
        (old, f"{old}-I2"),
        (new, f"{new}-I1"),
        (new, f"{new}-I2"),
    ]


# --------------------------------------------------------------------------- 2. orphaned children
#: Leftover children of an order without an order row (as if the order had been deleted by hand):
#: item and package suffixes, history (status, minutes). I1/P1/(UNSHIPPED, 7) share their key with
#: the order loaded later; I9/P9/CANCELED never will.
ORPHANS = {
    "keys-collide": (["I9", "I1"], ["P9", "P1"], [("CANCELED", -60), ("UNSHIPPED", 7)]),
    "keys-disjoint": (["I9"], ["P9"], [("CANCELED", -60)]),
    "history-collides": ([], [], [("UNSHIPPED", 7)]),
}


def _add_orphans(wh, order_id: str, kind: str) -> None:
    ts = wh._encode_ts
    items, packages, history = ORPHANS[kind]
    for n in items:
        _execute(
            wh,
            "INSERT INTO sp_order_items (order_id, order_item_id, quantity_ordered, order_last_updated_time, "
            "loaded_at) VALUES (%s, %s, %s, %s, %s)",
            (order_id, f"{order_id}-{n}", 99, ts(at(-60)), ts(at(-60))),
        )
    for n in packages:
        _execute(
            wh,
            "INSERT INTO sp_order_packages (order_id, package_reference_id, carrier, "
            "order_last_updated_time, loaded_at) VALUES (%s, %s, %s, %s, %s)",
            (order_id, f"{order_id}-{n}", "ORPHAN", ts(at(-60)), ts(at(-60))),
        )
    for status, minutes in history:
        _execute(
            wh,
            "INSERT INTO sp_order_status_history (order_id, order_status, last_updated_time, "
            "packages_delivered, source, observed_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (order_id, status, ts(at(minutes)), False, "orphan", ts(at(-60))),
        )


@pytest.mark.parametrize("kind", list(ORPHANS))
def test_orphaned_children_are_replaced_by_the_new_order(warehouse, kind, monkeypatch):
    """An order inserted over leftover children ends with exactly its own items and packages.

    Like any accepted version, it replaces its children: orphans it lacks are deleted, ones sharing a
    key are overwritten. History is append-only, so orphaned history rows stay. The rest of the batch
    (an existing order, another new one) loads as usual.
    """
    target, other_new, existing = oid(2), oid(3), oid(1)
    warehouse.upsert_orders([order(existing, updated=at(1), items=(item(existing, 1),))])
    _add_orphans(warehouse, target, kind)
    direct = _spy(warehouse, monkeypatch, "_insert_new_children")

    res = warehouse.upsert_orders(
        [
            order(existing, status="SHIPPED", updated=at(7), items=(item(existing, 2),)),
            order(
                target,
                updated=at(7),
                items=(item(target, 1), item(target, 2, qty=3)),
                packages=(package(target, 1),),
            ),
            order(other_new, updated=at(7), items=(item(other_new, 1),), packages=(package(other_new, 1),)),
        ]
    )  # fmt: skip

    assert (res.orders_written, res.orders_stale) == (3, 0)
    assert (res.items_written, res.packages_written) == (4, 2)
    ten = Decimal("10.00")
    assert _items(warehouse) == [
        (existing, f"{existing}-I2", 1, ten, at(7)),
        (target, f"{target}-I1", 1, ten, at(7)),
        (target, f"{target}-I2", 3, ten, at(7)),
        (other_new, f"{other_new}-I1", 1, ten, at(7)),
    ]
    assert _packages(warehouse) == [
        (target, f"{target}-P1", "IN_TRANSIT"),
        (other_new, f"{other_new}-P1", "IN_TRANSIT"),
    ]
    assert all(p["carrier"] == "UPS" for p in warehouse.fetch_packages())
    assert [(o["order_id"], o["order_status"]) for o in warehouse.fetch_orders()] == [
        (existing, "SHIPPED"),
        (target, "UNSHIPPED"),
        (other_new, "UNSHIPPED"),
    ]
    history = {(target, status, at(minutes)) for status, minutes in ORPHANS[kind][2]}
    history |= {(target, "UNSHIPPED", at(7)), (existing, "UNSHIPPED", at(1)), (existing, "SHIPPED", at(7))}
    history.add((other_new, "UNSHIPPED", at(7)))
    assert [h[:3] for h in _history(warehouse)] == sorted(history)
    if isinstance(warehouse, PostgresWarehouse):
        if kind == "history-collides":
            # The colliding COPY was rolled back to its savepoint and every child took the staged path.
            assert direct == [None]
        else:
            # Only the order with leftover items/packages took the staged path; the other new one did not.
            assert [{t.name: n for t, n in d.items()} for d in direct] == [
                {"sp_order_items": 1, "sp_order_packages": 1, "sp_order_status_history": 1}
            ]


def test_orphans_then_same_batch_again_is_stable(warehouse):
    target = oid(2)
    _add_orphans(warehouse, target, "keys-collide")
    batch = [order(target, updated=at(7), items=(item(target, 1),), packages=(package(target, 1),))]
    warehouse.upsert_orders(batch)
    before = _state(warehouse, drop=("loaded_at",))
    warehouse.upsert_orders(batch)
    assert _state(warehouse, drop=("loaded_at",)) == before
    assert [i[1] for i in _items(warehouse)] == [f"{target}-I1"]


# --------------------------------------------------------------------------- 3. bad price mid-COPY
def _bad_price(o, price: str):
    first, *rest = o.items
    return replace(o, items=(replace(first, unit_price=price), *rest))


@pytest.mark.parametrize(
    ("position", "price"),
    [(0, "abc"), (10, "12,50"), (19, "1.2.3"), ("existing", "12,50")],
    ids=["first-new", "middle-new", "last-new", "existing-order"],
)
def test_bad_item_price_rolls_back_the_whole_batch(warehouse, position, price):
    """On PostgreSQL the bad price is met while COPY streams the item rows (direct or staged)."""
    warehouse.upsert_orders(
        [
            order(oid(n), updated=at(1), items=(item(oid(n), 1),), packages=(package(oid(n), 1),))
            for n in (100, 101)
        ]
    )
    before = _state(warehouse)
    batch = [
        order(oid(n), updated=at(2), items=(item(oid(n), 1), item(oid(n), 2)), packages=(package(oid(n), 1),))
        for n in range(20)
    ]
    batch.append(order(oid(100), status="SHIPPED", updated=at(3), items=(item(oid(100), 7),)))
    batch.append(order(oid(101), status="SHIPPED", updated=at(3), items=(item(oid(101), 7),)))
    index = len(batch) - 2 if position == "existing" else position
    batch[index] = _bad_price(batch[index], price)

    with pytest.raises(ValueError, match="Not a decimal amount"):
        warehouse.upsert_orders(batch)
    assert _state(warehouse) == before

    batch[index] = replace(batch[index], items=(item(batch[index].order_id, 1, price="12.50"),))
    res = warehouse.upsert_orders(batch)
    assert (res.orders_written, res.orders_stale) == (22, 0)
    new, existing = [oid(n) for n in range(20)], [oid(100), oid(101)]
    assert [(o["order_id"], o["order_status"], o["last_updated_time"]) for o in warehouse.fetch_orders()] == [
        *((o, "UNSHIPPED", at(2)) for o in new),
        *((o, "SHIPPED", at(3)) for o in existing),
    ]
    fixed, ten = batch[index].order_id, Decimal("10.00")
    expected = [(o, f"{o}-I{k}", 1, ten, at(2)) for o in new for k in (1, 2)]
    expected += [(o, f"{o}-I7", 1, ten, at(3)) for o in existing]
    expected = [e for e in expected if e[0] != fixed]
    expected.append((fixed, f"{fixed}-I1", 1, Decimal("12.50"), batch[index].last_updated_time))
    assert _items(warehouse) == sorted(expected)
    # The existing orders' newer versions have no package: theirs are deleted.
    assert _packages(warehouse) == [(o, f"{o}-P1", "IN_TRANSIT") for o in new]
    assert _history(warehouse) == sorted(
        [(o, "UNSHIPPED", at(2), False) for o in new]
        + [(o, s, at(m), False) for o in existing for s, m in (("UNSHIPPED", 1), ("SHIPPED", 3))]
    )


# --------------------------------------------------------------------------- 4. idempotency
def test_same_new_orders_twice_is_idempotent(warehouse, monkeypatch):
    batch = []
    for n in range(30):
        o = oid(n)
        batch.append(order(o, updated=at(1), items=(item(o, 1), item(o, 2))))
        batch.append(
            order(o, status="SHIPPED", updated=at(2), items=(item(o, 1), item(o, 2, qty=2)),
                  packages=(package(o, 1, status="DELIVERED", ship_time=at(2)),))
        )  # fmt: skip
    first = warehouse.upsert_orders(batch)
    assert first == type(first)(
        orders_written=30, orders_stale=0, items_written=60, packages_written=30, history_rows=60
    )
    before = _state(warehouse, drop=("loaded_at",))

    inserted = _spy(warehouse, monkeypatch, "_upsert_staged_orders")
    again = warehouse.upsert_orders(batch)
    # Equal versions are accepted again (ties are the same version: never stale) and their children
    # rewritten in place, but nothing is new: no history row, and on PostgreSQL no order was inserted,
    # so the direct path is not taken.
    assert (again.orders_written, again.orders_stale, again.history_rows) == (30, 0, 0)
    assert (again.items_written, again.packages_written) == (60, 30)
    assert inserted[0][1] == frozenset()
    after = _state(warehouse, drop=("loaded_at",))
    assert after == before
    assert len(after[1]) == 60 and len(after[2]) == 30 and len(after[3]) == 60


# --------------------------------------------------------------------------- 5. concurrency
def _lock_waiters(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' "
            "AND (query LIKE 'INSERT INTO sp_orders%' OR query LIKE 'COPY sp_orders %')"
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("newer_first", [False, True], ids=["older-holds-locks", "newer-holds-locks"])
def test_writer_waits_for_new_orders_of_an_open_direct_path(pg_warehouse_conn_id, pg_dsn, newer_first):
    """Writer A stops right after COPYing its new orders' children (transaction open); writer B,
    overlapping, must queue on those orders, then take the staged path for them once A commits."""
    get_warehouse(pg_warehouse_conn_id).ensure_schema()
    older = [order(oid(n), updated=at(1), items=(item(oid(n), 1),), packages=(package(oid(n), 1),))
             for n in range(0, 6)]  # fmt: skip
    newer = [order(oid(n), status="SHIPPED", updated=at(2), items=(item(oid(n), 2), item(oid(n), 3)))
             for n in range(3, 9)]  # fmt: skip
    first_batch, second_batch = (newer, older) if newer_first else (older, newer)

    paused, release = threading.Event(), threading.Event()
    a = get_warehouse(pg_warehouse_conn_id)
    real = a._insert_new_children

    def copy_then_wait(cur, children):
        written = real(cur, children)
        paused.set()
        assert release.wait(20)
        return written

    a._insert_new_children = copy_then_wait  # type: ignore[method-assign]
    with ThreadPoolExecutor(2) as pool:
        fa = pool.submit(a.upsert_orders, first_batch)
        assert paused.wait(20)
        fb = pool.submit(get_warehouse(pg_warehouse_conn_id).upsert_orders, second_batch)
        deadline = time.monotonic() + 20
        while _lock_waiters(pg_dsn) == 0:
            assert time.monotonic() < deadline, "writer B never queued behind writer A"
            assert not fb.done(), fb.result()
            time.sleep(0.02)
        release.set()
        fa.result(timeout=30)
        fb.result(timeout=30)

    wh = get_warehouse(pg_warehouse_conn_id)
    expected_status = {oid(n): ("UNSHIPPED", at(1)) for n in range(0, 3)}
    expected_status |= {oid(n): ("SHIPPED", at(2)) for n in range(3, 9)}
    assert {
        o["order_id"]: (o["order_status"], o["last_updated_time"]) for o in wh.fetch_orders()
    } == expected_status
    expected_items = [(oid(n), f"{oid(n)}-I1") for n in range(0, 3)]
    expected_items += [(oid(n), f"{oid(n)}-I{k}") for n in range(3, 9) for k in (2, 3)]
    assert [(i[0], i[1]) for i in _items(wh)] == sorted(expected_items)
    assert [(p[0], p[1]) for p in _packages(wh)] == [(oid(n), f"{oid(n)}-P1") for n in range(0, 3)]
    assert _history(wh) == sorted(
        [(oid(n), "UNSHIPPED", at(1), False) for n in range(0, 6)]
        + [(oid(n), "SHIPPED", at(2), False) for n in range(3, 9)]
    )


#: Concurrency rounds: each writer upserts SIZE fresh orders per round, the two overlapping by SIZE - SHIFT.
ROUNDS, SIZE, SHIFT = 6, 400, 100


def test_concurrent_overlapping_new_order_batches_converge(pg_warehouse_conn_id, pg_dsn, pg_schema):
    """Rounds of two writers racing over fresh, overlapping orders: no deadlock, no duplicate child.

    Each writer's connection is opened before the start barrier, so both transactions really overlap.
    """
    get_warehouse(pg_warehouse_conn_id).ensure_schema()

    def batch(round_: int, worker: int) -> list:
        ids = [oid(round_ * 10_000 + n) for n in range(worker * SHIFT, worker * SHIFT + SIZE)]
        orders = [order(o, status=("UNSHIPPED", "SHIPPED")[worker], updated=at(worker),
                        items=tuple(item(o, worker * 10 + k) for k in range(3)),
                        packages=(package(o, worker),)) for o in ids]  # fmt: skip
        return orders if worker else list(reversed(orders))

    for r in range(ROUNDS):
        barrier = threading.Barrier(2)

        def run(worker: int, r: int = r, barrier: threading.Barrier = barrier):
            conn = psycopg.connect(pg_dsn, options=f"-c search_path={pg_schema}")
            wh = PostgresWarehouse(pg_warehouse_conn_id, connection_factory=lambda: conn)
            rows = batch(r, worker)
            barrier.wait(10)
            return wh.upsert_orders(rows)

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(run, (0, 1)))
        assert sum(res.orders_written + res.orders_stale for res in results) == 2 * SIZE

    wh = get_warehouse(pg_warehouse_conn_id)
    orders = {o["order_id"]: (o["order_status"], o["last_updated_time"]) for o in wh.fetch_orders()}
    expected_orders, expected_items, expected_packages = {}, [], []
    for r in range(ROUNDS):
        for n in range(SIZE + SHIFT):
            o = oid(r * 10_000 + n)
            worker = 1 if n >= SHIFT else 0  # the newer writer (1) owns every order it wrote
            expected_orders[o] = (("UNSHIPPED", "SHIPPED")[worker], at(worker))
            expected_items += [(o, f"{o}-I{worker * 10 + k}") for k in range(3)]
            expected_packages.append((o, f"{o}-P{worker}"))
    assert orders == expected_orders
    assert [(i[0], i[1]) for i in _items(wh)] == sorted(expected_items)
    assert [(p[0], p[1]) for p in _packages(wh)] == sorted(expected_packages)
    # Each writer's observation enters the history once.
    expected_history = [
        (oid(r * 10_000 + n), ("UNSHIPPED", "SHIPPED")[w], at(w), False)
        for r in range(ROUNDS)
        for w in (0, 1)
        for n in range(w * SHIFT, w * SHIFT + SIZE)
    ]
    assert _history(wh) == sorted(expected_history)


def test_orphan_probe_with_psycopg2(pg_dsn, pg_schema):
    """The orphaned-children probe binds its id list with psycopg2 too (COPY via copy_expert)."""
    import psycopg2

    wh = PostgresWarehouse(
        "unused", connection_factory=lambda: psycopg2.connect(pg_dsn, options=f"-c search_path={pg_schema}")
    )
    wh.ensure_schema()
    target, other_new = oid(2), oid(3)
    _add_orphans(wh, target, "keys-disjoint")
    wh.upsert_orders([order(target, updated=at(7)), order(other_new, updated=at(7))])
    assert [i[1] for i in _items(wh)] == [f"{target}-I1", f"{other_new}-I1"]
    assert _packages(wh) == []


# --------------------------------------------------------------------------- 6. new orders COPYed directly
def test_absent_orders_are_copied_straight_into_the_orders_table(pg_wh, monkeypatch):
    """Only the orders the probe finds absent (and without leftover children) skip the staged upsert."""
    old, orphaned, new = oid(1), oid(2), oid(3)
    pg_wh.upsert_orders([order(old, updated=at(1), items=(item(old, 1),))])
    _add_orphans(pg_wh, orphaned, "keys-disjoint")
    copied = _spy(pg_wh, monkeypatch, "_insert_new_orders")
    res = pg_wh.upsert_orders(
        [order(o, status="SHIPPED", updated=at(2), items=(item(o, 1),)) for o in (old, orphaned, new)]
    )
    assert [sorted(c.ids) for c in copied] == [[new]]
    assert (res.orders_written, res.orders_stale, res.items_written) == (3, 0, 3)
    assert [(i[0], i[1]) for i in _items(pg_wh)] == [(o, f"{o}-I1") for o in (old, orphaned, new)]


def test_copy_money_is_psycopg_numeric_encoding(pg_wh):
    """Pre-encoded amounts are the bytes psycopg's Decimal dumper sends, and bad amounts still raise."""
    from psycopg.types.numeric import dump_decimal_to_numeric_binary

    money = pg_wh._copy_money()
    for text in ("12.15", "0.00", "-3.5", "1e5", "123456789.123456789", "0.0001"):
        assert money(text) == bytes(dump_decimal_to_numeric_binary(Decimal(text)))
        assert money(text) is money(text)  # encoded once
    assert money(None) is None
    with pytest.raises(ValueError, match="Not a decimal amount"):
        money("12,50")
    pg_wh.upsert_orders([order(oid(1), updated=at(1), items=(item(oid(1), 1, price="123456789.123456789"),))])
    assert _items(pg_wh)[0][3] == Decimal("123456789.123456789")
