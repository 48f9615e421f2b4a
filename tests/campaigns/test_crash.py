"""Crash campaign (issue 14): kill -9 the process running a task at precise points, rerun, check.

Each case runs one DAG in its own process (``tests/campaigns/_crash_worker.py``) with a crash point
installed on a real commit point of the code, so the process dies by SIGKILL right there (no
``finally``, no rollback, no task state written); the test checks it died by SIGKILL and where (what
the warehouse, the checkpoint or the queue hold at that moment), reruns in-process, and then asserts:

* every table equals the sandbox's truth through the independent oracle (``tests/oracle.py``);
* no duplicate row (queried directly, per table key);
* no notification applied twice: every notification id is in the inbox once, and the notifications
  the reruns applied as new are exactly the ones the killed run had not committed; no getOrder was
  repeated except those of a batch the kill kept from committing.

Points: the sync (``upsert_orders``' transaction commit of a page: before it, after it but before
the checkpoint write, and after the checkpoint Variable write), the land task (``apply_notifications``'
commit of a batch, before and after, i.e. before the ack), the ack (``DeleteMessageBatch``: after the
first of several batches, after the last one) and the enrichment (``finish_enrichment``'s batch
commit, before and after). Seeded worlds (fixed sandbox seeds), small (40-70 orders), fast clocks.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import oracle
from tests.events.conftest import event_path as event_path  # a fixture, used by name
from tests.events.conftest import wait_until
from tests.fixtures.airflow import REPO, airflow_env, get_variable, load_dag, run_dag, xcom_result

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 1414
SYNC_DAG = "sp_api_orders_sync"
SYNC_TASK = "sync_orders__sp_api_default"
EVENTS_DAG = "sp_api_order_events"
ENRICH_DAG = "sp_api_order_enrich"
#: Seconds a received message stays invisible (the DAG's 15 minutes shortened: redelivery comes soon).
VISIBILITY = 4
#: Enrichment claim lease (the DAG's 10 minutes shortened: a rerun takes a killed batch over soon).
LEASE = 4
#: The warehouse tables and their keys, for the direct duplicate query.
KEYS = {
    "sp_orders": ("order_id",),
    "sp_order_items": ("order_id", "order_item_id"),
    "sp_order_packages": ("order_id", "package_reference_id"),
    "sp_order_status_history": ("order_id", "last_updated_time", "order_status"),
    "sp_order_buyers": ("order_id",),
    "sp_notification_inbox": ("notification_id",),
    "sp_fba_shipment_status": ("order_id", "shipment_id"),
    "sp_enrichment_queue": ("order_id",),
    "sp_order_quarantine": ("order_id", "source"),
}


# ---------------------------------------------------------------------------------------- helpers


class Workers:
    """Crash workers started one test ahead (``_crash_worker --warm``): each pays the ~8 s start-up of a
    ``dag.test()`` process while the previous test runs, then gets its job on stdin."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.count = 0
        self.spare: tuple[subprocess.Popen, Path, Any] | None = None

    def _spawn(self) -> tuple[subprocess.Popen, Path, Any]:
        self.count += 1
        log_path = self.log_dir / f"crash-worker-{self.count}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.campaigns._crash_worker", "--warm"],
            env=airflow_env(),
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return proc, log_path, log

    def kill_at(self, dag_id: str, point: str, n: int, when: str, conf: dict | None = None) -> None:
        """Run ``dag_id`` in a worker that SIGKILLs itself at ``point``; assert it died so."""
        proc, log_path, log = self.spare or self._spawn()
        self.spare = self._spawn()  # warms up while this one runs and the test reruns
        spec = {"dag_id": dag_id, "point": point, "n": n, "when": when, "conf": conf}
        assert proc.stdin is not None
        try:
            proc.stdin.write((json.dumps({"env": airflow_env(), "spec": spec}) + "\n").encode())
            proc.stdin.close()
        except BrokenPipeError:  # it died warming up: the assertion below shows its log
            pass
        try:
            proc.wait(240)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            log.close()
        assert proc.returncode == -signal.SIGKILL, (
            f"the worker was not killed at {point} #{n} {when} (exit {proc.returncode}):\n"
            + log_path.read_text(errors="replace")[-4000:]
        )

    def close(self) -> None:
        """Stop the spare worker (still warming up or waiting for a job: it has done nothing)."""
        if self.spare is not None:
            proc, _, log = self.spare
            proc.kill()
            proc.wait(30)
            log.close()
            self.spare = None


@pytest.fixture(scope="module")
def workers(airflow_db, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    pool = Workers(tmp_path_factory.mktemp("crash-workers"))
    try:
        yield pool
    finally:
        pool.close()


def _duplicates(pg_dsn: str, schema: str) -> dict[str, int]:
    """Rows beyond the first per key, per table (queried directly: the fetch_* helpers could hide them)."""
    out: dict[str, int] = {}
    with psycopg.connect(pg_dsn, autocommit=True, options=f"-c search_path={schema}") as conn:
        for table, key in KEYS.items():
            cols = ", ".join(key)
            row = conn.execute(
                f"SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM {table} "
                f"GROUP BY {cols} HAVING COUNT(*) > 1) d"
            ).fetchone()
            out[table] = int(row[0]) if row else 0
    return out


def _tally(fig: Any, diffs: list[str], rows: dict[str, list[Any]], dups: dict[str, int]) -> None:
    fig.add(
        rows_compared=sum(len(r) for r in rows.values()),
        lost=sum("missing from the warehouse" in d for d in diffs),
        duplicated=sum(dups.values()) + sum("holds this key twice" in d for d in diffs),
        leaked=0,
    )


# ---------------------------------------------------------------------------------------- the sync

#: (name, crash point, n-th call, when). One page per window (window_days=1, under 100 orders a day):
#: the upsert of page 2 is the 2nd ``upsert_orders``; checkpoint saves go open w1, page 1, open w2,
#: page 2, so the 4th save is page 2's.
SYNC_POINTS = [
    ("sync before page commit", "commit:upsert_orders", 2, "before"),
    ("sync after page commit, before checkpoint", "commit:upsert_orders", 2, "after"),
    ("sync after checkpoint write", "checkpoint_save", 4, "after"),
]


@pytest.mark.parametrize(("name", "point", "n", "when"), SYNC_POINTS, ids=[p[0] for p in SYNC_POINTS])
def test_sync_crash(
    name, point, n, when, sync_env, pg_warehouse_conn_id, pg_dsn, pg_schema, campaign, workers
):
    fig = campaign(f"crash/{name}")
    sb = sync_env(orders=60, days=4, seed=SEED, time_scale=1200)
    start = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conf = {
        "mode": "backfill",
        "start_date": start,
        "window_days": 1,
        "warehouse_conn_id": pg_warehouse_conn_id,
    }
    from selling_partner.sync import checkpoint_key
    from selling_partner.warehouse import get_warehouse

    workers.kill_at(SYNC_DAG, point, n, when, conf)
    fig.add(runs=1, faults=1)
    wh = get_warehouse(pg_warehouse_conn_id)
    key = checkpoint_key("sp_api_default", sb.marketplace_ids, "backfill")
    saved = json.loads(get_variable(key))
    held = len(wh.fetch_orders())
    # Where it died: the checkpoint and the warehouse at that moment.
    if point == "checkpoint_save":
        assert saved["pages"] == 2 and held == saved["orders"]
    elif when == "before":
        assert saved["pages"] == 1 and held == saved["orders"]  # page 2 rolled back with the process
    else:
        assert saved["pages"] == 1 and held > saved["orders"]  # page 2 committed, its checkpoint not
    assert not saved.get("done")

    dr = run_dag(load_dag(SYNC_DAG), run_conf=conf)
    fig.add(runs=1)
    summary = xcom_result(dr, SYNC_TASK)
    assert summary["done"] and summary["resumed_at_page"] == saved["pages"]
    pages = saved["pages"] + summary["pages"]
    calls = sb.stats()["operations"]["searchOrders"]["calls"]
    # Only the page the kill kept from its checkpoint was read twice.
    assert calls == pages + (0 if point == "checkpoint_save" else 1)

    truth = sb.truth(lastUpdatedBefore=summary["window_end"])
    assert len(truth["orders"]) == 60
    rows = oracle.warehouse_rows(wh)
    diffs = oracle.compare(truth, rows, limit=1000)
    dups = _duplicates(pg_dsn, pg_schema)
    _tally(fig, diffs, rows, dups)
    assert diffs == [], "the warehouse differs from the sandbox's truth:\n" + "\n".join(diffs[:30])
    assert sum(dups.values()) == 0, dups


# ---------------------------------------------------------------------------------------- land and ack

#: (name, crash point, n-th call, when). The sensor's 10 messages are the land task's first batch and
#: what it drains next the second; the ack deletes in batches of 10.
EVENT_POINTS = [
    ("land before batch commit", "commit:apply_notifications", 2, "before"),
    ("land after batch commit, before ack", "commit:apply_notifications", 2, "after"),
    ("ack after its first delete batch", "sqs:DeleteMessageBatch", 1, "after"),
    ("ack after its last delete batch", "sqs:DeleteMessageBatch", -1, "after"),
]


@pytest.mark.parametrize(("name", "point", "n", "when"), EVENT_POINTS, ids=[p[0] for p in EVENT_POINTS])
def test_event_crash(name, point, n, when, event_path, pg_dsn, pg_schema, campaign, workers):
    fig = campaign(f"crash/{name}")
    env = event_path(
        {"sp_api_default": {"seed": SEED, "orders": 40, "time_scale": 1200}},
        env={
            "SP_API_EVENTS_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY),
            "SP_API_EVENTS_DRAIN_SECONDS": "10",
        },
    )
    seller = env.seller
    seller.advance(new_orders=12, changes=25, duplicates=0.3, double_encoded=0.2)
    published = seller.reports[0]["published"]
    assert published > 30, "the ack must need several delete batches"
    wh = env.warehouse()
    if n == -1:
        n = (published + 9) // 10  # the last delete batch

    workers.kill_at(EVENTS_DAG, point, n, when)
    fig.add(runs=1, faults=1)
    committed = len(wh.fetch_inbox())
    visible, in_flight = env.queue_depth()
    # Where it died.
    if point.startswith("commit:") and when == "before":
        assert 0 < committed <= 10 and in_flight == published  # batch 1 (the sensor's 10) only
    elif point.startswith("commit:"):
        assert committed == len({c["notification_id"] for c in seller.notifications()})
        assert in_flight == published  # landed, none acknowledged
    elif n == 1:
        assert in_flight == published - 10  # the first ten deleted, the rest come back
    else:
        assert (visible, in_flight) == (0, 0)  # all deleted: the kill only lost the task's end
    # The killed run's messages come back after the visibility timeout; the world moves on meanwhile.
    wait_until(lambda: env.queue_depth()[1] == 0, timeout=8 * VISIBILITY, interval=0.25, what="redelivery")
    seller.advance(new_orders=3, changes=5)
    rerun = env.run_events()
    fig.add(runs=1)
    land = rerun["land"]
    notified = {c["notification_id"] for c in seller.notifications()}
    # Nothing applied twice: the rerun applied as new exactly what the killed run had not committed.
    assert land["new"] == len(notified) - committed
    assert rerun["ack"]["failed"] == 0 and env.queue_depth() == (0, 0)
    env.run_enrich()
    fig.add(runs=1)
    _check_events(env, fig, pg_dsn, pg_schema, notified)


def _check_events(env: Any, fig: Any, pg_dsn: str, pg_schema: str, notified: set[str]) -> None:
    seller = env.seller
    inbox = [r["notification_id"] for r in env.warehouse().fetch_inbox()]
    assert sorted(inbox) == sorted(notified)  # each notification once, none missing
    rows = oracle.event_warehouse_rows(env.warehouse(), seller_id=seller.seller_id)
    diffs = env.compare(limit=1000)
    dups = _duplicates(pg_dsn, pg_schema)
    _tally(fig, diffs, rows, dups)
    assert diffs == [], "the warehouse differs from the sandbox's truth:\n" + "\n".join(diffs[:30])
    assert sum(dups.values()) == 0, dups
    assert env.warehouse().enrichment_backlog().get(seller.conn_id, (0, None))[0] == 0


# ---------------------------------------------------------------------------------------- enrichment

ENRICH_POINTS = [
    ("enrich before batch commit", "commit:finish_enrichment", 2, "before"),
    ("enrich after batch commit", "commit:finish_enrichment", 2, "after"),
]


@pytest.mark.parametrize(("name", "point", "n", "when"), ENRICH_POINTS, ids=[p[0] for p in ENRICH_POINTS])
def test_enrich_crash(name, point, n, when, event_path, pg_dsn, pg_schema, campaign, workers):
    fig = campaign(f"crash/{name}")
    env = event_path(
        {"sp_api_default": {"seed": SEED, "orders": 40, "time_scale": 1200}},
        env={"SP_API_ENRICH_LEASE_SECONDS": str(LEASE), "SP_API_EVENTS_DRAIN_SECONDS": "10"},
    )
    seller = env.seller
    seller.advance(new_orders=35, changes=30)
    env.run_events()
    fig.add(runs=1)
    orders = len(seller.order_ids())
    assert orders > 50, "more than two batches of 25"
    wh = env.warehouse()

    workers.kill_at(ENRICH_DAG, point, n, when)
    killed_at = time.monotonic()
    fig.add(runs=1, faults=1)
    fetched = seller.calls("getOrder")["ok"]
    complete = sum(r["is_complete"] for r in wh.fetch_orders())
    if when == "before":
        assert complete == 25 and fetched == 50  # batch 2 fetched, rolled back with the process
    else:
        assert complete == fetched == 50  # batch 2 committed, batch 3 never claimed
    assert wh.enrichment_backlog()[seller.conn_id][0] == orders - complete

    # After the lease the dead run's claims are free: the rerun takes them over.
    time.sleep(max(0.0, LEASE + 0.5 - (time.monotonic() - killed_at)))
    after = env.run_enrich()[seller.conn_id]
    fig.add(runs=1)
    assert after["queued"] == 0 and after["fetched"] == orders - complete
    # getOrder again only for what the kill kept from committing.
    assert seller.calls("getOrder")["ok"] == orders + (fetched - complete)
    _check_events(env, fig, pg_dsn, pg_schema, {c["notification_id"] for c in seller.notifications()})
