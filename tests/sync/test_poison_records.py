"""A record that cannot be mapped does not stop the sync: quarantined with its reason, the rest loaded."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.airflow import get_variable
from tests.oracle import compare
from tests.sync.test_sync_dag import _backfill

pytestmark = pytest.mark.integration

#: What the quarantine row's reason must say for each unmappable kind the sandbox serves.
REASONS = {
    "unknown_status": "fulfillmentStatus 'ON_HOLD' missing or unknown",
    "missing_last_updated": "createdTime/lastUpdatedTime missing",
    "missing_item_id": "an item has no orderItemId",
    "huge_sku": "seller_sku is 10000 characters long (the limit is 200)",
}


def test_bad_records_are_quarantined_and_the_sync_goes_on(sync_env, pg_warehouse_conn_id, capfd):
    sb = sync_env(orders=600, days=6, seed=51, bad_records=0.08, extra={"include_pii": True})
    summary = _backfill(pg_warehouse_conn_id, 7, window_days=3)
    truth = sb.truth(lastUpdatedBefore=summary["window_end"], include_pii=True)
    bad = truth["bad_records"]
    unmappable = {oid: entry["kind"] for oid, entry in bad.items() if entry["expect"] == "quarantine"}
    loadable = {entry["kind"] for entry in bad.values() if entry["expect"] == "load"}
    assert set(unmappable.values()) == set(REASONS) and len(loadable) >= 3, "too few kinds served"

    # The run went through every window: done, its checkpoint at the end, nothing left open.
    assert summary["done"] and summary["stop_reason"] == "caught up" and summary["windows"] == 3
    ckpt = json.loads(get_variable(summary["checkpoint_key"]))
    assert ckpt["done"] and ckpt["page_token"] is None and ckpt["window_start"] is None
    # Every good order (odd text and missing optional fields included) is loaded, every table equal to
    # the truth; the unmappable ones are in the quarantine, nowhere else.
    from selling_partner.warehouse import get_warehouse

    wh = get_warehouse(pg_warehouse_conn_id)
    assert compare(truth, wh, include_pii=True) == []
    assert summary["orders"] == len(truth["orders"]) - len(unmappable)
    assert summary["quarantined"] == len(unmappable)
    (run,) = wh.fetch_sync_runs()
    assert run["quarantined"] == len(unmappable) and run["status"] == "success"
    rows = {r["order_id"]: r for r in wh.fetch_order_quarantine()}
    assert rows.keys() == unmappable.keys()
    buyers = [o["buyer"] for o in truth["orders"] if o.get("buyer")]
    assert buyers, "PII was requested: the test must see buyer data to prove it is not kept"
    task_log = "".join(capfd.readouterr())  # dag.test() writes the task's log to the console
    for order_id, kind in unmappable.items():
        row = rows[order_id]
        assert REASONS[kind] in row["reason"], (kind, row["reason"])
        assert (row["source"], row["attempts"], row["resolved_at"]) == ("sync", 1, None)
        assert row["seller_id"] == sb.seller_id and row["conn_id"] == "sp_api_default"
        raw = json.loads(row["raw_record"])
        assert raw.get("orderId") == order_id and "buyer" not in raw and "recipient" not in raw
        for buyer in buyers:
            assert buyer.get("buyerEmail", "@@") not in row["raw_record"]
        assert f"order {order_id} quarantined (sp_order_quarantine): {row['reason']}" in task_log
