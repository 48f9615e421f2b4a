"""The oracle's event-path view (tests/oracle.py) can fail: each wrong row is reported as what it is.

A hand-written truth (one order, as ``/_sandbox/truth`` renders it) and the notifications the sandbox
reports for it: the expected rows, taken as a warehouse, compare equal; one mutation at a time (a
status moved back, a history row lost, a notification applied twice, an older FBA status, details
wiped, a poison body missing from quarantine) is reported.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests import oracle

SELLER = "A1SANDBOXSELLERNA"
ORDER = "112-1234567-1234567"


def _truth() -> dict[str, Any]:
    money = {"amount": "25.00", "currencyCode": "USD"}
    return {
        "seller_id": SELLER,
        "orders": [
            {
                "orderId": ORDER,
                "createdTime": "2026-11-01T10:00:00Z",
                "lastUpdatedTime": "2026-11-01T12:00:00Z",
                "salesChannel": {"marketplaceId": "ATVPDKIKX0DER", "marketplaceName": "Amazon.com"},
                "fulfillment": {"fulfillmentStatus": "SHIPPED", "fulfilledBy": "AMAZON"},
                "proceeds": {"grandTotal": money},
                "orderItems": [
                    {
                        "orderItemId": "11111111111111",
                        "quantityOrdered": 1,
                        "product": {
                            "asin": "B000000001",
                            "sellerSku": "SKU-1",
                            "price": {"unitPrice": money},
                        },
                        "fulfillment": {"quantityFulfilled": 1, "quantityUnfulfilled": 0},
                    }
                ],
            }
        ],
        "bad_records": {},
    }


NOTES = [
    {"order_id": ORDER, "notification_type": "ORDER_CHANGE", "notification_id": "n-1",
     "time": "2026-11-01T10:00:00Z", "order_status": "PENDING"},
    {"order_id": ORDER, "notification_type": "ORDER_CHANGE", "notification_id": "n-2",
     "time": "2026-11-01T11:00:00Z", "order_status": "UNSHIPPED"},
    {"order_id": ORDER, "notification_type": "ORDER_CHANGE", "notification_id": "n-3",
     "time": "2026-11-01T12:00:00Z", "order_status": "SHIPPED"},
    {"order_id": ORDER, "notification_type": "FBA_OUTBOUND_SHIPMENT_STATUS", "notification_id": "n-4",
     "time": "2026-11-01T11:00:00Z", "order_status": "UNSHIPPED", "shipment_id": "S1",
     "shipment_status": "Created"},
    {"order_id": ORDER, "notification_type": "FBA_OUTBOUND_SHIPMENT_STATUS", "notification_id": "n-5",
     "time": "2026-11-01T12:00:00Z", "order_status": "SHIPPED", "shipment_id": "S1",
     "shipment_status": "Cancelled"},
]  # fmt: skip


def _rows(enriched: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The expected rows as a warehouse returns them: a Check replaced by a value, lists as text."""
    expected = oracle.event_expected_rows(_truth(), NOTES, conn_id="sp_api_default", enriched=enriched)

    def stored(value: Any) -> Any:
        if isinstance(value, oracle.Check):
            return datetime(2026, 11, 2, tzinfo=UTC)
        return ",".join(value) if isinstance(value, tuple) else value

    return {
        t: [{k: stored(v) for k, v in row.items()} for row in rows.values()] for t, rows in expected.items()
    }


def _diffs(rows: dict[str, list[dict[str, Any]]], **kwargs: Any) -> list[str]:
    return oracle.compare_events(_truth(), NOTES, rows, conn_id="sp_api_default", **kwargs)


def test_expected_rows_compare_equal_and_say_what_the_event_path_writes():
    rows = _rows()
    assert _diffs(rows) == []
    history = {(r["order_status"], r["source"]) for r in rows[oracle.HISTORY]}
    assert history == {("PENDING", "summary"), ("UNSHIPPED", "summary"), ("SHIPPED", "summary")}
    [order] = rows[oracle.ORDERS]
    assert (order["order_status"], order["source"], order["order_total"]) == (
        "SHIPPED",
        "event",
        Decimal("25.00"),
    )
    [fba] = rows[oracle.FBA]
    assert (fba["shipment_status"], fba["notification_id"]) == ("Cancelled", "n-5")
    assert len(rows[oracle.INBOX]) == 5
    assert _diffs(_rows(enriched=False), enriched=False) == []


def _mutated(table: str, change: Any) -> dict[str, list[dict[str, Any]]]:
    rows = copy.deepcopy(_rows())
    change(rows[table])
    return rows


@pytest.mark.parametrize(
    ("table", "change", "reported"),
    [
        (
            oracle.ORDERS,
            lambda t: t[0].update(order_status="UNSHIPPED"),
            "order_status is 'UNSHIPPED', truth 'SHIPPED'",
        ),
        (oracle.ORDERS, lambda t: t[0].update(order_total=None), "order_total is NULL, truth 25.00"),
        (oracle.HISTORY, lambda t: t.pop(0), "missing from the warehouse"),
        (oracle.INBOX, lambda t: t.append(dict(t[0])), "holds this key twice"),
        (oracle.FBA, lambda t: t[0].update(shipment_status="Created"), "shipment_status is 'Created'"),
        (oracle.ITEMS, lambda t: t.clear(), "missing from the warehouse"),
        (oracle.INBOX, lambda t: t[0].update(conn_id="sp_other"), "conn_id is 'sp_other'"),
    ],
)
def test_one_wrong_row_is_reported(table, change, reported):
    diffs = _diffs(_mutated(table, change))
    assert diffs and all(table in d for d in diffs), diffs
    assert any(reported in d for d in diffs), diffs


def test_before_enrichment_only_the_status_is_compared_and_a_stale_one_is_reported():
    rows = _rows(enriched=False)
    rows[oracle.ORDERS][0]["order_status"] = "UNSHIPPED"
    assert any("order_status is 'UNSHIPPED', truth 'SHIPPED'" in d for d in _diffs(rows, enriched=False))


def test_quarantine_must_hold_every_poison_body_and_foreign_notification_and_nothing_else():
    noise = {
        "poison": ["not json", ""],
        "foreign_seller": [{"notification_id": "f-1", "seller_id": "A2FOREIGN"}],
    }
    good = [
        {"raw_body": "not json", "reason": "body is not JSON", "notification_id": None},
        {"raw_body": "{...}", "reason": "seller A2FOREIGN is not served", "notification_id": "f-1"},
    ]
    assert oracle.compare_notification_quarantine(noise, good, served_sellers=[SELLER]) == []
    assert oracle.compare_notification_quarantine(noise, good[1:], served_sellers=[SELLER])  # poison lost
    vague = [good[0], {**good[1], "reason": "rejected"}]
    assert oracle.compare_notification_quarantine(noise, vague, served_sellers=[SELLER])
    extra = [*good, {"raw_body": "{}", "reason": "x", "notification_id": "n-1"}]
    assert oracle.compare_notification_quarantine(noise, extra, served_sellers=[SELLER])
