"""Pure parsing of order reports: bytes, charsets, gzip sniffing, columns by name, vocabulary, money, PII."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from selling_partner.reports.parsing import (
    ReportFormatError,
    charset_of,
    decode_document,
    decompress,
    is_date_range_exceeded,
    parse_document,
    read_report,
    report_orders,
)

US = "ATVPDKIKX0DER"
HEADER = (
    "amazon-order-id\torder-item-id\tmerchant-order-id\tpurchase-date\tlast-updated-date\torder-status\t"
    "fulfillment-channel\tsales-channel\tship-service-level\tproduct-name\tsku\tasin\tquantity\tcurrency\t"
    "item-price\titem-tax\tshipping-price\tshipping-tax\titem-promotion-discount\tship-promotion-discount\t"
    "ship-city\tship-state\tship-postal-code\tship-country\tpromotion-ids\tis-business-order\t"
    "purchase-order-number\tsomething-new"
)


ROW = {
    "oid": "111-0000001-0000001", "item": "11111111111111", "status": "Shipped", "channel": "Amazon",
    "title": "Mug", "sku": "SKU-1", "qty": "2", "price": "39.98", "tax": "3.20", "ship": "5.00",
    "ship_tax": "0.40", "promo": "-2.00", "city": "Seattle", "updated": "2025-04-03T12:00:00+00:00",
    "business": "false", "currency": "USD",
}  # fmt: skip


def row(**values: str) -> str:
    """One item row of ``HEADER`` (``ROW`` with ``values`` changed)."""
    v = {**ROW, **values}
    return "\t".join([
        v["oid"], v["item"], "SO-1", "2025-04-01T08:30:00+00:00", v["updated"], v["status"], v["channel"],
        "Amazon.com", "SecondDay", v["title"], v["sku"], "B000000001", v["qty"], v["currency"], v["price"],
        v["tax"], v["ship"], v["ship_tax"], v["promo"], "0.00", v["city"], "WA", "98101", "US", "P1,P2",
        v["business"], "PO-7", "whatever",
    ])  # fmt: skip


def doc(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def parse(text: str, **kw):
    return report_orders(read_report(text, include_pii=kw.get("include_pii", False)), marketplace_id=US, **kw)


def test_orders_are_grouped_and_mapped_with_exact_money():
    text = doc(row(), row(item="22222222222222", sku="SKU-2", qty="1", price="0.10", tax="0.01", ship="0",
                          ship_tax="0", promo=""))  # fmt: skip
    result = parse(text, seller_id="A1SELLER")
    [o] = result.orders
    assert result.rows == 2 and result.rejected == []
    assert (o.order_id, o.order_status, o.fulfilled_by, o.sales_channel) == (
        "111-0000001-0000001", "SHIPPED", "AMAZON", "Amazon.com",
    )  # fmt: skip
    assert o.fulfillment_service_level == "SECOND_DAY" and o.seller_order_id == "SO-1"
    assert o.created_time == datetime(2025, 4, 1, 8, 30, tzinfo=UTC)
    assert o.last_updated_time == datetime(2025, 4, 3, 12, tzinfo=UTC)
    assert (o.source, o.api_version, o.complete, o.seller_id) == (
        "report",
        "reports-2021-06-30",
        True,
        "A1SELLER",
    )
    first, second = o.items
    assert first.item_price == "39.98" and first.unit_price == "19.99" and first.promotion_discount == "2.00"
    assert first.promotion_ids == ("P1", "P2") and first.quantity_shipped is None
    assert second.unit_price == "0.10" and second.promotion_discount == "0.00"  # ship-promotion-discount
    # 39.98 + 3.20 + 5.00 + 0.40 - 2.00 + 0.10 + 0.01: exact decimal text, never a float
    assert o.order_total == "46.69" and Decimal(o.order_total) == Decimal("46.69") and o.currency == "USD"
    assert o.buyer is None


@pytest.mark.parametrize(
    ("report", "warehouse"),
    [("Cancelled", "CANCELLED"), ("Shipping", "PARTIALLY_SHIPPED"), ("Pending", "PENDING"),
     ("Unshipped", "UNSHIPPED"), ("Shipped", "SHIPPED")],
)  # fmt: skip
def test_status_vocabulary(report, warehouse):
    [o] = parse(doc(row(status=report))).orders
    assert o.order_status == warehouse


def test_merchant_channel_and_unknown_values_are_quarantined_with_reason():
    text = doc(row(channel="Merchant"), row(oid="111-0000002-0000002", status="Teleported"),
               row(oid="111-0000003-0000003", price="12,50"))  # fmt: skip
    result = parse(text)
    assert [o.fulfilled_by for o in result.orders] == ["MERCHANT"]
    reasons = {r.order_id: r.reason for r in result.rejected}
    assert "unknown order-status 'Teleported'" in reasons["111-0000002-0000002"]
    assert "not a decimal amount" in reasons["111-0000003-0000003"]
    assert all("Seattle" not in str(r.raw) for r in result.rejected)  # no PII kept with a rejection


def test_pii_columns_are_not_read_unless_enabled():
    text = doc(row())
    assert not {"ship-city", "ship-postal-code", "purchase-order-number"} & set(read_report(text).columns)
    assert "something-new" not in read_report(text).columns  # unknown columns are ignored
    [o] = parse(text, include_pii=True).orders
    assert o.buyer is not None and (o.buyer.city, o.buyer.postal_code, o.buyer.country_code) == (
        "Seattle", "98101", "US",
    )  # fmt: skip
    assert o.buyer.buyer_name is None  # a report has no buyer name


def test_missing_optional_columns_are_allowed_required_ones_are_not():
    minimal = "amazon-order-id\tpurchase-date\tlast-updated-date\torder-status\tsku\tquantity\n"
    minimal += "111-0000001-0000001\t2025-04-01T08:30:00+00:00\t2025-04-02T08:30:00+00:00\tPending\tS\t3\n"
    [o] = parse(minimal).orders
    assert o.order_total is None and o.currency is None and o.items[0].quantity_ordered == 3
    assert o.items[0].order_item_id.startswith("R")  # old files have no order-item-id: a stable stand-in
    assert parse(minimal).orders[0].items[0].order_item_id == o.items[0].order_item_id
    with pytest.raises(ReportFormatError, match="last-updated-date"):
        read_report(minimal.replace("last-updated-date", "updated"))


def test_pending_rows_without_money_have_no_total():
    [o] = parse(
        doc(row(status="Pending", price="", tax="", ship="", ship_tax="", promo="", currency=""))
    ).orders
    assert o.order_total is None and o.currency is None and o.items[0].unit_price is None


def test_gzip_is_sniffed_by_magic_bytes_not_by_the_flag():
    body = doc(row()).encode()
    assert decompress(gzip.compress(body)) == body
    assert decompress(body) == body  # a "GZIP" flag on a plain body changes nothing


@pytest.mark.parametrize(
    ("content_type", "encoded", "codec"),
    [
        ("text/plain;charset=Cp1252", "Café Crème".encode("cp1252"), "cp1252"),
        ("text/plain; charset=Windows-31J", "マグカップ".encode("cp932"), "cp932"),
        ("text/plain", "\ufeffRüstung 🙂".encode(), "utf-8"),
        ("text/plain;charset=UTF-8", "Ünïcode".encode(), "utf-8"),
        (None, "Crème".encode("cp1252"), "cp1252"),  # not UTF-8, no charset: cp1252
        ("text/plain;charset=UTF-8", "Crème".encode("cp1252"), "cp1252"),  # the charset lies: fall back
    ],
)
def test_charsets(content_type, encoded, codec):
    text, used = decode_document(encoded, content_type)
    assert used == codec
    assert text in ("Café Crème", "マグカップ", "Rüstung 🙂", "Ünïcode", "Crème")


def test_charset_names():
    assert charset_of("text/plain;charset=Windows-31J") == "cp932"
    assert charset_of('text/plain; charset="Cp1252"') == "cp1252"
    assert charset_of("text/plain;charset=x-unknown-thing") is None and charset_of(None) is None


def test_bom_and_japanese_titles_round_trip_through_the_whole_parse():
    body = ("\ufeff" + doc(row(title="マグカップ 350ml"))).encode("utf-8")
    [o] = parse_document(gzip.compress(body), "text/plain", marketplace_id=US)[0].orders
    assert o.items[0].title == "マグカップ 350ml"  # the BOM did not hide the first column
    sjis = doc(row(title="マグカップ")).encode("cp932")
    [o] = parse_document(sjis, "text/plain;charset=Windows-31J", marketplace_id=US)[0].orders
    assert o.items[0].title == "マグカップ"


def test_date_range_exceeded_document_is_detected_and_not_loaded():
    notice = "Date range exceeded. Report can be requested only upto 30 days\n"
    assert is_date_range_exceeded(notice) and not is_date_range_exceeded(doc(row()))
    with pytest.raises(ReportFormatError, match="Date range exceeded"):
        read_report(notice)


def test_empty_document_has_no_orders():
    assert parse("").orders == [] and parse(HEADER + "\n").orders == []
