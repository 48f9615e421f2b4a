"""Pure row building: time encoding, batch reduction, dedupe (no database)."""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from datetime import UTC, datetime, timedelta, timezone

import pytest
from selling_partner.orders.canonical import CanonicalBuyer, CanonicalItem, CanonicalOrder, CanonicalPackage
from selling_partner.warehouse import OrderQuarantineRow, SyncRunRecord, clean_text, error_summary, schema
from selling_partner.warehouse.postgres import rows_to_tsv
from selling_partner.warehouse.rows import (
    build_order_batch,
    order_quarantine_rows,
    parse_ts,
    require_aware,
    sqlite_ts,
    sync_run_row,
)

from tests.warehouse.factories import at, item, order, summary

OID = "111-0000001-0000001"


def test_sqlite_ts_is_fixed_width_utc_and_sorts_chronologically():
    plus2 = timezone(timedelta(hours=2))
    assert sqlite_ts(datetime(2026, 8, 20, 16, 5, 31, 482000, tzinfo=plus2)) == "2026-08-20T14:05:31.482000Z"
    assert sqlite_ts(datetime(2026, 8, 20, 14, 5, tzinfo=UTC)) == "2026-08-20T14:05:00.000000Z"
    times = [at(m) for m in (0, 0.001, 1, 60, 60 * 24 * 400)]
    assert sorted(sqlite_ts(t) for t in reversed(times)) == [sqlite_ts(t) for t in times]
    assert parse_ts(sqlite_ts(times[1])) == times[1]
    assert sqlite_ts(None) is None


def test_naive_times_are_rejected():
    with pytest.raises(ValueError, match="Naive"):
        require_aware(datetime(2026, 1, 1))


def test_batch_reduces_to_one_row_per_order_with_status_and_details_winners():
    versions = [
        order(OID, status="UNSHIPPED", updated=at(1), total="20.00"),
        summary(OID, status="SHIPPED", updated=at(9)),
        order(OID, status="PENDING", updated=at(0), total="19.00"),
    ]
    batch = build_order_batch(versions, ts=sqlite_ts, loaded_at=at(100))
    (row,) = batch.orders
    cols = dict(zip(schema.ORDERS_TABLE.column_names, row, strict=True))
    assert (cols["order_status"], cols["last_updated_time"], cols["source"]) == (
        "SHIPPED",
        sqlite_ts(at(9)),
        "summary",
    )
    assert (cols["order_total"], cols["is_complete"], cols["details_updated_time"]) == (
        "20.00",
        True,
        sqlite_ts(at(1)),
    )
    loaded = sqlite_ts(at(100))
    assert batch.history == [
        (OID, "PENDING", sqlite_ts(at(0)), False, "sync", loaded),
        (OID, "SHIPPED", sqlite_ts(at(9)), False, "summary", loaded),
        (OID, "UNSHIPPED", sqlite_ts(at(1)), False, "sync", loaded),
    ]
    assert [r[1] for r in batch.items] == [f"{OID}-I1"] and batch.items[0][10] == "10.00"


def test_child_of_another_order_is_refused():
    with pytest.raises(ValueError, match="belongs to"):
        build_order_batch([order(OID, items=(item("OTHER", 1),))], ts=sqlite_ts)


def test_duplicate_items_in_one_record_keep_the_last():
    o = order(OID, items=(item(OID, 1, qty=1), item(OID, 1, qty=7)))
    assert [r[6] for r in build_order_batch([o], ts=sqlite_ts).items] == [7]


def test_copy_text_format_escapes_specials():
    assert (
        rows_to_tsv([("a\tb", None, True, False, 3, "x\\y\nz\r")]) == "a\\tb\t\\N\tt\tf\t3\tx\\\\y\\nz\\r\n"
    )


# --------------------------------------------------------------------------- text
def test_clean_text_removes_nul_and_replaces_lone_surrogates_only():
    assert clean_text(None) is None
    assert clean_text("") == ""
    assert clean_text("plain ascii") == "plain ascii"
    assert clean_text("a\x00b\x00") == "ab"
    assert clean_text("\x00") == ""
    assert clean_text("half \ud83d and \udc00 \U0001f600") == "half \ufffd and \ufffd \U0001f600"
    odd = "e\u0301 \u202e\u05e9 \u200b \ufeff \U0001f469\u200d\U0001f467 \t\r\n\x7f"
    assert clean_text(odd) is odd  # no normalisation, no trimming: the same object comes back
    huge = "\u00e9" * 100_000
    assert clean_text(huge) is huge


def _str_fields(cls) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if hints[f.name] in (str, str | None)]


def test_every_text_field_of_every_record_is_cleaned():
    """Guards the builders: a text field added to a canonical record but not cleaned fails here."""

    def poison(obj, **keep):
        return dataclasses.replace(
            obj, **{n: f"{n}\x00" for n in _str_fields(type(obj)) if n not in keep}, **keep
        )

    oid = "111-0000001-0000001\x00"
    it = poison(
        CanonicalItem(oid, "I1", 1, unit_price="1.00"),
        order_id=oid,
        unit_price="1.00",
        item_price=None,
        item_tax=None,
        shipping_price=None,
        shipping_tax=None,
        promotion_discount=None,
        promotion_ids=("P\x001",),
    )
    pkg = poison(CanonicalPackage(oid, "P1"), order_id=oid)
    b = poison(CanonicalBuyer(oid), order_id=oid)
    o = poison(
        CanonicalOrder(oid, "M", "SHIPPED", at(0), at(1)),
        order_id=oid,
        order_total="2.00",
        items=(it,),
        packages=(pkg,),
        buyer=b,
        programs=("PRI\x00ME",),
    )
    batch = build_order_batch([o], ts=sqlite_ts)
    rows = [*batch.orders, *batch.items, *batch.packages, *batch.history, *batch.buyers]
    assert len(rows) == 5
    texts = [v for row in rows for v in row if isinstance(v, str)]
    assert [v for v in texts if "\x00" in v] == []
    assert "111-0000001-0000001" in texts and "PRIME" in texts and "P1" in texts
    # Every poisoned field reached a row, cleaned ("name\x00" -> "name").
    for cls, obj in ((CanonicalOrder, o), (CanonicalItem, it), (CanonicalPackage, pkg), (CanonicalBuyer, b)):
        for name in _str_fields(cls):
            value = getattr(obj, name)
            if value is not None and value.endswith("\x00") and name not in ("order_id", "source"):
                assert value[:-1] in texts, f"{cls.__name__}.{name} is not stored"


# --------------------------------------------------------------------------- sync runs
def _run(**changes) -> SyncRunRecord:
    base = SyncRunRecord(
        "sp_api_default",
        "sweep",
        "success",
        at(0),
        at(60),
        pages=2,
        orders=150,
        calls=5,
        throttled=1,
        duration_seconds=42.5,
        dag_id="d",
        dag_run_id="r",
        task_id="t",
    )
    return dataclasses.replace(base, **changes)


def test_sync_run_row_has_every_column():
    run = _run(
        try_number=2,
        deferrals=3,
        deferred_seconds=30.0,
        retries=4,
        quarantined=1,
        seller_id="S1",
        marketplace_ids=("A", "B"),
        api_version="2026-01-01",
        started_at=at(1),
        finished_at=at(2),
    )
    row = dict(
        zip(
            schema.SYNC_RUNS_TABLE.column_names,
            sync_run_row(run, ts=sqlite_ts, recorded_at=at(3)),
            strict=True,
        )
    )
    assert row == {
        "run_id": run.key(),
        "conn_id": "sp_api_default",
        "mode": "sweep",
        "status": "success",
        "window_start": sqlite_ts(at(0)),
        "window_end": sqlite_ts(at(60)),
        "seller_id": "S1",
        "marketplace_ids": "A,B",
        "api_version": "2026-01-01",
        "pages": 2,
        "orders": 150,
        "calls": 5,
        "throttled": 1,
        "duration_seconds": 42.5,
        "started_at": sqlite_ts(at(1)),
        "finished_at": sqlite_ts(at(2)),
        "dag_id": "d",
        "dag_run_id": "r",
        "task_id": "t",
        "error": None,
        "recorded_at": sqlite_ts(at(3)),
        "try_number": 2,
        "deferrals": 3,
        "deferred_seconds": 30.0,
        "retries": 4,
        "quarantined": 1,
        "missed_by_events": 0,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "deferred"}, "status 'deferred' is not one of success, partial, failed"),
        ({"status": "failed"}, "failed SyncRunRecord needs error"),
        ({"retries": -1}, "retries must be a count >= 0"),
        ({"calls": 1.5}, "calls must be a count >= 0"),
        ({"deferred_seconds": float("nan")}, "deferred_seconds must be seconds >= 0"),
        ({"try_number": 0}, "try_number must be >= 1"),
    ],
)
def test_sync_run_row_refuses_what_would_mislead_on_call(changes, message):
    with pytest.raises(ValueError, match=message):
        sync_run_row(_run(**changes), ts=sqlite_ts)


def test_failed_run_keeps_exception_class_and_first_line():
    try:
        raise TimeoutError("searchOrders timed out after 60 s\nTraceback (most recent call last): ...")
    except TimeoutError as exc:
        summary_text = error_summary(exc)
    assert summary_text == "TimeoutError: searchOrders timed out after 60 s"
    assert error_summary(KeyError()) == "KeyError"
    row = sync_run_row(_run(status="failed", error="X: one\ntwo"), ts=sqlite_ts)
    assert row[schema.SYNC_RUNS_TABLE.column_names.index("error")] == "X: one"


def test_run_key_includes_the_try_number_only_when_given():
    parts = ["d", "r", "t", "sp_api_default", "sweep", at(0).isoformat(), at(60).isoformat()]
    legacy = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    assert _run().key() == legacy  # keys derived before try_number existed are unchanged
    assert _run(try_number=1).key() == hashlib.sha256("\x1f".join([*parts, "1"]).encode()).hexdigest()[:32]
    assert len({_run(try_number=n).key() for n in (1, 2, 3)}) == 3
    assert _run(run_id="explicit", try_number=2).key() == "explicit"


# --------------------------------------------------------------------------- order quarantine rows
def test_order_quarantine_rows_fold_sightings_in_key_order():
    def q(oid, minute, reason, source="sync"):
        return OrderQuarantineRow(oid, source, f'{{"orderId": "{oid}", "m": {minute}}}', reason, at(minute))

    rows = order_quarantine_rows(
        [
            q("B", 5, "late"),
            q("A", 1, "x"),
            q("B", 2, "early"),
            q("B", 5, "tie, later wins"),
            q("B", 3, "e", "enrich"),
        ],
        ts=sqlite_ts,
    )
    cols = schema.ORDER_QUARANTINE_TABLE.column_names
    got = [
        {
            c: v
            for c, v in zip(cols, r, strict=True)
            if c
            in ("order_id", "source", "reason", "attempts", "first_seen_at", "last_seen_at", "raw_record")
        }
        for r in rows
    ]
    assert got == [
        {
            "order_id": "A",
            "source": "sync",
            "reason": "x",
            "raw_record": '{"orderId": "A", "m": 1}',
            "attempts": 1,
            "first_seen_at": sqlite_ts(at(1)),
            "last_seen_at": sqlite_ts(at(1)),
        },
        {
            "order_id": "B",
            "source": "enrich",
            "reason": "e",
            "raw_record": '{"orderId": "B", "m": 3}',
            "attempts": 1,
            "first_seen_at": sqlite_ts(at(3)),
            "last_seen_at": sqlite_ts(at(3)),
        },
        {
            "order_id": "B",
            "source": "sync",
            "reason": "tie, later wins",
            "raw_record": '{"orderId": "B", "m": 5}',
            "attempts": 3,
            "first_seen_at": sqlite_ts(at(2)),
            "last_seen_at": sqlite_ts(at(5)),
        },
    ]
    assert [r[cols.index("resolved_at")] for r in rows] == [None, None, None]


def test_decoded_records_are_stored_as_canonical_json():
    a = OrderQuarantineRow("A", "sync", {"b": [1, "é"], "a": None}, "r", at(0))
    b = OrderQuarantineRow("A", "sync", {"a": None, "b": [1, "é"]}, "r", at(1))
    assert a.record_text == b.record_text == '{"a":null,"b":[1,"é"]}'
    assert a.record_sha256 == b.record_sha256 == hashlib.sha256(a.record_text.encode()).hexdigest()
