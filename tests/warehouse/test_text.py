"""Text the loader must survive, through upsert_orders and fetch_* on both backends: odd but valid unicode
and huge strings round-trip exactly; NUL is removed and a lone surrogate replaced (one rule, both
backends; PostgreSQL's COPY would otherwise fail the whole batch)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from selling_partner.orders.canonical import CanonicalBuyer
from selling_partner.warehouse import InboxRow, NotificationToApply, OrderQuarantineRow, SyncRunRecord

from tests.warehouse.factories import at, item, order, package

pytestmark = pytest.mark.integration

#: Valid unicode that naive code mangles (normalises, truncates, re-encodes or splits).
ODD = {
    "emoji_zwj": "👩‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 tone",
    "combining": "Cafe\u0301 vs Caf\u00e9, Z\u0351\u0302a\u0336l\u0317g\u0353o",  # NFD and NFC kept apart
    "rtl": "\u202e\u05e9\u05dc\u05d5\u05dd \u0639\u0631\u0628\u0649\u202c mixed ltr",  # Hebrew, Arabic
    "non_bmp": "\U0001d518\U0001d52b\U0001d526 \U0002070e\U00020731 \U0001f600",  # Fraktur, CJK ext. B, emoji
    "zero_width": "zero\u200bwidth\u200c\u200djoin\ufefffeff\u2060",
    "controls": "tab\there\r\nnew line\x7fdel\x01soh",
    "sql_like": "'; DROP TABLE sp_orders; -- \\N \\. %s ?",
}
#: 100,000 characters mixing 1-, 2-, 3- and 4-byte UTF-8 sequences.
HUGE = ("aé€😀" * 25_000)[:100_000]
OID = "111-0000001-0000001"


def _odd_order(oid: str, text: str, *, updated: int = 1):
    it = replace(item(oid, 1), title=text, seller_sku=f"SKU {text[:20]}", buyer_cancel_reason=text)
    pkg = replace(package(oid, 1), carrier=text[:30], package_detailed_status=text)
    buyer = CanonicalBuyer(oid, buyer_name=text, address_line1=text, city="Zürich")
    return replace(
        order(oid, updated=at(updated), items=(it,), packages=(pkg,), buyer=buyer),
        seller_order_id=text,
        fulfillment_service_level=text,
    )


@pytest.mark.parametrize("name", [*ODD, "huge"])
def test_odd_unicode_and_huge_strings_round_trip_exactly(warehouse, name):
    text = HUGE if name == "huge" else ODD[name]
    oid = f"{OID}-{name}"
    warehouse.upsert_orders([_odd_order(oid, text)])
    (o,) = warehouse.fetch_orders()
    assert (o["order_id"], o["seller_order_id"], o["fulfillment_service_level"]) == (oid, text, text)
    (it,) = warehouse.fetch_items()
    assert (it["title"], it["seller_sku"], it["buyer_cancel_reason"]) == (text, f"SKU {text[:20]}", text)
    (p,) = warehouse.fetch_packages()
    assert (p["carrier"], p["package_detailed_status"]) == (text[:30], text)
    (b,) = warehouse.fetch_buyers()
    assert (b["buyer_name"], b["address_line1"], b["city"]) == (text, text, "Zürich")

    # Loading the same record again is recognised as the same version: only load times move.
    def state():
        rows = (*warehouse.fetch_orders(), *warehouse.fetch_items(), *warehouse.fetch_packages())
        return [{k: v for k, v in r.items() if k != "loaded_at"} for r in rows]

    before = state()
    assert warehouse.upsert_orders([_odd_order(oid, text)]).history_rows == 0
    assert state() == before


def test_unicode_order_ids_are_keys_like_any_other(warehouse):
    ids = [f"{OID}-{v}" for v in ("é", "e\u0301", "😀", "\u200b")]  # NFC vs NFD are different keys
    warehouse.upsert_orders([order(oid, updated=at(1), items=(item(oid, 1),)) for oid in ids])
    assert [r["order_id"] for r in warehouse.fetch_orders()] == sorted(
        r["order_id"] for r in warehouse.fetch_orders()
    )
    assert {r["order_id"] for r in warehouse.fetch_orders()} == set(ids)
    assert {(i["order_id"], i["order_item_id"]) for i in warehouse.fetch_items()} == {
        (o, f"{o}-I1") for o in ids
    }
    assert [warehouse.fetch_orders({"order_id": oid})[0]["order_id"] for oid in ids] == ids


def test_nul_is_removed_from_every_text_value(warehouse):
    nul = "before\x00after\x00"
    oid = f"{OID}\x00"  # the id itself carries a NUL: items, packages and history follow the cleaned id
    res = warehouse.upsert_orders([_odd_order(oid, nul)])
    assert (res.orders_written, res.items_written, res.packages_written, res.buyers_written) == (1, 1, 1, 1)
    (o,) = warehouse.fetch_orders()
    assert (o["order_id"], o["seller_order_id"], o["fulfillment_service_level"]) == (
        OID,
        "beforeafter",
        "beforeafter",
    )
    (it,) = warehouse.fetch_items()
    assert (it["order_id"], it["order_item_id"], it["title"], it["seller_sku"]) == (
        OID, f"{OID}-I1", "beforeafter", "SKU beforeafter",
    )  # fmt: skip
    (p,) = warehouse.fetch_packages()
    assert (p["order_id"], p["package_reference_id"], p["carrier"]) == (OID, f"{OID}-P1", "beforeafter")
    (b,) = warehouse.fetch_buyers()
    assert (b["order_id"], b["buyer_name"]) == (OID, "beforeafter")
    assert [(h["order_id"], h["order_status"]) for h in warehouse.fetch_status_history()] == [
        (OID, "UNSHIPPED")
    ]
    # The same order without the NUL is the same key: a newer version updates the one row.
    res = warehouse.upsert_orders([order(OID, status="SHIPPED", updated=at(2))])
    assert (res.orders_written, res.orders_stale) == (1, 0)
    assert [(r["order_id"], r["order_status"]) for r in warehouse.fetch_orders()] == [(OID, "SHIPPED")]


def test_ids_equal_after_nul_removal_are_one_order_in_a_batch(warehouse):
    """Two spellings of one id in one batch must not stage two rows for one key (PostgreSQL would refuse)."""
    res = warehouse.upsert_orders(
        [
            order(f"{OID}\x00", status="UNSHIPPED", updated=at(1), items=(item(f"{OID}\x00", 1),)),
            order(OID, status="SHIPPED", updated=at(2),
                  items=(item(OID, 1), replace(item(OID, 1), order_item_id=f"{OID}-I1\x00"))),
        ]
    )  # fmt: skip
    assert (res.orders_written, res.items_written, res.history_rows) == (1, 1, 2)
    assert [(r["order_id"], r["order_status"]) for r in warehouse.fetch_orders()] == [(OID, "SHIPPED")]
    assert [(i["order_id"], i["order_item_id"]) for i in warehouse.fetch_items()] == [(OID, f"{OID}-I1")]


def test_lone_surrogate_becomes_replacement_character(warehouse):
    broken = json.loads('"half \\ud83d emoji"')  # what a truncated JSON escape decodes to
    warehouse.upsert_orders([_odd_order(OID, broken)])
    (it,) = warehouse.fetch_items()
    assert it["title"] == "half \ufffd emoji"


def test_other_writers_apply_the_same_rule(warehouse):
    text = "x\x00y 👩‍👩‍👧 " + "\ud800"
    clean = "xy 👩‍👩‍👧 \ufffd"
    warehouse.record_sync_run(
        SyncRunRecord("sp_api_default", "sweep", "failed", at(0), at(60), error=f"ValueError: {text}\nmore")
    )
    assert warehouse.fetch_sync_runs()[0]["error"] == f"ValueError: {clean}"
    payload = json.dumps(
        {"title": text}, ensure_ascii=False
    )  # a literal NUL in a body, as a broken producer sends
    payload = payload.replace("\\u0000", "\x00")
    warehouse.apply_notifications(
        [NotificationToApply(InboxRow("n1", "ORDER_CHANGE", payload, at(1), order_id=OID))]
    )
    assert warehouse.fetch_inbox()[0]["payload"] == json.dumps(
        {"title": "xy 👩‍👩‍👧 \ufffd"}, ensure_ascii=False
    )
    warehouse.quarantine_orders([OrderQuarantineRow(OID, "sync", f'{{"t": "{text}"}}', f"bad {text}", at(2))])
    (q,) = warehouse.fetch_order_quarantine()
    assert (q["raw_record"], q["reason"]) == (f'{{"t": "{clean}"}}', f"bad {clean}")
