"""
### SP-API notification setup (`sp_api_notifications_setup`)

Makes Amazon deliver each seller's ORDER_CHANGE and FBA_OUTBOUND_SHIPMENT_STATUS notifications to the
queue `sp_api_order_events` reads (the Variable `sp_api_events_queue_url`). Trigger it by hand, once per
new seller connection or queue; running it again changes nothing. One task per seller connection
(`SP_API_CONN_IDS`):

1. **Checks, before calling Amazon**: the queue's AWS region matches the seller's SP-API region
   (na: us-east-1, eu: eu-west-1, fe: us-west-2), it is a standard queue, and its access policy lets
   Amazon's account (`437568002678`) send messages and read attributes (read through the `aws`
   connection `aws_sp_api_events`; the statement to add is printed when it is missing).
2. **Destination**: finds the SQS destination for the queue ARN (a grantless call) or creates it.
3. **Subscriptions**: ORDER_CHANGE (with the event filter from the form: `orderChangeTypes`,
   marketplaces) and FBA_OUTBOUND_SHIPMENT_STATUS, each found or created. A subscription that exists
   with another destination or filter is reported, not replaced.

It prints what exists and what it changed. `mode = teardown` removes what this DAG created (recorded in
the Variable `sp_api_notifications__<conn_id>`) and nothing else.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param
from selling_partner.alerts import on_task_failure
from selling_partner.notifications.setup import ORDER_CHANGE_TYPES
from selling_partner.operators.notifications_setup import SpApiNotificationsSetupOperator
from selling_partner.settings import EVENTS_AWS_CONN_ID, EVENTS_QUEUE_VARIABLE, seller_conn_ids

CONN_IDS = seller_conn_ids()

with DAG(
    dag_id="sp_api_notifications_setup",
    description="Find or create the SQS destination and the ORDER_CHANGE / FBA subscriptions per seller",
    schedule=None,
    start_date=None,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    doc_md=__doc__,
    tags=["selling_partner", "sp-api", "events", "setup"],
    default_args={"owner": "data-engineering", "on_failure_callback": on_task_failure, "retries": 0},
    params={
        "mode": Param(
            "setup",
            enum=["setup", "teardown"],
            description="setup: make it exist. teardown: remove what this DAG created.",
        ),
        "orderChangeTypes": Param(
            [],
            type="array",
            items={"type": "string", "enum": list(ORDER_CHANGE_TYPES)},
            description="ORDER_CHANGE event filter: which changes to receive (empty: all).",
        ),
        "marketplace_ids": Param(
            [],
            type="array",
            items={"type": "string"},
            description="ORDER_CHANGE event filter: marketplaces (empty: all of the seller's).",
        ),
        "payload_version": Param("1.0", type="string", description="The notifications' payload version."),
    },
) as dag:
    for conn_id in CONN_IDS:
        SpApiNotificationsSetupOperator(
            task_id=f"setup_notifications__{conn_id}",
            sp_api_conn_id=conn_id,
            sqs_queue="{{ var.value.%s }}" % EVENTS_QUEUE_VARIABLE,  # noqa: UP031 - a Jinja template
            aws_conn_id=EVENTS_AWS_CONN_ID,
            mode="{{ params.mode }}",
            order_change_types="{{ params.orderChangeTypes }}",
            marketplace_ids="{{ params.marketplace_ids }}",
            payload_version="{{ params.payload_version }}",
        )
