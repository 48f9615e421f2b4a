"""The report oracle shares no code with the product, and it notices a wrong warehouse."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tests.reports import report_oracle


def test_oracle_is_independent():
    tree = ast.parse(Path(report_oracle.__file__).read_text())
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else alias.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for alias in n.names
    }
    assert not any(str(m).startswith("selling_partner") for m in imported), imported


TRUTH = {
    "seller_id": "A1SELLER",
    "orders": [
        {
            "orderId": "111-0000001-0000001",
            "orderAliases": [{"aliasId": "SO-1", "aliasType": "SELLER_ORDER_ID"}],
            "createdTime": "2026-11-01T10:00:00Z",
            "lastUpdatedTime": "2026-11-02T10:00:00Z",
            "programs": ["PRIME"],
            "salesChannel": {"marketplaceId": "ATVPDKIKX0DER", "marketplaceName": "Amazon.com"},
            "fulfillment": {
                "fulfillmentStatus": "SHIPPED",
                "fulfilledBy": "AMAZON",
                "fulfillmentServiceLevel": "STANDARD",
            },
            "proceeds": {"grandTotal": {"amount": "12.50", "currencyCode": "USD"}},
            "orderItems": [
                {
                    "orderItemId": "1",
                    "quantityOrdered": 1,
                    "product": {
                        "asin": "B0",
                        "sellerSku": "S",
                        "title": "T",
                        "price": {"unitPrice": {"amount": "12.50", "currencyCode": "USD"}},
                    },
                }
            ],
        }
    ],
}


def test_oracle_reports_a_wrong_value_and_a_missing_row():
    expected = report_oracle.expected_rows(TRUTH)
    order = dict(expected["sp_orders"][("111-0000001-0000001",)])
    assert order["programs"] == "" and order["order_total"] == Decimal("12.50")  # PRIME is not in a report
    item = dict(expected["sp_order_items"][("111-0000001-0000001", "1")])
    tables = {
        "sp_orders": [{**order, "order_total": Decimal("12.49"), "loaded_at": datetime.now(UTC)}],
        "sp_order_items": [item],
        "sp_order_packages": [],
        "sp_order_status_history": [],
        "sp_order_buyers": [],
    }
    diffs = report_oracle.compare(expected, tables)
    assert any("order_total" in d for d in diffs)
    assert any(d.startswith("sp_order_status_history") and "missing" in d for d in diffs)
