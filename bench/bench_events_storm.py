"""events_storm: a notification storm through the event DAGs under a real Airflow, against the sweep alone.

Setup: a time-scaled sandbox (``SP_BENCH_STORM_SCALE``, default 60: every Amazon rate x60, the 2-minute
rule 120/60 s) publishing to a moto SQS server on loopback; a real Airflow
(``tests/fixtures/airflow_cluster.py``: api-server, scheduler, dag-processor, triggerer, LocalExecutor,
metadata on PostgreSQL, the scheduler creating runs) running the repository's ``sp_api_order_events``
(deferred ``SqsSensor`` -> land + apply -> ack) and ``sp_api_order_enrich`` (on the enrichment queue's
Asset) with their own settings, into a fresh PostgreSQL warehouse. Side by side, in the same run and
against the same sandbox, the **baseline** has only the sweep: this process runs
``SpApiOrdersSyncOperator(mode="sweep")`` back to back (the DAG's 15-minute schedule would add up to
15 min; its 5-minute lookback is scaled like the clock) into a second fresh warehouse, so an order's
status is known only when a ``searchOrders`` page at its rate limit reaches it. Both warehouses start
empty; the two paths use different Amazon operations (getOrder, searchOrders), so neither spends the
other's quota. The pipeline is warm when the storm starts: the event DAG's sensor is deferred on the
empty queue and the baseline is sweeping.

Workaround (a bug, reported): Airflow 3.3.2 creates no second run of a ``@continuous`` DAG whose
``start_date`` is ``None`` - see :class:`Watcher`, which triggers the next run as ``@continuous`` would.

The storm: ``SP_BENCH_STORM_WAVES`` (5) ``POST /_sandbox/advance`` calls one second apart, each changing
``SP_BENCH_STORM_CHANGES`` (220) random open orders of a 3,000-order world (about 1,000 distinct orders),
``SP_BENCH_STORM_DUPLICATES`` (0.2) of the notifications delivered twice, shuffled. An order's *publish
time* is the start of the advance call that published its last change (its notifications carry that
second as PublishTime). moto's SQS costs grow with the queue's depth (measured here: ~0.75 s per
10-message receive at 1,300 messages on the shared 2-core box, and sends slow down alike), so the
figures include moto's delivery time; a bigger storm mostly measures moto.

Measured (this process polls both warehouses every ``POLL`` s and the sandbox's counters every
``COUNTER_POLL`` s):

* **Status freshness**: seconds from publish until ``sp_orders.order_status`` shows the order's final
  status (the truth's ``fulfillment.fulfillmentStatus``), p50 / p95 / all, for the event path (wall
  seconds: nothing in it is rate-bound) and the baseline. The baseline's latency is set by Amazon's rate
  and the 2-minute rule, both running ``scale`` times faster here, so its figure is given in Amazon time
  (wall x scale; its own processing time is scaled too, which flatters the event path a little) and in
  wall seconds. Targets (issue 9) on the value: p95 <= 20 s, every order <= 60 s.
* **Enrichment**: the busiest ``PEAK_WINDOW`` s of successful getOrder calls over the allowed rate
  (1.0 = at the bound; target >= 0.9), the calls over what the bucket allows from the first call to
  the last (``burst + rate x T``: below 1 while enrichment waits for work), the publish-to-enriched
  latency (an order is enriched when ``is_complete`` and ``details_updated_time`` is the truth's
  ``lastUpdatedTime``), the fewest calls (one per distinct order) over the calls made (target >= 0.99)
  and calls per published message.
* **429s**: throttled getOrder answers (the event path) and searchOrders answers (the baseline), from
  the sandbox's counters. Target 0.
* **Equal to the truth** after the drain, checked independently (``tests/oracle.py``'s mapping of
  ``/_sandbox/truth``, rows read with plain SQL): every column of ``sp_orders``, ``sp_order_items`` and
  ``sp_order_packages`` but ``source`` (``event`` here), every final version in the status history, the
  inbox holding each published notification id once, nothing quarantined, the queue empty. The
  baseline's warehouse is checked the same way with ``source`` compared too.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import result, temporary_pg_database

NAME = "events_storm"
SCALE = float(os.environ.get("SP_BENCH_STORM_SCALE", "60"))
WORLD_ORDERS = int(os.environ.get("SP_BENCH_STORM_WORLD", "3000"))
WAVES = int(os.environ.get("SP_BENCH_STORM_WAVES", "5"))
CHANGES = int(os.environ.get("SP_BENCH_STORM_CHANGES", "220"))
DUPLICATES = float(os.environ.get("SP_BENCH_STORM_DUPLICATES", "0.2"))
#: Window of the peak getOrder rate (long enough that the burst of 30 adds at most 5 %).
PEAK_WINDOW = 20.0
SEED = 23
DAYS = 2
POLL = 0.5
COUNTER_POLL = 0.25
#: Give up after this long from the first wave (the figures then say what was not reached).
TIMEOUT = float(os.environ.get("SP_BENCH_STORM_TIMEOUT", "300"))
GET_ORDER_RATE, GET_ORDER_BURST = 0.5, 30
SEARCH_RATE, SEARCH_BURST = 0.0056, 20
#: The sweep DAG's overlap between windows (Amazon minutes; scaled like the sandbox's clock).
LOOKBACK_MINUTES = 5.0
#: Amazon's 2-minute rule in the sandbox's time.
LAG_SECONDS = max(1.0, 120.0 / SCALE)
EVENTS_DAG, ENRICH_DAG = "sp_api_order_events", "sp_api_order_enrich"
SELLER_CONN, EVENTS_WH, SWEEP_WH = "sp_api_default", "warehouse_default", "sp_bench_sweep_wh"
FRESHNESS_P95_TARGET, FRESHNESS_ALL_TARGET = 20.0, 60.0
EVENTS_SQL = (
    "SELECT order_id, order_status, CASE WHEN is_complete THEN details_updated_time END FROM sp_orders "
    "WHERE order_id = ANY(%s)"
)
SWEEP_SQL = "SELECT order_id, order_status FROM sp_orders WHERE order_id = ANY(%s)"


# --- pure parts ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q`` (0-100) percentile of ``values``, linear between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def freshness_curve(latencies: list[float], total: int, steps: int = 50) -> list[list[float]]:
    """``[[seconds, share of the ``total`` orders fresh by then], ...]``: the empirical CDF, at most
    ``steps`` + 1 points, ending at the last order (orders never fresh keep the share below 1)."""
    if not latencies or total <= 0:
        return []
    ordered = sorted(latencies)
    picks = sorted({min(len(ordered) - 1, round(i * (len(ordered) - 1) / steps)) for i in range(steps + 1)})
    return [[round(ordered[i], 3), round((i + 1) / total, 4)] for i in picks]


def allowed_calls(rate: float, burst: float, span: float) -> float:
    """Calls a full token bucket allows in ``span`` seconds: the burst, then one per ``1/rate`` s."""
    return burst + rate * max(0.0, span)


def downsample(points: list[list[float]], limit: int = 200) -> list[list[float]]:
    """At most ``limit`` of ``points``, evenly spaced, keeping the first and the last."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def final_publish_times(waves: list[tuple[float, list[str]]]) -> dict[str, float]:
    """order id -> start of the last wave that changed it, from ``[(wave start, [order ids])...]``."""
    out: dict[str, float] = {}
    for started, order_ids in waves:
        for oid in order_ids:
            out[oid] = started
    return out


def peak_rate(samples: list[list[float]], window: float) -> float:
    """The most calls per second in any ``window`` seconds of ``[[t, cumulative calls], ...]``."""
    best, j = 0.0, 0
    for i, (t, n) in enumerate(samples):
        while j < i and t - samples[j][0] > window:
            j += 1
        if t - samples[j][0] >= window * 0.9:
            best = max(best, (n - samples[j][1]) / (t - samples[j][0]))
    return best


def first_fresh(
    seen: dict[str, float], now: float, current: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Note ``now`` for each order whose ``current`` value first equals the ``expected`` one."""
    for oid, want in expected.items():
        if oid not in seen and current.get(oid) == want:
            seen[oid] = now


# --- the run ---------------------------------------------------------------------------------------


def _pg_conn(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    pg = conninfo_to_dict(dsn)
    return json.dumps(
        {"conn_type": "postgres", "host": pg.get("host"), "port": int(pg.get("port") or 5432),
         "login": pg.get("user"), "schema": pg["dbname"]}
    )  # fmt: skip


def _scaled_limits() -> dict[str, list[float]]:
    from selling_partner.hooks.ratelimit import DEFAULT_LIMITS

    return {op: [rate * SCALE, burst] for op, (rate, burst) in DEFAULT_LIMITS.items()}


class Sweeper(threading.Thread):
    """The baseline: sweeps back to back into its own warehouse until told to stop."""

    def __init__(self, start_at: datetime) -> None:
        super().__init__(name="baseline-sweep", daemon=True)
        from selling_partner.checkpoint import MemoryCheckpointStore

        self.start_at = start_at
        self.store = MemoryCheckpointStore()
        self.stop_event = threading.Event()
        self.sweeps = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        from selling_partner.operators.orders_sync import SpApiOrdersSyncOperator

        try:
            while not self.stop_event.is_set():
                SpApiOrdersSyncOperator(
                    task_id=f"baseline_sweep_{self.sweeps}",
                    sp_api_conn_id=SELLER_CONN,
                    warehouse_conn_id=SWEEP_WH,
                    mode="sweep",
                    updated_after=self.start_at.isoformat(),
                    lookback_minutes=LOOKBACK_MINUTES / SCALE,  # the DAG's 5 minutes, in sandbox time
                    checkpoint_store=self.store,
                ).execute(context={})  # type: ignore[arg-type]
                self.sweeps += 1
                self.stop_event.wait(0.2)
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def _rows(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def _table_rows(dsn: str, table: str, columns: list[str]) -> list[dict[str, Any]]:
    return [
        dict(zip(columns, r, strict=True)) for r in _rows(dsn, f"SELECT {', '.join(columns)} FROM {table}")
    ]


def check_warehouse(
    dsn: str,
    truth: dict[str, Any],
    *,
    skip: frozenset[str] = frozenset(),
    notification_ids: set[str] | None = None,
) -> list[str]:
    """Independent check of a warehouse against the truth (see the module docstring): every column of
    orders, items and packages (but ``skip``), every final version in the status history, nothing
    quarantined and, for the event path, each published notification id in the inbox exactly once."""
    from tests import oracle

    expected = oracle.expected_rows(truth)
    problems: list[str] = []
    for table in (oracle.ORDERS, oracle.ITEMS, oracle.PACKAGES):
        spec = oracle.TABLES[table]
        rows = _table_rows(dsn, table, list(spec.kinds))
        problems += oracle._compare_table(spec, expected[table], rows, skip_columns=skip)
    history = {
        (r[0], r[1], r[2])
        for r in _rows(dsn, "SELECT order_id, last_updated_time, order_status FROM sp_order_status_history")
    }
    missing = [k for k in expected[oracle.HISTORY] if k not in history]
    if missing:
        problems.append(f"sp_order_status_history lacks {len(missing)} final versions, e.g. {missing[:3]}")
    if notification_ids is not None:
        ids = [r[0] for r in _rows(dsn, "SELECT notification_id FROM sp_notification_inbox")]
        if len(ids) != len(set(ids)) or set(ids) != notification_ids:
            problems.append(
                f"inbox: {len(ids)} rows, {len(set(ids))} distinct, {len(notification_ids)} published ids, "
                f"{len(notification_ids - set(ids))} missing"
            )
    for table in ("sp_notification_quarantine", "sp_order_quarantine"):
        n = _rows(dsn, f"SELECT count(*) FROM {table}")[0][0]
        if n:
            problems.append(f"{table} holds {n} rows")
    return problems


@contextmanager
def _stack() -> Iterator[dict[str, Any]]:
    """moto SQS, the sandbox publishing to it, two warehouses and a real Airflow running the DAGs."""
    from sp_api_sandbox.launcher import start_moto_sqs, start_sandbox

    from tests.fixtures.airflow_cluster import AirflowCluster

    with (
        start_moto_sqs() as sqs,
        temporary_pg_database("sp_bench_storm_ev") as events_dsn,
        temporary_pg_database("sp_bench_storm_sw") as sweep_dsn,
    ):
        queue_url = sqs.create_queue("sp-bench-storm", visibility_timeout=900)
        with start_sandbox(
            seed=SEED, orders=WORLD_ORDERS, days=DAYS, time_scale=SCALE, min_before_lag=LAG_SECONDS,
            sqs_endpoint=sqs.endpoint, queue_url=queue_url,
        ) as sb:  # fmt: skip
            seller = sb.connection_uri(min_before_lag_seconds=LAG_SECONDS, rate_limits=_scaled_limits())
            extra = {"endpoint_url": sqs.endpoint, "region_name": sqs.region}
            aws = json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})
            os.environ[f"AIRFLOW_CONN_{SELLER_CONN.upper()}"] = seller
            os.environ[f"AIRFLOW_CONN_{EVENTS_WH.upper()}"] = _pg_conn(events_dsn)
            os.environ[f"AIRFLOW_CONN_{SWEEP_WH.upper()}"] = _pg_conn(sweep_dsn)
            from selling_partner.warehouse import get_warehouse

            for conn_id in (EVENTS_WH, SWEEP_WH):
                get_warehouse(conn_id).ensure_schema()
            cluster = AirflowCluster(
                env={
                    "SP_API_CONN_IDS": SELLER_CONN,
                    f"AIRFLOW_CONN_{SELLER_CONN.upper()}": seller,
                    f"AIRFLOW_CONN_{EVENTS_WH.upper()}": _pg_conn(events_dsn),
                    "AIRFLOW_CONN_AWS_SP_API_EVENTS": aws,
                    "AIRFLOW_VAR_SP_API_EVENTS_QUEUE_URL": queue_url,
                },
                use_job_schedule=True,
            )
            started = time.monotonic()
            cluster.start()
            try:
                for dag_id in (EVENTS_DAG, ENRICH_DAG):
                    cluster.wait_for_dag(dag_id, timeout=180)
                yield {
                    "sqs": sqs, "queue_url": queue_url, "sandbox": sb, "cluster": cluster,
                    "events_dsn": events_dsn, "sweep_dsn": sweep_dsn,
                    "cluster_ready_s": time.monotonic() - started,
                }  # fmt: skip
            finally:
                cluster.stop()


def _sensor_deferred(cluster: Any, timeout: float = 180.0) -> float:
    """Unpause the event DAG and wait until its sensor is deferred on the empty queue (seconds)."""
    started = time.monotonic()
    cluster.unpause(EVENTS_DAG)
    while time.monotonic() - started < timeout:
        runs = cluster.api("GET", f"dags/{EVENTS_DAG}/dagRuns", params={"limit": 5}).get("dag_runs", [])
        for run in runs:
            tis = cluster.task_instances(EVENTS_DAG, run["dag_run_id"])
            if tis.get("wait_for_notifications", {}).get("state") == "deferred":
                return time.monotonic() - started
        time.sleep(1.0)
    raise RuntimeError(f"the event DAG's sensor did not defer in {timeout:.0f}s\n{cluster.diagnostics()}")


def _advance(base_url: str, **body: Any) -> dict[str, Any]:
    """``POST /_sandbox/advance`` with a long timeout (moto's sends slow down as the queue grows)."""
    import requests

    response = requests.post(f"{base_url}/_sandbox/advance", json=body, timeout=600)
    response.raise_for_status()
    return dict(response.json())


def _queue_depth(sqs: Any, queue_url: str) -> int:
    attrs = sqs.client().get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


class Watcher(threading.Thread):
    """Samples the sandbox's call counters every ``COUNTER_POLL`` s and keeps one event-DAG run going.

    The second job works around a scheduler bug: Airflow 3.3.2 creates no second run of a
    ``@continuous`` DAG whose ``start_date`` is ``None`` (the next run's logical date equals the first
    zero-length interval's; the scheduler logs "run already exists; skipping dagrun creation" forever).
    When no run of the event DAG is queued or running, this triggers one, as ``@continuous`` would.
    """

    def __init__(self, sandbox: Any, cluster: Any, t0: float) -> None:
        super().__init__(name="storm-watcher", daemon=True)
        self.sandbox, self.cluster, self.t0 = sandbox, cluster, t0
        self.samples: list[list[float]] = []  # [t, getOrder calls, getOrder ok, searchOrders ok]
        self.triggered = 0
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        last_check = 0.0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic() - self.t0
                ops = self.sandbox.stats()["operations"]
                get, search = ops.get("getOrder", {}), ops.get("searchOrders", {})
                self.samples.append([round(now, 2), int(get.get("calls", 0)), int(get.get("ok", 0)),
                                     int(search.get("ok", 0))])  # fmt: skip
                if now - last_check >= 1.0:
                    last_check = now
                    self._keep_running()
                self.stop_event.wait(COUNTER_POLL)
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def _keep_running(self) -> None:
        body = self.cluster.api(
            "GET", f"dags/{EVENTS_DAG}/dagRuns", params={"state": ["queued", "running"], "limit": 5}
        )
        if not body.get("dag_runs"):
            self.cluster.trigger(EVENTS_DAG)
            self.triggered += 1


def enrich_span(samples: list[list[float]]) -> tuple[float | None, float | None, int]:
    """``(first getOrder call, when the ok count reached its final value, final ok count)`` from the
    counter samples ``[t, calls, ok, ...]``."""
    first = next((t for t, calls, *_ in samples if calls > 0), None)
    final = samples[-1][2] if samples else 0
    last = next((t for t, _calls, ok, *_ in samples if ok >= final), None) if final else None
    return first, last, final


def storm() -> dict[str, Any]:
    """Run the storm once; returns the raw figures (see ``run`` for the results)."""
    from selling_partner.hooks.ratelimit import MemoryRateLimiter

    MemoryRateLimiter.reset_all()
    with _stack() as s:
        sb, cluster = s["sandbox"], s["cluster"]
        deferred_s = _sensor_deferred(cluster)
        cluster.unpause(ENRICH_DAG)
        before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
        sweeper = Sweeper(before)
        sweeper.start()
        time.sleep(3.0)  # an enrich run the cron may start on the empty queue comes and goes
        sb.reset_stats()
        t0 = time.monotonic()
        watcher = Watcher(sb, cluster, t0)
        watcher.start()
        waves: list[tuple[float, list[str]]] = []
        notification_ids: set[str] = set()
        published = 0
        for _ in range(WAVES):
            started = time.monotonic() - t0
            report = _advance(sb.url, new_orders=0, changes=CHANGES, duplicates=DUPLICATES, shuffle=True)
            waves.append((started, [c["order_id"] for c in report["changes"]]))
            notification_ids.update(c["notification_id"] for c in report["changes"])
            published += int(report["published"])
            time.sleep(max(0.0, started + 1.05 - (time.monotonic() - t0)))  # one change per order a second
        publish_s = time.monotonic() - t0
        pub = final_publish_times(waves)
        ids = sorted(pub)
        truth = sb.truth(lastUpdatedAfter=before.isoformat().replace("+00:00", "Z"))
        by_id = {o["orderId"]: o for o in truth["orders"]}
        if set(by_id) != set(ids):
            raise AssertionError(f"truth has {len(by_id)} changed orders, the storm {len(ids)}")
        want_status = {oid: o["fulfillment"]["fulfillmentStatus"] for oid, o in by_id.items()}
        want_version = {oid: datetime.fromisoformat(o["lastUpdatedTime"].replace("Z", "+00:00"))
                        for oid, o in by_id.items()}  # fmt: skip
        ev_fresh: dict[str, float] = {}
        sw_fresh: dict[str, float] = {}
        enriched: dict[str, float] = {}
        progress: list[list[float]] = []  # [t, events fresh, enriched, baseline fresh]
        while True:
            now = time.monotonic() - t0
            ev = _rows(s["events_dsn"], EVENTS_SQL, (ids,))
            sw = _rows(s["sweep_dsn"], SWEEP_SQL, (ids,))
            first_fresh(ev_fresh, now, {r[0]: r[1] for r in ev}, want_status)
            first_fresh(sw_fresh, now, {r[0]: r[1] for r in sw}, want_status)
            first_fresh(enriched, now, {r[0]: r[2] for r in ev}, want_version)
            progress.append([round(now, 2), len(ev_fresh), len(enriched), len(sw_fresh)])
            done = len(ev_fresh) == len(enriched) == len(sw_fresh) == len(ids)
            if done or now > TIMEOUT or sweeper.error is not None or watcher.error is not None:
                break
            time.sleep(POLL)
        sweeper.stop_event.set()
        sweeper.join(timeout=120)
        drain_deadline = time.monotonic() + 120
        while _queue_depth(s["sqs"], s["queue_url"]) and time.monotonic() < drain_deadline:
            time.sleep(1.0)
        time.sleep(2 * COUNTER_POLL)
        watcher.stop_event.set()
        watcher.join(timeout=30)
        for thread in (sweeper, watcher):
            if thread.error is not None:
                raise RuntimeError(f"{thread.name} failed") from thread.error
        queue_left = _queue_depth(s["sqs"], s["queue_url"])
        ops = sb.stats()["operations"]
        final_truth = sb.truth(lastUpdatedAfter=before.isoformat().replace("+00:00", "Z"))
        problems = check_warehouse(
            s["events_dsn"], final_truth, skip=frozenset({"source"}), notification_ids=notification_ids
        )
        if queue_left:
            problems.append(f"{queue_left} messages left on the queue")
        return {
            "orders": len(ids),
            "notifications": len(notification_ids),
            "published": published,
            "publish_s": publish_s,
            "waves": len(waves),
            # A status equal to the final one may show before the last wave (a change that kept it): 0 s.
            "events_latency": [max(0.0, t - pub[o]) for o, t in ev_fresh.items()],
            "sweep_latency": [max(0.0, t - pub[o]) for o, t in sw_fresh.items()],
            "enrich_latency": [max(0.0, t - pub[o]) for o, t in enriched.items()],
            "enriched_at": sorted(enriched.values()),
            "sensor_deferred_s": deferred_s,
            "progress": progress,
            "counters": watcher.samples,
            "get_order": ops.get("getOrder", {}),
            "search_orders": ops.get("searchOrders", {}),
            "sweeps": sweeper.sweeps,
            "runs_triggered": watcher.triggered,
            "problems": problems,
            "sweep_problems": check_warehouse(s["sweep_dsn"], final_truth),
            "cluster_ready_s": s["cluster_ready_s"],
        }


def run() -> list[dict[str, Any]]:
    f = storm()
    n = f["orders"]
    ev, sw = f["events_latency"], f["sweep_latency"]
    sw_amazon = [x * SCALE for x in sw]
    get = f["get_order"]
    ok_calls, calls, throttled = int(get.get("ok", 0)), int(get.get("calls", 0)), int(get.get("throttled", 0))
    rate = GET_ORDER_RATE * SCALE
    first, last, _ = enrich_span(f["counters"])
    span = (last - first) if first is not None and last is not None else 0.0
    allowed = allowed_calls(rate, GET_ORDER_BURST, span)
    ok_series = [[t, ok] for t, _c, ok, _s in f["counters"]]
    peak = peak_rate(ok_series, PEAK_WINDOW)
    common = {"orders": n, "time_scale": SCALE, "waves": f["waves"], "notifications": f["notifications"],
              "messages_published": f["published"], "publish_s": round(f["publish_s"], 1)}  # fmt: skip
    curves = {
        "curve": freshness_curve(ev, n),
        "baseline_curve_amazon": freshness_curve(sw_amazon, n),
        "baseline_curve_wall": freshness_curve(sw, n),
    }
    fresh = {"fresh_orders": len(ev), "baseline_fresh_orders": len(sw), "baseline_sweeps": f["sweeps"]}
    enrich_series = {
        "counters": downsample(ok_series),
        "enriched": downsample([[t, e] for t, _f, e, _b in f["progress"]]),
        "first_call_s": first,
        "rate_per_s": rate,
        "burst": GET_ORDER_BURST,
    }
    rows = [
        result(f"{NAME}.status_freshness_p50", percentile(ev, 50), "s", baseline=percentile(sw_amazon, 50),
               higher_is_better=False, baseline_wall_s=round(percentile(sw, 50), 2), **fresh, **common),
        result(f"{NAME}.status_freshness_p95", percentile(ev, 95), "s", target=FRESHNESS_P95_TARGET,
               baseline=percentile(sw_amazon, 95), target_on="value", higher_is_better=False,
               baseline_wall_s=round(percentile(sw, 95), 2), **fresh, **curves, **common),
        result(f"{NAME}.status_freshness_all", max(ev, default=TIMEOUT), "s", target=FRESHNESS_ALL_TARGET,
               baseline=max(sw_amazon, default=TIMEOUT * SCALE), target_on="value", higher_is_better=False,
               baseline_wall_s=round(max(sw, default=TIMEOUT), 2), **fresh, **common),
        result(f"{NAME}.enrich_peak_rate_vs_allowed", peak / rate, "fraction", target=0.9,
               peak_calls_per_s=round(peak, 2), rate_per_s=rate, window_s=PEAK_WINDOW, **common),
        result(f"{NAME}.enrich_rate_vs_allowed", ok_calls / allowed if allowed else 0.0, "fraction",
               ok_calls=ok_calls, allowed=round(allowed, 1), span_s=round(span, 1),
               enriched_orders=len(f["enriched_at"]), **enrich_series, **common),
        result(f"{NAME}.enrich_latency_p95", percentile(f["enrich_latency"], 95), "s", higher_is_better=False,
               p50_s=round(percentile(f["enrich_latency"], 50), 2), enriched_orders=len(f["enriched_at"]),
               **common),
        result(f"{NAME}.getorder_calls_vs_minimum", n / max(calls, 1), "fraction", target=0.99,
               calls=calls, minimum=n, **common),
        result(f"{NAME}.calls_per_notification", calls / max(f["published"], 1), "calls",
               higher_is_better=False, calls=calls, messages_per_order=round(f["published"] / max(n, 1), 2),
               note="set by the storm's messages per order (issue 9's storm: 3.3, target <= 0.35); "
               "the product's own figure is getorder_calls_vs_minimum", **common),
        result(f"{NAME}.throttled", float(throttled), "429s", target=0.0, higher_is_better=False,
               get_order_calls=calls, baseline_search_429s=int(f["search_orders"].get("throttled", 0)),
               baseline_search_calls=int(f["search_orders"].get("calls", 0)), **common),
        result(f"{NAME}.equal_to_truth", 0.0 if f["problems"] else 1.0, "1 = equal", target=1.0,
               problems=f["problems"][:20], baseline_equal=not f["sweep_problems"],
               baseline_problems=f["sweep_problems"][:10], **common),
    ]  # fmt: skip
    if len(ev) < n:  # some orders never showed their status: no percentile may pass
        for row in rows[:3]:
            row.update(passed=False, note=f"only {len(ev)} of {n} orders fresh within {TIMEOUT:.0f} s")
    rows[0].update(
        cluster_ready_s=round(f["cluster_ready_s"], 1),
        sensor_deferred_s=round(f["sensor_deferred_s"], 1),
        event_runs_triggered=f["runs_triggered"],
    )
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, default=str))
