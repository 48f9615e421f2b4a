"""``make demo`` end to end (a smaller world): every figure of its report checked against the sandbox.

The demo runs as a user runs it (``python -m demo``, fresh directory): sandbox + moto SQS, the setup
DAG, the historical sync, a round of the moving world through the event and enrichment DAGs. It
leaves the warehouse and ``sandbox-final.json`` (what ``/_sandbox/truth``, ``/_sandbox/stats`` and
every ``/_sandbox/advance`` answered). The test recomputes the report's figures from those answers and
reads the warehouse with plain ``sqlite3``; then it changes the warehouse and shows the demo's verdict
(``demo/verify.py``) finds exactly the change - so ``warehouse matches sandbox: yes`` can fail.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from tests.fixtures.airflow import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUNDS = 1
ARGS = ["--orders", "300", "--days", "10", "--time-scale", "600", "--rounds", str(ROUNDS),
        "--new-orders", "15", "--changes", "40", "--poison", "2", "--foreign", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SP_API_"))}
    env["SP_DEMO_DIR"] = str(folder)
    proc = subprocess.run(
        [sys.executable, "-m", "demo", *ARGS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    dump = json.loads((folder / "sandbox-final.json").read_text())
    return {"out": proc.stdout, "dir": folder, "dump": dump, "db": folder / "warehouse.db"}


def _table(out: str, title: str) -> dict[tuple[str, str], int]:
    """A report table ``order status | marketplace... | total`` under ``title`` -> {(marketplace, status): n}
    (zeros left out); its totals row and column are checked on the way."""
    lines = out.split(title + "\n", 1)[1].splitlines()
    header = lines[0].split()
    assert header[:2] == ["order", "status"] and header[-1] == "total", header
    mkts = header[2:-1]
    cells: dict[tuple[str, str], int] = {}
    for line in lines[1:]:
        status, *numbers = line.split()
        counts = [int(n) for n in numbers]
        assert len(counts) == len(mkts) + 1, line
        if status == "total":
            assert counts[:-1] == [sum(v for (m, _), v in cells.items() if m == mkt) for mkt in mkts]
            assert counts[-1] == sum(cells.values())
            return cells
        assert counts[-1] == sum(counts[:-1]), line
        cells.update({(m, status): n for m, n in zip(mkts, counts[:-1], strict=True) if n})
    raise AssertionError(f"no totals row under {title!r}")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _in_warehouse(dump: dict) -> list[dict]:
    """The truth's orders the demo could load: in the sync's window, or changed by a round."""
    until = _utc(dump["synced_until"])
    changed = {oid for r in dump["rounds"] for oid in r["changed"]}
    return [
        o for o in dump["truth"]["orders"] if _utc(o["lastUpdatedTime"]) < until or o["orderId"] in changed
    ]


def test_the_report_says_the_warehouse_matches_and_stops_everything(demo):
    out = demo["out"]
    for step in (
        "1/4 notification setup",
        "2/4 historical sync",
        f"3/4 the world moves, round {ROUNDS}/{ROUNDS}",
        "4/4 report",
    ):
        assert step in out
    assert "page 1: 100 orders (total 100)" in out  # progress lines from the sync task
    assert re.search(r"landed \d+ messages in [\d.]+ s: \d+ new notifications applied", out)
    assert "compared with /_sandbox/truth field by field: sp_orders, sp_order_items, sp_order_packages" in out
    assert "warehouse matches sandbox: yes" in out
    assert "enrichment queue: 0 orders left" in out
    assert "stopped the sandbox, the SQS server and every Airflow process the demo started." in out
    assert f'python -m demo.query --db {demo["db"]} "SELECT' in out


def test_orders_and_items_by_marketplace_and_status_are_the_truths(demo):
    orders = _in_warehouse(demo["dump"])
    by_order = Counter(
        (o["salesChannel"]["marketplaceId"], o["fulfillment"]["fulfillmentStatus"]) for o in orders
    )
    by_item = Counter(
        (o["salesChannel"]["marketplaceId"], o["fulfillment"]["fulfillmentStatus"])
        for o in orders
        for _ in o["orderItems"]
    )
    assert _table(demo["out"], "orders by marketplace and status") == dict(by_order)
    assert _table(demo["out"], "items by marketplace and order status") == dict(by_item)
    n_items = sum(len(o["orderItems"]) for o in orders)
    assert f"orders: {len(orders)}   items: {n_items}   " in demo["out"]
    # the new orders of both rounds are in: more than the history's 300
    assert len(orders) > 300
    with sqlite3.connect(demo["db"]) as conn:
        stored = dict(conn.execute("SELECT order_id, order_status FROM sp_orders").fetchall())
        sources = dict(conn.execute("SELECT order_id, source FROM sp_orders").fetchall())
    assert stored == {o["orderId"]: o["fulfillment"]["fulfillmentStatus"] for o in orders}
    changed = {oid for r in demo["dump"]["rounds"] for oid in r["changed"]}
    assert {oid for oid, source in sources.items() if source == "event"} == changed


def test_notification_figures_are_what_the_sandbox_sent(demo):
    dump, out = demo["dump"], demo["out"]
    sent = sum(a["response"]["messages"] for a in dump["advances"])
    published = sum(a["response"]["published"] for a in dump["advances"])
    poison = sum(a["request"]["poison"] for a in dump["advances"])
    foreign = sum(a["request"]["foreign_seller"] for a in dump["advances"])
    assert len(dump["advances"]) == ROUNDS and poison == 2 * ROUNDS and foreign == ROUNDS
    landed = dump["landed"]
    new, dup, quarantined = (sum(x[k] for x in landed) for k in ("new", "duplicate", "quarantined"))
    # every message was received once and is exactly one of: new, a duplicate, or quarantined
    assert sum(x["messages"] for x in landed) == published == new + dup + quarantined
    assert new == sent and dup > 0 and quarantined >= poison + foreign
    with sqlite3.connect(demo["db"]) as conn:
        inbox = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT notification_id) FROM sp_notification_inbox"
        ).fetchone()
        bodies = conn.execute("SELECT COUNT(*) FROM sp_notification_quarantine").fetchone()[0]
        queued = conn.execute("SELECT COUNT(*) FROM sp_enrichment_queue").fetchone()[0]
    assert inbox == (sent, sent) and queued == 0
    assert (
        f"notifications: {sent} landed (the sandbox sent {sent}), {dup} duplicate deliveries ignored, "
        f"{quarantined} messages quarantined ({bodies} distinct bodies; sent: {poison} poison, {foreign} "
        f"of another seller); {published} SQS messages in all"
    ) in out
    p50, p95 = map(
        float, re.search(r"p50 ([\d.]+) s, p95 ([\d.]+) s \((\d+) notifications\)", out).groups()[:2]
    )
    assert 0 <= p50 <= p95


def test_sp_api_calls_per_operation_are_the_sandboxs_stats(demo):
    dump, out = demo["dump"], demo["out"]
    ops = {op: st for op, st in dump["stats"]["operations"].items() if st.get("calls")}
    printed = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^(\w+)\s+(\d+)\s+(\d+)\s+\d+$", out.split("SP-API operation", 1)[1], re.M)
    }
    assert printed == {op: (st["calls"], st["throttled"]) for op, st in ops.items()}
    # one getOrder per order and round however many notifications it had; no 429 anywhere
    assert ops["getOrder"]["calls"] == sum(len(r["changed"]) for r in dump["rounds"])
    assert all(st["throttled"] == 0 for st in ops.values())
    assert ops["createDestination"]["calls"] == 1 and ops["createSubscription"]["calls"] == 2


def test_the_verdict_finds_a_changed_warehouse(demo, monkeypatch):
    """The demo's check on the demo's warehouse: equal; after one change, exactly that change."""
    from demo.verify import verdict
    from tests.oracle import warehouse_rows

    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEMO", json.dumps({"conn_type": "sqlite", "host": str(demo["db"])})
    )
    from selling_partner.warehouse import get_warehouse

    dump = demo["dump"]
    wh = get_warehouse("warehouse_demo")
    assert verdict(dump, warehouse_rows(wh))[0] == []
    oid = dump["rounds"][0]["changed"][0]
    copy = Path(demo["dir"]) / "tampered.db"
    copy.write_bytes(Path(demo["db"]).read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE sp_orders SET source = 'sync' WHERE order_id = ?", (oid,))
        history = conn.execute(
            "DELETE FROM sp_order_status_history WHERE order_id = ? AND source = 'summary'", (oid,)
        ).rowcount
    assert history >= 1
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEMO", json.dumps({"conn_type": "sqlite", "host": str(copy)}))
    diffs, _ = verdict(dump, warehouse_rows(get_warehouse("warehouse_demo")))
    assert diffs[0] == f"sp_orders {oid}: source is 'sync', truth 'event'"
    assert len(diffs) == 1 + history and all(
        d.startswith(f"sp_order_status_history {oid}/") and d.endswith("missing from the warehouse")
        for d in diffs[1:]
    )
