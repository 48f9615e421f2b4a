"""SpApiPipelineHealthOperator: the event path's health as gauges and alerts, from the warehouse alone.

Runs at the start of every ``sp_api_order_enrich`` run (which the land task triggers, and a safety
schedule every 30 minutes). Per seller connection it sets the gauges
``sp_api.enrichment.queue_depth.<conn>`` and ``sp_api.enrichment.oldest_age_seconds.<conn>`` and alerts
when the oldest queued order waits longer than ``SP_API_ALERT_STUCK_MINUTES`` (60); across sellers it
alerts when more than ``SP_API_ALERT_QUARANTINE_PER_HOUR`` (10) messages or records were quarantined in
the last hour. It never calls SP-API and never fails the run: a health check that cannot read the
warehouse says so in the log and the enrichment goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from selling_partner import alerts, metrics

if TYPE_CHECKING:
    from airflow.sdk import Context


class SpApiPipelineHealthOperator(BaseOperator):
    """Queue depth and age gauges, stuck-queue and quarantine-growth alerts (see the module docstring).

    :param sp_api_conn_ids: the seller connections whose queues are watched
    :param warehouse_conn_id: postgres or sqlite connection of the warehouse
    """

    template_fields: Sequence[str] = ("warehouse_conn_id",)
    ui_color = "#e8f4ea"

    def __init__(self, *, sp_api_conn_ids: Sequence[str], warehouse_conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sp_api_conn_ids = list(sp_api_conn_ids)
        self.warehouse_conn_id = warehouse_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from selling_partner.warehouse import get_warehouse

        now = datetime.now(UTC)
        try:
            warehouse = get_warehouse(self.warehouse_conn_id)
            warehouse.ensure_schema()
            backlog = warehouse.enrichment_backlog()
            quarantined = warehouse.quarantined_since(now - timedelta(hours=1))
        except Exception as exc:  # health must not hold up the enrichment
            self.log.warning("health check skipped: the warehouse could not be read (%s: %s)",
                             type(exc).__name__, exc)  # fmt: skip
            return {"checked": False}
        stuck_after = timedelta(minutes=alerts.setting("STUCK_MINUTES", 60))
        queues: dict[str, dict[str, Any]] = {}
        for conn_id in self.sp_api_conn_ids:
            depth, oldest = backlog.get(conn_id, (0, None))
            age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
            metrics.gauge("enrichment", "queue_depth", conn_id, value=depth)
            metrics.gauge("enrichment", "oldest_age_seconds", conn_id, value=age)
            queues[conn_id] = {"queued": depth, "oldest_age_seconds": round(age, 1)}
            self.log.info("enrichment queue of %s: %d orders, oldest queued %.0f s ago", conn_id, depth, age)
            alerts.send(
                alerts.stuck_enrichment(conn_id, queued=depth, oldest=oldest, now=now, stuck=stuck_after),
                kind="stuck_enrichment",
                subject=conn_id,
            )
        counts = alerts.quarantine_counts(quarantined)
        self.log.info("quarantined in the last hour: %d (%s)", len(quarantined),
                      "; ".join(f"{n} x {r}" for r, n in sorted(counts.items())) or "none")  # fmt: skip
        alerts.send(
            alerts.quarantine_growth(counts, per_hour=alerts.setting("QUARANTINE_PER_HOUR", 10)),
            kind="quarantine_growth",
        )
        return {"checked": True, "queues": queues, "quarantined_last_hour": len(quarantined)}
