"""Pure builders of the page's panels: warehouse rows, checkpoints and buckets in, JSON-ready dicts out.

No I/O here (``sources`` reads, ``render`` draws). Times go out as ISO-8601 UTC text and ages as whole
seconds relative to the ``now`` the caller passes. Nothing here ever sees a buyer column: the queries
never select one, and the reasons of quarantined notifications (which may quote a field of the body)
have their quoted values masked (:func:`mask_quoted`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from selling_partner.hooks.ratelimit import DEFAULT_LIMITS, VARIABLE_PREFIX, BucketState, loads_bucket, refill
from selling_partner.sync import estimate_remaining_pages, to_utc

#: Current order statuses in lifecycle order (others, e.g. a status Amazon adds, follow sorted).
STATUS_ORDER = (
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
)
#: Prefix of the sync's checkpoint Variables (``selling_partner.sync.checkpoint_key``).
CHECKPOINT_PREFIX = "sp_api_sync__"
#: Prefix of the history backfill's ledgers (``sp_api_orders_history``: one Variable per seller and range).
HISTORY_PREFIX = "sp_api_history__"
#: Ledger window statuses that are finished (``SPLIT`` windows are replaced by their halves: not counted).
HISTORY_FINISHED = frozenset({"LOADED", "EMPTY", "QUARANTINED"})
HISTORY_IN_FLIGHT = frozenset({"CREATING", "IN_QUEUE", "IN_PROGRESS", "DONE"})
#: Upper bounds (seconds) of the publish-to-status histogram's buckets; the last is open.
LATENCY_BOUNDS = (1, 2, 5, 10, 30, 60, 120, 300, 900)
#: Orders per searchOrders page the sync asks for (``estimate_remaining_pages``' default).
PAGE_SIZE = 100
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

#: What a reason may quote from a message body: a quoted value (not an apostrophe inside a word), an
#: e-mail-like token, a number of 3 or more digits (a postal code, a phone number).
_QUOTED = re.compile(r"(?<![\w'\"])(?:\"[^\"]*\"|'[^']*')(?![\w'\"])")
_EMAIL = re.compile(r"[^\s'\"]+@[^\s'\"]+")
_NUMBER = re.compile(r"\d{3,}")


def iso(value: datetime | None) -> str | None:
    """``2026-12-03T12:00:00Z`` (UTC, whole seconds), or None."""
    if value is None:
        return None
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[union-attr]


def age_seconds(value: datetime | None, now: datetime) -> int | None:
    """Whole seconds from ``value`` to ``now`` (negative for a time in the future), or None."""
    if value is None:
        return None
    return math.floor((now - value).total_seconds())


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation between closest ranks; None when empty."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def mask_quoted(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters, with every quoted value replaced by ``'…'``
    (and e-mail-like tokens and numbers of 3 or more digits by ``…``)."""
    one = " ".join(str(text).split())
    masked = _NUMBER.sub("…", _EMAIL.sub("…", _QUOTED.sub("'…'", one)))
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


def clip(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters (order quarantine reasons carry no buyer data)."""
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def status_columns(statuses: Iterable[str]) -> list[str]:
    """The statuses present, in :data:`STATUS_ORDER`, then any other sorted."""
    present = set(statuses)
    return [s for s in STATUS_ORDER if s in present] + sorted(present - set(STATUS_ORDER))


def task_log_url(base_path: str, dag_id: str | None, run_id: str | None, task_id: str | None) -> str | None:
    """The Airflow UI page of a task instance (its log), or None when the row does not name the task."""
    if not (dag_id and run_id and task_id):
        return None
    q = lambda v: quote(v, safe="")  # noqa: E731
    return f"{base_path}/dags/{q(dag_id)}/runs/{q(run_id)}/tasks/{q(task_id)}"


# --------------------------------------------------------------------------- orders


def orders_panel(
    counts: Sequence[Mapping[str, Any]],
    changes: Sequence[Mapping[str, Any]],
    fbm_summary: Sequence[Mapping[str, Any]],
    fbm_first: Sequence[Mapping[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """Orders by current status per (seller, marketplace), the last hour's and day's status changes, and
    the FBM orders waiting to ship (the oldest ship-by first)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}

    def group(row: Mapping[str, Any]) -> dict[str, Any]:
        key = (row["seller_id"] or "-", row["marketplace_id"])
        return groups.setdefault(
            key,
            {
                "seller_id": key[0],
                "marketplace_id": key[1],
                "total": 0,
                "by_status": {},
                "changes_1h": {},
                "changes_24h": {},
            },
        )

    for row in counts:
        g = group(row)
        g["by_status"][row["order_status"]] = row["orders"]
        g["total"] += row["orders"]
    for row in changes:
        g = group(row)
        g["changes_24h"][row["order_status"]] = row["changes"]
        if row["recent_changes"]:
            g["changes_1h"][row["order_status"]] = row["recent_changes"]
    totals: dict[str, int] = {}
    for g in groups.values():
        for status, n in g["by_status"].items():
            totals[status] = totals.get(status, 0) + n
    statuses = status_columns([*totals, *(s for g in groups.values() for s in g["changes_24h"])])
    awaiting = [
        {
            "seller_id": r["seller_id"] or "-",
            "marketplace_id": r["marketplace_id"],
            "orders": r["orders"],
            "oldest_ship_by": iso(r["oldest_ship_by"]),
            "overdue": r["oldest_ship_by"] is not None and r["oldest_ship_by"] < now,
        }
        for r in fbm_summary
    ]
    first = [
        {
            "order_id": r["order_id"],
            "seller_id": r["seller_id"] or "-",
            "marketplace_id": r["marketplace_id"],
            "order_status": r["order_status"],
            "latest_ship_time": iso(r["latest_ship_time"]),
            "ship_by_in_seconds": None
            if r["latest_ship_time"] is None
            else -age_seconds(r["latest_ship_time"], now),
            "items_unshipped": r["items_unshipped"],
            "created_time": iso(r["created_time"]),
        }
        for r in fbm_first
    ]
    ship_bys = [r["oldest_ship_by"] for r in fbm_summary if r["oldest_ship_by"] is not None]
    return {
        "generated_at": iso(now),
        "statuses": statuses,
        "sellers": [groups[k] for k in sorted(groups)],
        "totals": {s: totals[s] for s in statuses if s in totals},
        "total": sum(totals.values()),
        "fbm_awaiting_shipment": {
            "orders": sum(r["orders"] for r in fbm_summary),
            "oldest_ship_by": iso(min(ship_bys)) if ship_bys else None,
            "by_seller": awaiting,
            "first_to_ship": first,
        },
    }


# --------------------------------------------------------------------------- freshness


def latency_panel(seconds: Sequence[float], window: timedelta = HOUR) -> dict[str, Any]:
    """p50/p95/max of publish-to-status seconds and their histogram (:data:`LATENCY_BOUNDS`)."""
    ordered = sorted(seconds)
    labels = [f"≤{_short(b)}" for b in LATENCY_BOUNDS] + [f">{_short(LATENCY_BOUNDS[-1])}"]
    counts = [0] * len(labels)
    for value in ordered:
        idx = next((i for i, b in enumerate(LATENCY_BOUNDS) if value <= b), len(LATENCY_BOUNDS))
        counts[idx] += 1
    rnd = lambda v: None if v is None else round(v, 3)  # noqa: E731
    return {
        "window_seconds": int(window.total_seconds()),
        "samples": len(ordered),
        "p50_seconds": rnd(percentile(ordered, 0.50)),
        "p95_seconds": rnd(percentile(ordered, 0.95)),
        "max_seconds": rnd(ordered[-1]) if ordered else None,
        "histogram": [{"label": lab, "count": n} for lab, n in zip(labels, counts, strict=True)],
    }


def _short(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def freshness_panel(
    notifications: Sequence[Mapping[str, Any]],
    latencies: Sequence[float],
    checkpoints: Mapping[str, Mapping[str, Any]],
    sync_day: Sequence[Mapping[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """Newest notification per seller, publish-to-status latency (last hour), the sweep cursors' lag and
    the orders the sweeps of the last day found that the events had missed."""
    sellers = [
        {
            "conn_id": r["conn_id"],
            "seller_id": r["seller_id"],
            "notifications": r["notifications"],
            "newest_received_at": iso(r["newest_received_at"]),
            "age_seconds": age_seconds(r["newest_received_at"], now),
            "newest_publish_time": iso(r["newest_publish_time"]),
        }
        for r in notifications
    ]
    sweeps = []
    for key, ckpt in sorted(checkpoints.items()):
        if ckpt.get("mode") != "sweep":
            continue
        cursor = to_utc(ckpt.get("cursor"))
        sweeps.append(
            {
                "conn_id": ckpt.get("conn_id"),
                "checkpoint": key,
                "cursor": iso(cursor),
                "lag_seconds": age_seconds(cursor, now),
                "updated_at": iso(to_utc(ckpt.get("updated_at"))),
            }
        )
    missed = [
        {
            "conn_id": r["conn_id"],
            "seller_id": r["seller_id"],
            "missed_by_events": r["missed_by_events"],
            "sweep_runs": r["runs"],
            "last_finished_at": iso(r["last_finished_at"]),
        }
        for r in sync_day
        if r["mode"] == "sweep"
    ]
    return {
        "generated_at": iso(now),
        "notifications": sellers,
        "publish_to_status": latency_panel(latencies),
        "sweep_cursors": sweeps,
        "missed_by_events": {
            "window_seconds": int(DAY.total_seconds()),
            "orders": sum(m["missed_by_events"] for m in missed),
            "by_seller": missed,
        },
    }


# --------------------------------------------------------------------------- work in flight


def _pages_after(ckpt: Mapping[str, Any], cursor: datetime | None, end: datetime | None) -> int | None:
    covered = float(ckpt.get("covered_seconds") or 0.0)
    if cursor is None or end is None or covered <= 0:
        return None
    density = int(ckpt.get("covered_orders") or 0) / covered
    return math.ceil(density * max(0.0, (end - cursor).total_seconds()) / PAGE_SIZE)


def checkpoint_row(
    key: str, ckpt: Mapping[str, Any], now: datetime, rate: tuple[float, float] | None = None
) -> dict[str, Any]:
    """One checkpoint: mode, window, pages, progress and, for a backfill under way, pages left and ETA.

    ``rate`` is ``(tokens now, tokens per second)`` of the seller's search bucket, if known (else
    Amazon's default searchOrders rate and no tokens in hand).
    """
    mode = ckpt.get("mode")
    start, end = to_utc(ckpt.get("backfill_start")), to_utc(ckpt.get("backfill_end"))
    cursor = to_utc(ckpt.get("cursor"))
    progress = None
    if mode == "backfill" and start and end and cursor and end > start:
        done_to = to_utc(ckpt.get("last_committed_updated_time")) or cursor
        progress = 1.0 if ckpt.get("done") else max(0.0, min(1.0, (done_to - start) / (end - start)))
    running = ckpt.get("current_run") or None
    pages_left = eta = None
    if not ckpt.get("done") and (mode == "backfill" or ckpt.get("window_start")):
        if ckpt.get("window_start"):
            pages_left = estimate_remaining_pages(dict(ckpt))
        else:  # a backfill between windows: the order density of the finished windows over what is left
            pages_left = _pages_after(ckpt, cursor, end)
        if pages_left is not None:
            tokens, per_second = rate or (0.0, DEFAULT_LIMITS["searchOrders"][0])
            eta = math.ceil(max(0.0, pages_left - max(tokens, 0.0)) / max(per_second, 1e-9))
    return {
        "checkpoint": key,
        "conn_id": ckpt.get("conn_id"),
        "mode": mode,
        "marketplace_ids": list(ckpt.get("marketplace_ids") or []),
        "cursor": iso(cursor),
        "window_start": iso(to_utc(ckpt.get("window_start"))),
        "window_end": iso(to_utc(ckpt.get("window_end"))),
        "window_pages": int(ckpt.get("window_pages") or 0),
        "pages": int(ckpt.get("pages") or 0),
        "orders": int(ckpt.get("orders") or 0),
        "backfill_start": iso(start),
        "backfill_end": iso(end),
        "done": bool(ckpt.get("done", False)),
        "progress": None if progress is None else round(progress, 4),
        "running": running is not None,
        "running_since": iso(to_utc(running.get("started_at"))) if running else None,
        "pages_left": pages_left,
        "eta_seconds": eta,
        "updated_at": iso(to_utc(ckpt.get("updated_at"))),
        "updated_age_seconds": age_seconds(to_utc(ckpt.get("updated_at")), now),
    }


def history_row(key: str, ledger: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """One history load (order reports): windows by state, orders loaded, progress and an ETA from the
    pace so far (finished windows per second since the ledger was created)."""
    windows = [
        w for w in ledger.get("windows") or [] if isinstance(w, Mapping) and w.get("status") != "SPLIT"
    ]
    finished = sum(1 for w in windows if w.get("status") in HISTORY_FINISHED)
    in_flight = sum(1 for w in windows if w.get("status") in HISTORY_IN_FLIGHT)
    quarantined = sum(1 for w in windows if w.get("status") == "QUARANTINED")
    created = to_utc(ledger.get("created_at"))
    done = bool(ledger.get("done")) or (bool(windows) and finished == len(windows))
    eta = None
    if not done and finished and created is not None and now > created:
        eta = math.ceil((now - created).total_seconds() * (len(windows) - finished) / finished)
    requested = ledger.get("requested") or {}
    return {
        "ledger": key,
        "conn_id": ledger.get("conn_id"),
        "start": iso(to_utc(requested.get("start"))),
        "end": iso(to_utc(requested.get("end"))),
        "windows": len(windows),
        "finished": finished,
        "in_flight": in_flight,
        "quarantined": quarantined,
        "orders": sum(int(w.get("orders") or 0) for w in windows),
        "progress": round(finished / len(windows), 4) if windows else None,
        "done": done,
        "eta_seconds": eta,
        "updated_at": iso(to_utc(ledger.get("updated_at"))),
    }


def work_panel(
    queue: Sequence[Mapping[str, Any]],
    quarantine: Any,
    checkpoints: Mapping[str, Mapping[str, Any]],
    buckets: Sequence[Mapping[str, Any]],
    conn_sellers: Mapping[str, str],
    now: datetime,
    base_path: str = "",
    ledgers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Enrichment queue, open quarantine (counts by reason, newest rows with their task's log), every
    checkpoint of the sync and every history load (order reports)."""
    enrichment = [
        {
            "conn_id": r["conn_id"],
            "queued": r["queued"],
            "oldest_queued_at": iso(r["oldest_queued_at"]),
            "oldest_age_seconds": age_seconds(r["oldest_queued_at"], now),
            "retrying": r["retrying"],
            "claimed": r["claimed"],
        }
        for r in queue
    ]
    order_newest = [
        {
            "order_id": r["order_id"],
            "source": r["source"],
            "seller_id": r["seller_id"],
            "conn_id": r["conn_id"],
            "reason": clip(r["reason"], 300),
            "attempts": r["attempts"],
            "last_seen_at": iso(r["last_seen_at"]),
            "dag_id": r["dag_id"],
            "dag_run_id": r["dag_run_id"],
            "task_id": r["task_id"],
            "log_url": task_log_url(base_path, r["dag_id"], r["dag_run_id"], r["task_id"]),
        }
        for r in quarantine.order_newest
    ]
    notif_reasons: dict[str, dict[str, Any]] = {}
    for r in quarantine.notification_reasons:
        reason = mask_quoted(r["reason"])
        agg = notif_reasons.setdefault(reason, {"reason": reason, "rows": 0, "newest": None})
        agg["rows"] += r["rows"]
        agg["newest"] = max(filter(None, (agg["newest"], r["newest"])), default=None)
    by_search_bucket = {
        (b["seller_id"]): (b["tokens"], b["rate"])
        for b in buckets
        if b["operation"] in ("searchOrders", "getOrders")
    }
    rows = []
    for key, ckpt in sorted(checkpoints.items()):
        seller = conn_sellers.get(str(ckpt.get("conn_id")))
        rows.append(checkpoint_row(key, ckpt, now, by_search_bucket.get(seller) if seller else None))
    return {
        "generated_at": iso(now),
        "enrichment": enrichment,
        "enrichment_queued": sum(r["queued"] for r in queue),
        "order_quarantine": {
            "open": sum(r["rows"] for r in quarantine.order_reasons),
            "by_reason": [
                {
                    "source": r["source"],
                    "reason": clip(r["reason"], 300),
                    "rows": r["rows"],
                    "newest": iso(r["newest"]),
                }
                for r in quarantine.order_reasons
            ],
            "newest": order_newest,
        },
        "notification_quarantine": {
            "rows": sum(r["rows"] for r in quarantine.notification_reasons),
            "by_reason": sorted(
                ({**v, "newest": iso(v["newest"])} for v in notif_reasons.values()),
                key=lambda v: (-v["rows"], v["reason"]),
            ),
            "newest": [
                {
                    "body_sha256": r["body_sha256"][:16],
                    "notification_id": r["notification_id"],
                    "reason": mask_quoted(r["reason"]),
                    "received_at": iso(r["received_at"]),
                }
                for r in quarantine.notification_newest
            ],
        },
        "checkpoints": rows,
        "history_loads": [history_row(k, v, now) for k, v in sorted((ledgers or {}).items())],
    }


# --------------------------------------------------------------------------- quota


def bucket_from_variable(key: str, raw: str | None, now: datetime) -> dict[str, Any] | None:
    """A ``sp_api_rate_limit__<seller>__<region>__<operation>`` Variable as a bucket row (refilled to now)."""
    parts = key.removeprefix(VARIABLE_PREFIX).split("__")
    state = loads_bucket(raw)
    if not key.startswith(VARIABLE_PREFIX) or len(parts) != 3 or state is None:
        return None
    return _bucket(parts[0], parts[1], parts[2], state, now, "variable")


def bucket_from_table(row: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """A row of the ``postgres`` backend's table (``seller:region:operation``) as a bucket row."""
    parts = str(row["bucket_key"]).split(":")
    if len(parts) != 3 or row["updated_at"] is None:
        return None
    state = BucketState(row["tokens"], row["rate"], row["burst"], row["updated_at"].timestamp())
    return _bucket(parts[0], parts[1], parts[2], state, now, "postgres")


def _bucket(
    seller: str, region: str, op: str, state: BucketState, now: datetime, source: str
) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(state.stamp, tz=now.tzinfo)
    state = refill(state, now.timestamp())
    return {
        "seller_id": seller,
        "region": region,
        "operation": op,
        "tokens": round(state.tokens, 3),
        "burst": state.burst,
        "rate": state.rate,
        "fill": round(max(0.0, state.tokens) / state.burst, 4) if state.burst else None,
        "last_used_at": iso(stamp),
        "source": source,
    }


def quota_panel(
    sync_hour: Sequence[Mapping[str, Any]], buckets: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, Any]:
    """SP-API calls and 429s of the last hour (recorded per sync-run try in ``sp_sync_runs``: all
    operations of the run together) and how full each token bucket is now."""
    runs = [
        {
            "conn_id": r["conn_id"],
            "mode": r["mode"],
            "seller_id": r["seller_id"],
            "tries": r["runs"],
            "calls": r["calls"],
            "throttled": r["throttled"],
            "retries": r["retries"],
            "deferrals": r["deferrals"],
            "failed": r["failed"],
            "last_finished_at": iso(r["last_finished_at"]),
        }
        for r in sync_hour
    ]
    return {
        "generated_at": iso(now),
        "window_seconds": int(HOUR.total_seconds()),
        "calls_source": "sp_sync_runs (per sync task try; every operation of the try together)",
        "runs": runs,
        "calls": sum(r["calls"] for r in runs),
        "throttled": sum(r["throttled"] for r in runs),
        "buckets": sorted(buckets, key=lambda b: (b["seller_id"], b["region"], b["operation"], b["source"])),
    }


# --------------------------------------------------------------------------- charts


def charts_panel(
    hourly: Sequence[Mapping[str, Any]], latencies: Sequence[float], now: datetime
) -> dict[str, Any]:
    """Status changes per hour and new status over the last 24 hours (oldest hour first), and the
    publish-to-status latency histogram of the last hour."""
    current = now.replace(minute=0, second=0, microsecond=0)
    hours = [current - timedelta(hours=23 - i) for i in range(24)]
    index = {h: i for i, h in enumerate(hours)}
    statuses = status_columns(r["order_status"] for r in hourly)
    series = {s: [0] * 24 for s in statuses}
    for r in hourly:
        i = index.get(r["hour"])
        if i is not None:
            series[r["order_status"]][i] += r["changes"]
    return {
        "generated_at": iso(now),
        "status_changes_by_hour": {"hours": [iso(h) for h in hours], "series": series},
        "publish_to_status": latency_panel(latencies),
    }
