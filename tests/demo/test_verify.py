"""demo/verify.py: the oracle's expectations plus exactly what the event path changes, nothing else."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

from demo.verify import expected_after_events, percentile, publish_to_status_seconds, verdict
from tests.oracle import HISTORY, ORDERS, parse_time

VERIFY = Path(__file__).resolve().parents[2] / "demo" / "verify.py"


def _order(order_id: str, updated: str, status: str) -> dict:
    """A minimal raw v2026 order (the oracle reads every field it maps with a default)."""
    return {
        "orderId": order_id,
        "createdTime": "2026-11-30T08:00:00Z",
        "lastUpdatedTime": updated,
        "salesChannel": {"marketplaceId": "ATVPDKIKX0DER", "marketplaceName": "Amazon.com"},
        "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"},
        "orderItems": [],
    }


def _truth(*orders: dict) -> dict:
    return {"seller_id": "A1SANDBOXSELLERNA", "orders": [copy.deepcopy(o) for o in orders]}


def test_verify_imports_nothing_of_the_product():
    tree = ast.parse(VERIFY.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert names and not [n for n in names if n.split(".")[0] == "selling_partner"]


def test_changed_orders_come_from_events_and_every_announced_version_is_in_the_history():
    a1 = _order("111-0000001-0000001", "2026-12-01T10:00:00Z", "UNSHIPPED")
    a2 = _order("111-0000001-0000001", "2026-12-03T10:00:00Z", "SHIPPED")  # changed in round 1
    b = _order("111-0000002-0000002", "2026-12-01T11:00:00Z", "UNSHIPPED")  # only synced
    c = _order("111-0000003-0000003", "2026-12-03T10:00:05Z", "PENDING")  # after the sync, never changed
    rounds = [(frozenset({a2["orderId"]}), _truth(a2, b))]
    expected, left_out = expected_after_events(_truth(a2, b, c), _truth(a1, b), rounds)
    assert left_out == {c["orderId"]}
    assert {k[0]: r["source"] for k, r in expected[ORDERS].items()} == {
        a2["orderId"]: "event",
        b["orderId"]: "sync",
    }
    history = {(k[0], k[2]): (r["source"], k[1]) for k, r in expected[HISTORY].items()}
    assert history == {
        (a1["orderId"], "UNSHIPPED"): ("sync", parse_time(a1["lastUpdatedTime"])),
        (a2["orderId"], "SHIPPED"): ("summary", parse_time(a2["lastUpdatedTime"])),
        (b["orderId"], "UNSHIPPED"): ("sync", parse_time(b["lastUpdatedTime"])),
    }


def test_an_empty_warehouse_is_every_expected_row_missing():
    a = _order("111-0000001-0000001", "2026-12-01T10:00:00Z", "UNSHIPPED")
    dump = {"truth": _truth(a), "synced": _truth(a), "rounds": []}
    diffs, left_out = verdict(dump, {})
    assert left_out == set()
    assert diffs[0] == f"sp_orders {a['orderId']}: missing from the warehouse"
    assert verdict({"truth": _truth(), "synced": _truth(), "rounds": []}, {})[0] == [
        "the sandbox truth is empty"
    ]


def test_percentiles_and_latencies():
    assert percentile([], 0.5) is None and percentile([3.0], 0.95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.05
    published, written = parse_time("2026-12-03T10:00:00Z"), parse_time("2026-12-03T10:00:02.5Z")
    rows = [
        {"publish_time": published, "processed_at": written},
        {"publish_time": None, "processed_at": written},
    ]
    assert publish_to_status_seconds(rows) == [2.5]
