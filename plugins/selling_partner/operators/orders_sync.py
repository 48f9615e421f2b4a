"""SpApiOrdersSyncOperator: page through SP-API orders by lastUpdatedTime into the warehouse, resumably.

The operator only orchestrates: HTTP, auth and rate limits live in ``SellingPartnerOrdersHook``, SQL in
the warehouse, the window/checkpoint rules in ``selling_partner.sync`` and rate-limit waits in
``selling_partner.pacing``. Per page: pace (go, wait, defer or stop) -> fetch -> upsert the orders and
quarantine the records that cannot be mapped -> save the checkpoint with the NEXT page token. A killed
run resumes at the first uncommitted page; re-reading a page is harmless because upserts are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from selling_partner import alerts, metrics
from selling_partner import sync as plan
from selling_partner.checkpoint import CheckpointStore, VariableCheckpointStore
from selling_partner.hooks.orders import OrderPage, SellingPartnerOrdersHook
from selling_partner.operators.base import SellingPartnerBaseOperator, run_id_of, try_number_of
from selling_partner.pacing import Pace
from selling_partner.validation import parse_bool, parse_names

if TYPE_CHECKING:
    from airflow.sdk import Context

    from selling_partner.warehouse import Warehouse

log = logging.getLogger(__name__)

#: The warehouse's orders table as an Airflow Asset: downstream DAGs can schedule on it.
ORDERS_ASSET = Asset(uri="sp_api://warehouse/sp_orders", name="sp_orders", group="selling_partner")

#: Consecutive page-token restarts without a committed page before the task gives up.
MAX_RESTARTS_WITHOUT_PROGRESS = 3
#: Counters of a run kept in the checkpoint (``current_run``), so they survive deferrals.
RUN_COUNTERS = (
    "pages",
    "orders",
    "quarantined",
    "windows",
    "restarts",
    "deferrals",
    "calls",
    "throttled",
    "retries",
    "missed_by_events",
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SpApiOrdersSyncOperator(SellingPartnerBaseOperator):
    """
    Sync orders updated in a time range from SP-API into the warehouse, resumably.

    ``mode="sweep"`` (the schedule) continues from the saved cursor up to now minus the connection's
    ``min_before_lag_seconds`` and overlaps the previous sweep by ``lookback_minutes``.
    ``mode="backfill"`` reads ``updated_after`` .. ``updated_before`` (default: now minus the lag, fixed
    when the backfill starts) in windows of ``window_days`` and keeps its own checkpoint, so it never
    disturbs the sweep.

    Rate-limit waits longer than ``defer_after_seconds`` (and at least ``min_deferral_seconds``) defer
    the task (no worker slot held); it resumes from the checkpoint. A run stops cleanly after
    ``max_pages`` pages or ``time_budget_seconds``; the next run continues where it stopped. A record
    that cannot be mapped is quarantined (``sp_order_quarantine``) and the rest of its page is loaded.

    :param sp_api_conn_id: the seller's ``amazon_sp_api`` connection.
    :param warehouse_conn_id: postgres or sqlite connection of the warehouse.
    :param mode: ``sweep`` or ``backfill``.
    :param updated_after: backfill start (required for backfill); for a sweep without a checkpoint,
        where the first window starts (default: one day ago). ISO date or datetime, UTC.
    :param updated_before: backfill end (default: now minus the lag, fixed when the backfill starts).
    :param marketplace_ids: marketplaces to read (default: the connection's ``marketplace_ids``).
    :param window_days: largest window, in days (fractions allowed).
    :param lookback_minutes: sweep overlap between consecutive windows.
    :param reset_checkpoint: forget this mode's checkpoint first and start over (first try only: a
        retry resumes instead of starting over again).
    :param max_pages: page budget of one run (``None``: unlimited).
    :param time_budget_seconds: wall-clock budget of one run including deferrals (``None``: unlimited).
    :param checkpoint_store: where checkpoints live (default: Airflow Variables).
    :param selected_conn_ids: when given, the task skips itself unless ``sp_api_conn_id`` is listed
        (lets one trigger of a multi-seller DAG pick sellers).
    """

    hook_class = SellingPartnerOrdersHook
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
        checkpoint_store: CheckpointStore | None = None,
        events_grace_seconds: float = 300.0,
        selected_conn_ids: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [ORDERS_ASSET])
        super().__init__(**kwargs)
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
        self.checkpoint_store = checkpoint_store
        self.selected_conn_ids = selected_conn_ids
        self.events_grace_seconds = events_grace_seconds

    # ------------------------------------------------------------------ entry points

    def execute(self, context: Context) -> dict[str, Any]:
        selected = parse_names(self.selected_conn_ids, name="sp_api_conn_ids") or None
        if selected is not None and self.sp_api_conn_id not in selected:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"{self.sp_api_conn_id} is not in sp_api_conn_ids {selected}")
        _refuse_airflow_backfill(context)
        try:
            settings = self._settings()
            store = self._store()
            ckpt = self._prepare_checkpoint(settings, store, context)
        except Exception:
            self.close_hook()
            raise
        ckpt["current_run"] = {
            "run_id": run_id_of(context),
            "try_number": try_number_of(context),
            "started_at": plan.iso(_utcnow()),
            "horizon": plan.iso(settings.horizon),
            "start_pages": int(ckpt.get("pages", 0)),
            "deferred_seconds": 0.0,
            **dict.fromkeys(RUN_COUNTERS, 0),
        }
        return self._guarded(settings, store, ckpt, context)

    def resume(self, context: Context, event: Any = None, **_: Any) -> dict[str, Any]:
        """Continue after a rate-limit deferral (a new process): all state is read from the checkpoint."""
        try:
            settings = self._settings()
            store = self._store()
            ckpt = store.load(settings.key)
        except Exception:
            self.close_hook()
            raise
        if ckpt is None or "current_run" not in ckpt:
            self.close_hook()
            raise RuntimeError(
                f"checkpoint {settings.key} vanished while the task was deferred (deleted by hand?); "
                "rerun the task: it starts this mode from scratch and upserts are idempotent"
            )
        run = ckpt["current_run"]
        run["deferrals"] = int(run.get("deferrals", 0)) + 1
        settings = settings.with_horizon(plan.to_utc(run.get("horizon")))
        self.log.info("resumed after rate-limit deferral #%d (%s)", run["deferrals"], settings.key)
        return self._guarded(settings, store, ckpt, context)

    def _guarded(
        self, settings: plan.SyncSettings, store: CheckpointStore, ckpt: dict[str, Any], context: Context
    ) -> dict[str, Any]:
        """Run the loop; a try that fails is recorded in ``sp_sync_runs`` before the error propagates."""
        from airflow.sdk.exceptions import TaskDeferred

        try:
            return self._sync(settings, store, ckpt, context)
        except TaskDeferred:
            raise
        except Exception as exc:
            from selling_partner.warehouse import error_summary

            self.absorb_stats(ckpt["current_run"])
            error = error_summary(exc)
            summary = self._summary(settings, ckpt, f"failed: {type(exc).__name__}")
            try:
                self._record_run(settings, summary, context, error=error)
            except Exception:  # the warehouse may be what failed: the original error matters
                self.log.exception("could not record the failed try in sp_sync_runs")
            raise
        finally:
            self.close_hook()

    # ------------------------------------------------------------------ configuration

    def _settings(self) -> plan.SyncSettings:
        cfg = self.hook.config
        return plan.plan_settings(
            mode=self.mode,
            conn_id=self.sp_api_conn_id,
            seller_id=cfg.seller_id,
            api_version=cfg.orders_api_version,
            connection_marketplace_ids=cfg.marketplace_ids,
            min_before_lag_seconds=cfg.min_before_lag_seconds,
            marketplace_ids=self.marketplace_ids,
            updated_after=self.updated_after,
            updated_before=self.updated_before,
            window_days=self.window_days,
            lookback_minutes=self.lookback_minutes,
            max_pages=self.max_pages,
            time_budget_seconds=self.time_budget_seconds,
            now=_utcnow(),
        )

    def _store(self) -> CheckpointStore:
        return self.checkpoint_store if self.checkpoint_store is not None else VariableCheckpointStore()

    def _warehouse(self) -> Warehouse:
        from selling_partner.warehouse import get_warehouse

        return get_warehouse(self.warehouse_conn_id)

    def _prepare_checkpoint(
        self, settings: plan.SyncSettings, store: CheckpointStore, context: Context
    ) -> dict[str, Any]:
        key = settings.key
        if parse_bool(self.reset_checkpoint, name="reset_checkpoint"):
            if try_number_of(context) <= 1:
                self.log.info("reset_checkpoint: deleting %s", key)
                store.delete(key)
            else:
                self.log.info("reset_checkpoint: try %d resumes the checkpoint the first try started",
                              try_number_of(context))  # fmt: skip
        saved = store.load(key)
        if saved is not None:
            plan.check_version(saved)
        fresh, reason = plan.should_start_fresh(
            saved, mode=settings.mode, requested=settings.requested, run_id=run_id_of(context)
        )
        if not fresh:
            assert saved is not None
            saved["run_id"] = run_id_of(context)
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
        if settings.mode == "backfill":
            cursor, bf_end, why = settings.start, settings.end or settings.horizon, "the requested start"
        elif settings.start is not None:
            cursor, bf_end, why = settings.start, None, "the requested start"
        else:
            backfill_key = plan.checkpoint_key(settings.conn_id, settings.marketplace_ids, "backfill")
            cursor, why = plan.first_sweep_cursor(
                store.load(backfill_key), now=now, lookback=settings.lookback
            )
            bf_end = None
        assert cursor is not None
        self.log.info(
            "new %s checkpoint %s (%s) from %s: %s", settings.mode, key, reason, plan.iso(cursor), why
        )
        return plan.new_checkpoint(
            mode=settings.mode,
            conn_id=settings.conn_id,
            marketplace_ids=settings.marketplace_ids,
            cursor=cursor,
            now=now,
            backfill_end=bf_end,
            requested=settings.requested,
            run_id=run_id_of(context),
        )

    # ------------------------------------------------------------------ the loop

    def _sync(
        self, settings: plan.SyncSettings, store: CheckpointStore, ckpt: dict[str, Any], context: Context
    ) -> dict[str, Any]:
        from selling_partner.hooks.errors import SpApiPageTokenExpired, SpApiRateLimitWait

        warehouse = self._warehouse()
        warehouse.ensure_schema()
        if self.hook.config.include_pii:
            warehouse.pii_cipher()  # no key connection: fail now, naming the fix, before any call
        run = ckpt["current_run"]
        op = self.hook.search_operation
        restarts_in_a_row = 0
        stop_reason = "caught up"
        while True:
            spent = self._budget_spent(settings, run)
            if spent:
                stop_reason = spent
                break
            window = plan.next_window(ckpt, horizon=settings.horizon, max_window=settings.window)
            if window is None:
                break
            if not window.resumed:
                ckpt = plan.open_window(ckpt, window, now=_utcnow())
                self._save(store, settings, ckpt)
                self.log.info("window %s: opened", window.label())
            elif int(ckpt.get("window_pages", 0)) == 0 or restarts_in_a_row:
                self.log.info("window %s: reading from the first page", window.label())
            run.setdefault("window_start", plan.iso(window.start))
            run["window_end"] = plan.iso(window.end)
            pace = self.pace(self.hook.seconds_until_available(op), **self._budget(settings, run))
            try:
                if pace.action == "stop":
                    stop_reason = pace.reason
                    break
                if pace.action == "defer":
                    self._defer(store, settings, ckpt, pace)
                page = next(
                    iter(
                        self.hook.iter_order_pages(
                            last_updated_after=window.start,
                            last_updated_before=window.end,
                            marketplace_ids=settings.marketplace_ids,
                            page_token=window.page_token,
                            max_pages=1,
                        )
                    )
                )
            except SpApiRateLimitWait as exc:
                # The limiter refused before sending (another caller took the token): the same decision.
                pace = self.pace(exc.wait_seconds, **self._budget(settings, run))
                if pace.action == "stop":
                    stop_reason = pace.reason
                    break
                if pace.action == "defer":
                    self._defer(store, settings, ckpt, pace)
                continue
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
                self._save(store, settings, ckpt)
                self.log.warning(
                    "window %s: page token rejected (%s); restarting from %s",
                    window.label(),
                    type(exc).__name__,
                    ckpt["window_start"],
                )
                continue
            restarts_in_a_row = 0
            ckpt = self._commit(settings, store, warehouse, ckpt, window, page, context)
        return self._finish(settings, store, ckpt, stop_reason, context)

    def _commit(
        self,
        settings: plan.SyncSettings,
        store: CheckpointStore,
        warehouse: Warehouse,
        ckpt: dict[str, Any],
        window: plan.Window,
        page: OrderPage,
        context: Context,
    ) -> dict[str, Any]:
        """Load one page (orders, then quarantined records), then move and save the checkpoint."""
        run = ckpt["current_run"]
        page_no = int(ckpt.get("window_pages", 0)) + 1
        last_event = self._last_event(warehouse, settings) if settings.mode == "sweep" else None
        if last_event is not None:
            missed = self._missed_by_events(warehouse, page)
            run["missed_by_events"] += missed
            metrics.incr("sync", "missed_by_events", settings.conn_id, count=missed)
            changed = sum(o.last_updated_time > last_event for o in page.orders)
            run["changes_after_last_event"] = run.get("changes_after_last_event", 0) + changed
        warehouse.upsert_orders(page.orders)
        if page.rejected:
            warehouse.quarantine_orders(self._quarantine_rows(settings, page, context))
            for rejected in page.rejected:
                self.log.warning(
                    "order %s quarantined (sp_order_quarantine): %s",
                    rejected.order_id or "?",
                    rejected.reason,
                )
        updated = [o.last_updated_time for o in page.orders]
        ckpt, finished = plan.record_page(
            ckpt,
            updated_times=updated,
            next_token=page.next_token,
            echoed_end=page.window_end,
            now=_utcnow(),
            lookback=settings.lookback,
        )
        run["pages"] += 1
        run["orders"] += len(page.orders)
        run["quarantined"] += len(page.rejected)
        run["windows"] += int(finished)
        self.absorb_stats(run)
        self._save(store, settings, ckpt)
        self._log_page(window, ckpt, page, page_no, finished)
        return ckpt

    def _last_event(self, warehouse: Warehouse, settings: plan.SyncSettings) -> datetime | None:
        """When this seller's newest notification arrived; ``None`` when the event path does not serve it
        (its inbox has none), so there is nothing to reconcile."""
        if "_last_event_at" not in self.__dict__:
            self._last_event_at = warehouse.last_notification_times().get(settings.conn_id)
        return self._last_event_at

    def _missed_by_events(self, warehouse: Warehouse, page: OrderPage) -> int:
        """Orders of the page the warehouse did not hold this new although they changed more than
        ``events_grace_seconds`` ago: their notifications never arrived (reconciliation)."""
        stored = warehouse.order_versions([o.order_id for o in page.orders])
        cutoff = _utcnow().timestamp() - self.events_grace_seconds
        missed = [
            o.order_id
            for o in page.orders
            if o.last_updated_time.timestamp() <= cutoff
            and (o.order_id not in stored or stored[o.order_id] < o.last_updated_time)
        ]
        if missed:
            self.log.warning(
                "%d orders of this page changed more than %.0f s ago but the warehouse did not have that "
                "version: their notifications never arrived (the sweep loads them now), e.g. %s",
                len(missed), self.events_grace_seconds, ", ".join(missed[:5]),
            )  # fmt: skip
        return len(missed)

    def _quarantine_rows(self, settings: plan.SyncSettings, page: OrderPage, context: Context) -> list[Any]:
        from selling_partner.warehouse import OrderQuarantineRow

        ti = context.get("ti") if context else None
        now = _utcnow()
        return [
            OrderQuarantineRow(
                order_id=r.order_id,
                source="sync",
                reason=r.reason,
                raw_record=r.raw_json,
                seen_at=now,
                seller_id=settings.seller_id,
                conn_id=settings.conn_id,
                api_version=settings.api_version,
                last_updated_time=r.last_updated_time,
                dag_id=getattr(ti, "dag_id", None),
                dag_run_id=run_id_of(context),
                task_id=getattr(ti, "task_id", None),
            )
            for r in page.rejected
        ]

    def _budget(self, settings: plan.SyncSettings, run: dict[str, Any]) -> dict[str, Any]:
        """``budget_left``/``committed`` for :meth:`pace`."""
        left = None
        if settings.time_budget is not None:
            started = plan.to_utc(run["started_at"])
            assert started is not None
            left = settings.time_budget - (_utcnow() - started).total_seconds()
        return {"budget_left": left, "committed": run["pages"] > 0}

    def _budget_spent(self, settings: plan.SyncSettings, run: dict[str, Any]) -> str | None:
        """Why this run should stop now (``None``: go on). Every run commits at least one page."""
        if run["pages"] == 0:
            return None
        if settings.max_pages is not None and run["pages"] >= settings.max_pages:
            return f"page budget of {settings.max_pages} spent"
        left = self._budget(settings, run)["budget_left"]
        if left is not None and left <= 0:
            return f"time budget of {settings.time_budget:.0f}s spent"
        return None

    def _defer(
        self, store: CheckpointStore, settings: plan.SyncSettings, ckpt: dict[str, Any], pace: Pace
    ) -> None:
        run = ckpt["current_run"]
        run["deferred_seconds"] = float(run.get("deferred_seconds", 0.0)) + pace.seconds
        self.absorb_stats(run)
        self._save(store, settings, ckpt)
        self.defer_for(pace, kwargs={"key": settings.key})

    def _save(self, store: CheckpointStore, settings: plan.SyncSettings, ckpt: dict[str, Any]) -> None:
        store.save(settings.key, ckpt)

    def _log_page(
        self, window: plan.Window, ckpt: dict[str, Any], page: OrderPage, page_no: int, finished: bool
    ) -> None:
        op = self.hook.search_operation
        quota = self.hook.quota(op)
        eta = "window done" if finished else plan.describe_eta(
            plan.estimate_remaining_pages(ckpt), tokens=quota.tokens, rate=quota.rate
        )  # fmt: skip
        self.log.info(
            "window %s page %d: %d orders%s (total %d); %s; %s",
            window.label(),
            page_no,
            len(page.orders),
            f" + {len(page.rejected)} quarantined" if page.rejected else "",
            int(ckpt.get("orders", 0)),
            quota.describe(op),
            eta,
        )

    # ------------------------------------------------------------------ the end of a run

    def _summary(self, settings: plan.SyncSettings, ckpt: dict[str, Any], stop_reason: str) -> dict[str, Any]:
        run = ckpt.get("current_run", {})
        return {
            "mode": settings.mode,
            "conn_id": settings.conn_id,
            "seller_id": settings.seller_id,
            "api_version": settings.api_version,
            "marketplace_ids": list(settings.marketplace_ids),
            "checkpoint_key": settings.key,
            "stop_reason": stop_reason,
            "caught_up": stop_reason == "caught up",
            "window_start": run.get("window_start") or ckpt.get("window_start") or ckpt.get("cursor"),
            "window_end": run.get("window_end") or ckpt.get("last_window_end") or plan.iso(settings.horizon),
            **{name: int(run.get(name, 0)) for name in RUN_COUNTERS},
            "deferred_seconds": round(float(run.get("deferred_seconds", 0.0)), 3),
            "try_number": int(run.get("try_number", 1)),
            "resumed_at_page": int(run.get("start_pages", 0)),
            "cursor": ckpt.get("cursor"),
            "done": bool(ckpt.get("done", False)),
            "started_at": run.get("started_at"),
            "finished_at": plan.iso(_utcnow()),
        }

    def _finish(
        self,
        settings: plan.SyncSettings,
        store: CheckpointStore,
        ckpt: dict[str, Any],
        stop_reason: str,
        context: Context,
    ) -> dict[str, Any]:
        self.absorb_stats(ckpt["current_run"])
        ckpt_run = ckpt["current_run"]
        summary = self._summary(settings, ckpt, stop_reason)
        ckpt["last_run"] = {
            k: summary[k] for k in ("pages", "orders", "quarantined", "calls", "stop_reason", "finished_at")
        }
        ckpt.pop("current_run", None)
        ckpt["updated_at"] = summary["finished_at"]
        self._save(store, settings, ckpt)
        self._record_run(settings, summary, context)
        cfg = self.hook.config
        if cfg.include_pii:  # the retention purge (buyer PII of orders not updated for that many days)
            self._warehouse().purge_pii(cfg.pii_retention_days)
        if settings.mode == "sweep":
            self._alert_events_pipe(settings, ckpt_run)
        self.log.info(
            "%s sync of %s stopped (%s): %d pages, %d orders, %d quarantined, %d SP-API calls, %d throttled, "
            "%d deferrals in this run; cursor %s",
            settings.mode,
            settings.conn_id,
            stop_reason,
            summary["pages"],
            summary["orders"],
            summary["quarantined"],
            summary["calls"],
            summary["throttled"],
            summary["deferrals"],
            summary["cursor"],
        )
        return summary

    def _alert_events_pipe(self, settings: plan.SyncSettings, run: dict[str, Any]) -> None:
        """Tell people when the sweep sees the event pipe broken: missed notifications, or none for longer
        than the seller's usual quiet time while orders change."""
        last_event = self._last_event(self._warehouse(), settings)
        if last_event is None:
            return
        conn = settings.conn_id
        alerts.send(
            alerts.missed_notifications(
                conn,
                missed=int(run.get("missed_by_events", 0)),
                threshold=alerts.setting("MISSED_THRESHOLD", 1),
            ),
            kind="missed_notifications",
            subject=conn,
        )
        changed = int(run.get("changes_after_last_event", 0))
        if not changed:
            return
        now = _utcnow()
        usual = self._warehouse().longest_notification_gap(conn, since=now - timedelta(days=7), now=now)
        quiet = max(timedelta(minutes=alerts.setting("QUIET_MINUTES", 60)), usual or timedelta(0))
        alerts.send(
            alerts.quiet_events(
                conn, last_notification=last_event, now=now, quiet=quiet, changes_seen=changed
            ),
            kind="quiet_events",
            subject=conn,
        )

    def _record_run(
        self,
        settings: plan.SyncSettings,
        summary: dict[str, Any],
        context: Context,
        *,
        error: str | None = None,
    ) -> None:
        from selling_partner.warehouse import SyncRunRecord

        started = plan.to_utc(summary["started_at"]) or _utcnow()
        finished = plan.to_utc(summary["finished_at"]) or _utcnow()
        ti = context.get("ti") if context else None
        status = "failed" if error else "success" if summary["caught_up"] else "partial"
        self._warehouse().record_sync_run(
            SyncRunRecord(
                conn_id=settings.conn_id,
                mode=settings.mode,
                status=status,
                window_start=plan.to_utc(summary["window_start"]) or settings.horizon,
                window_end=plan.to_utc(summary["window_end"]) or settings.horizon,
                pages=summary["pages"],
                orders=summary["orders"],
                calls=summary["calls"],
                throttled=summary["throttled"],
                duration_seconds=(finished - started).total_seconds(),
                seller_id=settings.seller_id,
                marketplace_ids=settings.marketplace_ids,
                api_version=settings.api_version,
                started_at=started,
                finished_at=finished,
                dag_id=getattr(ti, "dag_id", None),
                dag_run_id=run_id_of(context),
                task_id=getattr(ti, "task_id", None),
                error=error,
                try_number=summary["try_number"],
                deferrals=summary["deferrals"],
                deferred_seconds=summary["deferred_seconds"],
                retries=summary["retries"],
                quarantined=summary["quarantined"],
                missed_by_events=summary["missed_by_events"],
                run_id=":".join(
                    str(part)
                    for part in (
                        run_id_of(context),
                        getattr(ti, "task_id", ""),
                        settings.key,
                        summary["try_number"],
                    )
                )
                if context
                else None,
            )
        )


def _refuse_airflow_backfill(context: Context) -> None:
    """Airflow's own *Backfill* makes one run per 15-minute interval: refuse it, pointing at mode=backfill."""
    dag_run = context.get("dag_run") if context else None
    if str(getattr(dag_run, "run_type", "") or "") != "backfill":
        return
    from airflow.sdk.exceptions import AirflowFailException

    interval = (
        f"{plan.iso(plan.to_utc(getattr(dag_run, 'data_interval_start', None)))} .. "
        f"{plan.iso(plan.to_utc(getattr(dag_run, 'data_interval_end', None)))}"
    )
    raise AirflowFailException(
        f"this run was created by Airflow's Backfill (data interval {interval}); it would read history one "
        "15-minute interval per run, each costing at least one scarce searchOrders call. Load history with "
        "one run instead: Trigger DAG w/ config, mode = backfill, start_date and end_date of the range "
        "(windows of window_days, one page per 100 orders). Nothing was changed."
    )


__all__ = ["ORDERS_ASSET", "SpApiOrdersSyncOperator"]
