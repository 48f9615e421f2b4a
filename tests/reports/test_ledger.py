"""The window ledger's state machine (pure): planning, reuse, FATAL retries, quarantine, splits, hand-over."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from selling_partner.reports import ledger as lg

NOW = datetime(2026, 12, 1, tzinfo=UTC)
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
WAIT = timedelta(minutes=30)


def make(days: int = 70, marketplaces=(US,), window_days: float = 30) -> dict:
    windows = lg.plan_windows(NOW - timedelta(days=days), NOW, marketplaces, window_days)
    return lg.new_ledger(conn_id="c", requested={}, report_type=TYPE, windows=windows, now=NOW)


def ids(ledger: dict) -> list[str]:
    return [w["id"] for w in ledger["windows"]]


def test_windows_are_contiguous_per_marketplace_and_at_most_30_days():
    ledger = make(70, (US, CA))
    assert len(ledger["windows"]) == 6
    for mkt in (US, CA):
        mine = [w for w in ledger["windows"] if w["marketplace_id"] == mkt]
        assert mine[0]["start"] == "2026-09-22T00:00:00Z" and mine[-1]["end"] == "2026-12-01T00:00:00Z"
        assert all(a["end"] == b["start"] for a, b in itertools.pairwise(mine))
    with pytest.raises(ValueError, match="window_days"):
        lg.validate_range(NOW - timedelta(days=10), NOW, now=NOW, window_days=31)
    with pytest.raises(ValueError, match="two years"):
        lg.validate_range(NOW - timedelta(days=731), NOW, now=NOW, window_days=30)
    assert (
        lg.validate_range(NOW - timedelta(days=730), NOW + timedelta(days=1), now=NOW, window_days=30)[1]
        == NOW
    )


def test_plan_respects_in_flight_limit_and_a_crash_reuses_reports_in_flight():
    ledger = make(70, (US, CA))
    step = lg.next_plan(ledger, now=NOW, max_in_flight=4)
    assert step.create == ids(ledger)[:4] and not step.poll and not step.finished
    for n, window_id in enumerate(step.create):
        lg.mark_creating(ledger, window_id, now=NOW)
        lg.mark_created(ledger, window_id, f"R{n}", now=NOW)
    # "crash": a new process reads the same ledger - it polls the four reports, requests nothing new
    reread = lg.copy_ledger(ledger)
    again = lg.next_plan(reread, now=NOW, max_in_flight=4)
    assert again.create == [] and again.poll == ids(ledger)[:4]


def test_creating_window_is_recovered_by_an_exact_getreports_match():
    ledger = make(30)
    [w] = ledger["windows"]
    lg.mark_creating(ledger, w["id"], now=NOW)
    assert lg.next_plan(ledger, now=NOW, max_in_flight=4).recover == [w["id"]]
    base = {"reportType": TYPE, "marketplaceIds": [US], "dataStartTime": w["start"], "dataEndTime": w["end"]}
    reports = [
        {**base, "reportId": "old", "processingStatus": "IN_PROGRESS", "createdTime": "2026-12-01T00:00:01Z"},
        {**base, "reportId": "new", "processingStatus": "IN_QUEUE", "createdTime": "2026-12-01T00:00:05Z"},
        {**base, "reportId": "fatal", "processingStatus": "FATAL", "createdTime": "2026-12-01T00:00:09Z"},
        {**base, "reportId": "other", "processingStatus": "IN_QUEUE", "marketplaceIds": [CA]},
        {
            **base,
            "reportId": "shorter",
            "processingStatus": "IN_QUEUE",
            "dataEndTime": "2026-11-30T00:00:00Z",
        },
    ]
    assert lg.matching_report(reports, w, TYPE)["reportId"] == "new"  # newest usable, exact window
    assert lg.matching_report(reports[2:], w, TYPE) is None  # FATAL/CANCELLED are never reused
    lg.mark_lost(ledger, w["id"], now=NOW)
    assert w["status"] == "PENDING" and lg.next_plan(ledger, now=NOW, max_in_flight=1).create == [w["id"]]


def test_done_is_loaded_once_cancelled_is_empty():
    ledger = make(60)
    a, b = ids(ledger)
    for window_id in (a, b):
        lg.mark_creating(ledger, window_id, now=NOW)
        lg.mark_created(ledger, window_id, window_id, now=NOW)
    kw = {"now": NOW, "retry_wait": WAIT, "max_fatal_retries": 2}
    lg.apply_report(ledger, a, {"reportId": "A", "processingStatus": "DONE", "reportDocumentId": "D"}, **kw)
    lg.apply_report(ledger, b, {"reportId": "B", "processingStatus": "CANCELLED"}, **kw)
    step = lg.next_plan(ledger, now=NOW, max_in_flight=4)
    assert step.load == [a] and not step.finished and lg.window(ledger, b)["status"] == "EMPTY"
    lg.mark_loaded(ledger, a, orders=3, rows=4, rejected=0, codec="utf-8", now=NOW)
    assert lg.next_plan(ledger, now=NOW, max_in_flight=4).finished
    with pytest.raises(lg.LedgerError, match="not DONE"):
        lg.mark_loaded(ledger, a, orders=3, rows=4, rejected=0, codec="utf-8", now=NOW)


def test_fatal_waits_retries_at_most_n_times_then_quarantines_with_the_reason():
    ledger = make(30)
    [w] = ledger["windows"]
    now = NOW
    for attempt in range(1, 4):
        step = lg.next_plan(ledger, now=now, max_in_flight=1)
        assert step.create == [w["id"]]
        lg.mark_creating(ledger, w["id"], now=now)
        lg.mark_created(ledger, w["id"], f"R{attempt}", now=now)
        fatal = {"reportId": f"R{attempt}", "processingStatus": "FATAL", "reportDocumentId": "E"}
        lg.apply_report(ledger, w["id"], fatal, now=now, fatal_reason="Internal error", retry_wait=WAIT,
                        max_fatal_retries=2)  # fmt: skip
        if attempt <= 2:
            assert w["status"] == "RETRY_WAIT" and w["attempts"] == attempt
            early = lg.next_plan(ledger, now=now + WAIT / 2, max_in_flight=1)
            assert early.create == [] and early.retry_in == pytest.approx(WAIT.total_seconds() / 2)
            now += WAIT
    assert w["status"] == "QUARANTINED" and "FATAL 3 times" in w["error"] and "Internal error" in w["error"]
    assert lg.next_plan(ledger, now=now, max_in_flight=1).finished
    ledger, reopened = lg.reopen_quarantined(ledger, now=now)  # a new run of the same history
    assert reopened == 1 and w["status"] == "PENDING" and w["attempts"] == 0


def test_date_range_exceeded_splits_in_halves_down_to_a_day():
    ledger = make(30)
    [w] = ledger["windows"]
    lg.mark_creating(ledger, w["id"], now=NOW)
    lg.mark_created(ledger, w["id"], "R", now=NOW)
    lg.apply_report(ledger, w["id"], {"processingStatus": "DONE", "reportDocumentId": "D"}, now=NOW,
                    retry_wait=WAIT, max_fatal_retries=1)  # fmt: skip
    lg.mark_range_exceeded(ledger, w["id"], now=NOW)
    assert [x["status"] for x in ledger["windows"]] == ["SPLIT", "PENDING", "PENDING"]
    assert ledger["windows"][1]["end"] == ledger["windows"][2]["start"] == "2026-11-16T00:00:00Z"
    short = make(1)
    [s] = short["windows"]
    lg.mark_range_exceeded(short, s["id"], now=NOW)
    assert s["status"] == "QUARANTINED"


def test_unknown_status_and_done_without_document_are_errors():
    ledger = make(30)
    [w] = ledger["windows"]
    kw = {"now": NOW, "retry_wait": WAIT, "max_fatal_retries": 1}
    with pytest.raises(lg.LedgerError, match="unknown processingStatus"):
        lg.apply_report(ledger, w["id"], {"processingStatus": "WEIRD"}, **kw)
    with pytest.raises(lg.LedgerError, match="without a reportDocumentId"):
        lg.apply_report(ledger, w["id"], {"processingStatus": "DONE"}, **kw)


def test_handover_to_the_sweep():
    start, target = NOW - timedelta(days=60), NOW - timedelta(hours=2)
    assert lg.handover(None, history_start=start, target=target) == ("create", target)
    idle_inside = {"cursor": "2026-11-01T00:00:00Z", "window_start": None}
    assert lg.handover(idle_inside, history_start=start, target=target) == ("advance", target)
    busy = {"cursor": "2026-11-01T00:00:00Z", "window_start": "2026-11-01T00:00:00Z"}
    assert lg.handover(busy, history_start=start, target=target)[1] is None
    ahead = {"cursor": "2026-12-01T00:00:00Z"}
    assert lg.handover(ahead, history_start=start, target=target)[1] is None
    before = {"cursor": "2026-01-01T00:00:00Z"}
    assert lg.handover(before, history_start=start, target=target)[1] is None


def test_ledger_key_depends_on_the_requested_range_only():
    a = lg.ledger_key("c", {"start": "2026-01-01T00:00:00Z", "end": None, "marketplace_ids": [US]})
    assert a == lg.ledger_key("c", {"marketplace_ids": [US], "end": None, "start": "2026-01-01T00:00:00Z"})
    assert a != lg.ledger_key("c", {"start": "2026-01-02T00:00:00Z", "end": None, "marketplace_ids": [US]})
    assert a.startswith("sp_api_history__c__")
    with pytest.raises(lg.LedgerError, match="not supported"):
        lg.check_ledger({"version": 99, "windows": []})
