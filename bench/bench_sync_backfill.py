"""sync_backfill: the historical sync as the DAG runs it, against the time-scaled sandbox.

Runs ``SpApiOrdersSyncOperator`` with the DAG's real settings - a backfill over the sandbox's history in
7-day windows, then the first 15-minute sweep after it - against a fresh sandbox over HTTP into a fresh
PostgreSQL warehouse, outside Airflow's scheduler so only the sync is measured (the real-scheduler
behaviour across deferrals is proven by ``tests/sync/test_real_scheduler.py``).

* **Rate use**: *successful* ``searchOrders`` calls (the sandbox's ``ok`` count: a 429 or an injected
  fault is not throughput) over what the token bucket allows during the backfill's span ``T``:
  ``burst + rate * T`` with the sandbox's scaled rate (0.0056/s x time scale) and burst 20, ``T`` = wall
  time from the first page's commit to the last page's (each page is committed right after its call;
  schema creation before and the run record after are not paced). Target >= 0.95.
* **Calls against the minimum**: the fewest pages the 7-day windows need (per window, orders in it /
  100, rounded up; counted from the raw truth) over the successful calls made. Target >= 0.99 (a page
  read twice, or an empty call, costs). Orders per call is reported beside it.
* **429s**: throttled responses / all ``searchOrders`` calls, from the sandbox's counters. Target 0.
* **Equal to the truth**: after the backfill and the sweep, every table of the warehouse equals the
  sandbox's truth (``tests/oracle.py``), or the benchmark fails. The backfill alone ends at its
  horizon (now - lag when it started); orders updated after it are the sweep's, and both counts are
  reported.
* **Memory**: the growth of the process's peak RSS (VmHWM) above its RSS before the sync, after a
  warm-up sync in the same fresh subprocess that imports every lazily loaded module (the
  interpreter's and Airflow's baseline), at 10k and 100k orders. Target: 10x the orders adds at most
  16 MiB (pages are streamed; nothing is kept per order).

Sizes: ``SP_BENCH_SYNC_ORDERS`` (rate run, default 10000), ``SP_BENCH_SYNC_SCALE`` (default 300),
``SP_BENCH_SYNC_MEMORY_SIZES`` (default "10000,100000").
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import result, temporary_pg_database

NAME = "sync_backfill"
RATE_ORDERS = int(os.environ.get("SP_BENCH_SYNC_ORDERS", "10000"))
RATE_SCALE = float(os.environ.get("SP_BENCH_SYNC_SCALE", "300"))
MEMORY_SIZES = tuple(int(x) for x in os.environ.get("SP_BENCH_SYNC_MEMORY_SIZES", "10000,100000").split(","))
#: LWA access tokens live 3600 / scale s and each new one is added to Airflow's secrets masker. While the
#: sync keeps up with the rate, a run needs pages / (rate x 3600) tokens whatever the scale; the scale
#: only must not be so high that the client, not the rate, sets the pace (then tokens grow with it).
#: 1500: the 100k run's 1,000 pages take about 2 minutes instead of 5 (make bench has 20 minutes).
MEMORY_SCALE = float(os.environ.get("SP_BENCH_SYNC_MEMORY_SCALE", "1500"))
SEARCH_RATE, SEARCH_BURST = 0.0056, 20
DAYS = 60
#: The DAG's settings (dags/sp_api_orders_sync.py Params defaults).
WINDOW_DAYS, LOOKBACK_MINUTES = 7, 5
MEMORY_GROWTH_TARGET_MIB = 16.0


def _rss_kib(field: str) -> int:
    """``VmRSS``/``VmHWM`` of this process in KiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> None:
    """Let VmHWM start again from the current RSS (Linux: write 5 to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def minimum_pages(truth: dict[str, Any], start: datetime, end: datetime, window: timedelta) -> int:
    """The fewest searchOrders pages windows of ``window`` from ``start`` to ``end`` need (100 orders
    per page, at least one page per window), counted from the raw truth."""
    updated = sorted(
        datetime.fromisoformat(o["lastUpdatedTime"].replace("Z", "+00:00")) for o in truth["orders"]
    )
    pages, lo = 0, start
    while lo < end:
        hi = min(lo + window, end)
        n = sum(1 for t in updated if lo <= t <= hi)
        pages += max(1, math.ceil(n / 100))
        lo = hi
    return pages


class TimedStore:
    """A memory checkpoint store that notes when each page count was first saved (the pacing clock)."""

    def __init__(self) -> None:
        from selling_partner.checkpoint import MemoryCheckpointStore

        self.inner = MemoryCheckpointStore()
        self.page_times: dict[int, float] = {}

    def load(self, key: str) -> Any:
        return self.inner.load(key)

    def save(self, key: str, value: dict[str, Any]) -> None:
        self.page_times.setdefault(int(value.get("pages", 0)), time.monotonic())
        self.inner.save(key, value)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def series(self) -> list[list[float]]:
        """``[[seconds since the first committed page, pages committed], ...]`` (the pacing over time)."""
        pages = sorted((n, t) for n, t in self.page_times.items() if n > 0)
        return [[round(t - pages[0][1], 2), n] for n, t in pages] if pages else []

    def paced_span(self) -> float:
        """Seconds from the first committed page to the last."""
        pages = [n for n in self.page_times if n > 0]
        return self.page_times[max(pages)] - self.page_times[min(pages)] if pages else 0.0


def _operator(mode: str, start: str | None, store: Any) -> Any:
    from selling_partner.operators.orders_sync import SpApiOrdersSyncOperator

    return SpApiOrdersSyncOperator(
        task_id=f"bench_{mode}",
        sp_api_conn_id="sp_api_bench",
        warehouse_conn_id="warehouse_bench",
        mode=mode,
        updated_after=start,
        window_days=WINDOW_DAYS,
        lookback_minutes=LOOKBACK_MINUTES,
        checkpoint_store=store,
    )


def sync_once(orders: int, time_scale: float, *, seed: int = 5, check: bool = True) -> dict[str, Any]:
    """Start a sandbox and an empty warehouse; backfill the history, then sweep once; measure."""
    from selling_partner.hooks.ratelimit import MemoryRateLimiter
    from sp_api_sandbox.launcher import start_sandbox

    MemoryRateLimiter.reset_all()
    with (
        temporary_pg_database("sp_bench_sync") as dsn,
        start_sandbox(seed=seed, orders=orders, days=DAYS, time_scale=time_scale, min_before_lag=1) as sb,
    ):
        from psycopg.conninfo import conninfo_to_dict

        pg = conninfo_to_dict(dsn)
        os.environ["AIRFLOW_CONN_SP_API_BENCH"] = sb.connection_uri(min_before_lag_seconds=1)
        os.environ["AIRFLOW_CONN_WAREHOUSE_BENCH"] = json.dumps(
            {"conn_type": "postgres", "host": pg.get("host"), "port": int(pg.get("port") or 5432),
             "login": pg.get("user"), "schema": pg["dbname"]}
        )  # fmt: skip
        store = TimedStore()
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=DAYS + 1)
        rss_before = _rss_kib("VmRSS")
        _reset_peak_rss()
        started = time.monotonic()
        backfill = _operator("backfill", start.isoformat(), store).execute(context={})  # type: ignore[arg-type]
        span = time.monotonic() - started
        paced_span, series = store.paced_span(), store.series()
        peak_growth = _rss_kib("VmHWM") - rss_before  # before anything else (the truth below is large) runs
        backfill_stats = sb.stats()["operations"].get("searchOrders", {})
        # The first scheduled sweep after the backfill: it picks up what changed since the backfill's end.
        sweep = _operator("sweep", None, store).execute(context={})  # type: ignore[arg-type]
        operations = sb.stats()["operations"]
        lwa_calls = sum(int(v.get("calls", 0)) for k, v in operations.items() if k.lower().startswith("lwa"))
        out: dict[str, Any] = {
            "orders": backfill["orders"],
            "sweep_orders": sweep["orders"],
            "pages": backfill["pages"],
            "sweep_pages": sweep["pages"],
            "windows": backfill["windows"],
            "calls": int(backfill_stats.get("calls", 0)),
            "ok_calls": int(backfill_stats.get("ok", 0)),
            "throttled": int(backfill_stats.get("throttled", 0)),
            "span": span,
            "paced_span": paced_span,
            "series": series,
            "peak_rss_growth_kib": peak_growth,
            "lwa_token_calls": lwa_calls,
        }
        if check:
            from selling_partner.warehouse import get_warehouse

            from tests.oracle import compare

            truth = sb.truth(lastUpdatedBefore=sweep["window_end"])
            horizon = datetime.fromisoformat(backfill["window_end"].replace("Z", "+00:00"))
            diffs = compare(truth, get_warehouse("warehouse_bench"))
            if diffs:
                raise AssertionError("the warehouse differs from the sandbox's truth:\n" + "\n".join(diffs))
            out.update(
                warehouse_orders=len(get_warehouse("warehouse_bench").fetch_orders()),
                truth_orders=len(truth["orders"]),
                backfill_truth_orders=len(sb.truth(lastUpdatedBefore=backfill["window_end"])["orders"]),
                minimum_pages=minimum_pages(truth, start, horizon, timedelta(days=WINDOW_DAYS)),
            )
    return out


def _memory_in_subprocess(orders: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_sync_backfill", "--memory", str(orders)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"memory run for {orders} orders failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run() -> list[dict[str, Any]]:
    rate = sync_once(RATE_ORDERS, RATE_SCALE)
    # The first page's call took the first token: the bucket allows burst + rate * T calls in total.
    allowed = SEARCH_BURST + SEARCH_RATE * RATE_SCALE * rate["paced_span"]
    rows = [
        result(
            "sync_backfill.search_rate_vs_allowed",
            rate["ok_calls"] / allowed,
            "fraction",
            target=0.95,
            ok_calls=rate["ok_calls"],
            allowed=round(allowed, 1),
            paced_span_s=round(rate["paced_span"], 1),
            run_s=round(rate["span"], 1),
            time_scale=RATE_SCALE,
            rate_per_s=SEARCH_RATE * RATE_SCALE,
            burst=SEARCH_BURST,
            series=rate["series"],
        ),
        result(
            "sync_backfill.calls_vs_minimum",
            rate["minimum_pages"] / max(rate["ok_calls"], 1),
            "fraction",
            target=0.99,
            minimum_pages=rate["minimum_pages"],
            ok_calls=rate["ok_calls"],
            windows=rate["windows"],
            window_days=WINDOW_DAYS,
            orders_per_call=round(rate["orders"] / max(rate["ok_calls"], 1), 2),
        ),
        result(
            "sync_backfill.throttled_share",
            100.0 * rate["throttled"] / max(rate["calls"], 1),
            "% of calls",
            target=0.0,
            higher_is_better=False,
            throttled=rate["throttled"],
            calls=rate["calls"],
        ),
        result(
            "sync_backfill.equal_to_truth",
            rate["warehouse_orders"] / max(rate["truth_orders"], 1),
            "fraction of the truth's orders",
            target=1.0,
            warehouse_orders=rate["warehouse_orders"],
            truth_orders=rate["truth_orders"],
            backfill_orders=rate["orders"],
            backfill_truth_orders=rate["backfill_truth_orders"],
            sweep_orders=rate["sweep_orders"],
            sweep_pages=rate["sweep_pages"],
            note="every table equals the truth after the backfill and the first sweep (tests/oracle.py); "
            "the backfill holds every order updated before its horizon, the sweep the ones after it",
        ),
    ]
    mem = {n: _memory_in_subprocess(n) for n in MEMORY_SIZES}
    for n in MEMORY_SIZES:
        rows.append(
            result(
                f"sync_backfill.peak_rss_growth_{n // 1000}k",
                mem[n]["peak_rss_growth_kib"] / 1024,
                "MiB",
                orders=mem[n]["orders"],
                pages=mem[n]["pages"],
                span_s=round(mem[n]["span"], 1),
                lwa_token_calls=mem[n]["lwa_token_calls"],
            )
        )
    small, large = min(MEMORY_SIZES), max(MEMORY_SIZES)
    if large != small:
        rows.append(
            result(
                f"sync_backfill.peak_rss_growth_{large // 1000}k_minus_{small // 1000}k",
                (mem[large]["peak_rss_growth_kib"] - mem[small]["peak_rss_growth_kib"]) / 1024,
                "MiB",
                target=MEMORY_GROWTH_TARGET_MIB,
                higher_is_better=False,
                note=f"memory the sync needs for {large // small}x the orders",
            )
        )
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        # Warm-up: import everything the sync loads lazily, so the measured growth is the sync's own.
        sync_once(300, MEMORY_SCALE, check=False)
        out = sync_once(int(sys.argv[2]), MEMORY_SCALE, check=False)
        print(json.dumps(out))
    else:
        print(json.dumps(run(), indent=2))
