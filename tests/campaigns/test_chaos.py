"""Chaos campaign (issue 14): the sync, the event path and the enrichment against a hostile SP-API.

The sandbox's ``hostile`` fault profile (include/sp_api_sandbox/faults.py) fails about a third of all
SP-API calls - dropped connections, 500s, 503s, spurious 429s - delays a tenth of them by up to 7 s
(the connection's read timeout here is 2 s, so some become client timeouts) and invalidates a twentieth
of the page tokens. Every fault is seeded: the n-th call of an operation meets the same fault on every
run of a seed. On top of it the campaign expires every access token between runs (tokens live only
3600/600 = 6 s anyway, so they also expire inside runs), and the event path gets SQS redeliveries:
the same bodies delivered again, and a run that lands without acknowledging, whose messages come back
after the visibility timeout.

A run that fails under the faults is rerun (what on-call does: the runbooks say a rerun is safe), up
to ``MAX_RUNS`` times; the campaign counts them. At the end the warehouse must equal the sandbox's
truth on every table through the independent oracle (tests/oracle.py), with no duplicate key in any
table (asked of the database directly) and no notification applied twice.

Figures per campaign (tests/fixtures/campaign.py): ``runs`` DAG runs, ``faults`` the faults the
sandbox reports injecting (``/_sandbox/stats`` totals) plus the access-token expiries the campaign
forced, ``rows_compared`` the expected rows the oracle compared (every table), ``lost`` truth orders
(or delivered notifications) missing from the warehouse, ``duplicated`` duplicate keys plus
notifications applied more than once, ``leaked`` warehouse orders the truth does not have, messages
left on the queue and orders left in the enrichment queue.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests import oracle
from tests.events.conftest import LAND, SENSOR, wait_until
from tests.events.conftest import event_path as event_path  # a fixture, used by name
from tests.fixtures.airflow import load_dag, xcom_result
from tests.fixtures.seller import forget_sync_state
from tests.hooks.conftest import scaled_limits

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Reruns a campaign grants one DAG before it calls the failure real (on-call would escalate).
MAX_RUNS = 6
#: Read timeout of the seller connection: below the hostile profile's slowest calls (7 s).
READ_TIMEOUT = 2.0
TIME_SCALE = 600
SYNC_DAG = "sp_api_orders_sync"
SYNC_TASK = "sync_orders__sp_api_default"
#: Seconds a landed-but-unacknowledged message stays invisible before SQS delivers it again.
VISIBILITY = 4

#: Key columns of every table the sync and the event path write (the data dictionary's keys).
KEYS = {
    "sp_orders": ("order_id",),
    "sp_order_items": ("order_id", "order_item_id"),
    "sp_order_packages": ("order_id", "package_reference_id"),
    "sp_order_status_history": ("order_id", "last_updated_time", "order_status"),
    "sp_order_buyers": ("order_id",),
    "sp_fba_shipment_status": ("order_id", "shipment_id"),
    "sp_notification_inbox": ("notification_id",),
    "sp_enrichment_queue": ("order_id", "conn_id"),
}


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Every campaign starts with full in-process buckets and no cached tokens of an earlier sandbox."""
    from selling_partner.hooks.auth import ACCESS_TOKENS, RESTRICTED_DATA_TOKENS

    forget_sync_state()
    ACCESS_TOKENS.clear()
    RESTRICTED_DATA_TOKENS.clear()
    yield
    ACCESS_TOKENS.clear()
    RESTRICTED_DATA_TOKENS.clear()


def _since(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _faults(sb: Any) -> int:
    """Faults the sandbox injected so far (its own count: ``/_sandbox/stats`` totals)."""
    return int(sb.stats()["totals"]["faults"])


def _duplicate_keys(dsn: str, schema: str) -> dict[str, int]:
    """Rows beyond the first per key, for every table (asked of PostgreSQL, not of the package)."""
    out: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        present = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
            )
        }
        for table, key in KEYS.items():
            if table not in present:
                continue
            cols = ", ".join(key)
            [(extra,)] = conn.execute(
                f"SELECT COUNT(*) - COUNT(DISTINCT ({cols}, 0)) FROM {schema}.{table}"
            ).fetchall()
            out[table] = int(extra)
    return out


def _rows(expected: dict[str, dict]) -> int:
    return sum(len(rows) for rows in expected.values())


class Chaos:
    """Runs DAGs under faults: reruns a failed run, expires tokens between runs, counts both."""

    def __init__(self, sandbox: Any, fig: Any) -> None:
        self.sandbox = sandbox
        self.fig = fig
        self.expiries = 0
        self.failed_runs = 0

    def expire_tokens(self) -> None:
        self.sandbox.expire_access_tokens()
        self.expiries += 1

    def run(self, dag: Any, *, run_conf: dict[str, Any] | None = None) -> Any:
        """``dag.test()`` until a run succeeds (at most ``MAX_RUNS``); every task without retries."""
        for task in dag.tasks:
            task.retries = 0
        for _ in range(MAX_RUNS):
            self.expire_tokens()
            dr = dag.test(run_conf=run_conf)
            self.fig.add(runs=1)
            if str(dr.state) == "success":
                return dr
            self.failed_runs += 1
        pytest.fail(f"{dag.dag_id} still fails after {MAX_RUNS} runs under the hostile profile")


# ------------------------------------------------------------------------------------------ the sync


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_chaos_sync_ends_equal_to_the_truth(
    seed, sync_env, pg_warehouse_conn_id, pg_dsn, pg_schema, campaign
):
    fig = campaign(f"chaos/sync seed {seed}")
    sb = sync_env(
        orders=100,
        days=2,
        seed=seed,
        faults="hostile",
        time_scale=TIME_SCALE,
        extra={"timeout": READ_TIMEOUT, "rate_limits": scaled_limits(TIME_SCALE)},
    )
    chaos = Chaos(sb, fig)
    dag = load_dag(SYNC_DAG)
    conf = {"warehouse_conn_id": pg_warehouse_conn_id}

    # A sweep from two and a half days back (the whole world), then the world moves and a second sweep.
    first = chaos.run(dag, run_conf={**conf, "start_date": _since(2.5), "window_days": 0.5})
    summary = xcom_result(first, SYNC_TASK)
    observed = [sb.truth(lastUpdatedBefore=summary["window_end"])]
    sb.advance(steps=1, new_orders=15, changes=40)
    time.sleep(4.5)  # past the sweep's horizon: the 2-minute rule (1 s here) plus its 2 s safety
    second = chaos.run(dag, run_conf=conf)
    summary = xcom_result(second, SYNC_TASK)

    from selling_partner.warehouse import get_warehouse

    truth = sb.truth(lastUpdatedBefore=summary["window_end"])
    expected = oracle.expected_rows(truth, observed=observed)
    wh = get_warehouse(pg_warehouse_conn_id)
    diffs = oracle.compare(truth, wh, observed=observed)
    got = {r["order_id"] for r in wh.fetch_orders()}
    want = {o["orderId"] for o in truth["orders"]}
    dups = _duplicate_keys(pg_dsn, pg_schema)
    stats = sb.stats()["operations"]
    fig.add(
        faults=_faults(sb) + chaos.expiries,
        rows_compared=_rows(expected),
        lost=len(want - got),
        duplicated=sum(dups.values()),
        leaked=len(got - want),
    )
    print(f"chaos/sync seed {seed}: {chaos.failed_runs} failed runs, sandbox stats {stats}")

    assert diffs == [], "the warehouse differs from the sandbox's truth:\n" + "\n".join(diffs)
    assert dups == dict.fromkeys(dups, 0), dups
    assert fig.lost == fig.duplicated == fig.leaked == 0
    # The campaign did what it says: faults of several kinds, token refreshes after the expiries.
    search = stats["searchOrders"]
    assert search["faults"] > 0 and search["throttled"] + search["errors"] > 0, search
    assert stats["lwaToken"]["calls"] > 1, stats["lwaToken"]


# ----------------------------------------------------------------------------------- the event path


def _drain_events(env: Any, dag: Any, chaos: Chaos, landed: list[dict[str, Any]]) -> None:
    """Run the events DAG until the queue is empty (visible and in flight)."""
    for _ in range(MAX_RUNS):
        if env.queue_depth() == (0, 0):
            return
        dr = chaos.run(dag)
        land = xcom_result(dr, LAND)
        if land:
            landed.append(land)
    assert env.queue_depth() == (0, 0), env.queue_depth()


def _drain_enrichment(env: Any, dag: Any, chaos: Chaos, pg_dsn: str, pg_schema: str) -> None:
    """Run the enrich DAG until no order is left queued.

    An order whose getOrder failed even after the hook's retries is retried a minute later at the
    earliest (the operator's backoff): the campaign lets that minute pass by moving the order's
    ``next_attempt_at`` to now, instead of sleeping it out.
    """
    for _ in range(MAX_RUNS):
        chaos.run(dag)
        if not env.warehouse().enrichment_backlog():
            return
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"UPDATE {pg_schema}.sp_enrichment_queue SET next_attempt_at = NULL")
    assert env.warehouse().enrichment_backlog() == {}


@pytest.mark.parametrize("seed", [3, 5])
def test_chaos_events_and_enrichment_end_equal_to_the_truth(
    seed,
    event_path,
    pg_dsn,
    pg_schema,
    campaign,
):
    fig = campaign(f"chaos/events seed {seed}")
    env = event_path(
        {"sp_api_default": {"orders": 40, "days": 2, "seed": seed, "faults": "hostile"}},
        hold=True,
        env={"SP_API_EVENTS_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY), "SP_API_EVENTS_DRAIN_SECONDS": "2"},
        extra={"sp_api_default": {"timeout": READ_TIMEOUT}},
    )
    seller = env.seller
    chaos = Chaos(seller.sandbox, fig)
    rng = random.Random(f"chaos:{seed}")
    landed: list[dict[str, Any]] = []
    events_dag, enrich_dag = env.events_dag(), env.enrich_dag()
    for round_no in range(2):
        if round_no:
            time.sleep(1.1)  # an order changes at most once per second: let orders change again
        seller.advance(
            new_orders=6,
            changes=8,
            duplicates=0.3,
            shuffle=True,
            double_encoded=0.2,
            poison=1,
            foreign_seller=1,
        )
        bodies = env.held()
        # SQS delivers at least once: a seeded third of the bodies arrives twice.
        env.deliver(bodies + rng.sample(bodies, len(bodies) // 3))
        if round_no == 0:
            # A run lands and crashes before its ack: every message comes back after the visibility
            # timeout and is landed again by the next run.
            partial = events_dag.partial_subset(task_ids=[SENSOR, LAND], include_downstream=False)
            landed.append(xcom_result(chaos.run(partial), LAND))
            wait_until(lambda: env.queue_depth()[1] == 0, timeout=10 * VISIBILITY, what="redelivery")
        _drain_events(env, events_dag, chaos, landed)
        _drain_enrichment(env, enrich_dag, chaos, pg_dsn, pg_schema)

    notes = seller.notifications()
    distinct = {n["notification_id"] for n in notes}
    diffs = env.compare()
    quarantine = env.quarantine_diffs()
    expected = oracle.event_expected_rows(
        seller.sandbox.truth(), notes, seller_id=seller.seller_id, conn_id=seller.conn_id
    )
    wh = env.warehouse()
    inbox = {r["notification_id"] for r in wh.fetch_inbox() if r["seller_id"] == seller.seller_id}
    got = {r["order_id"] for r in wh.fetch_orders()}
    want = seller.order_ids()
    applied = sum(int(x["new"]) for x in landed)
    dups = _duplicate_keys(pg_dsn, pg_schema)
    fig.add(
        faults=_faults(seller.sandbox) + chaos.expiries,
        rows_compared=_rows(expected),
        lost=len(distinct - inbox) + len(want - got),
        duplicated=sum(dups.values()) + max(0, applied - len(distinct)),
        leaked=len(got - want) + sum(env.queue_depth()) + len(wh.enrichment_backlog()),
    )
    stats = seller.sandbox.stats()["operations"]
    print(f"chaos/events seed {seed}: {chaos.failed_runs} failed runs, sandbox stats {stats}")

    assert diffs == [], "the warehouse differs from the sandbox's truth:\n" + "\n".join(diffs)
    assert quarantine == [], quarantine
    assert applied == len(distinct), (applied, len(distinct))
    assert dups == dict.fromkeys(dups, 0), dups
    assert fig.lost == fig.duplicated == fig.leaked == 0
    redelivered = sum(int(x["duplicate"]) for x in landed)
    assert redelivered > len(distinct) // 2, redelivered  # the redeliveries did arrive
    get_order = stats["getOrder"]
    assert get_order["faults"] > 0 and get_order["throttled"] + get_order["errors"] > 0, get_order
    assert stats["lwaToken"]["calls"] > 1, stats["lwaToken"]
