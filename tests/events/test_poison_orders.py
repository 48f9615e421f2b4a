"""Orders the enrichment cannot load: quarantined with a reason and their attempts, never retried forever.

The sandbox serves a share of its orders corrupted (``bad_records``: unknown status, no
lastUpdatedTime, an item without id, a 10,000-character SKU - and odd records that must load:
unicode, huge titles, unknown optional enums). Their notifications are normal. One more notification
names an order Amazon does not know (getOrder answers 404). With one attempt allowed
(``SP_API_ENRICH_MAX_ATTEMPTS=1``), the enrichment quarantines the unloadable orders
(``sp_order_quarantine``, source ``enrich``), they keep the status their notifications gave them, and
a later run leaves them alone; everything else equals the truth.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

UNKNOWN_ORDER = "999-0000000-0000001"


def _unknown_order(bodies: list[str], notes: list[dict]) -> tuple[str, dict]:
    """A copy of one delivered ORDER_CHANGE for an order Amazon does not know, and its report entry."""
    by_id = {n["notification_id"]: n for n in notes}
    for body in bodies:
        doc = json.loads(body)
        if doc["NotificationType"] == "ORDER_CHANGE":
            note = by_id[doc["NotificationMetadata"]["NotificationId"]]
            nid = "00000000-0000-4000-8000-000000000001"
            doc["NotificationMetadata"]["NotificationId"] = nid
            doc["Payload"]["OrderChangeNotification"]["AmazonOrderId"] = UNKNOWN_ORDER
            return json.dumps(doc), {**note, "order_id": UNKNOWN_ORDER, "notification_id": nid}
    raise AssertionError("no ORDER_CHANGE was published")


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_unloadable_orders_are_quarantined_once_and_keep_their_status(event_path, backend):
    env = event_path(
        {"sp_api_default": {"bad_records": 0.3}},
        hold=True,
        env={"SP_API_ENRICH_MAX_ATTEMPTS": "1"},
        backend=backend,
    )
    seller = env.seller
    seller.advance(new_orders=25, changes=25)
    notes = seller.notifications()
    bodies = env.held()
    crafted, note = _unknown_order(bodies, notes)
    env.deliver([*bodies, crafted])
    env.run_events()

    bad = seller.sandbox.truth()["bad_records"]
    orders = seller.order_ids()
    unloadable = {o for o in orders if bad.get(o, {}).get("expect") == "quarantine"}
    odd = {o for o in orders if bad.get(o, {}).get("expect") == "load"}
    assert unloadable and odd, "no bad record among the notified orders: nothing would be proven"

    enriched = env.run_enrich()["sp_api_default"]
    assert enriched["quarantined"] == len(unloadable) + 1 and enriched["queued"] == 0
    assert seller.calls("getOrder")["calls"] == len(orders) + 1  # each once, the unknown one too
    env.assert_equal_to_truth(notifications=[*notes, note], not_found=[UNKNOWN_ORDER])
    rows = {r["order_id"]: r for r in env.warehouse().fetch_order_quarantine()}
    assert set(rows) == unloadable | {UNKNOWN_ORDER}
    assert all("[attempts: 1]" in r["reason"] and r["conn_id"] == "sp_api_default" for r in rows.values())
    assert "404" in rows[UNKNOWN_ORDER]["reason"] or "NotFound" in rows[UNKNOWN_ORDER]["reason"]

    again = env.run_enrich()["sp_api_default"]
    assert (again["claimed"], again["fetched"]) == (0, 0)
    assert seller.calls("getOrder")["calls"] == len(orders) + 1
