"""The event path's environment: sandboxes publishing into a moto SQS queue, the DAGs' connections.

``event_path(sellers=..., ...) -> EventPath`` starts one sandbox per seller connection, each
publishing its notifications into one shared moto queue (or into a holding queue the test releases
from, to decide the delivery order), and sets what the DAGs read: ``SP_API_CONN_IDS``, one
``amazon_sp_api`` connection per seller (rate limits scaled like the sandbox), ``aws_sp_api_events``
(moto's endpoint), the Variable ``sp_api_events_queue_url`` and ``warehouse_default`` (a private
PostgreSQL schema or SQLite file). Rate-limit buckets of earlier sandboxes are forgotten (the sync
tests' helpers: the sandbox's seller ids are fixed per region).

``EventPath`` runs the real DAGs with ``dag.test()`` (``run_events``, ``run_enrich``), reads the
queue and the sandbox's stats, and compares the warehouse with each sandbox's truth through the
independent oracle (``tests/oracle.py``, event-path view).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests import oracle
from tests.fixtures.airflow import load_dag, run_dag, xcom_result
from tests.fixtures.sandbox import MotoSqsFixture, Sandbox
from tests.hooks.conftest import scaled_limits
from tests.sync.conftest import _fresh_limiter, conn_json, forget_sync_state  # noqa: F401 - a fixture

EVENTS_DAG = "sp_api_order_events"
ENRICH_DAG = "sp_api_order_enrich"
LAND = "land_and_apply"
ACK = "ack"
SENSOR = "wait_for_notifications"
AWS_CONN_ID = "aws_sp_api_events"
WAREHOUSE_CONN_ID = "warehouse_default"


def aws_conn_json(endpoint: str) -> str:
    """``AIRFLOW_CONN_*`` JSON of an ``aws`` connection to an SQS-compatible ``endpoint``."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )


@dataclass
class Seller:
    """One seller connection, its sandbox and every notification it published."""

    conn_id: str
    sandbox: Sandbox
    reports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seller_id(self) -> str:
        return self.sandbox.seller_id

    def advance(self, **options: Any) -> dict[str, Any]:
        """``POST /_sandbox/advance`` (the world moves on and publishes); the report is kept."""
        report = self.sandbox.advance(**options)
        self.reports.append(report)
        return report

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification of this seller the sandbox published (dropped ones left out)."""
        dropped = {d["notification_id"] for r in self.reports for d in r["dropped"]}
        return [c for r in self.reports for c in r["changes"] if c["notification_id"] not in dropped]

    def noise(self) -> dict[str, list[Any]]:
        """The poison bodies and foreign-seller notifications published, over every advance."""
        return {
            "poison": [b for r in self.reports for b in r["noise"]["poison"]],
            "foreign_seller": [f for r in self.reports for f in r["noise"]["foreign_seller"]],
        }

    def order_ids(self) -> set[str]:
        return {n["order_id"] for n in self.notifications()}

    def calls(self, operation: str) -> dict[str, int]:
        """The sandbox's counters of one operation (``calls``, ``throttled``, ``errors``, ``ok``)."""
        empty = {"calls": 0, "throttled": 0, "errors": 0, "ok": 0}
        return {**empty, **self.sandbox.stats()["operations"].get(operation, {})}


@dataclass
class EventPath:
    """The DAGs' environment for one test (see the module docstring)."""

    sqs: MotoSqsFixture
    queue_url: str
    publish_queue_url: str
    warehouse_conn_id: str
    sellers: dict[str, Seller]

    @property
    def seller(self) -> Seller:
        """The first (or only) seller."""
        return next(iter(self.sellers.values()))

    def warehouse(self) -> Any:
        from selling_partner.warehouse import get_warehouse

        return get_warehouse(self.warehouse_conn_id)

    # ------------------------------------------------------------------ the queue

    def queue_depth(self) -> tuple[int, int]:
        """``(visible, in flight)`` messages of the events queue."""
        attrs = self.sqs.client().get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def held(self) -> list[str]:
        """Take every body the sandboxes published into the holding queue (the test delivers them)."""
        assert self.publish_queue_url != self.queue_url, "this environment publishes straight to the queue"
        return [m["Body"] for m in self.sqs.receive_all(self.publish_queue_url)]

    def deliver(self, bodies: list[str]) -> None:
        """Send ``bodies`` into the events queue in this order (what SQS delivers is then up to it)."""
        client = self.sqs.client()
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
            response = client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            assert not response.get("Failed"), response["Failed"]

    # ------------------------------------------------------------------ the DAGs

    def events_dag(self) -> Any:
        """The events DAG as parsed from dags/ (its sensor returns with the first batch)."""
        return load_dag(EVENTS_DAG)

    def run_events(self, dag: Any = None, *, expect: str = "success") -> dict[str, Any]:
        """One run of ``sp_api_order_events`` (``dag.test()``); returns ``{"run", "land", "ack"}``."""
        dr = run_dag(dag or self.events_dag(), expect=expect)
        return {"run": dr, "land": xcom_result(dr, LAND), "ack": xcom_result(dr, ACK)}

    def enrich_dag(self) -> Any:
        return load_dag(ENRICH_DAG)

    def run_enrich(self, dag: Any = None, *, expect: str = "success") -> dict[str, dict[str, Any]]:
        """One run of ``sp_api_order_enrich``; returns each seller task's summary by conn id."""
        dr = run_dag(dag or self.enrich_dag(), expect=expect)
        return {conn_id: xcom_result(dr, f"enrich_orders__{conn_id}") for conn_id in self.sellers}

    # ------------------------------------------------------------------ checks

    def compare(self, conn_id: str | None = None, **kwargs: Any) -> list[str]:
        """The seller's event tables against its sandbox's truth (``oracle.compare_events``)."""
        seller = self.sellers[conn_id] if conn_id else self.seller
        rows = oracle.event_warehouse_rows(self.warehouse(), seller_id=seller.seller_id)
        kwargs.setdefault("notifications", seller.notifications())
        return oracle.compare_events(
            seller.sandbox.truth(),
            warehouse=rows,
            seller_id=seller.seller_id,
            conn_id=seller.conn_id,
            **kwargs,
        )

    def assert_equal_to_truth(self, conn_id: str | None = None, **kwargs: Any) -> None:
        diffs = self.compare(conn_id, **kwargs)
        assert diffs == [], "the warehouse differs from the sandbox's truth:\n" + "\n".join(diffs)

    def quarantine_diffs(self) -> list[str]:
        """``sp_notification_quarantine`` against the noise every sandbox sent."""
        noise: dict[str, list[Any]] = {"poison": [], "foreign_seller": []}
        for seller in self.sellers.values():
            for key, values in seller.noise().items():
                noise[key] += values
        served = [s.seller_id for s in self.sellers.values()]
        return oracle.compare_notification_quarantine(
            noise, self.warehouse().fetch_quarantine(), served_sellers=served
        )

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every event table as stored, bookkeeping included (to prove a rerun changed nothing)."""
        wh = self.warehouse()
        return {
            "orders": wh.fetch_orders(),
            "items": wh.fetch_items(),
            "packages": wh.fetch_packages(),
            "history": wh.fetch_status_history(),
            "inbox": wh.fetch_inbox(),
            "fba": wh.fetch_fba_shipment_status(),
            "quarantine": wh.fetch_quarantine(),
            "backlog": [{"conn_id": k, "queued": v[0]} for k, v in sorted(wh.enrichment_backlog().items())],
        }


def wait_until(check: Callable[[], Any], *, timeout: float, interval: float = 0.5, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or check}")
        time.sleep(interval)


@pytest.fixture
def event_path(
    airflow_db, sandbox_factory, moto_sqs: MotoSqsFixture, monkeypatch: pytest.MonkeyPatch, request
) -> Iterator[Callable[..., EventPath]]:
    """``start(sellers={conn_id: sandbox options}, backend="postgres", hold=False, env={}, extra={})``.

    Each seller's sandbox (defaults: 40 orders over 3 days, time scale 600, 2-minute rule 1 s)
    publishes into the events queue, or into a holding queue with ``hold=True``; ``extra`` maps a conn
    id to extra connection fields (``orders_api_version``...); ``env`` sets DAG settings (read when a
    DAG is parsed).
    """
    forget_sync_state()

    def start(
        sellers: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        backend: str = "postgres",
        hold: bool = False,
        env: Mapping[str, str] | None = None,
        extra: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> EventPath:
        sellers = sellers or {"sp_api_default": {}}
        queue_url = moto_sqs.queue_url(visibility_timeout=900)
        publish_url = moto_sqs.queue_url(visibility_timeout=900) if hold else queue_url
        fixture = "pg_warehouse_conn_id" if backend == "postgres" else "sqlite_warehouse_conn_id"
        private = request.getfixturevalue(fixture)
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", os.environ[f"AIRFLOW_CONN_{private.upper()}"])
        started: dict[str, Seller] = {}
        for conn_id, options in sellers.items():
            opts = {"orders": 40, "days": 3, "time_scale": 600, "min_before_lag": 1, **options}
            sb = sandbox_factory(sqs_endpoint=moto_sqs.endpoint, queue_url=publish_url, **opts)
            conn_extra = {
                "min_before_lag_seconds": 1,
                "rate_limits": scaled_limits(float(opts["time_scale"])),
                **(extra or {}).get(conn_id, {}),
            }
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn_json(sb, **conn_extra))
            started[conn_id] = Seller(conn_id, sb)
        settings = {
            "SP_API_CONN_IDS": ",".join(started),
            "AIRFLOW_VAR_SP_API_EVENTS_QUEUE_URL": queue_url,
            f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": aws_conn_json(moto_sqs.endpoint),
            **(env or {}),
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SP_API_SYNC_CONN_IDS", raising=False)
        return EventPath(moto_sqs, queue_url, publish_url, WAREHOUSE_CONN_ID, started)

    yield start
    forget_sync_state()
