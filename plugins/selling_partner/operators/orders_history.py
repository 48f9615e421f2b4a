"""SpApiOrdersHistoryOperator: years of order history through the Reports API, resumably.

The operator only orchestrates: HTTP, auth and rate limits live in ``SellingPartnerReportsHook``, the
window ledger's rules in ``selling_partner.reports.ledger``, parsing in ``selling_partner.reports.parsing``
and SQL in the warehouse. One step: recover windows whose ``createReport`` may have been lost in a crash
(``getReports``) -> load DONE windows (download, parse, upsert, quarantine) -> poll the reports Amazon is
building (``getReport``) -> request new windows (``createReport``), at most ``max_in_flight`` at a time.
The ledger is saved after every transition. While Amazon builds the reports, or a FATAL window waits for
its retry, or a rate-limit token is far away, the task defers (no worker slot held) and resumes from the
ledger in a new process. At the end it hands over to the sweep of ``sp_api_orders_sync``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from selling_partner import sync as plan
from selling_partner.checkpoint import CheckpointStore, VariableCheckpointStore
from selling_partner.hooks.reports import SellingPartnerReportsHook
from selling_partner.operators.base import SellingPartnerBaseOperator, run_id_of, try_number_of
from selling_partner.pacing import Pace
from selling_partner.reports import ledger as lg
from selling_partner.reports.parsing import REPORT_TYPE, ReportFormatError, decode_document, parse_document
from selling_partner.validation import parse_bool

if TYPE_CHECKING:
    from airflow.sdk import Context

    from selling_partner.warehouse import Warehouse

#: Counters of one try kept in the ledger (``run``), so they survive deferrals.
RUN_COUNTERS = (
    "deferrals", "created", "reused", "loaded", "orders", "quarantined", "calls", "throttled", "retries",
)  # fmt: skip
LEDGER_DESCRIPTION = (
    "SP-API order history ledger (SpApiOrdersHistoryOperator): one entry per report window. Delete it, or "
    "trigger sp_api_orders_history with reset_ledger=true, to request every window again."
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SpApiOrdersHistoryOperator(SellingPartnerBaseOperator):
    """
    Load the orders last updated between ``start_date`` and ``end_date`` from Amazon's order reports.

    :param sp_api_conn_id: the seller's ``amazon_sp_api`` connection.
    :param warehouse_conn_id: postgres or sqlite connection of the warehouse.
    :param start_date: first lastUpdatedTime to load (ISO date or datetime, UTC), at most 730 days back.
    :param end_date: end of the range (default: now, fixed when the ledger is created).
    :param marketplace_ids: marketplaces to load (default: the connection's); one report per marketplace
        and window, because reports carry no marketplace id.
    :param window_days: window length, at most 30 (Amazon's limit for order reports).
    :param max_in_flight: reports at Amazon at the same time.
    :param poll_interval_seconds: how often a report Amazon is building is polled.
    :param fatal_retry_wait_seconds: wait before a FATAL window is requested again.
    :param max_fatal_retries: FATAL reports of one window before it is quarantined.
    :param handover_hours: the sweep continues this long before ``end_date`` (reports lag behind).
    :param reset_ledger: forget the ledger of this range first (first try only).
    :param checkpoint_store: where the ledger and the sweep checkpoint live (default: Airflow Variables).
    """

    hook_class = SellingPartnerReportsHook
    template_fields: Sequence[str] = (
        "sp_api_conn_id",
        "warehouse_conn_id",
        "start_date_param",
        "end_date_param",
        "marketplace_ids",
        "window_days",
        "max_fatal_retries",
        "reset_ledger",
    )
    ui_color = "#ffb84d"

    def __init__(
        self,
        *,
        warehouse_conn_id: str = "warehouse_default",
        start_date_param: str | datetime | None = None,
        end_date_param: str | datetime | None = None,
        marketplace_ids: str | list[str] | None = None,
        window_days: float | str = 30,
        max_in_flight: int = 4,
        poll_interval_seconds: float = 60.0,
        fatal_retry_wait_seconds: float = 1800.0,
        max_fatal_retries: int | str = 3,
        handover_hours: float = 2.0,
        reset_ledger: bool | str = False,
        checkpoint_store: CheckpointStore | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id
        # Not start_date/end_date: BaseOperator owns those names.
        self.start_date_param = start_date_param
        self.end_date_param = end_date_param
        self.marketplace_ids = marketplace_ids
        self.window_days = window_days
        self.max_in_flight = max(1, int(max_in_flight))
        self.poll_interval_seconds = float(poll_interval_seconds)
        self.fatal_retry_wait_seconds = float(fatal_retry_wait_seconds)
        self.max_fatal_retries = max_fatal_retries
        self.handover_hours = float(handover_hours)
        self.reset_ledger = reset_ledger
        self.checkpoint_store = checkpoint_store

    # ------------------------------------------------------------------ entry points

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            key, requested = self._requested()
            store = self._store()
            ledger = self._prepare(key, requested, store, context)
        except Exception:
            self.close_hook()
            raise
        return self._guarded(key, store, ledger)

    def resume(self, context: Context, event: Any = None, **_: Any) -> dict[str, Any]:
        """Continue after a deferral (a new process): everything is read from the ledger."""
        try:
            key, _requested = self._requested()
            store = self._store()
            ledger = store.load(key)
            if ledger is None:
                raise RuntimeError(
                    f"ledger {key} vanished while the task was deferred (deleted by hand?); rerun the task: "
                    "it requests the windows again and upserts are idempotent"
                )
            lg.check_ledger(ledger)
        except Exception:
            self.close_hook()
            raise
        ledger["run"]["deferrals"] = int(ledger["run"].get("deferrals", 0)) + 1
        return self._guarded(key, store, ledger)

    def _guarded(self, key: str, store: CheckpointStore, ledger: dict[str, Any]) -> dict[str, Any]:
        """Run the loop; every try that ends (success or failure) is recorded in ``sp_sync_runs``."""
        from airflow.sdk.exceptions import TaskDeferred

        try:
            return self._run(key, store, ledger)
        except TaskDeferred:
            raise
        except Exception as exc:
            from selling_partner.warehouse import error_summary

            try:
                self._record_run(ledger, error=error_summary(exc))
            except Exception:  # the warehouse may be what failed: the original error matters
                self.log.exception("could not record the failed try in sp_sync_runs")
            raise
        finally:
            self.close_hook()

    # ------------------------------------------------------------------ configuration

    def _requested(self) -> tuple[str, dict[str, Any]]:
        cfg = self.hook.config
        mkts = plan.parse_marketplace_ids(self.marketplace_ids) or sorted(cfg.marketplace_ids)
        start = plan.to_utc(self.start_date_param)
        if start is None:
            raise ValueError("a history load needs a start date (Param start_date), ISO, UTC")
        end = plan.to_utc(self.end_date_param)
        window_days = float(self.window_days)
        lg.validate_range(start, end or _utcnow(), now=_utcnow(), window_days=window_days)
        requested = {
            "start": plan.iso(start),
            "end": plan.iso(end),
            "marketplace_ids": list(mkts),
            "window_days": window_days,
        }
        return lg.ledger_key(self.sp_api_conn_id, requested), requested

    def _store(self) -> CheckpointStore:
        if self.checkpoint_store is not None:
            return self.checkpoint_store
        return VariableCheckpointStore(description=LEDGER_DESCRIPTION)

    def _warehouse(self) -> Warehouse:
        if "_wh" not in self.__dict__:
            from selling_partner.warehouse import get_warehouse

            self._wh = get_warehouse(self.warehouse_conn_id)
            self._wh.ensure_schema()
            if self.hook.config.include_pii:
                self._wh.pii_cipher()  # no key connection: fail now, naming the fix, before loading
        return self._wh

    def _prepare(
        self, key: str, requested: dict[str, Any], store: CheckpointStore, context: Context
    ) -> dict[str, Any]:
        try_number = try_number_of(context)
        if parse_bool(self.reset_ledger, name="reset_ledger") and try_number <= 1:
            self.log.info("reset_ledger: deleting %s", key)
            store.delete(key)
        now = _utcnow()
        ledger = store.load(key)
        run_id = run_id_of(context)
        if (
            ledger is not None
            and lg.check_ledger(ledger).get("done")
            and not any(w["status"] == "QUARANTINED" for w in ledger["windows"])
            and ledger.get("run", {}).get("run_id") != run_id
        ):
            # A new trigger of a history that finished cleanly loads it again (like a new backfill).
            self.log.info("history %s finished before; this new run loads it again", key)
            ledger = None
        if ledger is None:
            start = plan.to_utc(requested["start"])
            end = plan.to_utc(requested["end"]) or now.replace(microsecond=0)
            assert start is not None
            windows = lg.plan_windows(start, end, requested["marketplace_ids"], requested["window_days"])
            ledger = lg.new_ledger(
                conn_id=self.sp_api_conn_id,
                requested=requested,
                report_type=REPORT_TYPE,
                windows=windows,
                now=now,
            )
            ledger["end"] = plan.iso(end)
            self.log.info(
                "new history ledger %s: %s -> %s, %d windows over %s",
                key, requested["start"], ledger["end"], len(windows), ", ".join(requested["marketplace_ids"]),
            )  # fmt: skip
        else:
            if ledger.get("run", {}).get("run_id") != run_id:
                ledger, reopened = lg.reopen_quarantined(ledger, now=now)
                if reopened:
                    self.log.info("a new run tries the %d quarantined windows again", reopened)
            self.log.info("resuming history ledger %s: %s", key, _describe(ledger))
        ti = context.get("ti") if context else None
        ledger["run"] = {
            "run_id": run_id,
            "dag_id": getattr(ti, "dag_id", None),
            "task_id": getattr(ti, "task_id", None),
            "try_number": try_number,
            "started_at": plan.iso(now),
            "deferred_seconds": 0.0,
            **dict.fromkeys(RUN_COUNTERS, 0),
        }
        store.save(key, ledger)
        return ledger

    # ------------------------------------------------------------------ the loop

    def _run(self, key: str, store: CheckpointStore, ledger: dict[str, Any]) -> dict[str, Any]:
        from selling_partner.hooks.errors import SpApiRateLimitWait

        if self.hook.config.include_pii:
            self._warehouse()  # checks the PII key connection before the first report is requested
        while True:
            now = _utcnow()
            step = lg.next_plan(ledger, now=now, max_in_flight=self.max_in_flight)
            if step.finished:
                return self._finish(key, store, ledger)
            try:
                for window_id in step.recover:
                    self._recover(store, key, ledger, window_id)
                for window_id in step.load:
                    self._load(store, key, ledger, window_id)
                for window_id in step.poll:
                    self._poll(store, key, ledger, window_id)
                for window_id in step.create:
                    self._create(store, key, ledger, window_id)
            except SpApiRateLimitWait as exc:
                self._wait(store, key, ledger, exc.wait_seconds, f"{exc.operation} quota")
                continue
            after = lg.next_plan(ledger, now=_utcnow(), max_in_flight=self.max_in_flight)
            if after.finished or after.load or after.create or after.recover:
                continue  # work that can be done now
            waits = [w for w in (self.poll_interval_seconds if after.poll else None, after.retry_in) if w]
            self._wait(store, key, ledger, min(waits) if waits else self.poll_interval_seconds, "reports")

    def _wait(
        self, store: CheckpointStore, key: str, ledger: dict[str, Any], seconds: float, what: str
    ) -> None:
        pace = self.pace(seconds)
        if pace.action == "defer":
            run = ledger["run"]
            run["deferred_seconds"] = float(run.get("deferred_seconds", 0.0)) + pace.seconds
            self.absorb_stats(run)
            store.save(key, ledger)
            self.log.info("waiting for %s: %s", what, _describe(ledger))
            self.defer_for(Pace("defer", pace.seconds, f"{what}: deferring {pace.seconds:.1f} s"))
        if pace.seconds > 0:
            time.sleep(pace.seconds)

    def _save(self, store: CheckpointStore, key: str, ledger: dict[str, Any]) -> None:
        store.save(key, ledger)

    def _create(self, store: CheckpointStore, key: str, ledger: dict[str, Any], window_id: str) -> None:
        w = lg.window(ledger, window_id)
        if self.hook.seconds_until_available("createReport") > 0:
            from selling_partner.hooks.errors import SpApiRateLimitWait

            # Checked before CREATING is saved, so a quota wait does not leave a window to recover.
            raise SpApiRateLimitWait("createReport", self.hook.seconds_until_available("createReport"))
        ledger = lg.mark_creating(ledger, window_id, now=_utcnow())
        self._save(store, key, ledger)
        report_id = self.hook.create_report(
            ledger["report_type"],
            [w["marketplace_id"]],
            data_start_time=plan.to_utc(w["start"]),
            data_end_time=plan.to_utc(w["end"]),
        )
        lg.mark_created(ledger, window_id, report_id, now=_utcnow())
        ledger["run"]["created"] += 1
        self._save(store, key, ledger)
        self.log.info("window %s: requested report %s", window_id, report_id)

    def _recover(self, store: CheckpointStore, key: str, ledger: dict[str, Any], window_id: str) -> None:
        """A window saved as CREATING: did Amazon accept the request before the crash? (``getReports``)"""
        w = lg.window(ledger, window_id)
        since = (plan.to_utc(w.get("requested_at")) or _utcnow()) - timedelta(minutes=5)
        reports = self.hook.get_reports(
            report_types=[ledger["report_type"]], marketplace_ids=[w["marketplace_id"]], created_since=since
        )
        found = lg.matching_report(reports, w, ledger["report_type"])
        if found is None:
            lg.mark_lost(ledger, window_id, now=_utcnow())
            self.log.info("window %s: no report of an interrupted request; requesting it again", window_id)
        else:
            lg.mark_created(ledger, window_id, str(found["reportId"]), now=_utcnow())
            ledger["run"]["reused"] += 1
            self._apply(ledger, window_id, found)
            self.log.info("window %s: reusing report %s (%s)", window_id, found["reportId"], w["status"])
        self._save(store, key, ledger)

    def _poll(self, store: CheckpointStore, key: str, ledger: dict[str, Any], window_id: str) -> None:
        w = lg.window(ledger, window_id)
        before = w["status"]
        report = self.hook.get_report(w["report_id"])
        self._apply(ledger, window_id, report)
        if w["status"] != before:
            self.log.info("window %s: report %s is %s", window_id, report.get("reportId"), w["status"])
            self._save(store, key, ledger)

    def _apply(self, ledger: dict[str, Any], window_id: str, report: dict[str, Any]) -> None:
        reason = None
        if report.get("processingStatus") == "FATAL":
            reason = self._fatal_reason(report)
        lg.apply_report(
            ledger,
            window_id,
            report,
            now=_utcnow(),
            fatal_reason=reason,
            retry_wait=timedelta(seconds=self.fatal_retry_wait_seconds),
            max_fatal_retries=int(self.max_fatal_retries),
        )
        w = lg.window(ledger, window_id)
        if w["status"] in ("RETRY_WAIT", "QUARANTINED"):
            self.log.warning("window %s: %s", window_id, w["error"])

    def _fatal_reason(self, report: dict[str, Any]) -> str:
        """The first line of a FATAL report's error document (Amazon's reason), or why there is none."""
        document_id = report.get("reportDocumentId")
        if not document_id:
            return "FATAL without an error document"
        document = self.hook.download_document(str(document_id))
        text, _ = decode_document(document.content, document.content_type)
        return (text.strip().splitlines() or ["(empty error document)"])[0][:500]

    def _load(self, store: CheckpointStore, key: str, ledger: dict[str, Any], window_id: str) -> None:
        """Download, parse and upsert a DONE window, then mark it LOADED (a crash before that reloads it:
        upserts are idempotent)."""
        w = lg.window(ledger, window_id)
        cfg = self.hook.config
        document = self.hook.download_document(w["document_id"])
        try:
            parsed, codec = parse_document(
                document.content,
                document.content_type,
                marketplace_id=w["marketplace_id"],
                seller_id=cfg.seller_id,
                include_pii=cfg.include_pii,
            )
        except ReportFormatError as exc:
            if "Date range exceeded" in str(exc):
                lg.mark_range_exceeded(ledger, window_id, now=_utcnow())
                self.log.warning(
                    "window %s: Amazon answered 'Date range exceeded'; %s", window_id, w["error"]
                )
            else:
                w.update(status="QUARANTINED", error=f"unreadable report {w['report_id']}: {exc}")
                self.log.warning("window %s: %s", window_id, w["error"])
            self._save(store, key, ledger)
            return
        warehouse = self._warehouse()
        orders = parsed.orders
        if cfg.include_pii and orders:
            # sp_order_buyers keeps the newest version (ties replace): never a report's partial address
            # over an API record's buyer of the same or a newer version.
            stored = warehouse.order_versions([o.order_id for o in orders])
            orders = [
                o.replace(buyer=None)
                if o.order_id in stored and stored[o.order_id] >= o.last_updated_time
                else o
                for o in orders
            ]
        if orders:
            warehouse.upsert_orders(orders)
        if parsed.rejected:
            warehouse.quarantine_orders(self._quarantine_rows(ledger, w, parsed.rejected))
        lg.mark_loaded(
            ledger, window_id, orders=len(orders), rows=parsed.rows, rejected=len(parsed.rejected),
            codec=codec, now=_utcnow(),
        )  # fmt: skip
        ledger["run"]["loaded"] += 1
        ledger["run"]["orders"] += len(orders)
        ledger["run"]["quarantined"] += len(parsed.rejected)
        self._save(store, key, ledger)
        self.log.info(
            "window %s: loaded report %s: %d orders from %d rows%s (%s%s); %s",
            window_id, w["report_id"], len(orders), parsed.rows,
            f", {len(parsed.rejected)} quarantined" if parsed.rejected else "", codec,
            ", gzip" if document.was_gzip else "", _describe(ledger),
        )  # fmt: skip

    def _quarantine_rows(self, ledger: dict[str, Any], w: dict[str, Any], rejected: list[Any]) -> list[Any]:
        from selling_partner.reports.parsing import REPORT_API_VERSION
        from selling_partner.warehouse import OrderQuarantineRow

        now = _utcnow()
        return [
            OrderQuarantineRow(
                order_id=r.order_id,
                source="report",
                reason=r.reason,
                raw_record=r.raw,
                seen_at=now,
                seller_id=self.hook.config.seller_id,
                conn_id=self.sp_api_conn_id,
                api_version=REPORT_API_VERSION,
                last_updated_time=r.last_updated_time,
                dag_run_id=ledger["run"].get("run_id"),
            )
            for r in rejected
        ]

    # ------------------------------------------------------------------ the end

    def _finish(self, key: str, store: CheckpointStore, ledger: dict[str, Any]) -> dict[str, Any]:
        self.absorb_stats(ledger["run"])
        now = _utcnow()
        if not ledger.get("handover"):
            ledger["handover"] = self._handover(store, ledger, now)
        ledger["done"] = True
        ledger["updated_at"] = plan.iso(now)
        store.save(key, ledger)
        status = lg.counts(ledger)
        quarantined = [w for w in ledger["windows"] if w["status"] == "QUARANTINED"]
        summary = {
            "ledger_key": key,
            "conn_id": self.sp_api_conn_id,
            "start": ledger["requested"]["start"],
            "end": ledger.get("end"),
            "marketplace_ids": ledger["requested"]["marketplace_ids"],
            "windows": {s: n for s, n in status.items() if n},
            "orders": sum(int(w.get("orders", 0)) for w in ledger["windows"]),
            "quarantined_windows": [{"id": w["id"], "reason": w["error"]} for w in quarantined],
            "handover": ledger["handover"],
            **{f"run_{k}": v for k, v in ledger["run"].items() if isinstance(v, int)},
        }
        self.log.info("history %s finished: %s", key, _describe(ledger))
        if not quarantined:
            self._record_run(ledger)
        if quarantined:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{len(quarantined)} report window(s) were quarantined after repeated failures, e.g. "
                f"{quarantined[0]['id']}: {str(quarantined[0]['error']).rstrip('.')}. Everything else is "
                "loaded. Trigger the same history again later: a new run requests only the quarantined "
                "windows."
            )
        return summary

    def _record_run(self, ledger: dict[str, Any], *, error: str | None = None) -> None:
        """One ``sp_sync_runs`` row per try (``mode = history``; ``pages`` = report windows loaded)."""
        from selling_partner.reports.parsing import REPORT_API_VERSION
        from selling_partner.warehouse import SyncRunRecord

        run = ledger["run"]
        self.absorb_stats(run)
        now = _utcnow()
        started = plan.to_utc(run.get("started_at")) or now
        start = plan.to_utc(ledger["requested"]["start"]) or now
        key = lg.ledger_key(self.sp_api_conn_id, ledger["requested"])
        self._warehouse().record_sync_run(
            SyncRunRecord(
                conn_id=self.sp_api_conn_id,
                mode="history",
                status="failed" if error else "success",
                window_start=start,
                window_end=plan.to_utc(ledger.get("end")) or now,
                pages=int(run["loaded"]),
                orders=int(run["orders"]),
                calls=int(run["calls"]),
                throttled=int(run["throttled"]),
                duration_seconds=(now - started).total_seconds(),
                seller_id=self.hook.config.seller_id,
                marketplace_ids=ledger["requested"]["marketplace_ids"],
                api_version=REPORT_API_VERSION,
                started_at=started,
                finished_at=now,
                dag_id=run.get("dag_id"),
                dag_run_id=run.get("run_id"),
                task_id=run.get("task_id"),
                error=error,
                run_id=f"{run.get('run_id')}:{run.get('task_id')}:{key}:{run.get('try_number')}",
                try_number=int(run.get("try_number") or 1),
                deferrals=int(run["deferrals"]),
                deferred_seconds=float(run.get("deferred_seconds", 0.0)),
                retries=int(run["retries"]),
                quarantined=int(run["quarantined"]),
            )
        )

    def _handover(self, store: CheckpointStore, ledger: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Start (or move on) the sweep of sp_api_orders_sync for the same marketplaces at the history's
        end minus ``handover_hours``: the sweep reads the last hours, which reports may lack."""
        mkts = ledger["requested"]["marketplace_ids"]
        sweep_key = plan.checkpoint_key(self.sp_api_conn_id, mkts, "sweep")
        end = plan.to_utc(ledger.get("end")) or now
        start = plan.to_utc(ledger["requested"]["start"])
        assert start is not None
        target = max(start, end - timedelta(hours=self.handover_hours))
        sweep = store.load(sweep_key)
        action, cursor = lg.handover(sweep, history_start=start, target=target)
        if action == "create":
            store.save(
                sweep_key,
                plan.new_checkpoint(
                    mode="sweep", conn_id=self.sp_api_conn_id, marketplace_ids=mkts, cursor=target, now=now
                ),
            )
        elif action == "advance" and sweep is not None:
            sweep.update(cursor=plan.iso(cursor), updated_at=plan.iso(now))
            store.save(sweep_key, sweep)
        self.log.info("hand-over to the sweep (%s): %s at %s", sweep_key, action, plan.iso(cursor))
        return {"sweep_checkpoint": sweep_key, "action": action, "cursor": plan.iso(cursor)}


def _describe(ledger: dict[str, Any]) -> str:
    return ", ".join(f"{n} {s}" for s, n in lg.counts(ledger).items() if n) or "no windows"


__all__ = ["SpApiOrdersHistoryOperator"]
