"""Crash points and reruns of the event path: nothing lost, nothing applied twice.

* The land task fails before its commit (the warehouse is unreachable): nothing lands or is deleted.
  The events run ends after the land task committed and before ack (a crash between them): the
  messages come back after the visibility timeout; a rerun whose ack cannot reach SQS applies
  nothing again and succeeds; the next rerun deletes exactly those messages. The warehouse, its
  bookkeeping included, never changes after the first commit.
* The enrichment is SIGKILLed in the middle of a batch (a real process running the DAG): its batch's
  claims keep a rerun off those orders until their lease ends, then a rerun takes them; the
  warehouse equals the truth, and the only repeated getOrders are the ones the killed batch never
  committed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sp_api_sandbox.launcher import free_port

from tests.events.conftest import ACK, LAND, SENSOR, WAREHOUSE_CONN_ID, wait_until
from tests.fixtures.airflow import REPO, airflow_env

pytestmark = pytest.mark.integration

#: Seconds a received message stays invisible (the DAG's 15 minutes shortened so it comes back).
VISIBILITY = 6
#: Claim lease of the killed enrichment (the DAG's 10 minutes shortened).
LEASE = 8
#: Sandbox time scale of the kill test: getOrder refills 10/s after its burst of 30, so a batch of 25
#: takes long enough to be killed in the middle.
KILL_SCALE = 20
#: getOrder calls after which the enrichment is killed: inside the second batch (calls 26-50).
KILL_AT = 35


def _unreachable_sqs() -> str:
    """An ``aws`` connection to a port nobody listens on, failing fast (one attempt, 1 s connect)."""
    extra = {
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "region_name": "us-east-1",
        "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 1},
    }
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


def _unreachable_postgres() -> str:
    """A ``postgres`` connection to a port nobody listens on."""
    return json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": free_port(), "login": "root",
                       "schema": "warehouse", "extra": {"connect_timeout": 2}})  # fmt: skip


def test_land_rerun_after_its_commit_and_a_failed_ack_apply_nothing_twice(event_path, monkeypatch):
    env = event_path(env={"SP_API_EVENTS_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY)})
    seller = env.seller
    seller.advance(new_orders=15, changes=20, duplicates=0.5, double_encoded=0.3, poison=2, foreign_seller=2)
    published = seller.reports[0]["published"]

    # 0. The land task fails before its commit (the warehouse is unreachable): nothing lands, nothing
    #    is deleted, the messages come back.
    good_warehouse = os.environ[f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"]
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}", _unreachable_postgres())
    failed = env.run_events(expect="failed")
    assert failed["land"] is None and failed["ack"] is None
    assert sum(env.queue_depth()) == published  # the sensor's messages in flight, none deleted
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}", good_warehouse)
    assert env.warehouse().schema_version() == 0  # nothing was written
    wait_until(lambda: env.queue_depth() == (published, 0), timeout=6 * VISIBILITY, what="redelivery")

    # 1. The run ends after land committed, before ack.
    dag = env.events_dag()
    first = env.run_events(dag.partial_subset(task_ids=[SENSOR, LAND], include_downstream=False))
    land = first["land"]
    assert first["ack"] is None and land["messages"] == published and land["new"] > 0
    assert env.queue_depth() == (0, published)  # received, not deleted
    committed = env.snapshot()

    # 2. Redelivered; this rerun's ack cannot reach SQS: logged, harmless.
    wait_until(lambda: env.queue_depth() == (published, 0), timeout=6 * VISIBILITY, what="redelivery")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_UNREACHABLE", _unreachable_sqs())
    dag = env.events_dag()
    dag.get_task(ACK).aws_conn_id = "aws_unreachable"
    second = env.run_events(dag)
    again = second["land"]
    assert (again["messages"], again["new"]) == (published, 0)
    assert (again["duplicate"], again["quarantined"]) == (
        land["new"] + land["duplicate"],
        land["quarantined"],
    )
    assert second["ack"] == {"deleted": 0, "failed": published}
    assert env.snapshot() == committed

    # 3. Redelivered again; a healthy rerun deletes exactly those messages.
    wait_until(lambda: env.queue_depth() == (published, 0), timeout=6 * VISIBILITY, what="redelivery")
    third = env.run_events()
    assert (third["land"]["new"], third["ack"]) == (0, {"deleted": published, "failed": 0})
    assert env.queue_depth() == (0, 0)
    assert env.snapshot() == committed

    env.run_enrich()
    assert seller.calls("getOrder")["calls"] == len(seller.order_ids())
    env.assert_equal_to_truth()
    assert env.quarantine_diffs() == []


def test_enrichment_killed_mid_batch_is_taken_over_after_its_lease(event_path, tmp_path):
    env = event_path({"sp_api_default": {"orders": 40, "time_scale": KILL_SCALE}})
    seller = env.seller
    seller.advance(new_orders=40, changes=25)
    env.run_events()
    orders = len(seller.order_ids())
    assert orders > 50  # more than two batches of 25

    log = (tmp_path / "enrich-worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.events._enrich_worker", str(LEASE)],
        env=airflow_env(),
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: worker.poll() is not None or seller.calls("getOrder")["calls"] >= KILL_AT,
            timeout=180,
            interval=0.05,
            what=f"{KILL_AT} getOrder calls",
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        log.close()
    killed_at = time.monotonic()
    assert worker.returncode == -signal.SIGKILL, (tmp_path / "enrich-worker.log").read_text()[-3000:]
    # Successful getOrders (a 429 is retried by the hook: see the real-scheduler test for 429s).
    calls = seller.calls("getOrder")["ok"]
    wh = env.warehouse()
    committed = sum(r["is_complete"] for r in wh.fetch_orders())
    assert 0 < committed < calls, "the kill must fall after a committed batch, inside the next one"
    assert wh.enrichment_backlog()["sp_api_default"][0] == orders - committed

    # A rerun while the dead run's claims hold: every other order, none of those.
    during = env.run_enrich()["sp_api_default"]
    held = during["queued"]
    assert 0 < held <= 25 and during["fetched"] == orders - committed - held
    # After the lease, a rerun takes them over.
    time.sleep(max(0.0, LEASE + 1 - (time.monotonic() - killed_at)))
    after = env.run_enrich()["sp_api_default"]
    assert (after["fetched"], after["queued"]) == (held, 0)
    assert seller.calls("getOrder")["ok"] == orders + (calls - committed)  # again: only what the kill lost
    env.assert_equal_to_truth()
