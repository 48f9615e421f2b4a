"""sync_backfill: the historical sync against the time-scaled sandbox, as SP-API's rate limit allows it.

Runs ``SpApiOrdersSyncOperator`` (backfill mode, one window over the whole history, checkpoints in
memory) against a fresh sandbox over HTTP into a fresh PostgreSQL warehouse, outside Airflow's
scheduler so only the sync itself is measured.

* **Rate use**: ``searchOrders`` calls / calls the token bucket allows over the run's span ``T``:
  ``allowed = burst + rate * T`` with the sandbox's scaled ``rate`` (0.0056/s x time scale) and
  burst 20, ``T`` = wall time of the sync (first call to return). Target >= 0.95. The burst is part of
  the allowance, so this is the whole-run figure, not only the steady state.
* **Orders per call**: orders loaded / ``searchOrders`` calls, over one window spanning the history
  (so only its last page can be partial, and retries or re-read pages count against it). Target >= 99.
* **429s**: throttled responses / searchOrders calls, from the sandbox's counters. Target <= 0.5%.
* **Peak memory**: the process's peak RSS (VmHWM) after syncing 10k and 100k orders, each in a fresh
  subprocess (after a small warm-up sync that loads every module) at time scale 600; the growth during
  the measured sync (VmHWM minus VmRSS before it) is reported beside it. Target: flat, 100k / 10k
  <= 1.2. The small growth that remains tracks LWA token refreshes (tracemalloc: every new access
  token is added to Airflow's secrets masker, which recompiles its regex); at scale 600 a token lives
  6 s, in production an hour.

Sizes: ``SP_BENCH_SYNC_ORDERS`` (rate run, default 10000), ``SP_BENCH_SYNC_SCALE`` (default 300),
``SP_BENCH_SYNC_MEMORY_SIZES`` (default "10000,100000").
"""

from __future__ import annotations

import json
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
#: 3.4 searchOrders calls/s; LWA access tokens live 6 s (3600 / scale). Each new token is added to
#: Airflow's secrets masker, which keeps every secret and recompiles its regex, so the scale must not be
#: so high that token refreshes (not the sync) dominate the memory figure.
MEMORY_SCALE = 600.0
SEARCH_RATE, SEARCH_BURST = 0.0056, 20
DAYS = 60


def _rss_kib(field: str) -> int:
    """``VmRSS``/``VmHWM`` of this process in KiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def sync_once(
    orders: int, time_scale: float, *, seed: int = 5, page_token_ttl: float | None = None
) -> dict[str, Any]:
    """Start a sandbox and an empty warehouse, backfill everything; return measurements."""
    from selling_partner.checkpoint import MemoryCheckpointStore
    from selling_partner.hooks.ratelimit import MemoryRateLimiter
    from selling_partner.operators.orders_sync import SpApiOrdersSyncOperator
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
            {
                "conn_type": "postgres",
                "host": pg.get("host"),
                "port": int(pg.get("port") or 5432),
                "login": pg.get("user"),
                "schema": pg["dbname"],
            }
        )
        store = MemoryCheckpointStore()
        op = SpApiOrdersSyncOperator(
            task_id="bench_sync",
            sp_api_conn_id="sp_api_bench",
            warehouse_conn_id="warehouse_bench",
            mode="backfill",
            updated_after=(datetime.now(UTC) - timedelta(days=DAYS + 1)).isoformat(),
            window_days=DAYS + 2,  # one window: every page but the last is full
            checkpoint_store=store,
        )
        rss_before = _rss_kib("VmRSS")
        started = time.monotonic()
        summary = op.execute(context={})  # type: ignore[arg-type]
        span = time.monotonic() - started
        peak = _rss_kib("VmHWM")  # before anything else (the truth below is large) runs in this process
        peak_growth = peak - rss_before
        operations = sb.stats()["operations"]
        stats = operations.get("searchOrders", {})
        lwa_calls = sum(int(v.get("calls", 0)) for k, v in operations.items() if k.lower().startswith("lwa"))
        truth_orders = len(sb.truth()["orders"])
    return {
        "orders": summary["orders"],
        "pages": summary["pages"],
        "windows": summary["windows"],
        "calls": int(stats.get("calls", 0)),
        "throttled": int(stats.get("throttled", 0)),
        "span": span,
        "peak_rss_growth_kib": peak_growth,
        "peak_rss_kib": peak,
        "truth_orders": truth_orders,
        "checkpoint_saves": store.saves,
        "lwa_token_calls": lwa_calls,
    }


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
    allowed = SEARCH_BURST + SEARCH_RATE * RATE_SCALE * rate["span"]
    rows = [
        result(
            "sync_backfill.search_rate_vs_allowed",
            rate["calls"] / allowed,
            "fraction",
            target=0.95,
            calls=rate["calls"],
            allowed=round(allowed, 1),
            span_s=round(rate["span"], 1),
            time_scale=RATE_SCALE,
            orders=rate["orders"],
            truth_orders=rate["truth_orders"],
        ),
        result(
            "sync_backfill.orders_per_call",
            rate["orders"] / max(rate["calls"], 1),
            "orders/call",
            target=99,
            windows=rate["windows"],
            pages=rate["pages"],
        ),
        result(
            "sync_backfill.throttled_share",
            100.0 * rate["throttled"] / max(rate["calls"], 1),
            "% of calls",
            target=0.5,
            higher_is_better=False,
            throttled=rate["throttled"],
        ),
    ]
    mem = {n: _memory_in_subprocess(n) for n in MEMORY_SIZES}
    small, large = min(MEMORY_SIZES), max(MEMORY_SIZES)
    for n in MEMORY_SIZES:
        rows.append(
            result(
                f"sync_backfill.peak_rss_{n // 1000}k",
                mem[n]["peak_rss_kib"] / 1024,
                "MiB",
                orders=mem[n]["orders"],
                pages=mem[n]["pages"],
                span_s=round(mem[n]["span"], 1),
                growth_during_sync_mib=round(mem[n]["peak_rss_growth_kib"] / 1024, 2),
                lwa_token_calls=mem[n]["lwa_token_calls"],
            )
        )
    if large != small:
        rows.append(
            result(
                f"sync_backfill.peak_rss_{large // 1000}k_vs_{small // 1000}k",
                mem[large]["peak_rss_kib"] / max(mem[small]["peak_rss_kib"], 1),
                "ratio",
                target=1.2,
                higher_is_better=False,
            )
        )
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        # Warm-up: import everything the sync loads lazily, so the measured growth is the sync's own.
        sync_once(300, MEMORY_SCALE, page_token_ttl=3600)
        out = sync_once(int(sys.argv[2]), MEMORY_SCALE, page_token_ttl=3600)
        print(json.dumps(out))
    else:
        print(json.dumps(run(), indent=2))
