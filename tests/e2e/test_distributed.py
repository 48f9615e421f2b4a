"""End to end on a real distributed Airflow: CeleryExecutor, two workers, a crash in the middle.

The real components run as processes (``tests/fixtures/airflow_cluster.py``): api-server, scheduler,
dag-processor, triggerer and two Celery workers; the broker is a Redis database of this machine, the
result backend and the metadata the cluster's PostgreSQL database, and every worker shares one Redis
rate limiter (``rate_limit_backend = redis``). The deployment is ``tests/e2e/deployment.py``, the one
``docker-compose.yaml`` describes. Everything goes through the REST API and the sandbox's admin API:

1. Unpause the three DAGs (the sweep runs at once, as in production), trigger a backfill of
   ``sp_api_orders_sync``, move the sandbox's world (``POST /_sandbox/advance`` publishes to a moto SQS
   queue, with duplicates, shuffled and double-encoded deliveries, poison and another seller's
   messages) so ``sp_api_order_events`` lands them and ``sp_api_order_enrich`` fetches the orders;
   wait until the warehouse equals ``/_sandbox/truth`` (``tests/oracle.py``, no product code), the
   queue is empty and nothing waits for enrichment.
2. Move the world again, losing some notifications (only the sweep can find those orders), trigger a
   sweep; once it defers for quota (mid-run), ``kill -9`` the scheduler and a worker (its pool and task
   processes too: a crashed machine), move the world while they are down, restart both, and wait for
   the same result.

Checked at both points: every table equals the truth; each published NotificationId is in the inbox
once and applied (duplicates land once, noise is quarantined, nothing else). At the end: no more
429s per operation than a request leaving late after its token was granted can cause (at most
max(2, 5 %) of the calls; none per parallel worker or per resume), each one seen by the sync; no
process left behind (the fixture's ``stop``). The figures (orders compared, calls and 429s per
operation, recovery time) are printed and recorded.

The event DAG is never started by the test: the scheduler keeps the continuous DAG running (a DAG
without a start_date ran only once on Airflow 3.3.2; it has one now, and this test would not converge
otherwise).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import oracle
from tests.e2e import deployment
from tests.fixtures.airflow_cluster import AirflowCluster, celery_components, celery_env
from tests.fixtures.warehouse import pg_conn_uri
from tests.hooks.conftest import scaled_limits

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYNC, EVENTS, ENRICH = deployment.DAG_IDS
SYNC_TASK = f"sync_orders__{deployment.SELLER_CONN_ID}"
ENRICH_TASK = f"enrich_orders__{deployment.SELLER_CONN_ID}"
#: Sandbox time 15x faster (searchOrders one token per ~12 s after its burst of 20; getOrder 7.5/s):
#: deferrals last long enough for Airflow 3.3.2 (see tests/sync/test_real_scheduler.py, #72716).
TIME_SCALE = 15
#: ~19 pages for the backfill plus the first sweep's: past searchOrders' burst, so phase 1 defers too.
ORDERS = 1900
DAYS = 10
WORKERS = 2
#: Phase 1: notifications of ~120 orders with every delivery problem a consumer must survive.
PHASE1 = {"new_orders": 40, "changes": 80, "duplicates": 0.2, "shuffle": True, "double_encoded": 0.1,
          "poison": 3, "foreign_seller": 2}  # fmt: skip
#: Phase 2: enough changed orders for several sweep pages (so it defers), 15 % of notifications lost.
PHASE2 = {"new_orders": 200, "changes": 150, "duplicates": 0.1, "drop": 0.15}
#: Published once the sweep defers, so that event tasks run when the crash comes, and while it lasts.
BEFORE_CRASH = {"new_orders": 10, "changes": 30, "duplicates": 0.2, "shuffle": True}
DURING_OUTAGE = {"new_orders": 10, "changes": 20, "duplicates": 0.2}
CONVERGE_TIMEOUT = 240.0
#: Crash recovery in seconds rather than Airflow's production minutes: a task whose worker died is
#: failed after 30 s without heartbeat, and the new scheduler adopts the dead one's work at once.
CRASH_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
}


class World:
    """The sandbox's world and what it published: the delivered notifications, the lost ones, the noise."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.delivered: list[dict[str, Any]] = []
        self.dropped: set[str] = set()
        self.noise: dict[str, list[Any]] = {"poison": [], "foreign_seller": []}
        self.advances: list[dict[str, int]] = []

    def advance(self, **options: Any) -> None:
        result = self.sandbox.advance(**options)
        lost = {d["notification_id"] for d in result["dropped"]}
        self.delivered += [c for c in result["changes"] if c["notification_id"] not in lost]
        self.dropped |= lost
        for key in self.noise:
            self.noise[key] += result["noise"][key]
        self.advances.append(
            {"notifications": len(result["changes"]), "dropped": len(lost), "sqs_bodies": result["published"]}
        )

    @property
    def published(self) -> set[str]:
        return {n["notification_id"] for n in self.delivered}


def _queue_depth(sqs: Any, queue_url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return sum(
        int(attrs.get(k, 0))
        for k in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def _differences(world: World, warehouse: Any, sqs: Any, queue_url: str) -> list[str]:
    """Why the deployment has not (yet) converged to the sandbox's truth; empty when it has.

    The oracle's event-path view (``oracle.compare_events``) with every order of the truth expected
    (the backfill and the sweep load those no notification reached). Who loaded an order's final
    version is a race between the sweep and the enrichment, so ``source`` must be ``event`` or
    ``sync`` for a notified order (and is then compared as stored) and ``sync`` for the others. The
    backfill and the sweep also record the versions they happened to read: an announced version a page
    read first has ``source = sync`` (compared as the Summary's ``summary``: who observed it first is a
    race), and the older versions only a page saw (``source = sync``, older than the order's final
    version) are not predictable from outside and are left out; every other history row is compared.
    """
    depth = _queue_depth(sqs, queue_url)
    if depth:
        return [f"{depth} messages still on the queue"]
    backlog = warehouse.enrichment_backlog().get(deployment.SELLER_CONN_ID, (0, None))[0]
    if backlog:
        return [f"{backlog} orders still queued for enrichment"]
    truth = world.sandbox.truth()
    rows = oracle.event_warehouse_rows(warehouse)
    notified = {n["order_id"] for n in world.delivered}
    problems, source = [], {}
    for row in rows[oracle.ORDERS]:
        allowed = ("event", "sync") if row["order_id"] in notified else ("sync",)
        if row["source"] not in allowed:
            problems.append(f"order {row['order_id']}: source {row['source']}, expected one of {allowed}")
        source[row["order_id"]] = row["source"] if row["source"] in allowed else allowed[0]
    final = {o["order_id"]: o["last_updated_time"] for o in rows[oracle.ORDERS]}
    announced = {
        (n["order_id"], oracle.parse_time(n["time"]), n["order_status"])
        for n in world.delivered
        if n["notification_type"] == oracle.ORDER_CHANGE
    }
    history = []
    for r in rows[oracle.HISTORY]:
        if (r["order_id"], r["last_updated_time"], r["order_status"]) in announced:
            # A notification announced this version; a backfill or sweep page may have read it first.
            history.append({**r, "source": "summary" if r["source"] == "sync" else r["source"]})
        elif not (
            r["source"] == "sync"
            and r["last_updated_time"] < final.get(r["order_id"], r["last_updated_time"])
        ):
            history.append(r)
    rows[oracle.HISTORY] = history
    problems += oracle.compare_events(
        truth,
        world.delivered,
        rows,
        conn_id=deployment.SELLER_CONN_ID,
        source=source,
        order_ids=[o["orderId"] for o in truth["orders"]],
    )
    problems += oracle.compare_notification_quarantine(
        world.noise, warehouse.fetch_quarantine(), served_sellers=[world.sandbox.seller_id]
    )
    return problems


def _wait_converged(
    world: World, warehouse: Any, sqs: Any, queue_url: str, cluster: AirflowCluster, timeout: float
) -> float:
    """Seconds until ``_differences`` is empty; fails with the last differences on timeout."""
    started = time.monotonic()
    while True:
        diffs = _differences(world, warehouse, sqs, queue_url)
        if not diffs:
            return time.monotonic() - started
        if int(time.monotonic() - started) % 30 < 2:
            print(f"[{time.monotonic() - started:.0f} s] waiting: {diffs[:3]}", flush=True)
        if time.monotonic() - started > timeout:
            pytest.fail(
                f"not converged after {timeout:.0f} s:\n"
                + "\n".join(diffs[:20])
                + "\n"
                + cluster.diagnostics()
            )
        time.sleep(2.0)


def _running(cluster: AirflowCluster) -> list[dict[str, Any]]:
    """Every running task instance of every DAG, with the component whose process tree runs it."""
    body = cluster.api("GET", "dags/~/dagRuns/~/taskInstances", params={"state": "running", "limit": 100})
    out = []
    for ti in body["task_instances"]:
        ti["component"] = cluster.component_of(int(ti["pid"])) if ti.get("pid") else None
        out.append(ti)
    return out


def _await(what: str, check: Callable[[], Any], timeout: float, cluster: AirflowCluster) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{cluster.diagnostics()}")
        time.sleep(0.3)


def _kill_mid_sweep(
    cluster: AirflowCluster, run_id: str, provoke: Callable[[], None], look: float = 20.0
) -> dict[str, Any]:
    """Wait until the sweep has deferred for quota, then kill -9 the scheduler and one worker.

    Once it has, ``provoke()`` publishes notifications, and the worker is preferably one running an
    event task for them (looked for ``look`` seconds while the sweep stays deferred): that task is
    lost with its worker and must be retried. Never one running the
    enrichment (a killed enrichment keeps its claims for their 10-minute lease, the operator's
    contract, longer than a test can wait) or the sweep (its retry waits 2 minutes); failing that,
    the worker that ran the sweep before it deferred.
    """
    sweep_worker: list[str] = []
    workers = [f"worker-{n}" for n in range(1, WORKERS + 1)]

    def deferred() -> bool:
        for ti in _running(cluster):
            if ti["task_id"] == SYNC_TASK and ti["component"]:
                sweep_worker[:] = [ti["component"]]
        return cluster.task_instances(SYNC, run_id)[SYNC_TASK]["state"] == "deferred"

    def choose() -> tuple[str | None, list[dict[str, Any]]]:
        running = _running(cluster)
        avoid = {ti["component"] for ti in running if ti["dag_id"] != EVENTS}
        busy = [ti["component"] for ti in running if ti["dag_id"] == EVENTS and ti["component"] in workers]
        return next((w for w in busy if w not in avoid), None), running

    _await("the sweep deferring for quota", deferred, 120, cluster)
    provoke()
    deadline = time.monotonic() + look
    victim, running = choose()
    while victim is None and time.monotonic() < deadline and deferred():
        time.sleep(0.2)
        victim, running = choose()
    if victim is None:
        avoid = {ti["component"] for ti in running}
        victim = next(w for w in [*sweep_worker, *workers] if w not in avoid or w == workers[-1])
    lost = sorted(f"{ti['dag_id']}.{ti['task_id']}" for ti in running if ti["component"] == victim)
    cluster.kill("scheduler")
    processes = cluster.kill(victim)
    return {"worker": victim, "tasks_lost": lost, "worker_processes_killed": 1 + len(processes)}


def test_distributed_celery_deployment_converges_and_survives_a_crash(
    airflow_cluster_factory,
    redis_db_factory,
    sandbox_factory,
    moto_sqs,
    pg_dsn,
    pg_schema,
    monkeypatch,
    record_property,
):
    queue_url = moto_sqs.queue_url(f"{deployment.QUEUE_NAME}-{pg_schema}", visibility_timeout=60)
    sandbox = sandbox_factory(
        orders=ORDERS, days=DAYS, time_scale=TIME_SCALE, min_before_lag=1,
        sqs_endpoint=moto_sqs.endpoint, queue_url=queue_url,
    )  # fmt: skip
    world = World(sandbox)
    broker, limiter = redis_db_factory(), redis_db_factory()
    seller = json.loads(
        sandbox.connection_uri(
            min_before_lag_seconds=1,
            rate_limits=scaled_limits(TIME_SCALE),
            rate_limit_backend=deployment.RATE_LIMIT_BACKEND,
            rate_limit_dsn=limiter,
        )
    )
    env = deployment.airflow_env(
        seller=seller,
        warehouse=json.loads(pg_conn_uri(pg_dsn, pg_schema)),
        aws=deployment.aws_connection(moto_sqs.endpoint),
        queue_url=queue_url,
    )
    env.update(celery_env(broker))
    env.update(CRASH_SETTINGS)
    env.update(
        {
            # Every quota wait of the sync defers (a fresh process, maybe another worker, per resume).
            "SP_API_SYNC_DEFER_AFTER_SECONDS": "0",
            "SP_API_SYNC_MIN_DEFERRAL_SECONDS": "1",
            # Messages a killed run had received come back within a minute.
            "SP_API_EVENTS_VISIBILITY_TIMEOUT_SECONDS": "60",
        }
    )
    started = time.monotonic()
    cluster = airflow_cluster_factory(
        env=env,
        executor=deployment.EXECUTOR,
        components=celery_components(workers=WORKERS, concurrency=3),
        use_job_schedule=True,  # the continuous event DAG and the Asset-triggered enrichment need it
    )
    for dag_id in deployment.DAG_IDS:
        cluster.wait_for_dag(dag_id)
    cluster_ready = time.monotonic() - started
    monkeypatch.setenv(deployment.conn_env(deployment.WAREHOUSE_CONN_ID), pg_conn_uri(pg_dsn, pg_schema))
    from selling_partner.warehouse import get_warehouse

    warehouse = get_warehouse(deployment.WAREHOUSE_CONN_ID)
    sqs = moto_sqs.client()

    # ---- phase 1: backfill + events + enrichment, all on two workers
    t1 = time.monotonic()
    for dag_id in deployment.DAG_IDS:
        cluster.unpause(dag_id)
    start_date = (datetime.now(UTC) - timedelta(days=DAYS + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    backfill = cluster.trigger(SYNC, {"mode": "backfill", "start_date": start_date, "window_days": DAYS + 2})
    world.advance(**PHASE1)
    assert cluster.wait_for_run(SYNC, backfill, timeout=CONVERGE_TIMEOUT) == "success"
    _wait_converged(world, warehouse, sqs, queue_url, cluster, CONVERGE_TIMEOUT)
    phase1_s = time.monotonic() - t1
    backfill_summary = cluster.xcom(SYNC, backfill, SYNC_TASK) or {}
    stats1 = sandbox.stats()["operations"]
    orders1 = len(sandbox.truth()["orders"])

    # ---- phase 2: lost notifications, a sweep, and a crash in the middle of it
    world.advance(**PHASE2)
    time.sleep(3)  # past the sandbox's lag: the sweep's window holds every change of this advance
    sweep = cluster.trigger(SYNC, {"mode": "sweep"})
    crash = _kill_mid_sweep(cluster, sweep, provoke=lambda: world.advance(**BEFORE_CRASH))
    killed_at = time.monotonic()
    world.advance(**DURING_OUTAGE)
    time.sleep(3)
    cluster.start("scheduler")
    cluster.start(crash["worker"])
    restarted_s = time.monotonic() - killed_at
    assert cluster.wait_for_run(SYNC, sweep, timeout=CONVERGE_TIMEOUT) == "success"
    _wait_converged(world, warehouse, sqs, queue_url, cluster, CONVERGE_TIMEOUT)
    recovery_s = time.monotonic() - killed_at
    sweep_summary = cluster.xcom(SYNC, sweep, SYNC_TASK) or {}
    stats = sandbox.stats()["operations"]
    truth = sandbox.truth()

    figures = {
        "cluster_ready_s": round(cluster_ready, 1),
        "phase1_converged_s": round(phase1_s, 1),
        "orders_compared_phase1": orders1,
        "orders_compared_final": len(truth["orders"]),
        "notifications_applied": len(world.published),
        "notifications_dropped_then_swept": len(world.dropped),
        "noise_quarantined": {k: len(v) for k, v in world.noise.items()},
        "advances": world.advances,
        "backfill": {k: backfill_summary.get(k) for k in ("pages", "orders", "deferrals", "throttled")},
        "sweep": {
            k: sweep_summary.get(k) for k in ("pages", "orders", "deferrals", "throttled", "try_number")
        },
        "crash": {**crash, "restarted_after_s": round(restarted_s, 1)},
        "recovery_s (kill -> warehouse equals truth)": round(recovery_s, 1),
        "calls_and_429s_per_op": {op: [s["calls"], s["throttled"]] for op, s in sorted(stats.items())},
        "429s_per_op_phase1": {op: s["throttled"] for op, s in sorted(stats1.items())},
    }
    report = json.dumps(figures, indent=2, default=str)
    print(report)
    record_property("figures", report)

    # The shared limiter sends a call the moment its bucket holds a token, with no margin; Amazon's
    # bucket started with the first request's arrival, a little later, so at the end of a burst it can
    # be a fraction of a token short (one getOrder 429 after 31 calls, reproducible in one process).
    # A few such 429s, each seen by the limiter (it empties the bucket and the call is retried), are
    # all it may cost - never a 429 per parallel worker or per resume.
    for op, s in stats.items():
        allowed = max(2, s["calls"] // 20)
        assert s["throttled"] <= allowed, (
            f"{op}: {s['throttled']} 429s, the limiter allows {allowed}\n{report}"
        )
    seen_by_sync = sum(int(x.get("throttled") or 0) for x in (backfill_summary, sweep_summary))
    assert seen_by_sync == stats["searchOrders"]["throttled"], (
        f"a searchOrders 429 the sync did not see\n{report}"
    )
    assert int(backfill_summary.get("deferrals") or 0) + int(sweep_summary.get("deferrals") or 0) >= 1, report
    assert world.dropped, "no notification was lost: the sweep's part is not exercised"
