"""The oracle (tests/oracle.py): independent of the product, right on Amazon's examples, and able to fail.

* it imports nothing of ``selling_partner`` (checked on its AST);
* hand-written raw orders (Amazon's model examples and the sandbox's renderings) map to the rows the
  data dictionary describes, in v2026 and v0 mode, with status history over observed versions and
  bad records (quarantine, storable text);
* ``compare`` on plain rows: types, numeric money, list sets, unknown/missing columns, PII-free
  messages, the limit, one seller of a shared warehouse;
* the product run on the same raw orders (Amazon's examples, edge cases the sandbox never renders)
  agrees with the oracle - where it does not, the test says who is right;
* mutations of a real sync (sandbox over HTTP -> sync DAG -> PostgreSQL/SQLite): one changed field in
  one row of each table is reported as exactly that field, a dropped row as missing, an added row as
  extra, and a change that is no difference (``33.23`` -> ``33.230``) is not reported; a sync of bad
  records quarantines exactly the unmappable ones, in v2026 and v0.
"""

from __future__ import annotations

import ast
import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import oracle
from tests.fixtures.airflow import load_dag, run_dag, xcom_result
from tests.fixtures.sandbox import SandboxClient
from tests.oracle import BUYERS, HISTORY, ITEMS, ORDERS, PACKAGES, QUARANTINE, compare, expected_rows

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "include" / "sp_api_sandbox" / "models" / "orders_2026-01-01.json"
TASK = "sync_orders__sp_api_default"
SELLER = "A1EXAMPLESELLER"


@pytest.fixture
def fresh_buckets() -> None:
    """This process's rate-limit buckets belong to earlier sandboxes (same seller id): forget them."""
    from selling_partner.hooks.ratelimit import MemoryRateLimiter

    MemoryRateLimiter.reset_all()


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _model_orders() -> dict[str, dict[str, Any]]:
    """Every example ``Order`` in Amazon's v2026 model (examples and sandbox responses), by orderId."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "orderId" in node and "orderItems" in node:
                found.setdefault(node["orderId"], node)
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(MODEL.read_text())["paths"])
    return found


def _truth(*orders: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"seller_id": SELLER, "region": "na", "orders": [copy.deepcopy(o) for o in orders], **extra}


def _as_warehouse(expected: dict[str, dict]) -> dict[str, list[dict]]:
    """Warehouse-shaped rows holding exactly the expected values (lists as comma-joined text)."""
    out: dict[str, list[dict]] = {}
    for table, rows in expected.items():
        kinds = oracle.TABLES[table].kinds
        out[table] = [
            {c: ",".join(v) if kinds.get(c) == "list" else v for c, v in row.items()} for row in rows.values()
        ]
    return out


def _sandbox_order(**changes: Any) -> dict[str, Any]:
    """A raw order as the sandbox renders it (docs/CONTRACTS.md): TAX split, negative DISCOUNT."""
    usd = "USD"

    def money(amount: str) -> dict[str, str]:
        return {"amount": amount, "currencyCode": usd}

    order = {
        "orderId": "111-0000001-0000001",
        "orderAliases": [{"aliasId": "SO-1", "aliasType": "SELLER_ORDER_ID"}],
        "createdTime": "2026-11-28T00:47:42.258Z",
        "lastUpdatedTime": "2026-12-02T16:27:49.646Z",
        "programs": ["PRIME", "AMAZON_BUSINESS"],
        "salesChannel": {
            "channelName": "AMAZON",
            "marketplaceId": "ATVPDKIKX0DER",
            "marketplaceName": "Amazon.com",
        },
        "proceeds": {"grandTotal": money("47.43"), "breakdowns": []},
        "fulfillment": {
            "fulfillmentStatus": "PARTIALLY_SHIPPED",
            "fulfilledBy": "MERCHANT",
            "fulfillmentServiceLevel": "SECOND_DAY",
            "shipByWindow": {
                "earliestDateTime": "2026-11-28T00:47:42.258Z",
                "latestDateTime": "2026-11-29T23:59:59.000Z",
            },
            "deliverByWindow": {
                "earliestDateTime": "2026-12-02T00:00:00.000Z",
                "latestDateTime": "2026-12-06T23:59:59.000Z",
            },
        },
        "orderItems": [
            {
                "orderItemId": "29439650018036",
                "quantityOrdered": 2,
                "product": {
                    "asin": "B0AX1ERPMD",
                    "title": "Cast Iron Travel Pillow, Grey",
                    "sellerSku": "TP-GRY-074",
                    "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                    "price": {"unitPrice": money("20.00")},
                },
                "proceeds": {
                    "proceedsTotal": money("47.43"),
                    "breakdowns": [
                        {"type": "ITEM", "subtotal": money("40.00")},
                        {"type": "SHIPPING", "subtotal": money("5.99")},
                        {
                            "type": "TAX",
                            "subtotal": money("3.44"),
                            "detailedBreakdowns": [
                                {"subtype": "ITEM", "value": money("3.01")},
                                {"subtype": "SHIPPING", "value": money("0.43")},
                            ],
                        },
                        {
                            "type": "DISCOUNT",
                            "subtotal": money("-2.00"),
                            "detailedBreakdowns": [{"subtype": "ITEM", "value": money("-2.00")}],
                        },
                    ],
                },
                "promotion": {"breakdowns": [{"promotionId": "P-B"}, {"promotionId": "P-A"}]},
                "cancellation": {
                    "cancellationRequest": {"requester": "BUYER", "cancelReason": "Changed mind"}
                },
                "fulfillment": {"quantityFulfilled": 1, "quantityUnfulfilled": 1},
            }
        ],
        "packages": [
            {
                "packageReferenceId": "6128206652",
                "packageStatus": {"status": "DELIVERED", "detailedStatus": "DELIVERED"},
                "carrier": "FedEx",
                "shipTime": "2026-11-29T07:05:52.440Z",
                "shippingService": "FedEx Home Delivery",
                "trackingNumber": "414010418685",
            }
        ],
    }
    order.update(changes)
    return order


# --- independence -----------------------------------------------------------------------------


def test_the_oracle_imports_nothing_of_the_product():
    tree = ast.parse((REPO / "tests" / "oracle.py").read_text())
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            imported += [
                a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
    assert imported, "the AST walk found no imports at all: the check would prove nothing"
    assert [m for m in imported if m.split(".")[0] in ("selling_partner", "tests", "demo")] == []


# --- mapping Amazon's examples ------------------------------------------------------------------


def test_amazons_get_order_example_maps_as_the_dictionary_says():
    raw = _model_orders()["202-1234567-8901234"]  # getOrder's example: FBM, UK, one package
    rows = expected_rows(_truth(raw))
    order = rows[ORDERS][("202-1234567-8901234",)]
    assert order["seller_id"] == SELLER
    assert (order["marketplace_id"], order["sales_channel"]) == ("A1F83G8C2ARO7P", "Amazon.co.uk")
    assert (order["order_status"], order["fulfilled_by"], order["fulfillment_service_level"]) == (
        "SHIPPED",
        "MERCHANT",
        "STANDARD",
    )
    assert order["seller_order_id"] == "UK-MERCHANT-ORDER-2024-001"
    assert (order["currency"], order["order_total"]) == ("GBP", Decimal("103.97"))
    assert order["created_time"] == _utc("2024-12-25T09:15:00")
    assert order["last_updated_time"] == order["details_updated_time"] == _utc("2024-12-25T16:30:00")
    assert order["latest_delivery_time"] == _utc("2024-12-30T23:59:59")
    assert order["programs"] == ("PRIME",)
    assert (order["items_shipped"], order["items_unshipped"]) == (3, 0)
    assert (order["api_version"], order["source"], order["is_complete"], order["order_type"]) == (
        "2026-01-01",
        "sync",
        True,
        None,
    )
    (item,) = rows[ITEMS].values()
    assert (item["unit_price"], item["item_price"], item["shipping_price"]) == (
        Decimal("29.99"),
        Decimal("89.97"),
        Decimal("10.00"),
    )
    # TAX 4.00 is split by its detailedBreakdowns: ITEM 3.00, SHIPPING 1.00; no DISCOUNT -> NULL.
    assert (item["item_tax"], item["shipping_tax"], item["promotion_discount"]) == (
        Decimal("3.00"),
        Decimal("1.00"),
        None,
    )
    assert (item["condition"], item["currency"], item["promotion_ids"]) == (
        "NEW",
        "GBP",
        ("UK-BOXING-DAY-2024",),
    )
    assert (item["is_buyer_requested_cancel"], item["buyer_cancel_reason"]) == (False, None)
    (package,) = rows[PACKAGES].values()
    assert (package["carrier"], package["package_status"], package["package_detailed_status"]) == (
        "Royal Mail",
        "IN_TRANSIT",
        "OUT_FOR_DELIVERY",
    )
    assert package["ship_time"] == _utc("2024-12-26T14:00:00")
    (history,) = rows[HISTORY].values()
    assert history["packages_delivered"] is False  # the package is still in transit
    assert rows[BUYERS] == {}  # no PII unless asked for


def test_amazons_search_example_cancellation_request_and_undivided_shipping_tax():
    raw = _model_orders()["123-4567890-1234567"]
    rows = expected_rows(_truth(raw))
    first = rows[ITEMS][("123-4567890-1234567", "12345678901234")]
    assert (first["is_buyer_requested_cancel"], first["buyer_cancel_reason"]) == (
        True,
        "Changed mind about purchase",
    )
    assert (first["item_tax"], first["shipping_tax"], first["shipping_price"]) == (
        Decimal("0.02"),
        None,
        None,
    )
    second = rows[ITEMS][("123-4567890-1234567", "12345678901235")]
    assert (second["is_buyer_requested_cancel"], second["item_tax"]) == (False, None)
    assert rows[ORDERS][("123-4567890-1234567",)]["programs"] == ("AMAZON_BUSINESS", "PRIME")


def test_buyer_rows_only_with_pii_from_buyer_and_delivery_address():
    raw = _model_orders()["123-4567890-1234567"]
    buyer = expected_rows(_truth(raw), include_pii=True)[BUYERS][("123-4567890-1234567",)]
    assert (buyer["buyer_name"], buyer["buyer_company_name"], buyer["buyer_purchase_order_number"]) == (
        "John Smith",
        "Smith Industries LLC",
        "PO-2024-12345",
    )
    assert (buyer["recipient_name"], buyer["address_line2"], buyer["address_line3"]) == (
        "John Smith",
        "Suite 456",
        "",
    )
    assert (buyer["city"], buyer["state_or_region"], buyer["postal_code"], buyer["country_code"]) == (
        "Seattle",
        "WA",
        "98101",
        "US",
    )
    # The company comes from the address when the buyer section does not name it (v0's OrderAddress does).
    uk = _model_orders()["202-1234567-8901234"]
    assert (
        expected_rows(_truth(uk), include_pii=True)[BUYERS][("202-1234567-8901234",)]["buyer_company_name"]
        == "Wilson Electronics Ltd"
    )


def test_sandbox_rendering_negative_discount_is_a_positive_promotion_discount():
    rows = expected_rows(_truth(_sandbox_order()))
    item = rows[ITEMS][("111-0000001-0000001", "29439650018036")]
    assert item["promotion_discount"] == Decimal("2.00")
    assert (item["item_tax"], item["shipping_tax"]) == (Decimal("3.01"), Decimal("0.43"))
    assert item["promotion_ids"] == ("P-A", "P-B")
    assert (item["quantity_shipped"], item["quantity_unshipped"]) == (1, 1)
    assert rows[HISTORY][("111-0000001-0000001", _utc("2026-12-02T16:27:49.646"), "PARTIALLY_SHIPPED")][
        "packages_delivered"
    ]


def test_a_pending_order_without_proceeds_has_no_money():
    raw = _sandbox_order(proceeds=None)
    raw["fulfillment"]["fulfillmentStatus"] = "PENDING"
    for item in raw["orderItems"]:
        del item["proceeds"], item["product"]["price"]
    rows = expected_rows(_truth(raw))
    order = rows[ORDERS][("111-0000001-0000001",)]
    assert (order["order_total"], order["currency"]) == (None, None)
    (item,) = rows[ITEMS].values()
    money = ("unit_price", "item_price", "item_tax", "shipping_price", "shipping_tax", "promotion_discount")
    assert [item[c] for c in (*money, "currency")] == [None] * 7


def test_v0_mode_keeps_what_v0_can_carry():
    raw = _sandbox_order(programs=["PRIME", "AMAZON_HAUL", "PREORDER", "INVOICE_BY_AMAZON"])
    rows = expected_rows(_truth(raw), api_version="v0")
    order = rows[ORDERS][("111-0000001-0000001",)]
    assert order["api_version"] == "v0"
    assert order["programs"] == ("PREORDER", "PRIME")
    assert "order_type" not in order
    assert rows[PACKAGES] == {}
    assert not next(iter(rows[HISTORY].values()))["packages_delivered"]
    assert order["seller_order_id"] == "SO-1"
    # Without orderAliases there is no seller order id, in either version (the sandbox drops v0's
    # SellerOrderId with v2026's orderAliases).
    del raw["orderAliases"]
    for version in ("v0", "2026-01-01"):
        assert (
            expected_rows(_truth(raw), api_version=version)[ORDERS][(raw["orderId"],)]["seller_order_id"]
            is None
        )
    with pytest.raises(ValueError, match="api_version"):
        expected_rows(_truth(raw), api_version="v1")


def test_status_history_over_observed_snapshots():
    before = _sandbox_order(lastUpdatedTime="2026-12-01T10:00:00.000Z")
    before["fulfillment"] = {**before["fulfillment"], "fulfillmentStatus": "UNSHIPPED"}
    before["packages"] = []
    gone = _sandbox_order(orderId="111-0000009-0000009")  # seen earlier, not in the final truth
    final = _sandbox_order()
    history = expected_rows(_truth(final), observed=[_truth(before, gone), _truth(final)])[HISTORY]
    assert sorted((k[0], k[2], v["packages_delivered"]) for k, v in history.items()) == [
        ("111-0000001-0000001", "PARTIALLY_SHIPPED", True),
        ("111-0000001-0000001", "UNSHIPPED", False),
    ]


# --- compare on plain rows ----------------------------------------------------------------------


def test_compare_equal_rows_and_differences_that_are_not_differences():
    truth = _truth(_sandbox_order(), _model_orders()["202-1234567-8901234"])
    rows = _as_warehouse(expected_rows(truth))
    assert compare(truth, rows) == []
    rows[ORDERS][0]["order_total"] = Decimal("47.430")  # numerically equal
    rows[ORDERS][0]["programs"] = "PRIME,AMAZON_BUSINESS"  # the dictionary fixes no order
    assert compare(truth, rows) == []


@pytest.mark.parametrize(
    ("table", "column", "value", "shown"),
    [
        (ORDERS, "order_total", 47.43, "47.43 (float)"),
        (ORDERS, "created_time", datetime(2026, 11, 28, 0, 47, 42, 258000), "(naive)"),
        (ORDERS, "created_time", _utc("2026-11-28T00:47:42.258001"), "2026-11-28T00:47:42.258001Z"),
        (ORDERS, "is_complete", 1, "1"),
        (ORDERS, "items_shipped", "1", "'1' (str)"),
        (ORDERS, "programs", None, "NULL"),
        (ORDERS, "programs", "PRIME, AMAZON_BUSINESS", "'PRIME, AMAZON_BUSINESS'"),
        (ITEMS, "promotion_discount", Decimal("-2.00"), "-2.00"),
        (ITEMS, "shipping_tax", None, "NULL"),
        (PACKAGES, "ship_time", "2026-11-29T07:05:52.440Z", "(str)"),
        (HISTORY, "packages_delivered", False, "false"),
    ],
)
def test_compare_reports_one_wrong_value_with_both_values(table, column, value, shown):
    truth = _truth(_sandbox_order())
    rows = _as_warehouse(expected_rows(truth))
    rows[table][0][column] = value
    diffs = compare(truth, rows)
    assert len(diffs) == 1, diffs
    assert diffs[0].startswith(f"{table} 111-0000001-0000001") and f": {column} is " in diffs[0]
    assert shown in diffs[0]


def test_compare_missing_extra_duplicate_and_columns():
    truth = _truth(_sandbox_order())
    rows = _as_warehouse(expected_rows(truth))
    item = rows[ITEMS][0]
    rows[ITEMS] = [{**item, "order_item_id": "X1", "loaded_at": datetime.now(UTC)}]
    rows[PACKAGES] = rows[PACKAGES] * 2
    rows[HISTORY][0]["shiny_new_column"] = 1
    del rows[ORDERS][0]["seller_order_id"]
    assert compare(truth, rows) == [
        "sp_orders: column seller_order_id is missing from the warehouse rows",
        "sp_order_items 111-0000001-0000001/29439650018036: missing from the warehouse",
        "sp_order_items 111-0000001-0000001/X1: in the warehouse but not in the truth",
        "sp_order_packages 111-0000001-0000001/6128206652: the warehouse holds this key twice",
        "sp_order_status_history: column shiny_new_column is not in the data dictionary "
        "(the oracle does not know it: add it to docs/data-dictionary.md and tests/oracle.py)",
    ]


def test_a_missing_order_is_one_line_not_one_per_child_row():
    truth = _truth(_sandbox_order(), _model_orders()["202-1234567-8901234"])
    rows = _as_warehouse(expected_rows(truth))
    rows[ORDERS] = [r for r in rows[ORDERS] if r["order_id"] != "111-0000001-0000001"]
    assert compare(truth, rows) == ["sp_orders 111-0000001-0000001: missing from the warehouse"]
    rows = _as_warehouse(expected_rows(truth))
    assert compare(_truth(_sandbox_order()), rows) == [
        "sp_orders 202-1234567-8901234: in the warehouse but not in the truth"
    ]


def test_buyer_messages_name_the_column_never_the_value():
    raw = _model_orders()["123-4567890-1234567"]
    truth = _truth(raw)
    rows = _as_warehouse(expected_rows(truth, include_pii=True))
    rows[BUYERS][0].update(city="Tacoma", buyer_email=None, address_line3="Flat 9")
    diffs = compare(truth, rows, include_pii=True)
    assert diffs == [
        f"sp_order_buyers 123-4567890-1234567: {column} (values not shown: PII)"
        for column in (
            "buyer_email is NULL, the truth has a value",
            "address_line3 differs from the truth",
            "city differs from the truth",
        )
    ]
    assert not any(pii in d for d in diffs for pii in ("Tacoma", "Seattle", "Flat 9", "buyer-email@"))
    # Without include_pii the table must be empty: a leak is reported, by key only.
    assert compare(truth, rows) == [
        "sp_order_buyers 123-4567890-1234567: in the warehouse but not in the truth"
    ]


def test_pii_comparison_needs_a_truth_with_buyer_data():
    truth = _truth(_sandbox_order())
    with pytest.raises(ValueError, match="BUYER and RECIPIENT"):
        compare(truth, _as_warehouse(expected_rows(truth)), include_pii=True)


def test_compare_limits_its_report():
    truth = _truth(*(_sandbox_order(orderId=f"111-0000001-{n:07d}") for n in range(40)))
    diffs = compare(truth, {}, limit=30)
    assert len(diffs) == 31 and diffs[-1] == "... and 10 more differences"


# --- bad records --------------------------------------------------------------------------------


def _bad_truth() -> dict[str, Any]:
    broken = {"orderId": "111-0000002-0000002", "lastUpdatedTime": "not a time"}  # lacks required fields
    nul = _sandbox_order(orderId="111-0000003-0000003")
    nul["orderItems"][0]["product"]["title"] = "Travel\u0000 Pillow"
    nul["orderItems"][0]["product"]["sellerSku"] = "TP-\ud83d-\U0001f600"  # a lone surrogate, an emoji
    return _truth(
        _sandbox_order(),
        broken,
        {"lastUpdatedTime": "2026-12-02T16:27:49.646Z"},  # no orderId at all
        nul,
        bad_records={
            "111-0000002-0000002": {"kind": "missing_fields", "expect": "quarantine", "detail": "no items"},
            "111-0000003-0000003": {"kind": "nul_in_text", "expect": "load", "detail": "NUL in a title"},
            "111-0000005-0000005": {"kind": "no_order_id", "expect": "quarantine", "detail": "no orderId"},
        },
    )


def test_bad_records_quarantined_or_loaded_as_storable_text():
    truth = _bad_truth()
    rows = expected_rows(truth)
    assert {k[0] for k in rows[ORDERS]} == {"111-0000001-0000001", "111-0000003-0000003"}
    loaded = rows[ITEMS][("111-0000003-0000003", "29439650018036")]
    assert (loaded["title"], loaded["seller_sku"]) == ("Travel Pillow", "TP-\ufffd-\U0001f600")
    assert list(rows[QUARANTINE]) == [("111-0000002-0000002", "sync"), ("111-0000005-0000005", "sync")]
    warehouse = _as_warehouse(rows)
    open_row = {"source": "sync", "reason": "createdTime missing", "attempts": 1, "resolved_at": None}
    warehouse[QUARANTINE] = [
        {**open_row, "order_id": "111-0000002-0000002", "raw_record": "{}"},
        # Served without its orderId: the warehouse keys it by something that is not an order id.
        {**open_row, "order_id": "?sha256:0123456789abcdef", "attempts": 2},
        # A resolved row of another order is history, not a difference.
        {**open_row, "order_id": "111-0000001-0000001", "resolved_at": datetime.now(UTC)},
    ]
    assert compare(truth, warehouse) == []
    # The quarantine table is checked only when the warehouse has it.
    assert compare(truth, {t: r for t, r in warehouse.items() if t != QUARANTINE}) == []


def test_bad_records_that_were_not_handled_are_reported():
    truth = _bad_truth()
    good = _as_warehouse(expected_rows(truth))
    loaded_anyway = copy.deepcopy(good)
    loaded_anyway[ORDERS].append({**good[ORDERS][0], "order_id": "111-0000002-0000002"})
    open_row = {"source": "sync", "reason": "unreadable", "attempts": 1, "resolved_at": None}
    loaded_anyway[QUARANTINE] = [
        {**open_row, "order_id": "111-0000002-0000002", "reason": " ", "attempts": 0},
        {**open_row, "order_id": "111-0000004-0000004"},  # an order id no bad record names
        {**open_row, "order_id": "111-0000001-0000001"},  # a good order quarantined
        {**open_row, "order_id": "?sha256:1", "resolved_at": datetime.now(UTC)},  # resolved: not open
    ]
    loaded_anyway[ITEMS][-1]["title"] = "Travel\u0000 Pillow"
    assert compare(truth, loaded_anyway) == [
        "sp_orders 111-0000002-0000002: in the warehouse but the truth expects it quarantined "
        "(missing_fields)",
        "sp_order_items 111-0000003-0000003/29439650018036: title is 'Travel\\x00 Pillow', "
        "truth 'Travel Pillow'",
        "sp_order_quarantine 111-0000005-0000005/sync: missing from the warehouse",
        "sp_order_quarantine 111-0000001-0000001/sync: in the warehouse but no bad record of the truth "
        "expects it",
        "sp_order_quarantine 111-0000004-0000004/sync: in the warehouse but no bad record of the truth "
        "expects it",
        "sp_order_quarantine 111-0000002-0000002/sync: reason is ' ', truth non-empty text",
        "sp_order_quarantine 111-0000002-0000002/sync: attempts is 0, truth a count >= 1",
    ]
    good[QUARANTINE] = []
    assert compare(truth, good) == [
        "sp_order_quarantine 111-0000002-0000002/sync: missing from the warehouse",
        "sp_order_quarantine 111-0000005-0000005/sync: missing from the warehouse",
    ]


def test_a_record_without_order_id_is_an_error_unless_bad_records_explain_it():
    with pytest.raises(ValueError, match="no orderId"):
        expected_rows(_truth({"lastUpdatedTime": "2026-12-02T16:27:49.646Z"}))


# --- the product on Amazon's examples (run it: who is right?) -------------------------------------


@pytest.mark.integration
def test_the_product_maps_amazons_examples_as_the_oracle_does(warehouse):
    from selling_partner.orders.v2026 import normalize_order

    examples = list(_model_orders().values())
    assert len(examples) >= 5
    warehouse.upsert_orders([normalize_order(raw, seller_id=SELLER) for raw in examples])
    assert compare(_truth(*examples), warehouse, include_pii=True) == []


def _variant(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(raw order, extra truth keys) of an edge case the sandbox never renders."""
    raw = _sandbox_order()
    item = raw["orderItems"][0]
    breakdowns = item["proceeds"]["breakdowns"]
    extra: dict[str, Any] = {}
    if name == "time with an offset":
        raw["lastUpdatedTime"] = "2026-12-02T17:27:49.646+01:00"
    elif name == "undivided TAX":
        breakdowns[2].pop("detailedBreakdowns")
    elif name == "TAX detail for gift wrap":
        breakdowns[2]["detailedBreakdowns"].append(
            {"subtype": "GIFT_WRAP", "value": {"amount": "0.50", "currencyCode": "USD"}}
        )
    elif name == "two ITEM breakdowns":
        breakdowns.append({"type": "ITEM", "subtotal": {"amount": "1.00", "currencyCode": "USD"}})
    elif name == "repeated names in lists":
        raw["programs"] = ["PRIME", "PRIME"]
        item["promotion"]["breakdowns"].append({"promotionId": "P-A"})
    elif name == "no fulfillment quantities, no alias, cancelled by the merchant":
        item["fulfillment"] = {}
        item["cancellation"] = {"cancellationExecution": {"cancelledBy": "MERCHANT"}}
        raw["orderAliases"] = []
    elif name == "NUL, lone surrogate and zero-width text (a bad record to load)":
        item["product"]["title"] = "Travel\u0000 Pillow \ud83d \u200b e\u0301"
        extra["bad_records"] = {raw["orderId"]: {"kind": "text", "expect": "load", "detail": "odd text"}}
    else:
        raise AssertionError(name)
    return raw, extra


@pytest.mark.integration
@pytest.mark.parametrize(
    "case",
    [
        "time with an offset",
        "undivided TAX",
        "TAX detail for gift wrap",
        "two ITEM breakdowns",
        "repeated names in lists",
        "no fulfillment quantities, no alias, cancelled by the merchant",
        "NUL, lone surrogate and zero-width text (a bad record to load)",
    ],
)
def test_the_product_on_raw_orders_the_sandbox_never_renders(warehouse, case):
    from selling_partner.orders.v2026 import normalize_order

    raw, extra = _variant(case)
    warehouse.upsert_orders([normalize_order(copy.deepcopy(raw), seller_id=SELLER)])
    assert compare(_truth(raw, **extra), warehouse) == []


@pytest.mark.integration
def test_one_seller_of_a_shared_warehouse(warehouse):
    from selling_partner.orders.v2026 import normalize_order

    examples = sorted(_model_orders().values(), key=lambda o: o["orderId"])
    mine, theirs = examples[:3], examples[3:]
    warehouse.upsert_orders(
        [normalize_order(raw, seller_id=SELLER) for raw in mine]
        + [normalize_order(raw, seller_id="A2OTHERSELLER") for raw in theirs]
    )
    truth = _truth(*mine)
    assert compare(truth, oracle.warehouse_rows(warehouse, seller_id=SELLER), include_pii=True) == []
    assert compare(truth, warehouse, include_pii=True) == [
        f"sp_orders {raw['orderId']}: in the warehouse but not in the truth" for raw in theirs
    ]


# --- mutations of a real sync: the oracle can fail ------------------------------------------------


def _backfill(wh_conn_id: str, days: int) -> dict:
    start = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conf = {"mode": "backfill", "start_date": start, "window_days": 30, "warehouse_conn_id": wh_conn_id}
    summary = xcom_result(run_dag(load_dag("sp_api_orders_sync"), run_conf=conf), TASK)
    assert summary["done"], summary
    return summary


def _with_buyer_data(sb: Any, truth: dict[str, Any]) -> dict[str, Any]:
    """The truth plus each order's ``buyer``/``recipient`` from the sandbox's raw getOrder."""
    client = SandboxClient(sb)
    out = copy.deepcopy(truth)
    for order in out["orders"]:
        response = client.get(
            f"/orders/2026-01-01/orders/{order['orderId']}", params={"includedData": "BUYER,RECIPIENT"}
        )
        assert response.status_code == 200, response.text
        raw = response.json()["order"]
        assert raw["lastUpdatedTime"] == order["lastUpdatedTime"], "the order changed while reading it"
        order.update({k: raw[k] for k in ("buyer", "recipient") if k in raw})
    return out


def _synced(sync_env, wh_conn_id: str, api_version: str = "2026-01-01") -> dict[str, Any]:
    sb = sync_env(orders=150, days=6, seed=41, extra={"orders_api_version": api_version, "include_pii": True})
    summary = _backfill(wh_conn_id, 7)
    truth = _with_buyer_data(sb, sb.truth(lastUpdatedBefore=summary["window_end"]))
    assert len(truth["orders"]) == 150
    return truth


def _pick(truth: dict[str, Any], test) -> dict[str, Any]:
    picked = next((o for o in truth["orders"] if test(o)), None)
    assert picked is not None, "the sandbox world has no such order: the mutation would prove nothing"
    return picked


@pytest.mark.integration
@pytest.mark.usefixtures("fresh_buckets")
def test_mutating_one_field_of_each_table_is_reported_as_that_field(
    sync_env, pg_warehouse_conn_id, pg_dsn, pg_schema
):
    import psycopg
    from selling_partner.warehouse import get_warehouse

    truth = _synced(sync_env, pg_warehouse_conn_id)
    wh = get_warehouse(pg_warehouse_conn_id)
    assert compare(truth, wh, include_pii=True) == []

    fbm = _pick(truth, lambda o: o.get("packages") and o["orderItems"][0].get("proceeds"))
    oid, iid = fbm["orderId"], fbm["orderItems"][0]["orderItemId"]
    pkg = fbm["packages"][0]["packageReferenceId"]
    with_address = _pick(truth, lambda o: (o.get("recipient") or {}).get("deliveryAddress"))["orderId"]
    tables = (ORDERS, ITEMS, PACKAGES, HISTORY, BUYERS)
    item_cols = ", ".join(c for c in oracle.TABLES[ITEMS].kinds if c != "order_item_id")
    key_item = "WHERE order_id = %s AND order_item_id = %s"
    # (SQL, its parameters, the one message expected as (prefix, fragment), or None: no difference)
    mutations: list[tuple[str, list[str], tuple[str, str] | None]] = [
        (
            "UPDATE sp_orders SET order_total = order_total + 0.01 WHERE order_id = %s",
            [oid],
            (f"sp_orders {oid}: ", "order_total is "),
        ),
        (
            "UPDATE sp_orders SET created_time = created_time + interval '1 microsecond' WHERE order_id = %s",
            [oid],
            (f"sp_orders {oid}: ", "created_time is "),
        ),
        (
            "UPDATE sp_orders SET programs = 'PRIME,PREMIUM,X' WHERE order_id = %s",
            [oid],
            (f"sp_orders {oid}: ", "programs is 'PRIME,PREMIUM,X', truth "),
        ),
        (
            "UPDATE sp_orders SET source = 'event' WHERE order_id = %s",
            [oid],
            (f"sp_orders {oid}: ", "source is 'event', truth 'sync'"),
        ),
        ("UPDATE sp_orders SET order_total = order_total * 1.000 WHERE order_id = %s", [oid], None),
        (
            f"UPDATE sp_order_items SET item_tax = item_tax + 0.01 {key_item}",
            [oid, iid],
            (f"sp_order_items {oid}/{iid}: ", "item_tax is "),
        ),
        (
            f"UPDATE sp_order_items SET promotion_discount = -promotion_discount - 1 {key_item}",
            [oid, iid],
            (f"sp_order_items {oid}/{iid}: ", "promotion_discount is -"),
        ),
        (
            "UPDATE sp_order_packages SET tracking_number = tracking_number || '0'"
            " WHERE order_id = %s AND package_reference_id = %s",
            [oid, pkg],
            (f"sp_order_packages {oid}/{pkg}: ", "tracking_number is "),
        ),
        (
            "UPDATE sp_order_status_history SET packages_delivered = NOT packages_delivered"
            " WHERE order_id = %s",
            [oid],
            (f"sp_order_status_history {oid}/", ": packages_delivered is "),
        ),
        (
            # PII is stored as Fernet tokens (an edited token would not decrypt): give the city another
            # column's token, which decrypts to a different value.
            "UPDATE sp_order_buyers SET city = address_line1 WHERE order_id = %s",
            [with_address],
            (f"sp_order_buyers {with_address}: ", "city differs from the truth (values not shown: PII)"),
        ),
        (
            f"DELETE FROM sp_order_items {key_item}",
            [oid, iid],
            (f"sp_order_items {oid}/{iid}: ", "missing from the warehouse"),
        ),
        (
            f"INSERT INTO sp_order_items (order_item_id, {item_cols}, loaded_at)"
            f" SELECT order_item_id || '9', {item_cols}, loaded_at FROM sp_order_items {key_item}",
            [oid, iid],
            (f"sp_order_items {oid}/{iid}9: ", "in the warehouse but not in the truth"),
        ),
        (
            "INSERT INTO sp_order_status_history"
            " (order_id, order_status, last_updated_time, packages_delivered, source, observed_at)"
            " SELECT order_id, 'CANCELLED', last_updated_time, false, source, observed_at"
            " FROM sp_order_status_history WHERE order_id = %s",
            [oid],
            (f"sp_order_status_history {oid}/", "/CANCELLED: in the warehouse but not in the truth"),
        ),
        (
            "DELETE FROM sp_orders WHERE order_id = %s",
            [oid],
            (f"sp_orders {oid}: ", "missing from the warehouse"),
        ),
    ]
    failures: list[str] = []
    with psycopg.connect(pg_dsn, autocommit=True, options=f"-c search_path={pg_schema}") as conn:
        for table in tables:
            conn.execute(f"CREATE TABLE keep_{table} AS SELECT * FROM {table}")
        for sql, params, message in mutations:
            changed = conn.execute(sql, params).rowcount
            if changed < 1:
                failures.append(f"{sql}: changed no row")
            diffs = compare(truth, wh, include_pii=True)
            if message is None:
                ok = diffs == []
            else:
                ok = len(diffs) == 1 and diffs[0].startswith(message[0]) and message[1] in diffs[0]
            if not ok:
                failures.append(f"{sql} -> {diffs}, expected {message!r}")
            for table in tables:
                conn.execute(f"DELETE FROM {table}")
                conn.execute(f"INSERT INTO {table} SELECT * FROM keep_{table}")
            if compare(truth, wh, include_pii=True) != []:
                failures.append(f"restoring the tables after {sql!r} did not give the truth back")
    assert failures == []


@pytest.mark.integration
@pytest.mark.usefixtures("fresh_buckets")
def test_mutations_are_found_on_sqlite_too_and_text_money_compares_numerically(
    sync_env, sqlite_warehouse_conn_id, tmp_path
):
    import sqlite3

    from selling_partner.warehouse import get_warehouse

    truth = _synced(sync_env, sqlite_warehouse_conn_id)
    wh = get_warehouse(sqlite_warehouse_conn_id)
    assert compare(truth, wh, include_pii=True) == []
    priced = _pick(truth, lambda o: o.get("proceeds"))
    oid, total = priced["orderId"], priced["proceeds"]["grandTotal"]["amount"]
    with sqlite3.connect(tmp_path / "warehouse.db") as conn:
        conn.execute("UPDATE sp_orders SET order_total = ? WHERE order_id = ?", (total + "0", oid))
    assert compare(truth, wh, include_pii=True) == []  # '33.230' is '33.23'
    with sqlite3.connect(tmp_path / "warehouse.db") as conn:
        conn.execute("UPDATE sp_order_status_history SET source = 'event' WHERE order_id = ?", (oid,))
    diffs = compare(truth, wh, include_pii=True)
    assert (
        len(diffs) == 1
        and diffs[0].startswith(f"sp_order_status_history {oid}/")
        and "source is 'event'" in diffs[0]
    )


@pytest.mark.integration
@pytest.mark.usefixtures("fresh_buckets")
def test_a_v0_sync_differs_from_the_v2026_mapping_only_where_the_docstring_says(
    sync_env, pg_warehouse_conn_id
):
    from selling_partner.warehouse import get_warehouse

    truth = _synced(sync_env, pg_warehouse_conn_id, api_version="v0")
    wh = get_warehouse(pg_warehouse_conn_id)
    assert compare(truth, wh, api_version="v0", include_pii=True) == []
    # Read as if it were a v2026 sync, the v0 warehouse differs exactly on the documented exceptions.
    diffs = compare(truth, wh, include_pii=True, limit=100_000)
    kinds = {d.split(" ", 1)[0] + ":" + d.split(": ", 1)[1].split(" ", 1)[0] for d in diffs}
    assert kinds <= {
        "sp_orders:api_version",
        "sp_orders:order_type",
        "sp_orders:programs",
        "sp_order_packages:missing",
        "sp_order_status_history:packages_delivered",
    }, kinds
    assert {"sp_orders:api_version", "sp_orders:order_type", "sp_order_packages:missing"} <= kinds


@pytest.mark.integration
@pytest.mark.usefixtures("fresh_buckets")
@pytest.mark.parametrize("api_version", ["2026-01-01", "v0"])
def test_a_sync_of_bad_records_quarantines_exactly_the_unmappable(
    sync_env, pg_warehouse_conn_id, pg_dsn, pg_schema, api_version
):
    import psycopg
    from selling_partner.warehouse import get_warehouse

    sb = sync_env(orders=120, days=6, seed=43, bad_records=0.25, extra={"orders_api_version": api_version})
    summary = _backfill(pg_warehouse_conn_id, 7)
    truth = sb.truth(lastUpdatedBefore=summary["window_end"])
    expects = {entry["expect"] for entry in truth["bad_records"].values()}
    assert expects == {"load", "quarantine"}, "the sandbox served no bad records of both kinds"
    wh = get_warehouse(pg_warehouse_conn_id)
    assert compare(truth, wh, api_version=api_version) == []

    oid = sorted(o for o, entry in truth["bad_records"].items() if entry["expect"] == "quarantine")[0]
    with psycopg.connect(pg_dsn, autocommit=True, options=f"-c search_path={pg_schema}") as conn:
        conn.execute("UPDATE sp_order_quarantine SET resolved_at = now() WHERE order_id = %s", [oid])
        diffs = compare(truth, wh, api_version=api_version)
        assert len(diffs) == 1 and diffs[0].startswith(f"sp_order_quarantine {oid}/sync: resolved_at is ")
        conn.execute("DELETE FROM sp_order_quarantine WHERE order_id = %s", [oid])
    assert compare(truth, wh, api_version=api_version) == [
        f"sp_order_quarantine {oid}/sync: missing from the warehouse"
    ]
