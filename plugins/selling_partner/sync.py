"""Pure planning for the order sync: checkpoint keys, windows, page bookkeeping, restarts and ETA.

No I/O here: the operator (``selling_partner.operators.orders_sync``) fetches, upserts and saves; these
functions only decide what the run's settings are, what the next request is and how the checkpoint
moves.

The checkpoint (version 1) is a JSON object::

    {
      "version": 1, "mode": "sweep" | "backfill", "conn_id": "...", "marketplace_ids": [...],
      "cursor": "<ISO>",                  # where the next window starts
      "window_start": "<ISO>" | null,     # the open window (null between windows)
      "window_end": "<ISO>" | null,       # lastUpdatedBefore sent for the open window
      "window_end_echoed": "<ISO>" | null,# lastUpdatedBefore the API echoed
      "page_token": "..." | null,         # token of the NEXT page of the open window
      "window_pages": 0, "window_orders": 0,
      "window_ordered": true,             # pages so far came in ascending lastUpdatedTime
      "window_restarts": 0,               # page-token restarts of the open window
      "window_cap_seconds": null,         # smaller window size after repeated token expiry (optional)
      "last_committed_updated_time": "<ISO>" | null,  # newest lastUpdatedTime committed in the window
      "last_window_end": "<ISO>" | null,  # end of the last finished window
      "pages": 0, "orders": 0, "windows": 0, "restarts": 0,   # totals for this checkpoint
      "covered_seconds": 0.0, "covered_orders": 0,            # finished windows (for the ETA)
      "backfill_start": "<ISO>", "backfill_end": "<ISO>", "done": false,   # backfill only
      "requested": {...}, "run_id": "...", "created_at": "<ISO>", "updated_at": "<ISO>"
    }

Rules:

* Windows close at ``horizon`` = now - lag (sweep) or at the backfill end, and span at most
  ``max_window``.
* A page is committed (upserted) before the checkpoint records the next page token, so a crash
  replays at most one page, and replays are harmless (the warehouse upsert is idempotent).
* A finished sweep window moves the cursor to its end minus ``lookback`` so late updates are caught;
  backfill windows are contiguous (the sweep catches what changes during a backfill).
* An expired or rejected page token restarts the window at the last committed ``lastUpdatedTime``
  minus ``epsilon`` when the pages arrived sorted by ``lastUpdatedTime``, else at the window start
  (halving the window from its second restart on, so it can finish before tokens expire).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from selling_partner import validation

CHECKPOINT_VERSION = 1
MODES: tuple[str, ...] = ("sweep", "backfill")

DEFAULT_EPSILON = timedelta(seconds=1)
DEFAULT_SWEEP_START = timedelta(days=1)
#: Windows shorter than this are not worth a call (the sweep is already at the horizon).
MIN_WINDOW = timedelta(seconds=1)

_CONN_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


# --------------------------------------------------------------------------- parsing helpers


def to_utc(value: datetime | date | str | None) -> datetime | None:
    """Parse an ISO date/datetime (``Z`` allowed, date-only = midnight) to an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() in {"none", "null"}:
            return None
        value = (
            datetime.fromisoformat(text.replace("Z", "+00:00")) if "T" in text else date.fromisoformat(text)
        )
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with ``Z`` (``None`` stays ``None``)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_marketplace_ids(value: str | Iterable[str] | None) -> list[str] | None:
    """Marketplace ids from a Param: a list, a rendered list (``"['A', 'B']"``) or a comma string.

    Returns sorted unique ids, or ``None`` when empty (then the connection's ids apply).
    """
    ids = sorted(set(validation.parse_marketplace_ids(value)))
    for mid in ids:
        if not validation.MARKETPLACE_ID_RE.fullmatch(mid):
            raise validation.ValidationError(
                f"invalid marketplace id {mid[:40]!r}: expected 8-20 upper-case letters/digits"
            )
    return ids or None


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SyncSettings:
    """Everything one sync task run needs, read once from the operator's arguments and the hook's config."""

    mode: str
    conn_id: str
    seller_id: str
    api_version: str
    marketplace_ids: tuple[str, ...]
    key: str  # the checkpoint's Variable key
    window: timedelta
    lookback: timedelta
    start: datetime | None
    end: datetime | None
    horizon: datetime  # where windows close this run: now - lag (- safety), fixed when the run starts
    max_pages: int | None
    time_budget: float | None
    #: What identifies a backfill: the same requested range resumes (window_days may change meanwhile).
    requested: dict[str, Any]

    def with_horizon(self, horizon: datetime | None) -> SyncSettings:
        """The same settings with the horizon a run fixed earlier (read back after a deferral)."""
        return self if horizon is None else dataclasses.replace(self, horizon=horizon)


def optional_number(value: Any, *, name: str, cast: type = float) -> Any:
    """A number from a rendered template or Param; ``None``/empty/"None" is ``None``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
        return None
    try:
        number = cast(float(value)) if cast is int else cast(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return number


def plan_settings(
    *,
    mode: str,
    conn_id: str,
    seller_id: str,
    api_version: str,
    connection_marketplace_ids: Sequence[str],
    min_before_lag_seconds: float,
    marketplace_ids: str | Iterable[str] | None,
    updated_after: datetime | str | None,
    updated_before: datetime | str | None,
    window_days: float | str,
    lookback_minutes: float | str,
    max_pages: int | str | None,
    time_budget_seconds: float | str | None,
    now: datetime,
    horizon_safety: timedelta = timedelta(seconds=2),
) -> SyncSettings:
    """Validate a run's arguments against the connection's settings; ``ValueError`` names the fix."""
    mode = str(mode).strip().lower()
    if mode not in MODES:
        raise ValueError(f"mode must be 'sweep' or 'backfill', got {mode!r}")
    mkts = parse_marketplace_ids(marketplace_ids) or sorted(connection_marketplace_ids)
    if not mkts:
        raise ValueError(f"no marketplace ids: set marketplace_ids on the task or in connection {conn_id!r}")
    window = timedelta(days=optional_number(window_days, name="window_days") or 0)
    lookback = timedelta(minutes=optional_number(lookback_minutes, name="lookback_minutes") or 0)
    if window <= timedelta(0):
        raise ValueError("window_days must be positive")
    if mode == "sweep" and lookback * 2 >= window:
        raise ValueError("lookback_minutes must be less than half of window_days")
    start, end = to_utc(updated_after), to_utc(updated_before)
    if mode == "backfill" and start is None:
        raise ValueError("a backfill needs a start date (updated_after / Param start_date), ISO, UTC")
    # A little inside Amazon's rule, so the request is valid when it arrives.
    horizon = (now - timedelta(seconds=min_before_lag_seconds) - horizon_safety).replace(microsecond=0)
    if end is not None and end > horizon:
        end = horizon
    effective_end = end or (horizon if mode == "backfill" else None)
    if start is not None and effective_end is not None and start >= effective_end:
        raise ValueError(
            f"start date {iso(start)} must be before end date {iso(effective_end)}"
            + ("" if end else " (now minus the 2-minute lag)")
        )
    return SyncSettings(
        mode=mode,
        conn_id=conn_id,
        seller_id=seller_id,
        api_version=api_version,
        marketplace_ids=tuple(mkts),
        key=checkpoint_key(conn_id, mkts, mode),
        window=window,
        lookback=lookback if mode == "sweep" else timedelta(0),
        start=start,
        end=end,
        horizon=horizon,
        max_pages=optional_number(max_pages, name="max_pages", cast=int),
        time_budget=optional_number(time_budget_seconds, name="time_budget_seconds"),
        requested={"start_date": iso(start), "end_date": iso(to_utc(updated_before))},
    )


# --------------------------------------------------------------------------- keys and creation


def checkpoint_key(conn_id: str, marketplace_ids: Sequence[str], mode: str) -> str:
    """Variable key per (connection, marketplace set, mode).

    e.g. ``sp_api_sync__sp_api_default__1a2b3c4d__sweep`` (sha1 of the sorted marketplace ids).
    """
    if not _CONN_ID_RE.match(conn_id):
        raise ValueError(f"invalid connection id {conn_id!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    digest = hashlib.sha1(",".join(sorted(marketplace_ids)).encode(), usedforsecurity=False).hexdigest()[:8]
    return f"sp_api_sync__{conn_id}__{digest}__{mode}"


def new_checkpoint(
    *,
    mode: str,
    conn_id: str,
    marketplace_ids: Sequence[str],
    cursor: datetime,
    now: datetime,
    backfill_end: datetime | None = None,
    requested: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A fresh checkpoint whose first window starts at ``cursor``."""
    if mode == "backfill" and backfill_end is None:
        raise ValueError("a backfill checkpoint needs backfill_end")
    ckpt: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "mode": mode,
        "conn_id": conn_id,
        "marketplace_ids": sorted(marketplace_ids),
        "cursor": iso(cursor),
        "window_start": None,
        "window_end": None,
        "window_end_echoed": None,
        "page_token": None,
        "window_pages": 0,
        "window_orders": 0,
        "window_ordered": True,
        "window_restarts": 0,
        "last_committed_updated_time": None,
        "last_window_end": None,
        "pages": 0,
        "orders": 0,
        "windows": 0,
        "restarts": 0,
        "covered_seconds": 0.0,
        "covered_orders": 0,
        "requested": dict(requested or {}),
        "run_id": run_id,
        "created_at": iso(now),
        "updated_at": iso(now),
    }
    if mode == "backfill":
        ckpt.update(backfill_start=iso(cursor), backfill_end=iso(backfill_end), done=False)
    return ckpt


def first_sweep_cursor(
    backfill: dict[str, Any] | None, *, now: datetime, lookback: timedelta
) -> tuple[datetime, str]:
    """Where a sweep without a checkpoint starts, and why: where a finished backfill of the same
    marketplaces ended (minus the lookback), so the sweep neither re-reads the backfill's last day nor
    leaves a gap after it; else :data:`DEFAULT_SWEEP_START` ago."""
    end = to_utc(backfill.get("last_window_end") or backfill.get("backfill_end")) if backfill else None
    if backfill and backfill.get("done") and end is not None:
        return end - lookback, f"where the finished backfill ended ({iso(end)})"
    return now - DEFAULT_SWEEP_START, f"{DEFAULT_SWEEP_START.days} day ago (no finished backfill)"


def check_version(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Reject checkpoints this code cannot read (a newer version, or not a sync checkpoint)."""
    version = ckpt.get("version")
    if version != CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint version {version!r} is not supported (expected {CHECKPOINT_VERSION}); "
            "trigger with reset_checkpoint=true to start over"
        )
    return ckpt


def should_start_fresh(
    ckpt: dict[str, Any] | None, *, mode: str, requested: dict[str, Any], run_id: str | None
) -> tuple[bool, str]:
    """Decide whether a saved checkpoint is resumed or replaced; returns (fresh, reason).

    Sweep checkpoints are always resumed. A backfill checkpoint is resumed when it was made for the same
    requested range and is unfinished, or when the same run is retried; a finished backfill is replaced by a
    new run (a new trigger from the form), and a different requested range always starts over.
    """
    if ckpt is None:
        return True, "no checkpoint"
    if mode == "sweep":
        return False, "resuming sweep"
    if ckpt.get("requested") != requested:
        return True, "backfill range changed"
    if ckpt.get("done"):
        if run_id is not None and ckpt.get("run_id") == run_id:
            return False, "backfill already complete for this run"
        return True, "previous backfill complete"
    return False, "resuming unfinished backfill"


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class Window:
    """One ``lastUpdatedAfter``/``lastUpdatedBefore`` request range and where to continue in it."""

    start: datetime
    end: datetime
    page_token: str | None = None
    resumed: bool = False

    def label(self) -> str:
        return f"{iso(self.start)}->{iso(self.end)}"


def next_window(ckpt: dict[str, Any], *, horizon: datetime, max_window: timedelta) -> Window | None:
    """The window to fetch next: the open one (resume) or a new one from the cursor; ``None`` when done."""
    if ckpt.get("window_start"):
        return Window(
            start=to_utc(ckpt["window_start"]),  # type: ignore[arg-type]
            end=to_utc(ckpt["window_end"]),  # type: ignore[arg-type]
            page_token=ckpt.get("page_token"),
            resumed=True,
        )
    if ckpt.get("done"):
        return None
    if ckpt.get("mode") == "backfill":
        horizon = min(horizon, to_utc(ckpt["backfill_end"]))  # type: ignore[type-var]
    last_end = to_utc(ckpt.get("last_window_end"))
    if last_end is not None and last_end >= horizon - MIN_WINDOW:
        return None
    start = to_utc(ckpt["cursor"])
    assert start is not None
    cap = ckpt.get("window_cap_seconds")
    if cap:
        max_window = min(max_window, timedelta(seconds=float(cap)))
    end = min(start + max_window, horizon)
    if end - start < MIN_WINDOW:
        return None
    return Window(start=start, end=end)


def open_window(ckpt: dict[str, Any], window: Window, *, now: datetime) -> dict[str, Any]:
    """Record a new window as open, before its first page is requested."""
    out = dict(ckpt)
    out.update(
        window_start=iso(window.start),
        window_end=iso(window.end),
        window_end_echoed=None,
        page_token=None,
        window_pages=0,
        window_orders=0,
        window_ordered=True,
        window_restarts=0,
        last_committed_updated_time=None,
        updated_at=iso(now),
    )
    return out


def record_page(
    ckpt: dict[str, Any],
    *,
    updated_times: Sequence[datetime],
    next_token: str | None,
    echoed_end: datetime | None,
    now: datetime,
    lookback: timedelta,
) -> tuple[dict[str, Any], bool]:
    """Move the checkpoint past one committed page; returns (checkpoint, window_finished).

    ``updated_times`` are the page's orders' ``lastUpdatedTime`` in page order.
    """
    out = dict(ckpt)
    prev = to_utc(ckpt.get("last_committed_updated_time"))
    ordered = bool(ckpt.get("window_ordered", True))
    times = list(updated_times)
    if times:
        if prev is not None and times[0] < prev:
            ordered = False
        if any(b < a for a, b in itertools.pairwise(times)):
            ordered = False
        newest = max(times)
        prev = newest if prev is None else max(prev, newest)
    out.update(
        window_pages=int(ckpt.get("window_pages", 0)) + 1,
        window_orders=int(ckpt.get("window_orders", 0)) + len(times),
        pages=int(ckpt.get("pages", 0)) + 1,
        orders=int(ckpt.get("orders", 0)) + len(times),
        window_ordered=ordered,
        last_committed_updated_time=iso(prev),
        window_end_echoed=iso(echoed_end) if echoed_end else ckpt.get("window_end_echoed"),
        page_token=next_token,
        updated_at=iso(now),
    )
    if next_token:
        return out, False
    return close_window(out, now=now, lookback=lookback), True


def close_window(ckpt: dict[str, Any], *, now: datetime, lookback: timedelta) -> dict[str, Any]:
    """Finish the open window: advance the cursor (sweep: end - lookback; backfill: end)."""
    out = dict(ckpt)
    start = to_utc(ckpt["window_start"])
    end = to_utc(ckpt["window_end"])
    echoed = to_utc(ckpt.get("window_end_echoed"))
    assert start is not None and end is not None
    effective_end = min(end, echoed) if echoed else end
    if ckpt.get("mode") == "backfill":
        cursor = effective_end
    else:
        # Overlap by the lookback, but never move the cursor backwards.
        cursor = max(effective_end - lookback, to_utc(ckpt["cursor"]))  # type: ignore[type-var]
    if ckpt.get("window_cap_seconds") and not ckpt.get("window_restarts"):
        out["window_cap_seconds"] = float(ckpt["window_cap_seconds"]) * 2
    out.update(
        cursor=iso(cursor),
        last_window_end=iso(effective_end),
        window_start=None,
        window_end=None,
        window_end_echoed=None,
        page_token=None,
        window_pages=0,
        window_orders=0,
        window_ordered=True,
        last_committed_updated_time=None,
        window_restarts=0,
        windows=int(ckpt.get("windows", 0)) + 1,
        covered_seconds=float(ckpt.get("covered_seconds", 0.0)) + (effective_end - start).total_seconds(),
        covered_orders=int(ckpt.get("covered_orders", 0)) + int(ckpt.get("window_orders", 0)),
        updated_at=iso(now),
    )
    bf_end = to_utc(out.get("backfill_end"))
    if out.get("mode") == "backfill" and bf_end is not None and effective_end >= bf_end - MIN_WINDOW:
        out["done"] = True
    return out


def restart_window(
    ckpt: dict[str, Any], *, now: datetime, epsilon: timedelta = DEFAULT_EPSILON
) -> dict[str, Any]:
    """After an expired/rejected page token: re-open the window from the last committed point.

    Only when every page so far came sorted by ``lastUpdatedTime`` is "everything older than the newest
    committed order" known to be loaded; then the window restarts there. Otherwise (the API pages in
    another order, e.g. by creation time) the window is read again from its start - still idempotent -
    and, from the second restart of the same window on, its end is halved so that a window with fewer
    pages can finish before its tokens expire; the cut-off part is the next window.
    """
    out = dict(ckpt)
    start = to_utc(ckpt["window_start"])
    end = to_utc(ckpt["window_end"])
    last = to_utc(ckpt.get("last_committed_updated_time"))
    assert start is not None and end is not None
    window_restarts = int(ckpt.get("window_restarts", 0)) + 1
    if last is not None and ckpt.get("window_ordered", True):
        start = max(start, last - epsilon)
    elif window_restarts >= 2 and end - start > 2 * MIN_WINDOW:
        end = start + (end - start) / 2
        # Later windows start at this size too (and grow back while they finish without restarts).
        out["window_cap_seconds"] = (end - start).total_seconds()
    out.update(
        window_start=iso(start),
        window_end=iso(end),
        page_token=None,
        window_pages=0,
        window_orders=0,
        window_ordered=True,
        last_committed_updated_time=None,
        window_end_echoed=None,
        window_restarts=window_restarts,
        restarts=int(ckpt.get("restarts", 0)) + 1,
        updated_at=iso(now),
    )
    return out


# --------------------------------------------------------------------------- progress


def estimate_remaining_pages(ckpt: dict[str, Any], *, page_size: int = 100) -> int | None:
    """Rough pages left in the open window plus, for a backfill, in the windows after it.

    Uses the share of the window's time range covered when pages come sorted by ``lastUpdatedTime``,
    else the order density (orders per second of window) of the windows finished so far. ``None`` when
    there is nothing to go on yet, or when the window already holds more orders than that density
    predicts (the estimate would be wrong, not small).
    """
    start = to_utc(ckpt.get("window_start"))
    end = to_utc(ckpt.get("window_end"))
    if start is None or end is None:
        return 0
    pages = int(ckpt.get("window_pages", 0))
    orders = int(ckpt.get("window_orders", 0))
    last = to_utc(ckpt.get("last_committed_updated_time"))
    covered_s = float(ckpt.get("covered_seconds", 0.0))
    density = int(ckpt.get("covered_orders", 0)) / covered_s if covered_s > 0 else None
    in_window: float | None = None
    if not ckpt.get("page_token"):
        in_window = 0.0
    elif ckpt.get("window_ordered", True) and last is not None and pages and last > start:
        covered = min((last - start) / (end - start), 1.0)
        in_window = pages * (1 - covered) / max(covered, 1e-9)
    elif density is not None:
        expected = density * (end - start).total_seconds()
        if expected <= orders:
            return None
        in_window = (expected - orders) / page_size
    if in_window is None:
        return None
    later = 0.0
    bf_end = to_utc(ckpt.get("backfill_end"))
    if ckpt.get("mode") == "backfill" and bf_end is not None and end < bf_end and density is not None:
        later = density * (bf_end - end).total_seconds() / page_size
    return math.ceil(in_window + later)


def describe_eta(pages_left: int | None, *, tokens: float, rate: float) -> str:
    """``about 5 pages left (~12 min at the searchOrders rate)`` from the bucket's tokens and rate."""
    if pages_left is None:
        return "pages left unknown yet"
    if pages_left <= 0:
        return "window done"
    seconds = max(0.0, pages_left - max(tokens, 0.0)) / max(rate, 1e-9)
    when = f"~{seconds / 60:.0f} min" if seconds >= 90 else f"~{seconds:.0f} s"
    return f"about {pages_left} page{'s' if pages_left != 1 else ''} left ({when} at the current rate)"
