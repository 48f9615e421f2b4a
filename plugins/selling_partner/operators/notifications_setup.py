"""SpApiNotificationsSetupOperator: make one seller's SQS destination and subscriptions exist (or go).

Idempotent: it first reads what exists and changes only what is missing, printing both; a second run
changes nothing. Before calling Amazon it checks what Amazon needs (``notifications.setup``): the queue
ARN's AWS region against the seller's SP-API region, and a queue policy that lets Amazon's account send
(read through the AWS connection; the statement to add is printed when it is missing). What it created is
recorded in the Airflow Variable ``sp_api_notifications__<conn_id>``, so ``mode="teardown"`` removes
exactly that and nothing someone else made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from selling_partner.hooks.notifications import SellingPartnerNotificationsHook
from selling_partner.notifications import setup as plan
from selling_partner.notifications.parsing import FBA_OUTBOUND_SHIPMENT_STATUS, ORDER_CHANGE
from selling_partner.operators.base import SellingPartnerBaseOperator
from selling_partner.validation import parse_names

if TYPE_CHECKING:
    from airflow.sdk import Context

RECORD_PREFIX = "sp_api_notifications__"
RECORD_DESCRIPTION = (
    "What sp_api_notifications_setup created for this seller connection (destination and subscriptions); "
    "teardown removes exactly these."
)


class NotificationSetupError(ValueError):
    """Something Amazon needs is missing; the message says what and how to fix it (nothing was called)."""


class SpApiNotificationsSetupOperator(SellingPartnerBaseOperator):
    """Find or create the SQS destination and the ORDER_CHANGE / FBA_OUTBOUND_SHIPMENT_STATUS subscriptions.

    :param sqs_queue: the queue URL (templated; default the Variable ``sp_api_events_queue_url``)
    :param aws_conn_id: the ``aws`` connection that can read the queue's attributes
    :param mode: ``setup`` or ``teardown``
    :param order_change_types: ORDER_CHANGE ``orderChangeTypes`` (empty: all)
    :param marketplace_ids: marketplaces of the ORDER_CHANGE event filter (empty: all)
    :param payload_version: the notifications' payload version
    :param destination_name: name of a destination this operator creates
    :param notification_types: which notifications to subscribe to
    """

    hook_class = SellingPartnerNotificationsHook
    template_fields: Sequence[str] = (
        "sqs_queue",
        "mode",
        "order_change_types",
        "marketplace_ids",
        "payload_version",
    )
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        sqs_queue: str,
        aws_conn_id: str | None = "aws_sp_api_events",
        mode: str = "setup",
        order_change_types: Sequence[str] | str | None = None,
        marketplace_ids: Sequence[str] | str | None = None,
        payload_version: str = "1.0",
        destination_name: str = "airflow-sp-api-orders",
        notification_types: Sequence[str] = (ORDER_CHANGE, FBA_OUTBOUND_SHIPMENT_STATUS),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sqs_queue = sqs_queue
        self.aws_conn_id = aws_conn_id
        self.mode = mode
        self.order_change_types = order_change_types
        self.marketplace_ids = marketplace_ids
        self.payload_version = payload_version
        self.destination_name = destination_name
        self.notification_types = tuple(notification_types)

    # ------------------------------------------------------------------ checks before Amazon
    def _queue(self) -> tuple[str, dict[str, Any]]:
        """(queue ARN, attributes) read through the AWS connection."""
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        attrs = SqsHook(aws_conn_id=self.aws_conn_id).conn.get_queue_attributes(
            QueueUrl=self.sqs_queue, AttributeNames=["QueueArn", "Policy", "FifoQueue"]
        )["Attributes"]
        return attrs["QueueArn"], attrs

    def check(self) -> str:
        """The queue ARN, once every requirement holds; else :class:`NotificationSetupError` with the fix."""
        queue_arn, attrs = self._queue()
        problems = []
        try:
            plan.QueueArn.parse(queue_arn)
            region = plan.region_problem(queue_arn, self.hook.config.region)
            if region:
                problems.append(region)
        except ValueError as exc:
            problems.append(str(exc))
        missing = plan.policy_allows_amazon(attrs.get("Policy"), queue_arn)
        if missing:
            statement = json.dumps(plan.statement_to_add(queue_arn), indent=2)
            problems.append(
                f"the queue policy does not let Amazon's account {plan.AMAZON_PRINCIPAL} "
                f"{' and '.join(missing)}; add this statement to the queue's access policy:\n{statement}"
            )
        if problems:
            raise NotificationSetupError(
                f"{self.sp_api_conn_id}: the queue {queue_arn} cannot receive Amazon's notifications "
                "(nothing was changed at Amazon):\n- " + "\n- ".join(problems)
            )
        self.log.info("queue %s: region and policy let Amazon deliver to it", queue_arn)
        return queue_arn

    # ------------------------------------------------------------------ setup / teardown
    def execute(self, context: Context) -> dict[str, Any]:
        # A rendered native template turns "1.0" into 1.0: the API wants the string.
        self.payload_version = str(self.payload_version)
        try:
            mode = str(self.mode).strip().lower()
            if mode == "setup":
                return self._setup()
            if mode == "teardown":
                return self._teardown()
            raise ValueError(f"mode must be 'setup' or 'teardown', got {self.mode!r}")
        finally:
            self.close_hook()

    def _event_filter(self, notification_type: str) -> dict[str, Any] | None:
        if notification_type != ORDER_CHANGE:
            return None
        return plan.order_change_filter(
            parse_names(self.marketplace_ids, name="marketplace_ids"),
            parse_names(self.order_change_types, name="order_change_types"),
        )

    def _setup(self) -> dict[str, Any]:
        queue_arn = self.check()
        hook = self.hook
        record = self._record()
        changed: list[str] = []
        destination = next(
            (
                d
                for d in hook.get_destinations()
                if ((d.get("resource") or {}).get("sqs") or {}).get("arn") == queue_arn
            ),
            None,
        )
        if destination is None:
            destination = hook.create_destination(self.destination_name, queue_arn)
            record["destination_id"] = destination["destinationId"]
            changed.append(f"created destination {destination['destinationId']} for {queue_arn}")
        else:
            self.log.info("destination %s for %s exists", destination["destinationId"], queue_arn)
        destination_id = destination["destinationId"]
        subscriptions: dict[str, str] = {}
        for notification_type in self.notification_types:
            event_filter = self._event_filter(notification_type)
            existing = hook.get_subscription(notification_type, self.payload_version)
            action, why = plan.subscription_action(
                existing, destination_id=destination_id, event_filter=event_filter
            )
            if action == "mismatch":
                raise NotificationSetupError(
                    f"{self.sp_api_conn_id}: the {notification_type} subscription exists but {why}. Delete "
                    "it (mode teardown removes only what this DAG created; otherwise the Notifications "
                    "API's deleteSubscriptionById) and run the setup again."
                )
            if action == "exists":
                assert existing is not None
                self.log.info("%s: %s", notification_type, why)
                subscriptions[notification_type] = existing["subscriptionId"]
                continue
            created, _ = hook.create_subscription(
                notification_type, destination_id, event_filter, payload_version=self.payload_version
            )
            subscriptions[notification_type] = created["subscriptionId"]
            record.setdefault("subscriptions", {})[notification_type] = created["subscriptionId"]
            changed.append(f"subscribed to {notification_type} ({created['subscriptionId']})")
        if changed:
            self._save_record(record)
        self.log.info(
            "%s: %s",
            self.sp_api_conn_id,
            "; ".join(changed) if changed else "everything exists: nothing changed",
        )
        return {"conn_id": self.sp_api_conn_id, "queue_arn": queue_arn, "destination_id": destination_id,
                "subscriptions": subscriptions, "changed": changed}  # fmt: skip

    def _teardown(self) -> dict[str, Any]:
        from selling_partner.hooks.errors import SpApiNotFound

        hook = self.hook
        record = self._record()
        removed: list[str] = []
        for notification_type, subscription_id in sorted((record.get("subscriptions") or {}).items()):
            try:
                hook.delete_subscription(notification_type, subscription_id)
                removed.append(f"deleted {notification_type} subscription {subscription_id}")
            except SpApiNotFound:
                self.log.info("%s subscription %s was already gone", notification_type, subscription_id)
        if record.get("destination_id"):
            try:
                hook.delete_destination(record["destination_id"])
                removed.append(f"deleted destination {record['destination_id']}")
            except SpApiNotFound:
                self.log.info("destination %s was already gone", record["destination_id"])
        self._delete_record()
        self.log.info(
            "%s: %s",
            self.sp_api_conn_id,
            "; ".join(removed) if removed else "nothing this DAG created exists",
        )
        return {"conn_id": self.sp_api_conn_id, "removed": removed}

    # ------------------------------------------------------------------ what this DAG created
    @property
    def _record_key(self) -> str:
        return RECORD_PREFIX + self.sp_api_conn_id

    def _record(self) -> dict[str, Any]:
        from airflow.sdk import Variable

        raw = Variable.get(self._record_key, default=None)
        return json.loads(raw) if raw else {}

    def _save_record(self, record: dict[str, Any]) -> None:
        from airflow.sdk import Variable

        Variable.set(
            self._record_key, json.dumps(record, indent=2, sort_keys=True), description=RECORD_DESCRIPTION
        )

    def _delete_record(self) -> None:
        from airflow.sdk import Variable

        if Variable.get(self._record_key, default=None) is not None:
            Variable.delete(self._record_key)


__all__ = ["NotificationSetupError", "SpApiNotificationsSetupOperator"]
