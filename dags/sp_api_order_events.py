"""
### SP-API order events (`sp_api_order_events`)

Amazon pushes ORDER_CHANGE and FBA_OUTBOUND_SHIPMENT_STATUS notifications to an SQS queue; this DAG
turns them into warehouse rows within seconds. It runs continuously (`@continuous`, one active run):

1. **wait_for_notifications** - an `SqsSensor` (deferrable: no worker slot held while the queue is
   empty; long polling) returns with the first batch of up to 10 messages and does **not** delete them.
2. **land_and_apply** - keeps receiving while the queue has more (a storm is absorbed in one run), then
   per batch, in **one warehouse transaction**: validates each body against Amazon's schema (raw JSON,
   double-encoded tolerated), routes it by `SellerId` to its seller connection, lands it in
   `sp_notification_inbox` deduplicated on `NotificationId`, writes the order's status and Summary
   fields (newest event wins; every status goes to the history; a summary never wipes details),
   updates `sp_fba_shipment_status`, and queues the order for `sp_api_order_enrich`. Bodies that are
   malformed, of an unknown type, too large or of a seller no connection serves go to
   `sp_notification_quarantine` with the reason; the batch goes on.
3. **ack** - only after that commit, deletes exactly the landed and quarantined messages.

**Configuration.** The queue URL in the Airflow Variable `sp_api_events_queue_url`
(`AIRFLOW_VAR_SP_API_EVENTS_QUEUE_URL`), the `aws` connection `aws_sp_api_events` (its extra
`endpoint_url` may point at any SQS-compatible server), the seller connections in `SP_API_CONN_IDS`
(the same list every DAG uses). `airflow dags test sp_api_order_events` processes what is on the queue
and ends.

**Reruns are safe.** Clear any task at any point: a message is deleted only after its notification
committed; a redelivered message is recognised by its NotificationId and changes nothing; the
warehouse writes are monotonic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.amazon.aws.sensors.sqs import SqsSensor
from airflow.sdk import DAG
from selling_partner.alerts import on_task_failure
from selling_partner.operators.events import SpApiAckNotificationsOperator, SpApiLandNotificationsOperator
from selling_partner.settings import (
    EVENTS_AWS_CONN_ID,
    EVENTS_QUEUE_VARIABLE,
    WAREHOUSE_CONN_ID,
    env_seconds,
    seller_conn_ids,
)

QUEUE_URL = "{{ var.value.%s }}" % EVENTS_QUEUE_VARIABLE  # noqa: UP031 - a Jinja template, not Python formatting
#: Messages stay invisible this long after a receive: longer than a run, so no other run sees them.
VISIBILITY_TIMEOUT = int(env_seconds("SP_API_EVENTS_VISIBILITY_TIMEOUT_SECONDS", 900))
#: How long the land task keeps receiving after the sensor's messages (a storm in one run).
DRAIN_SECONDS = env_seconds("SP_API_EVENTS_DRAIN_SECONDS", 30)
#: How often the deferred sensor polls when the queue was empty (each poll long-polls 20 s).
POLL_SECONDS = env_seconds("SP_API_EVENTS_POLL_SECONDS", 1)

with DAG(
    dag_id="sp_api_order_events",
    description="ORDER_CHANGE / FBA_OUTBOUND_SHIPMENT_STATUS from SQS into the warehouse in seconds",
    schedule="@continuous",
    # A fixed start in the past: without one, Airflow 3.3.2 gives the second continuous run the first
    # run's logical date and skips it ("run already exists"), so the DAG would run only once.
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["selling_partner", "sp-api", "orders", "events"],
    default_args={
        "owner": "data-engineering",
        "on_failure_callback": on_task_failure,
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
    },
) as dag:
    wait = SqsSensor(
        task_id="wait_for_notifications",
        sqs_queue=QUEUE_URL,
        aws_conn_id=EVENTS_AWS_CONN_ID,
        max_messages=10,
        # One batch: it returns as soon as messages wait (a long poll of up to 20 s on an empty queue);
        # the land task drains the rest itself. More batches would sit on empty polls before landing.
        num_batches=1,
        wait_time_seconds=20,
        visibility_timeout=VISIBILITY_TIMEOUT,
        delete_message_on_reception=False,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=6).total_seconds(),
        soft_fail=True,  # a quiet queue ends the run as skipped; @continuous starts the next one
        doc_md="Waits (deferred, no worker slot) for messages; never deletes them.",
    )
    land = SpApiLandNotificationsOperator(
        task_id="land_and_apply",
        messages=wait.output["messages"],
        sp_api_conn_ids=seller_conn_ids(),
        warehouse_conn_id=WAREHOUSE_CONN_ID,
        sqs_queue=QUEUE_URL,
        aws_conn_id=EVENTS_AWS_CONN_ID,
        drain_seconds=DRAIN_SECONDS,
        visibility_timeout=VISIBILITY_TIMEOUT,
        doc_md="Parse, validate, route, dedupe, apply and queue for enrichment: one transaction per batch.",
    )
    ack = SpApiAckNotificationsOperator(
        task_id="ack",
        landed=land.output,
        sqs_queue=QUEUE_URL,
        aws_conn_id=EVENTS_AWS_CONN_ID,
        doc_md="Delete exactly the messages the land task committed. A failed delete is harmless.",
    )
    wait >> land >> ack
