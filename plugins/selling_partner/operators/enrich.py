"""SpApiEnrichOrdersOperator: drain one seller's enrichment queue, one getOrder per order, within budget.

The event path writes an order's status from its notification's Summary in seconds; this operator
fetches the details (v2026 ``getOrder`` carries items and packages; v0 adds ``getOrderItems``) at
Amazon's rate, oldest event first. Per batch: claim orders (orders already as fresh as their newest
event - a sweep loaded them - leave the queue without a call) -> for each: pace, fetch, map -> load
the fetched orders and settle the claims in one transaction. A 404 or a failing call is retried later
with backoff; after ``max_attempts`` (or at once for a record that cannot be mapped) the order goes to
``sp_order_quarantine`` with the reason and the attempt count, never retried forever. Long quota
waits defer the task; it stops at its time budget and leaves the rest queued. Claims carry a lease,
so two runs that ever overlap never fetch the same order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from selling_partner.hooks.orders import SellingPartnerOrdersHook
from selling_partner.operators.base import SellingPartnerBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from selling_partner.warehouse import EnrichmentClaim, EnrichmentOutcome, Warehouse

#: Counters of a run; they travel through deferrals in the trigger's kwargs.
COUNTERS = (
    "claimed",
    "fetched",
    "skipped",
    "done",
    "newer_event",
    "retry",
    "quarantined",
    "calls",
    "deferrals",
)
#: A server error this many times in a row ends the run (Amazon is failing: rerun later).
MAX_SERVER_ERRORS_IN_A_ROW = 3


def _utcnow() -> datetime:
    return datetime.now(UTC)


def backoff(attempts: int, *, base: float = 60.0, cap: float = 3600.0) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: 1, 2, 4 ... minutes, at most an hour."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


class SpApiEnrichOrdersOperator(SellingPartnerBaseOperator):
    """Fetch the details of one seller's queued orders (see the module docstring).

    :param sp_api_conn_id: the seller's ``amazon_sp_api`` connection (its queue rows carry it)
    :param warehouse_conn_id: postgres or sqlite connection of the warehouse
    :param batch_size: orders claimed, fetched and committed together
    :param time_budget_seconds: stop after this long (deferrals included); the rest stays queued
    :param max_attempts: failed fetches of one order before it is quarantined
    :param lease_seconds: how long a claim keeps other runs off an order
    """

    hook_class = SellingPartnerOrdersHook
    template_fields = ("sp_api_conn_id", "warehouse_conn_id", "time_budget_seconds")
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        warehouse_conn_id: str = "warehouse_default",
        batch_size: int = 25,
        time_budget_seconds: float | str | None = 900,
        max_attempts: int = 5,
        lease_seconds: float = 600,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id
        self.batch_size = batch_size
        self.time_budget_seconds = time_budget_seconds
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds

    def execute(self, context: Context) -> dict[str, Any]:
        run = {"started_at": _utcnow().isoformat(), **dict.fromkeys(COUNTERS, 0)}
        from selling_partner.warehouse import get_warehouse

        get_warehouse(self.warehouse_conn_id).ensure_schema()
        return self._guarded(run, context)

    def resume(self, context: Context, event: Any = None, run: dict[str, Any] | None = None, **_: Any) -> Any:
        """Continue after a quota deferral (a new process; the queue holds the state, ``run`` the counts)."""
        run = dict(run or {"started_at": _utcnow().isoformat(), **dict.fromkeys(COUNTERS, 0)})
        run["deferrals"] = int(run.get("deferrals", 0)) + 1
        self.log.info("resumed after rate-limit deferral #%d", run["deferrals"])
        return self._guarded(run, context)

    def _guarded(self, run: dict[str, Any], context: Context) -> dict[str, Any]:
        try:
            return self._drain(run, context)
        finally:
            self.close_hook()

    # ------------------------------------------------------------------ the loop

    def _budget_left(self, run: dict[str, Any]) -> float | None:
        if self.time_budget_seconds in (None, "", "None"):
            return None
        elapsed = (_utcnow() - datetime.fromisoformat(run["started_at"])).total_seconds()
        return float(self.time_budget_seconds) - elapsed  # type: ignore[arg-type]

    def _drain(self, run: dict[str, Any], context: Context) -> dict[str, Any]:
        from selling_partner.warehouse import get_warehouse

        warehouse = get_warehouse(self.warehouse_conn_id)
        worker = (
            f"{context.get('run_id', 'adhoc') if context else 'adhoc'}:{self.task_id}:{uuid.uuid4().hex[:8]}"
        )
        stop_reason = "queue empty"
        while True:
            left = self._budget_left(run)
            if left is not None and left <= 0:
                stop_reason = "time budget spent"
                break
            claims, skipped = warehouse.claim_enrichment(
                self.sp_api_conn_id, worker=worker, limit=self.batch_size, lease_seconds=self.lease_seconds
            )
            run["skipped"] += skipped
            if not claims:
                break
            run["claimed"] += len(claims)
            if self.hook.config.include_pii:
                warehouse.pii_cipher()  # no key connection: fail now, naming the fix, before any getOrder
            stop_reason = self._enrich(warehouse, worker, claims, run)
            if stop_reason:
                break
            stop_reason = "queue empty"
        backlog = warehouse.enrichment_backlog().get(self.sp_api_conn_id, (0, None))
        run["calls"] += self.hook.stats.totals()["calls"] if "hook" in self.__dict__ else 0
        summary = {**run, "conn_id": self.sp_api_conn_id, "stop_reason": stop_reason, "queued": backlog[0],
                   "oldest_queued_at": backlog[1].isoformat() if backlog[1] else None}  # fmt: skip
        self.log.info(
            "enrichment of %s stopped (%s): %d fetched, %d done, %d skipped (already fresh), %d kept for a "
            "newer event, %d to retry, %d quarantined, %d deferrals; %d orders queued (oldest since %s)",
            self.sp_api_conn_id, stop_reason, run["fetched"], run["done"], run["skipped"],
            run["newer_event"], run["retry"], run["quarantined"], run["deferrals"], summary["queued"],
            summary["oldest_queued_at"] or "-",
        )  # fmt: skip
        return summary

    def _enrich(
        self, warehouse: Warehouse, worker: str, claims: list[EnrichmentClaim], run: dict[str, Any]
    ) -> str | None:
        """Fetch one claimed batch and settle it; returns why to stop (``None``: go on)."""
        from selling_partner.hooks.errors import (
            SpApiAuthError,
            SpApiError,
            SpApiForbidden,
            SpApiNotFound,
            SpApiRateLimitWait,
            SpApiServerError,
        )
        from selling_partner.orders.mapping import UnmappableRecord
        from selling_partner.warehouse import EnrichmentOutcome

        hook = self.hook
        orders, outcomes = [], []
        stop: str | None = None
        pace = None
        server_errors = 0
        for n, claim in enumerate(claims):
            pace = self.pace(
                hook.seconds_until_available(hook.get_operation), budget_left=self._budget_left(run)
            )
            if pace.action in ("stop", "defer"):
                stop = pace.reason
                outcomes += [EnrichmentOutcome(c.order_id) for c in claims[n:]]  # release the rest
                break
            now = _utcnow()
            try:
                order = hook.get_canonical_order(claim.order_id)
            except SpApiRateLimitWait as exc:
                pace = self.pace(exc.wait_seconds, budget_left=self._budget_left(run))
                stop = pace.reason
                outcomes += [EnrichmentOutcome(c.order_id) for c in claims[n:]]
                break
            except UnmappableRecord as exc:
                outcomes.append(self._give_up(claim, exc.rejected.reason, now, raw=exc.rejected.raw_json,
                                              version=exc.rejected.last_updated_time))  # fmt: skip
                continue
            except (SpApiAuthError, SpApiForbidden):
                outcomes += [EnrichmentOutcome(c.order_id) for c in claims[n:]]
                warehouse.finish_enrichment(worker=worker, orders=orders, outcomes=outcomes)
                raise  # the connection or the app's roles are wrong: every order would fail the same way
            except (SpApiNotFound, SpApiError) as exc:
                server_errors = server_errors + 1 if isinstance(exc, SpApiServerError) else 0
                outcomes.append(self._failed(claim, exc, now))
                if server_errors >= MAX_SERVER_ERRORS_IN_A_ROW:
                    outcomes += [EnrichmentOutcome(c.order_id) for c in claims[n + 1 :]]
                    warehouse.finish_enrichment(worker=worker, orders=orders, outcomes=outcomes)
                    raise
                continue
            server_errors = 0
            run["fetched"] += 1
            order = order.replace(source="event")  # fetched because of an event (not by the sweep)
            orders.append(order)
            if order.last_updated_time < claim.newest_event_time and claim.attempts + 1 < self.max_attempts:
                # Amazon served an older version than the notification announced (eventual consistency):
                # keep what it served and fetch again a little later.
                retry_at = now + backoff(claim.attempts + 1, base=5)
                outcomes.append(
                    EnrichmentOutcome(claim.order_id, version=order.last_updated_time, retry_at=retry_at)
                )
            else:
                # Amazon's answer is the truth from here (after max_attempts of an older version too).
                version = max(order.last_updated_time, claim.newest_event_time)
                outcomes.append(EnrichmentOutcome(claim.order_id, version=version))
        result = warehouse.finish_enrichment(worker=worker, orders=orders, outcomes=outcomes)
        for name in ("done", "newer_event", "retry", "quarantined"):
            run[name] += getattr(result, name)
        if pace is not None and pace.action == "defer":
            run["calls"] += hook.stats.totals()["calls"]
            self.defer_for(pace, kwargs={"run": run})
        return stop

    def _failed(self, claim: EnrichmentClaim, exc: Exception, now: datetime) -> EnrichmentOutcome:
        from selling_partner.warehouse import EnrichmentOutcome, error_summary

        attempts = claim.attempts + 1
        if attempts >= self.max_attempts:
            return self._give_up(claim, f"{error_summary(exc)} (after {attempts} attempts)", now)
        self.log.warning("order %s: %s; attempt %d of %d, retried at %s", claim.order_id, error_summary(exc),
                         attempts, self.max_attempts, (now + backoff(attempts)).isoformat())  # fmt: skip
        return EnrichmentOutcome(claim.order_id, error=error_summary(exc), retry_at=now + backoff(attempts))

    def _give_up(
        self,
        claim: EnrichmentClaim,
        reason: str,
        now: datetime,
        *,
        raw: str = "{}",
        version: datetime | None = None,
    ) -> EnrichmentOutcome:
        from selling_partner.warehouse import EnrichmentOutcome, OrderQuarantineRow

        cfg = self.hook.config
        self.log.warning("order %s quarantined (sp_order_quarantine): %s", claim.order_id, reason)
        row = OrderQuarantineRow(
            order_id=claim.order_id,
            source="enrich",
            raw_record=raw,
            reason=f"{reason} [attempts: {claim.attempts + 1}]",
            seen_at=now,
            seller_id=cfg.seller_id,
            conn_id=self.sp_api_conn_id,
            api_version=cfg.orders_api_version,
            last_updated_time=version,
            task_id=self.task_id,
            dag_id=getattr(self, "dag_id", None),
        )
        return EnrichmentOutcome(claim.order_id, error=reason, quarantine=row)


__all__ = ["SpApiEnrichOrdersOperator", "backoff"]
