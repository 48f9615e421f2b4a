"""history_backfill: two years of orders through the Reports API, against the time-scaled sandbox.

Runs ``SpApiOrdersHistoryOperator`` with the DAG's settings (30-day windows, 4 reports in flight, the
DAG's 60 s poll interval in Amazon time) over two years and two marketplaces (Amazon.com and
Amazon.ca) against a fresh sandbox over HTTP into a fresh PostgreSQL warehouse, outside Airflow's
scheduler like ``sync_backfill`` (the deferrals under a real ``dag.test()`` are proven by
``tests/reports/test_history_dag.py``; here every wait is waited out in the process, so it is measured).
Report variants are the sandbox's defaults: UTF-8, UTF-8 with BOM, Cp1252 and Windows-31J documents,
gzip or not, a lying ``compressionAlgorithm`` flag.

* **Time to load everything, in Amazon time.** The sandbox runs ``SP_BENCH_HISTORY_SCALE`` (100) times
  faster than Amazon: report processing (30 s queued + 60 s + 20 s per day of the window), the rate
  limits and the URL expiry all shrink by the scale; the local work (download, parse, load) does not.
  ``value`` is the conservative bound ``wall x scale`` (it counts the local work as if it too were
  slowed down by the scale: nothing in the run can take longer in Amazon time); ``estimate_s`` is
  ``waits x scale + local work`` (every ``time.sleep`` of the run - polls, quota waits - is Amazon
  time, the rest runs at its real speed).
* **The searchOrders path's bound**: the fewest ``searchOrders`` pages the same orders need (100 per
  page) paced by the hook's limiter defaults (burst 20, 0.0056/s): ``(pages - burst) / rate``. It
  ignores every other cost, so the real path is slower; ``ratio`` = that bound / the history's bound,
  target >= 10.
* **Report requests**: ``createReport`` calls (the sandbox's counter) against the minimum, one per
  window of at most 30 days and marketplace. Target 1.0.
* **Equal to the truth**: every table the history writes equals the sandbox's truth as order reports
  carry it (``tests/reports/report_oracle.py``, which imports nothing of ``selling_partner``), the
  warehouse read with plain SQL, or the benchmark fails.
* **The loader at this scale**: the parsed orders of every window, loaded again per window with
  ``Warehouse.upsert_orders`` (rows built from the records inside the timing) into a fresh warehouse,
  against PostgreSQL's write floor measured in the same run: binary ``COPY`` of the same rows, built
  beforehand, into the same tables (``ensure_schema``: same keys, indexes, views) in another fresh
  database, one transaction per window. Target: loader / floor <= 1.3. Beside it ``DataFrame.to_sql``
  into the same tables (``bench_warehouse_upsert``'s helper). Medians of ``SP_BENCH_HISTORY_ROUNDS``.

Sizes: ``SP_BENCH_HISTORY_ORDERS`` (orders in the two marketplaces, default 200000; the world holds
the third marketplace's share too), ``SP_BENCH_HISTORY_SCALE`` (default 100),
``SP_BENCH_HISTORY_ROUNDS`` (loader rounds, default 2), ``SP_BENCH_HISTORY_TO_SQL`` (0 skips to_sql).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import result, stopwatch, temporary_pg_database

NAME = "history_backfill"
ORDERS = int(os.environ.get("SP_BENCH_HISTORY_ORDERS", "200000"))
SCALE = float(os.environ.get("SP_BENCH_HISTORY_SCALE", "100"))
ROUNDS = int(os.environ.get("SP_BENCH_HISTORY_ROUNDS", "2"))
TO_SQL = os.environ.get("SP_BENCH_HISTORY_TO_SQL", "1") != "0"
SEED = 12
#: Two years: the history starts 729 days back (Amazon's order reports cover 730), the world a day later.
HISTORY_DAYS, WORLD_DAYS = 729, 728
WINDOW_DAYS, MAX_IN_FLIGHT = 30, 4
#: The DAG's poll interval (dags/sp_api_orders_history.py), Amazon seconds.
POLL_SECONDS = 60.0
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
MARKETPLACES = (US, CA)
#: The sandbox's NA marketplace weights (world_data.MARKETPLACE_WEIGHTS: US 80, CA 12, MX 8), less the
#: orders of the last minutes (the sweep's) and the seed's spread.
TWO_MARKETPLACE_SHARE = 0.915
PAGE_SIZE = 100
RATIO_TARGET, LOADER_TARGET = 10.0, 1.3
#: Tables a report load writes (no packages; no buyers without PII).
LOADED_TABLES = ("sp_orders", "sp_order_items", "sp_order_status_history")


# ---------------------------------------------------------------------------------------------- pure


def world_orders(target: int, share: float = TWO_MARKETPLACE_SHARE) -> int:
    """Orders the sandbox's world needs so that about ``target`` of them are in the two marketplaces."""
    return math.ceil(target / share)


def minimum_requests(start: datetime, end: datetime, window_days: float, marketplaces: int) -> int:
    """The fewest ``createReport`` calls: one per window of at most ``window_days`` and marketplace."""
    days = (end - start).total_seconds() / 86400
    return max(1, math.ceil(days / window_days - 1e-9)) * marketplaces


def search_orders_bound(orders: int, *, rate: float, burst: float, page_size: int = PAGE_SIZE) -> float:
    """Seconds ``searchOrders`` needs at least for ``orders``: ``pages`` calls from a full bucket of
    ``burst`` refilled at ``rate`` per second (the first ``burst`` pages are free)."""
    pages = math.ceil(orders / page_size)
    return max(0.0, (pages - burst) / rate)


def amazon_seconds(wall: float, slept: float, scale: float) -> tuple[float, float]:
    """``(bound, estimate)`` in Amazon seconds of a run of ``wall`` seconds at ``scale`` that slept
    ``slept`` of them: everything scaled (an upper bound), or only the sleeps (the local work at its
    real speed)."""
    return wall * scale, slept * scale + max(0.0, wall - slept)


def chunk_ranges(start: datetime, end: datetime, days: float) -> list[tuple[datetime, datetime]]:
    """``[lo, hi)`` ranges of ``days`` covering ``start`` to ``end`` (the truth is fetched in these)."""
    out, lo = [], start
    while lo < end:
        hi = min(lo + timedelta(days=days), end)
        out.append((lo, hi))
        lo = hi
    return out


def group_rows(tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, dict[str, list[Any]]]:
    """Rows per table grouped by ``order_id``."""
    out: dict[str, dict[str, list[Any]]] = {}
    for table, rows in tables.items():
        by_order: dict[str, list[Any]] = out.setdefault(table, {})
        for row in rows:
            by_order.setdefault(row["order_id"], []).append(row)
    return out


def select_rows(
    grouped: Mapping[str, Mapping[str, list[Any]]], order_ids: Iterable[str]
) -> dict[str, list[Any]]:
    """The rows of ``order_ids`` per table (what ``report_oracle.compare`` takes)."""
    ids = list(order_ids)
    return {t: [r for oid in ids for r in by_order.get(oid, ())] for t, by_order in grouped.items()}


def orphans(grouped: Mapping[str, Mapping[str, list[Any]]], known: set[str]) -> list[str]:
    """``table order_id`` of every warehouse row whose order is in no chunk of the truth."""
    return [f"{t} {oid}" for t, by_order in grouped.items() for oid in sorted(set(by_order) - known)]


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------- measuring


@contextmanager
def counting_sleeps() -> Iterator[dict[str, float]]:
    """Sum every ``time.sleep`` of this thread (the run's waits: polls, quota) while active."""
    out = {"seconds": 0.0, "calls": 0}
    real = time.sleep
    me = threading.get_ident()

    def sleep(seconds: float) -> None:
        if threading.get_ident() == me:
            out["seconds"] += max(0.0, float(seconds))
            out["calls"] += 1
        real(seconds)

    time.sleep = sleep
    try:
        yield out
    finally:
        time.sleep = real


def _conn_json(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    return json.dumps(
        {"conn_type": "postgres", "host": p.get("host"), "port": int(p.get("port") or 5432),
         "login": p.get("user"), "password": p.get("password"), "schema": p["dbname"]}
    )  # fmt: skip


def _history_operator(start: datetime, end: datetime, store: Any, timings: dict[str, Any]) -> Any:
    from selling_partner.operators.orders_history import SpApiOrdersHistoryOperator

    class TimedHistoryOperator(SpApiOrdersHistoryOperator):
        """The product's operator, with its load step and the warehouse's upserts timed (and the parsed
        batches kept for the loader measurement)."""

        def _load(self, store: Any, key: str, ledger: dict[str, Any], window_id: str) -> None:
            started = time.perf_counter()
            try:
                super()._load(store, key, ledger, window_id)
            finally:
                timings["load_s"] += time.perf_counter() - started

        def _warehouse(self) -> Any:
            wh = super()._warehouse()
            if not getattr(wh, "_bench_timed", False):
                upsert = wh.upsert_orders

                def timed(orders: Any) -> Any:
                    t0 = time.perf_counter()
                    try:
                        return upsert(orders)
                    finally:
                        timings["upsert_s"] += time.perf_counter() - t0
                        timings["batches"].append(list(orders))

                wh.upsert_orders = timed
                wh._bench_timed = True
            return wh

    return TimedHistoryOperator(
        task_id="bench_history",
        sp_api_conn_id="sp_api_bench_history",
        warehouse_conn_id="warehouse_bench_history",
        start_date_param=_iso(start),
        end_date_param=_iso(end),
        marketplace_ids=list(MARKETPLACES),
        window_days=WINDOW_DAYS,
        max_in_flight=MAX_IN_FLIGHT,
        poll_interval_seconds=POLL_SECONDS / SCALE,
        fatal_retry_wait_seconds=1800 / SCALE,
        # Every wait in the process (no scheduler here to resume a deferred task): measured as a sleep.
        defer_after_seconds=1e9,
        min_deferral_seconds=1e9,
        checkpoint_store=store,
    )


def read_tables(dsn: str, tables: Iterable[str] = (*LOADED_TABLES, "sp_order_packages", "sp_order_buyers")):
    """Every row of ``tables`` as dicts, with plain SQL (no product code)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables}


def check_truth(sb: Any, dsn: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Compare the warehouse with the truth as reports carry it, the truth fetched in 30-day chunks."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.reports.report_oracle import compare, expected_rows

    def fetch(lo: datetime, hi: datetime) -> dict[str, Any]:
        truth = sb.truth(lastUpdatedAfter=_iso(lo), lastUpdatedBefore=_iso(hi))
        truth["orders"] = [o for o in truth["orders"] if o["salesChannel"]["marketplaceId"] in MARKETPLACES]
        return truth

    # The sandbox renders the next chunks while this process compares the ones it has.
    diffs: list[str] = []
    known: set[str] = set()
    truth_items = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(fetch, lo, hi) for lo, hi in chunk_ranges(start, end, WINDOW_DAYS)]
        tables = read_tables(dsn)
        grouped = group_rows(tables)
        for k, future in enumerate(pending):
            truth, pending[k] = future.result(), None  # type: ignore[call-overload]
            ids = [o["orderId"] for o in truth["orders"]]
            known.update(ids)
            truth_items += sum(len(o.get("orderItems") or []) for o in truth["orders"])
            if len(diffs) < 50:
                diffs += compare(expected_rows(truth), select_rows(grouped, ids))
    diffs += [f"{o}: unexpected (not in the truth)" for o in orphans(grouped, known)[:20]]
    return {
        "diffs": diffs,
        "truth_orders": len(known),
        "truth_items": truth_items,
        "warehouse_rows": {t: len(rows) for t, rows in tables.items()},
    }


def run_history() -> dict[str, Any]:
    """Sandbox + fresh warehouse; the history operator over two years; figures and the truth check."""
    from selling_partner.checkpoint import MemoryCheckpointStore
    from selling_partner.hooks.ratelimit import MemoryRateLimiter
    from sp_api_sandbox.launcher import start_sandbox

    MemoryRateLimiter.reset_all()
    world = world_orders(ORDERS)
    started = time.perf_counter()
    with start_sandbox(seed=SEED, orders=world, days=WORLD_DAYS, time_scale=SCALE) as sb:
        print(f"sandbox: {world:,} orders over {WORLD_DAYS} days, scale {SCALE:g} "
              f"({time.perf_counter() - started:.1f}s to build)", flush=True)  # fmt: skip
        with temporary_pg_database("sp_bench_history") as dsn:
            os.environ["AIRFLOW_CONN_SP_API_BENCH_HISTORY"] = sb.connection_uri()
            os.environ["AIRFLOW_CONN_WAREHOUSE_BENCH_HISTORY"] = _conn_json(dsn)
            now = datetime.now(UTC).replace(microsecond=0)
            start, end = now - timedelta(days=HISTORY_DAYS), now - timedelta(minutes=5)
            timings: dict[str, Any] = {"load_s": 0.0, "upsert_s": 0.0, "batches": []}
            op = _history_operator(start, end, MemoryCheckpointStore(), timings)
            with counting_sleeps() as slept, stopwatch() as wall:
                summary = op.execute(context={})  # type: ignore[arg-type]
            stats = sb.stats()["operations"]
            print(
                f"history: {summary['orders']:,} orders in {wall['seconds']:.1f}s wall "
                f"({slept['seconds']:.1f}s of it waiting, {timings['load_s']:.1f}s loading windows)",
                flush=True,
            )
            with stopwatch() as t_check:
                check = check_truth(sb, dsn, start, end)
            print(f"truth check: {len(check['diffs'])} differences ({t_check['seconds']:.1f}s)", flush=True)
            if check["diffs"]:
                raise AssertionError(
                    "the warehouse differs from the truth as reports carry it:\n"
                    + "\n".join(check["diffs"][:30])
                )
    return {
        "start": start,
        "end": end,
        "world_orders": world,
        "summary": summary,
        "wall_s": wall["seconds"],
        "slept_s": slept["seconds"],
        "sleeps": slept["calls"],
        "load_s": timings["load_s"],
        "upsert_s": timings["upsert_s"],
        "batches": timings["batches"],
        "stats": stats,
        "check": check,
    }


# ------------------------------------------------------------------------------------------- loader


def _fresh_warehouse(dsn: str, conn_id: str) -> Any:
    from selling_partner.warehouse import get_warehouse

    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = _conn_json(dsn)
    wh = get_warehouse(conn_id)
    wh.ensure_schema()
    return wh


def time_loader(dsn: str, batches: list[list[Any]]) -> float:
    """Seconds for ``upsert_orders`` of every batch into an empty warehouse (rows built inside)."""
    wh = _fresh_warehouse(dsn, "sp_bench_history_loader")
    with stopwatch() as t:
        for batch in batches:
            wh.upsert_orders(batch)
    return t["seconds"]


def time_floor(dsn: str, batches: list[list[Any]], timings: dict[str, float]) -> float:
    """Seconds for PostgreSQL to take the same rows (built beforehand, the build's seconds put in
    ``timings["row_build_s"]``) by binary COPY into the same tables (``ensure_schema``'s DDL: keys,
    indexes), one transaction per batch."""
    import psycopg
    from selling_partner.warehouse import schema
    from selling_partner.warehouse.postgres import PostgresWarehouse, copy_types
    from selling_partner.warehouse.rows import build_order_batch

    _fresh_warehouse(dsn, "sp_bench_history_floor")
    enc = PostgresWarehouse("unused")  # value encoders only; never connects
    tables = (schema.ORDERS_TABLE, schema.ITEMS_TABLE, schema.STATUS_HISTORY_TABLE)
    prepared = []
    with stopwatch() as built:  # not part of the floor; reported beside it (the loader does this too)
        for batch in batches:
            # The loader's own COPY encoding (amounts pre-encoded as binary numeric), so the floor's
            # client side is no slower than the loader's.
            b = build_order_batch(batch, ts=enc._encode_ts, money=enc._copy_money())
            prepared.append((b.orders, b.items, b.history))
    timings["row_build_s"] = built["seconds"]
    with psycopg.connect(dsn) as conn, stopwatch() as t:
        for rows_per_table in prepared:
            with conn.cursor() as cur:
                for table, rows in zip(tables, rows_per_table, strict=True):
                    sql = f"COPY {table.name} ({', '.join(table.column_names)}) FROM STDIN (FORMAT BINARY)"
                    with cur.copy(sql) as copy:
                        copy.set_types(copy_types(table))
                        for row in rows:
                            copy.write_row(row)
            conn.commit()
    return t["seconds"]


def _count(dsn: str, table: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def measure_loader(batches: list[list[Any]]) -> dict[str, Any]:
    orders = sum(len(b) for b in batches)
    items = sum(len(o.items) for b in batches for o in b)
    samples: dict[str, list[float]] = {"loader": [], "floor": [], "row_build": []}
    for k in range(1, ROUNDS + 1):
        with temporary_pg_database("sp_bench_hload") as dsn:
            samples["loader"].append(time_loader(dsn, batches))
            assert _count(dsn, "sp_order_items") == items, "the loader did not write every item"
        with temporary_pg_database("sp_bench_hfloor") as dsn:
            timings: dict[str, float] = {}
            samples["floor"].append(time_floor(dsn, batches, timings))
            samples["row_build"].append(timings["row_build_s"])
            assert _count(dsn, "sp_order_items") == items, "the floor did not write every item"
        print(
            f"-- loader round {k}/{ROUNDS}: loader {samples['loader'][-1]:.2f}s, "
            f"COPY floor {samples['floor'][-1]:.2f}s (rows built before it in "
            f"{samples['row_build'][-1]:.2f}s)",
            flush=True,
        )
    out: dict[str, Any] = {"orders": orders, "items": items, "samples": samples}
    out.update({k: statistics.median(v) for k, v in samples.items()})
    # The box is shared: each round's own ratio (loader and floor measured back to back) is kept too.
    out["round_ratios"] = [a / b for a, b in zip(samples["loader"], samples["floor"], strict=True)]
    if TO_SQL:
        from bench.bench_warehouse_upsert import _load_with_pandas_same_tables

        flat = [o for b in batches for o in b]
        with temporary_pg_database("sp_bench_htosql") as dsn:
            out["to_sql"] = _load_with_pandas_same_tables(dsn, flat)
            assert _count(dsn, "sp_order_items") == items, "to_sql did not write every item"
        print(f"-- to_sql (same rows, same tables, one call): {out['to_sql']:.2f}s", flush=True)
    return out


# ---------------------------------------------------------------------------------------------- run


def run() -> list[dict[str, Any]]:
    from selling_partner.hooks.ratelimit import DEFAULT_LIMITS

    load_before = os.getloadavg()[0]
    h = run_history()
    summary, stats, check = h["summary"], h["stats"], h["check"]
    orders = int(summary["orders"])
    bound, estimate = amazon_seconds(h["wall_s"], h["slept_s"], SCALE)
    rate, burst = DEFAULT_LIMITS["searchOrders"]
    search_s = search_orders_bound(orders, rate=rate, burst=burst)
    minimum = minimum_requests(h["start"], h["end"], WINDOW_DAYS, len(MARKETPLACES))
    created = int(stats.get("createReport", {}).get("calls", 0))
    print(
        f"history path: {bound / 3600:.2f} h Amazon time (bound; estimate {estimate / 3600:.2f} h) for "
        f"{orders:,} orders; searchOrders needs at least {search_s / 3600:.1f} h -> "
        f"{search_s / bound:.1f}x; reports {created} for a minimum of {minimum}",
        flush=True,
    )
    scale_note = None
    if orders < 200_000:
        scale_note = f"{orders:,} orders, below the 200,000 asked for (SP_BENCH_HISTORY_ORDERS={ORDERS})"
        print(f"NOTE: {scale_note}")
    loader = measure_loader(h["batches"])
    rows = loader["orders"] + loader["items"]
    common = {
        "orders": orders,
        "items": loader["items"],
        "marketplaces": list(MARKETPLACES),
        "history_days": HISTORY_DAYS,
        "time_scale": SCALE,
        "cpus": os.cpu_count(),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if scale_note:
        common["note_scale"] = scale_note
    out = [
        result(
            f"{NAME}.amazon_hours",
            bound / 3600,
            "h (Amazon time)",
            estimate_h=round(estimate / 3600, 3),
            wall_s=round(h["wall_s"], 1),
            waits_wall_s=round(h["slept_s"], 1),
            load_windows_wall_s=round(h["load_s"], 1),
            upsert_wall_s=round(h["upsert_s"], 1),
            windows=summary["windows"],
            note="wall x scale: an upper bound (the local work counted as if slowed down by the scale); "
            "estimate_h = waits x scale + local work",
            **common,
        ),
        result(
            f"{NAME}.search_orders_vs_history",
            search_s / 3600,
            "h (Amazon time)",
            target=RATIO_TARGET,
            baseline=bound / 3600,
            search_orders_pages=math.ceil(orders / PAGE_SIZE),
            search_orders_rate_burst=[rate, burst],
            speedup_estimate=round(search_s / estimate, 1),
            note="value = the searchOrders path's lower bound for the same orders ((pages - burst) / rate), "
            "baseline = the history path's upper bound; ratio = the history path's speed-up",
            **common,
        ),
        result(
            f"{NAME}.report_requests_vs_minimum",
            minimum / max(created, 1),
            "fraction",
            target=1.0,
            create_report_calls=created,
            minimum=minimum,
            get_report_calls=int(stats.get("getReport", {}).get("calls", 0)),
            get_report_document_calls=int(stats.get("getReportDocument", {}).get("calls", 0)),
            throttled={op: int(v.get("throttled", 0)) for op, v in stats.items() if v.get("throttled")},
        ),
        result(
            f"{NAME}.equal_to_truth",
            check["warehouse_rows"]["sp_orders"] / max(check["truth_orders"], 1),
            "fraction of the truth's orders",
            target=1.0,
            truth_orders=check["truth_orders"],
            truth_items=check["truth_items"],
            warehouse_rows=check["warehouse_rows"],
            differences=len(check["diffs"]),
            note="every field of sp_orders, sp_order_items and sp_order_status_history (and no packages or "
            "buyers) equals tests/reports/report_oracle.py's mapping of the truth, read with plain SQL",
        ),
        result(
            f"{NAME}.loader_vs_copy_floor",
            loader["loader"],
            "s",
            target=LOADER_TARGET,
            baseline=loader["floor"],
            higher_is_better=False,
            rows=rows,
            rounds=ROUNDS,
            seconds={k: [round(x, 2) for x in v] for k, v in loader["samples"].items()},
            round_ratios=[round(x, 3) for x in loader["round_ratios"]],
            median_round_ratio=round(statistics.median(loader["round_ratios"]), 3),
            batches=len(h["batches"]),
            row_build_s=round(loader["row_build"], 2),
            floor_method="binary COPY of the same rows (built beforehand) into ensure_schema's tables, one "
            "transaction per window",
            **common,
        ),
    ]
    if "to_sql" in loader:
        out.append(
            result(
                f"{NAME}.to_sql_vs_copy_floor",
                loader["to_sql"],
                "s",
                baseline=loader["floor"],
                higher_is_better=False,
                rows=rows,
                method="DataFrame.to_sql(..., if_exists='append', index=False, dtype=<schema types>) into "
                "tables with the loader's DDL, rows built in time (bench_warehouse_upsert)",
                loader_s=round(loader["loader"], 2),
                **common,
            )
        )
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, default=str))
    sys.exit(0)
