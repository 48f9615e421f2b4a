"""The history backfill's ledger of report windows: pure state transitions (no I/O).

The ledger is one JSON object kept in an Airflow Variable (``sp_api_history__<conn>__<hash>``), saved
after every transition, so a crashed, retried or deferred run continues from it::

    {"version": 1, "conn_id": ..., "requested": {"start", "end", "marketplace_ids", "window_days"},
     "report_type": ..., "windows": [<window>...], "created_at": ..., "updated_at": ..., "done": false,
     "handover": {...} | null}

A window (at most ``window_days`` <= 30 days, one marketplace: reports carry no marketplace id)::

    {"id": "<marketplace>:<start>:<end>", "marketplace_id", "start", "end", "status", "report_id",
     "document_id", "attempts", "next_attempt_at", "error", "orders", "rows", "rejected"}

Statuses and transitions (Amazon's ``processingStatus`` in capitals, ours in the same style):

* ``PENDING`` -> ``CREATING`` (saved before ``createReport``: a crash after Amazon accepted the
  request is recovered by finding the report with ``getReports``) -> ``IN_QUEUE`` / ``IN_PROGRESS``
  (a report id: a rerun polls it instead of requesting again);
* ``DONE`` (document id known, not loaded yet) -> ``LOADED`` once its rows are committed: a DONE
  window is loaded once, a LOADED one never again;
* ``CANCELLED`` -> ``EMPTY`` (Amazon cancels reports without data: nothing to load);
* ``FATAL`` -> ``RETRY_WAIT`` until ``next_attempt_at`` (then a new report), at most
  ``max_fatal_retries`` times, then ``QUARANTINED`` with the error document's reason;
* a "Date range exceeded" document -> ``SPLIT`` into two halves (new ``PENDING`` windows), down to
  one day, then ``QUARANTINED``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from selling_partner.sync import iso, to_utc

LEDGER_VERSION = 1
#: Amazon keeps about two years of order history (reports-notes A4).
MAX_HISTORY = timedelta(days=730)
#: Amazon answers longer windows with a "Date range exceeded" document (GH#2591).
MAX_WINDOW_DAYS = 30.0
#: A window that still exceeds Amazon's range at this size is quarantined instead of split again.
MIN_SPLIT = timedelta(days=1)

IN_FLIGHT = frozenset({"CREATING", "IN_QUEUE", "IN_PROGRESS"})
TERMINAL = frozenset({"LOADED", "EMPTY", "QUARANTINED", "SPLIT"})
STATUSES = ("PENDING", "CREATING", "IN_QUEUE", "IN_PROGRESS", "DONE", "RETRY_WAIT", *sorted(TERMINAL))


class LedgerError(ValueError):
    """A ledger this code cannot continue (names the fix)."""


def ledger_key(conn_id: str, requested: dict[str, Any]) -> str:
    """``sp_api_history__<conn_id>__<8 hex of the requested range and marketplaces>``."""
    digest = hashlib.sha1(json.dumps(requested, sort_keys=True).encode(), usedforsecurity=False).hexdigest()[
        :8
    ]
    return f"sp_api_history__{conn_id}__{digest}"


def validate_range(
    start: datetime, end: datetime, *, now: datetime, window_days: float
) -> tuple[datetime, datetime]:
    """Check a requested history range; ``ValueError`` says what to change."""
    if not 0 < window_days <= MAX_WINDOW_DAYS:
        raise ValueError(
            f"window_days must be within (0, {MAX_WINDOW_DAYS:.0f}] (Amazon's limit), got {window_days}"
        )
    if end > now:
        end = now
    if start >= end:
        raise ValueError(f"start date {iso(start)} must be before end date {iso(end)}")
    if start < now - MAX_HISTORY:
        raise ValueError(
            f"start date {iso(start)} is more than two years back: Amazon's order reports cover "
            f"{MAX_HISTORY.days} days; start at {iso(now - MAX_HISTORY)} or later"
        )
    return start, end


def plan_windows(
    start: datetime, end: datetime, marketplace_ids: Sequence[str], window_days: float
) -> list[dict[str, Any]]:
    """Contiguous windows of at most ``window_days`` per marketplace, oldest first."""
    step = timedelta(days=window_days)
    windows: list[dict[str, Any]] = []
    for marketplace_id in sorted(marketplace_ids):
        cursor = start
        while cursor < end:
            stop = min(cursor + step, end)
            windows.append(new_window(marketplace_id, cursor, stop))
            cursor = stop
    return windows


def new_window(marketplace_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "id": f"{marketplace_id}:{iso(start)}:{iso(end)}",
        "marketplace_id": marketplace_id,
        "start": iso(start),
        "end": iso(end),
        "status": "PENDING",
        "report_id": None,
        "document_id": None,
        "attempts": 0,
        "next_attempt_at": None,
        "error": None,
        "orders": 0,
        "rows": 0,
        "rejected": 0,
    }


def new_ledger(
    *, conn_id: str, requested: dict[str, Any], report_type: str, windows: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    return {
        "version": LEDGER_VERSION,
        "conn_id": conn_id,
        "requested": dict(requested),
        "report_type": report_type,
        "windows": windows,
        "created_at": iso(now),
        "updated_at": iso(now),
        "done": False,
        "handover": None,
    }


def check_ledger(ledger: dict[str, Any]) -> dict[str, Any]:
    if ledger.get("version") != LEDGER_VERSION or not isinstance(ledger.get("windows"), list):
        raise LedgerError(
            f"ledger version {ledger.get('version')!r} is not supported; delete the Variable (or trigger "
            "with reset_ledger=true) to start this history over"
        )
    return ledger


def window(ledger: dict[str, Any], window_id: str) -> dict[str, Any]:
    for w in ledger["windows"]:
        if w["id"] == window_id:
            return w
    raise KeyError(window_id)


def _touch(ledger: dict[str, Any], now: datetime) -> dict[str, Any]:
    ledger["updated_at"] = iso(now)
    return ledger


# --------------------------------------------------------------------------- what to do next


@dataclass(frozen=True)
class Plan:
    """The next step: windows to recover (CREATING), to load (DONE), to poll, to request; or a wait."""

    recover: list[str]
    load: list[str]
    poll: list[str]
    create: list[str]
    #: seconds until a RETRY_WAIT window may be requested again (None: none waits)
    retry_in: float | None
    finished: bool


def next_plan(ledger: dict[str, Any], *, now: datetime, max_in_flight: int) -> Plan:
    """What the operator does next, oldest windows first, at most ``max_in_flight`` reports at Amazon."""
    windows = ledger["windows"]
    by = {s: [w for w in windows if w["status"] == s] for s in STATUSES}
    in_flight = len(by["CREATING"]) + len(by["IN_QUEUE"]) + len(by["IN_PROGRESS"])
    due = [w for w in by["RETRY_WAIT"] if to_utc(w["next_attempt_at"]) <= now]  # type: ignore[operator]
    waiting = [
        (to_utc(w["next_attempt_at"]) - now).total_seconds()  # type: ignore[operator]
        for w in by["RETRY_WAIT"]
        if w not in due
    ]
    candidates = due + by["PENDING"]
    free = max(0, max_in_flight - in_flight)
    return Plan(
        recover=[w["id"] for w in by["CREATING"]],
        load=[w["id"] for w in by["DONE"]],
        poll=[w["id"] for w in by["IN_QUEUE"] + by["IN_PROGRESS"]],
        create=[w["id"] for w in candidates[:free]],
        retry_in=min(waiting) if waiting else None,
        finished=all(w["status"] in TERMINAL for w in windows),
    )


# --------------------------------------------------------------------------- transitions


def mark_creating(ledger: dict[str, Any], window_id: str, *, now: datetime) -> dict[str, Any]:
    """Before ``createReport``: a crash from here on is recovered with ``getReports``."""
    w = window(ledger, window_id)
    if w["status"] not in ("PENDING", "RETRY_WAIT"):
        raise LedgerError(f"window {window_id} is {w['status']}, not PENDING/RETRY_WAIT")
    w.update(status="CREATING", report_id=None, document_id=None, next_attempt_at=None, requested_at=iso(now))
    return _touch(ledger, now)


def mark_created(ledger: dict[str, Any], window_id: str, report_id: str, *, now: datetime) -> dict[str, Any]:
    w = window(ledger, window_id)
    w.update(status="IN_QUEUE", report_id=str(report_id))
    return _touch(ledger, now)


def mark_lost(ledger: dict[str, Any], window_id: str, *, now: datetime) -> dict[str, Any]:
    """A CREATING window whose report Amazon does not know: request it (again)."""
    w = window(ledger, window_id)
    w.update(status="PENDING", report_id=None)
    return _touch(ledger, now)


def apply_report(
    ledger: dict[str, Any],
    window_id: str,
    report: dict[str, Any],
    *,
    now: datetime,
    fatal_reason: str | None = None,
    retry_wait: timedelta,
    max_fatal_retries: int,
) -> dict[str, Any]:
    """Move a window after ``getReport`` (or a report found by ``getReports``).

    ``fatal_reason`` is the FATAL report's error document (or a note that it had none).
    """
    w = window(ledger, window_id)
    status = str(report.get("processingStatus") or "")
    w["report_id"] = str(report.get("reportId") or w.get("report_id") or "") or None
    if status in ("IN_QUEUE", "IN_PROGRESS"):
        w["status"] = status
    elif status == "DONE":
        if not report.get("reportDocumentId"):
            raise LedgerError(f"report {w['report_id']} is DONE without a reportDocumentId")
        w.update(status="DONE", document_id=str(report["reportDocumentId"]))
    elif status == "CANCELLED":
        w.update(status="EMPTY", document_id=None)
    elif status == "FATAL":
        w["attempts"] = int(w.get("attempts", 0)) + 1
        reason = fatal_reason or "FATAL without an error document"
        if w["attempts"] > max_fatal_retries:
            w.update(
                status="QUARANTINED",
                error=f"FATAL {w['attempts']} times (report {w['report_id']}): {reason}",
                next_attempt_at=None,
            )
        else:
            w.update(
                status="RETRY_WAIT",
                error=f"FATAL (report {w['report_id']}): {reason}",
                next_attempt_at=iso(now + retry_wait),
                report_id=None,
                document_id=None,
            )
    else:
        raise LedgerError(f"report {w['report_id']} has an unknown processingStatus {status!r}")
    return _touch(ledger, now)


def mark_loaded(
    ledger: dict[str, Any],
    window_id: str,
    *,
    orders: int,
    rows: int,
    rejected: int,
    codec: str,
    now: datetime,
) -> dict[str, Any]:
    w = window(ledger, window_id)
    if w["status"] != "DONE":
        raise LedgerError(f"window {window_id} is {w['status']}, not DONE: it cannot be loaded")
    w.update(status="LOADED", orders=orders, rows=rows, rejected=rejected, codec=codec, loaded_at=iso(now))
    return _touch(ledger, now)


def mark_range_exceeded(ledger: dict[str, Any], window_id: str, *, now: datetime) -> dict[str, Any]:
    """Amazon refused the window's length: split it in two new windows (or quarantine a short one)."""
    w = window(ledger, window_id)
    start, end = to_utc(w["start"]), to_utc(w["end"])
    assert start is not None and end is not None
    if end - start <= MIN_SPLIT:
        w.update(status="QUARANTINED", error="Amazon answered 'Date range exceeded' for a window of one day")
        return _touch(ledger, now)
    middle = start + (end - start) / 2
    middle = middle.replace(microsecond=0)
    w.update(status="SPLIT", error="Amazon answered 'Date range exceeded': split in two")
    position = ledger["windows"].index(w)
    ledger["windows"][position + 1 : position + 1] = [
        new_window(w["marketplace_id"], start, middle),
        new_window(w["marketplace_id"], middle, end),
    ]
    return _touch(ledger, now)


def reopen_quarantined(ledger: dict[str, Any], *, now: datetime) -> tuple[dict[str, Any], int]:
    """A new run of the same history tries its quarantined windows again (fresh attempts)."""
    reopened = 0
    for w in ledger["windows"]:
        if w["status"] == "QUARANTINED":
            w.update(status="PENDING", attempts=0, report_id=None, document_id=None, next_attempt_at=None)
            reopened += 1
    if reopened:
        ledger["done"] = False
    return _touch(ledger, now), reopened


def matching_report(
    reports: Sequence[dict[str, Any]], w: dict[str, Any], report_type: str
) -> dict[str, Any] | None:
    """The newest report of ``reports`` for exactly this window (type, marketplace, start and end) that
    can still be used: IN_QUEUE, IN_PROGRESS or DONE (Airbyte's reuse rule, reports-notes A7)."""
    start, end = to_utc(w["start"]), to_utc(w["end"])
    found = [
        r
        for r in reports
        if r.get("reportType") == report_type
        and list(r.get("marketplaceIds") or []) == [w["marketplace_id"]]
        and to_utc(r.get("dataStartTime")) == start
        and to_utc(r.get("dataEndTime")) == end
        and r.get("processingStatus") in ("IN_QUEUE", "IN_PROGRESS", "DONE")
    ]
    return max(found, key=lambda r: str(r.get("createdTime") or "")) if found else None


def counts(ledger: dict[str, Any]) -> dict[str, int]:
    """Windows per status (every status present, for logs and the summary)."""
    out = dict.fromkeys(STATUSES, 0)
    for w in ledger["windows"]:
        out[w["status"]] = out.get(w["status"], 0) + 1
    return out


# --------------------------------------------------------------------------- the hand-over


def handover(
    sweep: dict[str, Any] | None,
    *,
    history_start: datetime,
    target: datetime,
) -> tuple[str, datetime | None]:
    """How the sweep continues after the history: ``("create", cursor)`` (no sweep checkpoint yet: it
    starts at ``target``), ``("advance", cursor)`` (an idle sweep whose cursor lies inside the history:
    it moves on to ``target``) or ``("keep", None)`` with the reason in the first element otherwise."""
    if sweep is None:
        return "create", target
    if sweep.get("window_start"):
        return "keep: the sweep has an open window", None
    cursor = to_utc(sweep.get("cursor"))
    if cursor is None or cursor >= target:
        return "keep: the sweep is already past the history's end", None
    if cursor < history_start:
        return "keep: the sweep's cursor is before the history's start (it reads that gap itself)", None
    return "advance", target


def copy_ledger(ledger: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(ledger)
