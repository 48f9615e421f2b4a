"""Rate limits across deferrals under the real scheduler and triggerer (a fresh process per resume).

``dag.test()`` resumes a deferred task in the same process, so an in-process token bucket looks as if
it survived the deferral. Here a real Airflow (``tests/fixtures/airflow_cluster.py``) runs one backfill
of ``sp_api_orders_sync`` for three sellers, each against its own sandbox and with its own
``rate_limit_backend``: the connection's default, ``postgres`` and ``redis``. Every quota wait defers
(``SP_API_SYNC_DEFER_AFTER_SECONDS=0``), so each resume is a new process that must know that Amazon's
bucket is still empty: the proof is zero ``searchOrders`` 429s at every sandbox.

The connections carry ``rate_limits`` scaled like the sandbox (as the hook tests do), so every backend
starts from the sandbox's real rates. The three sellers share one PostgreSQL warehouse; each seller's
rows are compared with its own sandbox's truth by ``tests/oracle.py``. The figures (deferrals, 429s,
deferral cycles, cluster timings) are printed and recorded as the ``figures`` property.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from selling_partner.hooks.ratelimit import DEFAULT_LIMITS

from tests import oracle
from tests.fixtures.warehouse import pg_conn_uri

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_ID = "sp_api_orders_sync"
#: Sandbox time runs this much faster: searchOrders refills 0.0056 x 15 = 0.084/s, one token per ~12 s.
#: A deferral cycle under the real scheduler adds ~2-4 s to the wait, so every page after the burst of 20
#: needs its own deferral when the limiter knows the truth, and each deferral still lasts ~7 s: Airflow
#: 3.3.2 fails a resumed try when a deferral ends before the scheduler has processed the previous
#: process's exit (apache/airflow#72716), so deferrals of a second or two would make the test flaky.
TIME_SCALE = 15
#: 2,800 orders = 28 pages of 100 in one window: 20 from the burst, then 8 more, one per deferral.
ORDERS = 2800
DAYS = 10
WINDOW_DAYS = DAYS + 2
MIN_DEFERRALS = 5
RUN_TIMEOUT = 200.0
WAREHOUSE_CONN_ID = "sp_warehouse_cluster"
REDIS = "redis://127.0.0.1:6379"

#: (connection id, sandbox region, seed, rate_limit_backend or None for the connection's default).
SELLERS = [
    ("sp_seller_default", "na", 41, None),
    ("sp_seller_postgres", "eu", 42, "postgres"),
    ("sp_seller_redis", "fe", 43, "redis"),
]


def _scaled_limits(scale: float) -> dict[str, list[float]]:
    """Amazon's usage plans with time running ``scale`` times faster (the sandbox's rates)."""
    return {op: [rate * scale, burst] for op, (rate, burst) in DEFAULT_LIMITS.items()}


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database (1-15) claimed for this test alone, as a URL.

    The sandbox's seller ids are fixed per region, so two runs of this test at once (or any other
    user of the same seller's buckets in database 0) would spend one shared bucket. The claim is a key
    with a TTL, so a crashed run frees its database.
    """
    import redis

    token = uuid.uuid4().hex
    for db in range(1, 16):
        client = redis.Redis.from_url(f"{REDIS}/{db}")
        if client.set("sp_test:claimed_by", token, nx=True, ex=900):
            try:
                yield f"{REDIS}/{db}"
            finally:
                if client.get("sp_test:claimed_by") == token.encode():
                    client.delete("sp_test:claimed_by")
                client.close()
            return
        client.close()
    pytest.fail("every Redis database 1-15 is claimed by another test run")


def _forget_buckets(seller_ids: list[str], pg_dsn: str, redis_url: str) -> None:
    """Shared buckets outlive a run (Redis keys expire after a day, PostgreSQL rows never)."""
    import psycopg
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for seller in seller_ids:
            keys = list(client.scan_iter(match=f"sp_rate_limit:{seller}:*"))
            if keys:
                client.delete(*keys)
    finally:
        client.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('sp_rate_limit_buckets')").fetchone()[0] is not None:
            for seller in seller_ids:
                conn.execute("DELETE FROM sp_rate_limit_buckets WHERE bucket_key LIKE %s", (f"{seller}:%",))


_TS = r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
_DEFER = re.compile(_TS + r".*next token in (?P<wait>[\d.]+) ?s; deferring")
_RESUME = re.compile(_TS + r".*resumed after rate-limit deferral #\d+")


def _deferral_cycles(log: str) -> list[tuple[float, float]]:
    """``(announced wait, seconds from 'deferring' to 'resumed')`` per deferral, from a task log."""
    events: list[tuple[str, datetime, float]] = []
    for line in log.splitlines():
        if m := _DEFER.search(line):
            events.append(("defer", _ts(m["ts"]), float(m["wait"])))
        elif m := _RESUME.search(line):
            events.append(("resume", _ts(m["ts"]), 0.0))
    cycles = []
    for (kind, at, wait), (next_kind, next_at, _) in itertools.pairwise(events):
        if kind == "defer" and next_kind == "resume":
            cycles.append((wait, (next_at - at).total_seconds()))
    return cycles


def _ts(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_no_search_orders_429s_across_deferrals_per_limiter_backend(
    airflow_cluster_factory, sandbox_factory, pg_dsn, pg_schema, redis_url, monkeypatch, record_property
):
    started = time.monotonic()
    sandboxes = {
        conn_id: sandbox_factory(
            region=region, seed=seed, orders=ORDERS, days=DAYS, time_scale=TIME_SCALE, min_before_lag=1
        )
        for conn_id, region, seed, _backend in SELLERS
    }
    seller_ids = [sb.seller_id for sb in sandboxes.values()]
    assert len(set(seller_ids)) == len(SELLERS), seller_ids
    _forget_buckets(seller_ids, pg_dsn, redis_url)

    env = {
        "SP_API_SYNC_CONN_IDS": ",".join(conn_id for conn_id, *_ in SELLERS),
        "SP_API_SYNC_DEFER_AFTER_SECONDS": "0",
        "SP_API_SYNC_MIN_DEFERRAL_SECONDS": "1",
        f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}": pg_conn_uri(pg_dsn, pg_schema),
    }
    for conn_id, _region, _seed, backend in SELLERS:
        extra: dict[str, Any] = {"min_before_lag_seconds": 1, "rate_limits": _scaled_limits(TIME_SCALE)}
        if backend == "postgres":
            extra.update(rate_limit_backend="postgres", rate_limit_dsn=pg_dsn)
        elif backend == "redis":
            extra.update(rate_limit_backend="redis", rate_limit_dsn=redis_url)
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = sandboxes[conn_id].connection_uri(**extra)

    cluster = airflow_cluster_factory(env=env)
    cluster.wait_for_dag(DAG_ID)
    cluster_ready = time.monotonic()
    cluster.unpause(DAG_ID)
    start_date = (datetime.now(UTC) - timedelta(days=DAYS + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    triggered_at = datetime.now(UTC)
    run_id = cluster.trigger(
        DAG_ID,
        {
            "mode": "backfill",
            "start_date": start_date,
            "window_days": WINDOW_DAYS,
            "warehouse_conn_id": WAREHOUSE_CONN_ID,
        },
    )
    state = cluster.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT, raise_on_failure=False)
    run_done = time.monotonic()
    tis = cluster.task_instances(DAG_ID, run_id)

    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}", pg_conn_uri(pg_dsn, pg_schema))
    from selling_partner.warehouse import get_warehouse

    warehouse = get_warehouse(WAREHOUSE_CONN_ID)
    tables = {
        oracle.ORDERS: warehouse.fetch_orders(),
        oracle.ITEMS: warehouse.fetch_items(),
        oracle.PACKAGES: warehouse.fetch_packages(),
        oracle.HISTORY: warehouse.fetch_status_history(),
        oracle.BUYERS: warehouse.fetch_buyers(),
    }
    first_start = min(_ts(ti["start_date"]) for ti in tis.values() if ti["start_date"])
    figures: dict[str, Any] = {
        "run_state": state,
        "cluster_start_s": round(cluster.timings["total"], 1),
        "cluster_and_dag_ready_s": round(cluster_ready - started, 1),
        "trigger_to_first_task_start_s": round((first_start - triggered_at).total_seconds(), 1),
        "run_s": round(run_done - cluster_ready, 1),
        "sellers": {},
    }
    problems: list[str] = []
    total_truth = 0
    for conn_id, _region, _seed, backend in SELLERS:
        task_id = f"sync_orders__{conn_id}"
        sb = sandboxes[conn_id]
        ti = tis[task_id]
        summary = cluster.xcom(DAG_ID, run_id, task_id) or {}
        search = sb.stats()["operations"].get("searchOrders", {})
        cycles = _deferral_cycles(cluster.task_log(DAG_ID, run_id, task_id))
        label = backend or "default"
        figures["sellers"][label] = {
            "state": ti["state"],
            "try_number": ti["try_number"],
            "deferrals": summary.get("deferrals"),
            "pages": summary.get("pages"),
            "orders": summary.get("orders"),
            "summary_throttled": summary.get("throttled"),
            "sandbox_calls": search.get("calls"),
            "sandbox_429s": search.get("throttled"),
            "deferral_cycle_s": [round(c, 1) for _w, c in cycles],
            "announced_wait_s": [w for w, _c in cycles],
        }
        if ti["state"] != "success" or ti["try_number"] != 1:
            problems.append(f"{label}: task {ti['state']} after {ti['try_number']} tries")
        if not summary.get("done") or int(summary.get("deferrals") or 0) < MIN_DEFERRALS:
            problems.append(
                f"{label}: summary done={summary.get('done')} deferrals={summary.get('deferrals')}"
            )
        checkpoint = cluster.variable(str(summary.get("checkpoint_key")))
        if checkpoint is None or json.loads(checkpoint).get("done") is not True:
            problems.append(f"{label}: the checkpoint Variable does not say done: {checkpoint!r:.300}")
        if search.get("throttled") != 0:
            problems.append(f"{label}: the sandbox answered {search.get('throttled')} searchOrders 429s")
        if summary.get("window_end"):
            # The warehouse is shared: compare each seller's rows with its own sandbox's truth.
            truth = sb.truth(lastUpdatedBefore=summary["window_end"])
            total_truth += len(truth["orders"])
            if not truth["orders"]:
                problems.append(f"{label}: the truth is empty, nothing would be proven")
            ids = {o["order_id"] for o in tables[oracle.ORDERS] if o["seller_id"] == sb.seller_id}
            mine = {table: [r for r in rows if r["order_id"] in ids] for table, rows in tables.items()}
            diffs = oracle.compare(truth, mine)
            if diffs:
                problems.append(f"{label}: the warehouse differs from the sandbox's truth: {diffs[:8]}")
    if len(tables[oracle.ORDERS]) != total_truth:
        problems.append(
            f"the warehouse holds {len(tables[oracle.ORDERS])} orders, the sandboxes {total_truth}"
        )

    report = json.dumps(figures, indent=2)
    print(report)
    record_property("figures", report)
    assert not problems, "\n".join(problems) + "\n" + report
