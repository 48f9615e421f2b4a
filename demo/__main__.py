"""``make demo``: SP-API sandbox -> historical sync DAG -> SQLite warehouse -> report.

1. starts the SP-API sandbox on loopback (a real HTTP server with Amazon's rate limits, time-scaled);
2. prepares an Airflow home in ``.demo/airflow`` (SQLite metadata DB, ``airflow db migrate``) with two
   connections: ``sp_api_default`` pointing at the sandbox and ``warehouse_default`` at
   ``.demo/warehouse.db``;
3. runs DAG ``sp_api_orders_sync`` as a historical backfill over the sandbox's history
   (``airflow dags test`` with the backfill conf), printing the sync's progress lines;
4. prints orders by marketplace and status, items, SP-API calls and 429s per operation, and
   ``warehouse matches sandbox: yes`` when every table the sync fills equals ``/_sandbox/truth`` field
   by field (``tests/oracle.py``: an independent mapping of Amazon's raw orders, no product code);
5. stops the sandbox. Exits 1 on a mismatch.

Options: ``python -m demo --orders 2000 --days 30 --time-scale 60 [--seed 7] [--api-version v0]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Everything the demo writes (override with SP_DEMO_DIR, e.g. in tests).
DEMO = Path(os.environ.get("SP_DEMO_DIR") or ROOT / ".demo").resolve()
AIRFLOW_HOME = DEMO / "airflow"
WAREHOUSE_DB = DEMO / "warehouse.db"
DAG_ID = "sp_api_orders_sync"
#: Lines of the sync's log worth showing while it runs.
_PROGRESS = re.compile(r"(window \S+->\S+|sync of|deferring|resum|checkpoint)", re.IGNORECASE)


def _rel(path: Path) -> str:
    """``path`` relative to the repository when inside it (shorter messages)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def airflow_env() -> dict[str, str]:
    """Environment of every Airflow command the demo runs (and of this process)."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            # selling_partner is pip-installed; loading plugins/ as plugin files would shadow it.
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(AIRFLOW_HOME / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "SP_API_SYNC_CONN_IDS": "sp_api_default",
        }
    )
    return env


def airflow(*args: str, env: dict[str, str], quiet: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=quiet, text=True, check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(f"airflow {' '.join(args)} failed:\n{proc.stdout or ''}{proc.stderr or ''}\n")
        raise SystemExit(2)
    return proc


def write_connections(sandbox: Any, api_version: str) -> Path:
    """The two demo connections as an ``airflow connections import`` file."""
    extra = sandbox.connection_extra(orders_api_version=api_version)
    conns = {
        "sp_api_default": {
            "conn_type": "amazon_sp_api",
            "description": "SP-API sandbox started by make demo",
            "login": sandbox.client_id,
            "password": sandbox.client_secret,  # the sandbox's documented test secret
            "extra": json.dumps(extra),
        },
        "warehouse_default": {
            "conn_type": "sqlite",
            "description": "demo warehouse",
            "host": str(WAREHOUSE_DB),
        },
    }
    path = DEMO / "connections.json"
    path.write_text(json.dumps(conns, indent=2))
    path.chmod(0o600)
    return path


def run_backfill(env: dict[str, str], start: datetime) -> int:
    """``airflow dags test`` with the backfill conf; streams progress lines; returns the exit code."""
    conf = {"mode": "backfill", "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "reset_checkpoint": True}
    log_path = DEMO / "sync.log"
    cmd = [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, "-c", json.dumps(conf)]
    print(f"$ airflow dags test {DAG_ID} -c '{json.dumps(conf)}'   (full log: {_rel(log_path)})")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(  # noqa: S603
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if "SpApiOrdersSyncOperator" in line and _PROGRESS.search(line):
                print("   ", _short(line))
        return proc.wait()


_LOG_LINE = re.compile(r"^\S+\s+\[\w+\s*\]\s+(?P<msg>.*?)\s+\[[\w.]+\](?:\s+\w+=\S+)*\s*$")


def _short(line: str) -> str:
    """The message part of an Airflow (structlog) log line."""
    match = _LOG_LINE.match(line.strip())
    return (match.group("msg") if match else line.strip())[:200]


def report(sandbox: Any, *, started: float, api_version: str = "2026-01-01") -> bool:
    """Print the report; returns whether the warehouse matches the sandbox's truth."""
    warehouse_conn = {"conn_type": "sqlite", "host": str(WAREHOUSE_DB)}
    os.environ["AIRFLOW_CONN_WAREHOUSE_DEFAULT"] = json.dumps(warehouse_conn)
    from selling_partner.warehouse import get_warehouse

    from tests.oracle import DATA_TABLES, compare

    wh = get_warehouse("warehouse_default")
    orders = wh.fetch_orders()
    items = wh.fetch_items()
    runs = [r for r in wh.fetch_sync_runs() if r["mode"] == "backfill"]
    synced_until = max(r["window_end"] for r in runs) if runs else None
    truth = sandbox.truth(lastUpdatedBefore=synced_until) if synced_until else {"orders": []}
    all_truth = sandbox.truth()
    stats = sandbox.stats()

    print()
    print(f"== report ({time.monotonic() - started:.0f}s) ==")
    print(f"orders: {len(orders)}   items: {len(items)}   units: {sum(i['quantity_ordered'] for i in items)}")
    by_mkt = Counter(o["marketplace_id"] for o in orders)
    by_status = Counter((o["marketplace_id"], o["order_status"]) for o in orders)
    statuses = sorted({s for _, s in by_status})
    print(f"{'marketplace':<16}{'total':>7}" + "".join(f"{s[:11]:>12}" for s in statuses))
    for mkt in sorted(by_mkt):
        print(f"{mkt:<16}{by_mkt[mkt]:>7}" + "".join(f"{by_status[(mkt, s)]:>12}" for s in statuses))
    print()
    print(f"{'SP-API operation':<28}{'calls':>7}{'429s':>7}{'errors':>8}")
    for op, st in sorted(stats.get("operations", {}).items()):
        if st.get("calls"):
            print(f"{op:<28}{st['calls']:>7}{st.get('throttled', 0):>7}{st.get('errors', 0):>8}")
    if runs:
        r = runs[-1]
        print(f"sync runs: {len(runs)}; last: {r['pages']} pages, {r['orders']} orders, {r['calls']} calls")
    left = len(all_truth["orders"]) - len(truth["orders"])
    if left:
        print(f"({left} orders updated in the last 2 minutes are left for the next sweep: SP-API's rule)")
    diffs = compare(truth, wh, api_version=api_version)
    if not truth["orders"]:
        diffs = ["the sandbox truth is empty for the synced window"]
    print()
    print(f"compared with /_sandbox/truth field by field: {', '.join(DATA_TABLES)}")
    if diffs:
        print("warehouse matches sandbox: no")
        for d in diffs:
            print(f"  - {d}")
        return False
    print("warehouse matches sandbox: yes")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--api-version", choices=("2026-01-01", "v0"), default="2026-01-01")
    args = parser.parse_args(argv)
    started = time.monotonic()

    from sp_api_sandbox.launcher import start_sandbox

    for stale in (AIRFLOW_HOME, WAREHOUSE_DB):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    env = airflow_env()
    os.environ.update({k: env[k] for k in env if k.startswith("AIRFLOW") or k == "SP_API_SYNC_CONN_IDS"})

    print(f"starting the SP-API sandbox ({args.orders} orders, {args.days} days, time x{args.time_scale:g})")
    with start_sandbox(
        seed=args.seed,
        orders=args.orders,
        days=args.days,
        time_scale=args.time_scale,
        log_path=DEMO / "sandbox.log",
    ) as sandbox:
        mkts = ", ".join(sandbox.marketplace_ids)
        print(f"   sandbox at {sandbox.url} (seller {sandbox.seller_id}, {mkts})")
        print(f"preparing Airflow home {_rel(AIRFLOW_HOME)} (SQLite, airflow db migrate)")
        airflow("db", "migrate", env=env)
        airflow("connections", "import", str(write_connections(sandbox, args.api_version)), env=env)
        start = datetime.now(UTC) - timedelta(days=args.days + 1)
        print(f"historical sync from {start:%Y-%m-%d} into {_rel(WAREHOUSE_DB)}")
        code = run_backfill(env, start)
        if code != 0:
            print(f"the sync DAG run failed (exit {code}); see {_rel(DEMO / 'sync.log')}")
            return 2
        ok = report(sandbox, started=started, api_version=args.api_version)
    print("sandbox stopped.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
