"""SpApiOrdersSyncOperator: page through SP-API orders by lastUpdatedTime into the warehouse.

The operator only orchestrates; HTTP, auth and rate limits live in ``SellingPartnerHook``, SQL in the
warehouse, and the window/checkpoint rules are pure functions in ``selling_partner.sync``.

Per page: fetch (``hook.iter_order_pages``) -> upsert (``warehouse.upsert_orders``, one transaction)
-> save the checkpoint with the NEXT page token. A killed run therefore resumes at the first
uncommitted page, and re-reading a page is harmless because upserts are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator

from selling_partner import sync as plan
from selling_partner.checkpoint import CheckpointStore, VariableCheckpointStore
from selling_partner.validation import parse_bool

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

#: The warehouse's orders table as an Airflow Asset: downstream DAGs can schedule on it.
ORDERS_ASSET = Asset(uri="sp_api://warehouse/sp_orders", name="sp_orders", group="selling_partner")

#: Consecutive page-token restarts without a committed page before the task gives up.
MAX_RESTARTS_WITHOUT_PROGRESS = 3
#: Windows close this much earlier than now - lag (clock skew, request latency).
HORIZON_SAFETY_SECONDS = 2.0


class _StopRun(Exception):
    """End this run cleanly (budget), leaving the checkpoint for the next run."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SpApiOrdersSyncOperator(BaseOperator):
    """
    Sync orders updated in a time range from SP-API into the warehouse, resumably.

    ``mode="sweep"`` (the schedule) continues from the saved cursor up to now minus the connection's
    ``min_before_lag_seconds`` and overlaps the previous sweep by ``lookback_minutes``.
    ``mode="backfill"`` reads ``updated_after`` .. ``updated_before`` (default: now minus the lag) in
    windows of ``window_days`` and keeps its own checkpoint, so it never disturbs the sweep.

    When the rate limiter says the next ``searchOrders`` token is more than ``defer_threshold_seconds``
    away, the task defers (no worker slot held) and resumes from the checkpoint. A run stops cleanly
    after ``max_pages`` pages or ``time_budget_seconds``; the next run continues where it stopped.

    :param sp_api_conn_id: SellingPartnerHook connection (one seller account / region).
    :param warehouse_conn_id: postgres or sqlite connection of the warehouse.
    :param mode: ``sweep`` or ``backfill``.
    :param updated_after: backfill start (required for backfill); for a sweep without a checkpoint,
        where the first window starts (default: one day ago). ISO date or datetime, UTC.
    :param updated_before: backfill end (default: now minus the lag, fixed when the backfill starts).
    :param marketplace_ids: marketplaces to read (default: the connection's ``marketplace_ids``).
    :param window_days: largest window, in days (fractions allowed).
    :param lookback_minutes: sweep overlap between consecutive windows.
    :param reset_checkpoint: forget this mode's checkpoint first and start over.
    :param max_pages: page budget of one run (``None``: unlimited).
    :param time_budget_seconds: wall-clock budget of one run including deferrals (``None``: unlimited).
    :param defer_threshold_seconds: rate-limit waits up to this are waited out in the hook; longer ones defer.
    :param checkpoint_store: where checkpoints live (default: Airflow Variables).
    :param selected_conn_ids: when given, the task skips itself unless ``sp_api_conn_id`` is listed
        (lets one trigger of a multi-seller DAG pick sellers).
    """

    template_fields: Sequence[str] = (
        "sp_api_conn_id",
        "warehouse_conn_id",
        "mode",
        "updated_after",
        "updated_before",
        "marketplace_ids",
        "window_days",
        "lookback_minutes",
        "reset_checkpoint",
        "max_pages",
        "time_budget_seconds",
        "selected_conn_ids",
    )
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        sp_api_conn_id: str = "sp_api_default",
        warehouse_conn_id: str = "warehouse_default",
        mode: str = "sweep",
        updated_after: str | datetime | None = None,
        updated_before: str | datetime | None = None,
        marketplace_ids: str | list[str] | None = None,
        window_days: float | str = 7,
        lookback_minutes: float | str = 5,
        reset_checkpoint: bool | str = False,
        max_pages: int | str | None = None,
        time_budget_seconds: float | str | None = None,
        defer_threshold_seconds: float = 30.0,
        checkpoint_store: CheckpointStore | None = None,
        selected_conn_ids: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [ORDERS_ASSET])
        super().__init__(**kwargs)
        self.sp_api_conn_id = sp_api_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.mode = mode
        # Not start_date/end_date: BaseOperator owns those names (the task's own scheduling dates).
        self.updated_after = updated_after
        self.updated_before = updated_before
        self.marketplace_ids = marketplace_ids
        self.window_days = window_days
        self.lookback_minutes = lookback_minutes
        self.reset_checkpoint = reset_checkpoint
        self.max_pages = max_pages
        self.time_budget_seconds = time_budget_seconds
        self.defer_threshold_seconds = defer_threshold_seconds
        self.checkpoint_store = checkpoint_store
        self.selected_conn_ids = selected_conn_ids

    # ------------------------------------------------------------------ entry points

    def execute(self, context: Context) -> dict[str, Any]:
        selected = _as_list(self.selected_conn_ids)
        if selected is not None and self.sp_api_conn_id not in selected:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"{self.sp_api_conn_id} is not in sp_api_conn_ids {selected}")
        cfg = self._config()
        store = self._store()
        ckpt = self._prepare_checkpoint(cfg, store, context)
        self._warehouse(cfg).ensure_schema()
        run = {
            "run_id": _run_id(context),
            "started_at": plan.iso(_utcnow()),
            "horizon": plan.iso(cfg["horizon"]),
            "pages": 0,
            "orders": 0,
            "calls": 0,
            "windows": 0,
            "restarts": 0,
            "deferrals": 0,
            "deferred_seconds": 0.0,
            "start_pages": int(ckpt.get("pages", 0)),
        }
        ckpt["current_run"] = run
        store.save(cfg["key"], ckpt)
        return self._sync(cfg, store, ckpt, context)

    def resume(self, context: Context, event: Any = None, **_: Any) -> dict[str, Any]:
        """Continue after a rate-limit deferral. All state is read back from the checkpoint."""
        cfg = self._config()
        store = self._store()
        ckpt = store.load(cfg["key"])
        if ckpt is None:
            raise RuntimeError(
                f"checkpoint {cfg['key']} vanished while the task was deferred (deleted by hand?); "
                "rerun the task: it starts this mode from scratch and upserts are idempotent"
            )
        run = ckpt.setdefault("current_run", {})
        run["deferrals"] = int(run.get("deferrals", 0)) + 1
        cfg["horizon"] = plan.to_utc(run.get("horizon")) or cfg["horizon"]
        self.log.info("resumed after rate-limit deferral #%d", run["deferrals"])
        return self._sync(cfg, store, ckpt, context)

    # ------------------------------------------------------------------ configuration

    def _config(self) -> dict[str, Any]:
        from selling_partner.hooks import SellingPartnerHook

        mode = str(self.mode).strip().lower()
        if mode not in plan.MODES:
            raise ValueError(f"mode must be 'sweep' or 'backfill', got {self.mode!r}")
        conn = SellingPartnerHook.get_connection(self.sp_api_conn_id)
        extra = conn.extra_dejson
        mkts = plan.parse_marketplace_ids(self.marketplace_ids) or plan.parse_marketplace_ids(
            extra.get("marketplace_ids")
        )
        if not mkts:
            raise ValueError(
                "no marketplace ids: set marketplace_ids on the task or in connection "
                f"{self.sp_api_conn_id!r}"
            )
        lag = timedelta(seconds=float(extra.get("min_before_lag_seconds", 120)))
        window = timedelta(days=float(self.window_days))
        lookback = timedelta(minutes=float(self.lookback_minutes))
        if window <= timedelta(0):
            raise ValueError("window_days must be positive")
        if mode == "sweep" and lookback * 2 >= window:
            raise ValueError("lookback_minutes must be less than half of window_days")
        now = _utcnow()
        start = plan.to_utc(self.updated_after)
        end = plan.to_utc(self.updated_before)
        if mode == "backfill" and start is None:
            raise ValueError("a backfill needs a start date (updated_after / Param start_date), ISO, UTC")
        # A little inside Amazon's rule, so the request is valid when it arrives.
        horizon = (now - lag - timedelta(seconds=HORIZON_SAFETY_SECONDS)).replace(microsecond=0)
        if end is not None and end > horizon:
            self.log.info("end date %s is within the %s lag; using %s", plan.iso(end), lag, plan.iso(horizon))
            end = horizon
        if start is not None and end is not None and start >= end:
            raise ValueError(f"start date {plan.iso(start)} must be before end date {plan.iso(end)}")
        api_version = str(extra.get("orders_api_version") or "2026-01-01")
        return {
            "mode": mode,
            "conn_id": self.sp_api_conn_id,
            "marketplace_ids": mkts,
            "key": plan.checkpoint_key(self.sp_api_conn_id, mkts, mode),
            "lag": lag,
            "window": window,
            "lookback": lookback if mode == "sweep" else timedelta(0),
            "start": start,
            "end": end,
            "horizon": horizon,
            "api_version": api_version,
            "max_pages": None if self.max_pages in (None, "", "None") else int(self.max_pages),  # type: ignore[arg-type]
            "time_budget": None
            if self.time_budget_seconds in (None, "", "None")
            else float(self.time_budget_seconds),  # type: ignore[arg-type]
            # What identifies a backfill: the same range resumes (window_days may change in between).
            "requested": {
                "start_date": plan.iso(start),
                "end_date": plan.iso(plan.to_utc(self.updated_before)),
            },
        }

    def _store(self) -> CheckpointStore:
        return self.checkpoint_store if self.checkpoint_store is not None else VariableCheckpointStore()

    def _hook(self, cfg: dict[str, Any]) -> Any:
        from selling_partner.hooks import SellingPartnerHook

        return SellingPartnerHook(self.sp_api_conn_id, max_wait=self.defer_threshold_seconds)

    def _warehouse(self, cfg: dict[str, Any]) -> Any:
        from selling_partner.warehouse import get_warehouse

        return get_warehouse(self.warehouse_conn_id)

    def _prepare_checkpoint(
        self, cfg: dict[str, Any], store: CheckpointStore, context: Context
    ) -> dict[str, Any]:
        key = cfg["key"]
        if parse_bool(self.reset_checkpoint, name="reset_checkpoint"):
            self.log.info("reset_checkpoint: deleting %s", key)
            store.delete(key)
        saved = store.load(key)
        if saved is not None:
            plan.check_version(saved)
        fresh, reason = plan.should_start_fresh(
            saved, mode=cfg["mode"], requested=cfg["requested"], run_id=_run_id(context)
        )
        if not fresh:
            assert saved is not None
            saved["run_id"] = _run_id(context)
            self.log.info(
                "%s %s: cursor %s, open window %s, page token %s, %d pages / %d orders so far",
                reason,
                key,
                saved.get("cursor"),
                f"{saved.get('window_start')}->{saved.get('window_end')}"
                if saved.get("window_start")
                else "-",
                "saved" if saved.get("page_token") else "-",
                saved.get("pages", 0),
                saved.get("orders", 0),
            )
            return saved
        now = _utcnow()
        if cfg["mode"] == "backfill":
            cursor, bf_end = cfg["start"], cfg["end"] or cfg["horizon"]
        else:
            cursor, bf_end = cfg["start"] or now - plan.DEFAULT_SWEEP_START, None
        self.log.info("new %s checkpoint %s (%s) from %s", cfg["mode"], key, reason, plan.iso(cursor))
        return plan.new_checkpoint(
            mode=cfg["mode"],
            conn_id=cfg["conn_id"],
            marketplace_ids=cfg["marketplace_ids"],
            cursor=cursor,
            now=now,
            backfill_end=bf_end,
            requested=cfg["requested"],
            run_id=_run_id(context),
        )

    # ------------------------------------------------------------------ the loop

    def _sync(
        self, cfg: dict[str, Any], store: CheckpointStore, ckpt: dict[str, Any], context: Context
    ) -> dict[str, Any]:
        from selling_partner.hooks.errors import SpApiPageTokenExpired, SpApiRateLimitWait

        hook = self._hook(cfg)
        warehouse = self._warehouse(cfg)
        key, run, op = cfg["key"], ckpt["current_run"], hook.search_operation
        throttled_seen = 0
        horizon: datetime = cfg["horizon"]
        restarts_in_a_row = 0
        stop_reason = "caught up"
        while True:
            spent = self._budget_spent(cfg, run)
            if spent:
                stop_reason = spent
                break
            window = plan.next_window(ckpt, horizon=horizon, max_window=cfg["window"])
            if window is None:
                break
            run.setdefault("window_start", plan.iso(window.start))
            run["window_end"] = plan.iso(window.end)
            if window.resumed:
                self.log.info(
                    "window %s: resuming at page %d (%s)",
                    window.label(),
                    int(ckpt.get("window_pages", 0)) + 1,
                    "saved page token" if window.page_token else "first page",
                )
            else:
                ckpt = open_and_save(store, key, ckpt, window)
                self.log.info("window %s: opened", window.label())
            try:
                self._maybe_defer(hook, op, store, key, ckpt, cfg)
                finished = False
                pages = hook.iter_order_pages(
                    last_updated_after=window.start,
                    last_updated_before=window.end,
                    marketplace_ids=cfg["marketplace_ids"],
                    page_token=window.page_token,
                )
                for page in pages:
                    page_no = int(ckpt.get("window_pages", 0)) + 1
                    warehouse.upsert_orders(page.orders)
                    ckpt, finished = plan.record_page(
                        ckpt,
                        updated_times=[o.last_updated_time for o in page.orders],
                        next_token=page.next_token,
                        echoed_end=page.window_end,
                        now=_utcnow(),
                        lookback=cfg["lookback"],
                    )
                    restarts_in_a_row = 0
                    run["pages"] += 1
                    run["orders"] += len(page.orders)
                    run["calls"] += int(page.calls)
                    run["windows"] += int(finished)
                    throttled_now = sum(hook.stats.throttled.values())
                    run["throttled"] = int(run.get("throttled", 0)) + throttled_now - throttled_seen
                    throttled_seen = throttled_now
                    store.save(key, ckpt)
                    self._log_page(hook, op, window, ckpt, page, page_no, finished)
                    if finished or self._budget_spent(cfg, run):
                        break
                    self._maybe_defer(hook, op, store, key, ckpt, cfg)
                if not finished and ckpt.get("window_start") and not ckpt.get("page_token"):
                    # The hook yielded no page at all (nothing to read): the window is done.
                    ckpt = plan.close_window(ckpt, now=_utcnow(), lookback=cfg["lookback"])
                    run["windows"] += 1
                    store.save(key, ckpt)
            except _StopRun as stop:
                stop_reason = str(stop)
                break
            except SpApiRateLimitWait as exc:
                self._defer(store, key, ckpt, float(exc.wait_seconds), op, cfg)
            except SpApiPageTokenExpired as exc:
                restarts_in_a_row += 1
                run["restarts"] += 1
                if restarts_in_a_row > MAX_RESTARTS_WITHOUT_PROGRESS:
                    raise RuntimeError(
                        f"page tokens were rejected {restarts_in_a_row} times in a row without a committed "
                        f"page in window {window.label()}; last error: {exc}. The checkpoint is intact: "
                        "a plain rerun is safe; check the connection's region/endpoint if it persists"
                    ) from exc
                ckpt = plan.restart_window(ckpt, now=_utcnow())
                store.save(key, ckpt)
                self.log.warning(
                    "window %s: page token rejected (%s); restarting from %s",
                    window.label(),
                    type(exc).__name__,
                    ckpt["window_start"],
                )
        return self._finish(cfg, store, ckpt, stop_reason, context)

    def _budget_spent(self, cfg: dict[str, Any], run: dict[str, Any]) -> str | None:
        """Why this run should stop now (``None``: go on). Every run commits at least one page."""
        if run["pages"] == 0:
            return None
        if cfg["max_pages"] is not None and run["pages"] >= cfg["max_pages"]:
            return f"page budget of {cfg['max_pages']} spent"
        if cfg["time_budget"] is not None:
            started = plan.to_utc(run["started_at"])
            assert started is not None
            if (_utcnow() - started).total_seconds() >= cfg["time_budget"]:
                return f"time budget of {cfg['time_budget']:.0f}s spent"
        return None

    def _maybe_defer(
        self, hook: Any, op: str, store: CheckpointStore, key: str, ckpt: dict[str, Any], cfg: dict[str, Any]
    ) -> None:
        wait = float(hook.seconds_until_available(op))
        if wait > self.defer_threshold_seconds:
            self._defer(store, key, ckpt, wait, op, cfg)

    def _defer(
        self,
        store: CheckpointStore,
        key: str,
        ckpt: dict[str, Any],
        wait: float,
        op: str,
        cfg: dict[str, Any],
    ) -> None:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        run = ckpt["current_run"]
        if cfg["time_budget"] is not None and run["pages"] > 0:
            started = plan.to_utc(run["started_at"])
            assert started is not None
            if (_utcnow() - started).total_seconds() + wait >= cfg["time_budget"]:
                raise _StopRun(
                    f"time budget of {cfg['time_budget']:.0f}s would be spent waiting for {op} quota"
                )
        run["deferred_seconds"] = float(run.get("deferred_seconds", 0.0)) + wait
        store.save(key, ckpt)
        self.log.info("%s: next token in %.0fs; deferring (no worker slot held)", op, wait)
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=wait + 0.5)),
            method_name="resume",
            kwargs={"key": key},
        )

    def _log_page(
        self,
        hook: Any,
        op: str,
        window: plan.Window,
        ckpt: dict[str, Any],
        page: Any,
        page_no: int,
        finished: bool,
    ) -> None:
        if finished:
            eta = "window done"
        else:
            left = plan.estimate_remaining_pages(ckpt)
            eta = f"ETA ~{left} pages" if left is not None else "ETA unknown"
        self.log.info(
            "window %s page %d: %d orders (total %d), %s, %s",
            window.label(),
            page_no,
            len(page.orders),
            int(ckpt.get("orders", 0)),
            _quota_text(hook, op),
            eta,
        )

    def _finish(
        self,
        cfg: dict[str, Any],
        store: CheckpointStore,
        ckpt: dict[str, Any],
        stop_reason: str,
        context: Context,
    ) -> dict[str, Any]:
        run = ckpt.get("current_run", {})
        finished_at = _utcnow()
        summary = {
            "mode": cfg["mode"],
            "conn_id": cfg["conn_id"],
            "marketplace_ids": cfg["marketplace_ids"],
            "checkpoint_key": cfg["key"],
            "stop_reason": stop_reason,
            "caught_up": stop_reason == "caught up",
            "window_start": run.get("window_start"),
            "window_end": run.get("window_end"),
            "pages": int(run.get("pages", 0)),
            "orders": int(run.get("orders", 0)),
            "calls": int(run.get("calls", 0)),
            "windows": int(run.get("windows", 0)),
            "restarts": int(run.get("restarts", 0)),
            "deferrals": int(run.get("deferrals", 0)),
            "resumed_at_page": int(run.get("start_pages", 0)),
            "throttled": int(run.get("throttled", 0)),
            "cursor": ckpt.get("cursor"),
            "done": bool(ckpt.get("done", False)),
            "started_at": run.get("started_at"),
            "finished_at": plan.iso(finished_at),
        }
        ckpt["last_run"] = {k: summary[k] for k in ("pages", "orders", "calls", "stop_reason", "finished_at")}
        ckpt.pop("current_run", None)
        ckpt["updated_at"] = plan.iso(finished_at)
        store.save(cfg["key"], ckpt)
        self._record_run(cfg, summary, context)
        self.log.info(
            "%s sync of %s stopped (%s): %d pages, %d orders, %d calls in this run; cursor %s",
            cfg["mode"],
            cfg["conn_id"],
            stop_reason,
            summary["pages"],
            summary["orders"],
            summary["calls"],
            summary["cursor"],
        )
        return summary

    def _record_run(self, cfg: dict[str, Any], summary: dict[str, Any], context: Context | None) -> None:
        from selling_partner.warehouse import SyncRunRecord

        started = plan.to_utc(summary["started_at"])
        finished = plan.to_utc(summary["finished_at"])
        assert started is not None and finished is not None
        ti = context.get("ti") if context else None
        self._warehouse(cfg).record_sync_run(
            SyncRunRecord(
                conn_id=cfg["conn_id"],
                mode=cfg["mode"],
                status="success" if summary["caught_up"] else "partial",
                window_start=plan.to_utc(summary["window_start"]) or cfg["horizon"],
                window_end=plan.to_utc(summary["window_end"]) or cfg["horizon"],
                pages=summary["pages"],
                orders=summary["orders"],
                calls=summary["calls"],
                throttled=summary["throttled"],
                duration_seconds=(finished - started).total_seconds(),
                marketplace_ids=tuple(cfg["marketplace_ids"]),
                api_version=cfg["api_version"],
                started_at=started,
                finished_at=finished,
                dag_id=getattr(ti, "dag_id", None),
                dag_run_id=_run_id(context) if context else None,
                task_id=getattr(ti, "task_id", None),
                run_id=f"{_run_id(context)}:{getattr(ti, 'task_id', '')}:{cfg['key']}" if context else None,
            )
        )


def open_and_save(
    store: CheckpointStore, key: str, ckpt: dict[str, Any], window: plan.Window
) -> dict[str, Any]:
    """Open ``window`` in the checkpoint and persist it before the first request."""
    ckpt = plan.open_window(ckpt, window, now=_utcnow())
    store.save(key, ckpt)
    return ckpt


def _as_list(value: str | list[str] | None) -> list[str] | None:
    """``None``/empty -> ``None``; a list, JSON-ish list or comma-separated string -> list of names."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [p.strip().strip("\"'") for p in value.strip().strip("[]").split(",")]
    items = [str(v).strip() for v in value if str(v).strip()]
    return items or None


def _run_id(context: Context) -> str | None:
    try:
        return str(context["run_id"])
    except (KeyError, TypeError):
        return None


def _quota_text(hook: Any, op: str) -> str:
    """``searchOrders quota: next token in 0s`` (what the shared limiter says now)."""
    return plan.describe_quota(op, None, None, float(hook.seconds_until_available(op)))


__all__ = ["ORDERS_ASSET", "SpApiOrdersSyncOperator"]
