"""SellingPartnerNotificationsHook: Notifications API v1 destinations (grantless) and subscriptions."""

from __future__ import annotations

from typing import Any

from selling_partner.hooks.auth import NOTIFICATIONS_SCOPE
from selling_partner.hooks.errors import SpApiError, SpApiNotFound
from selling_partner.hooks.sp_api import SellingPartnerHook
from selling_partner.validation import ValidationError, validate_marketplace_ids, validate_path_segment

NOTIFICATIONS = "/notifications/v1"
GRANTLESS = ("grantless", NOTIFICATIONS_SCOPE)


class SellingPartnerNotificationsHook(SellingPartnerHook):
    """Notifications API v1 on an ``amazon_sp_api`` connection (see :class:`SellingPartnerHook`).

    Destinations and subscriptions by id are grantless calls (an LWA ``client_credentials`` token);
    creating and reading a seller's subscription needs the seller's refresh token.
    """

    def _payload(self, operation: str, method: str, path: str, **kwargs: Any) -> Any:
        body, _ = self.call(operation, method, NOTIFICATIONS + path, **kwargs)
        return (body or {}).get("payload")

    def get_destinations(self) -> list[dict[str, Any]]:
        """All notification destinations of the application (grantless)."""
        return list(self._payload("getDestinations", "GET", "/destinations", auth=GRANTLESS) or [])

    def create_destination(self, name: str, sqs_arn: str) -> dict[str, Any]:
        """Create an SQS destination (grantless); if the ARN is already registered, return that one."""
        if not isinstance(sqs_arn, str) or not sqs_arn.startswith("arn:aws:sqs:"):
            raise ValidationError(
                f"not an SQS queue ARN: {str(sqs_arn)[:80]!r}", operation="createDestination"
            )
        body = {"name": name, "resourceSpecification": {"sqs": {"arn": sqs_arn}}}
        try:
            return (
                self._payload("createDestination", "POST", "/destinations", json_body=body, auth=GRANTLESS)
                or {}
            )
        except SpApiError as exc:
            if exc.status != 409:
                raise
            for destination in self.get_destinations():
                if ((destination.get("resource") or {}).get("sqs") or {}).get("arn") == sqs_arn:
                    return destination
            raise

    def delete_destination(self, destination_id: str) -> None:
        """Delete a destination (grantless)."""
        validate_path_segment(destination_id, name="destination id", operation="deleteDestination")
        self.call(
            "deleteDestination", "DELETE", f"{NOTIFICATIONS}/destinations/{destination_id}", auth=GRANTLESS
        )

    def get_subscription(
        self, notification_type: str, payload_version: str | None = None
    ) -> dict[str, Any] | None:
        """The seller's subscription to ``notification_type``, or ``None`` when there is none."""
        validate_path_segment(notification_type, name="notification type", operation="getSubscription")
        params = {"payloadVersion": payload_version} if payload_version else None
        try:
            return self._payload(
                "getSubscription", "GET", f"/subscriptions/{notification_type}", params=params
            )
        except SpApiNotFound:
            return None

    def create_subscription(
        self,
        notification_type: str,
        destination_id: str,
        event_filter: dict[str, Any] | None = None,
        *,
        payload_version: str = "1.0",
    ) -> tuple[dict[str, Any], bool]:
        """Subscribe the seller to ``notification_type``; returns ``(subscription, created)``.

        A 409 (already subscribed) returns the existing subscription with ``created=False``.
        ``event_filter`` is the ``processingDirective.eventFilter`` object, e.g.
        ``{"eventFilterType": "ORDER_CHANGE", "marketplaceIds": [...], "orderChangeTypes": [...]}``.
        """
        op = "createSubscription"
        validate_path_segment(notification_type, name="notification type", operation=op)
        validate_path_segment(destination_id, name="destination id", operation=op)
        body: dict[str, Any] = {"payloadVersion": payload_version, "destinationId": destination_id}
        if event_filter:
            if "eventFilterType" not in event_filter:
                raise ValidationError("event_filter needs eventFilterType (e.g. ORDER_CHANGE)", operation=op)
            if event_filter.get("marketplaceIds"):
                validate_marketplace_ids(
                    event_filter["marketplaceIds"], region=self.config.region, operation=op
                )
            body["processingDirective"] = {"eventFilter": dict(event_filter)}
        try:
            return self._payload(
                op, "POST", f"/subscriptions/{notification_type}", json_body=body
            ) or {}, True
        except SpApiError as exc:
            if exc.status != 409:
                raise
            existing = self.get_subscription(notification_type, payload_version)
            if existing is None:
                raise
            return existing, False

    def _subscription_path(self, operation: str, notification_type: str, subscription_id: str) -> str:
        validate_path_segment(notification_type, name="notification type", operation=operation)
        validate_path_segment(subscription_id, name="subscription id", operation=operation)
        return f"/subscriptions/{notification_type}/{subscription_id}"

    def get_subscription_by_id(self, notification_type: str, subscription_id: str) -> dict[str, Any]:
        """A subscription by id (grantless)."""
        path = self._subscription_path("getSubscriptionById", notification_type, subscription_id)
        return self._payload("getSubscriptionById", "GET", path, auth=GRANTLESS) or {}

    def delete_subscription(self, notification_type: str, subscription_id: str) -> None:
        """Delete a subscription by id (grantless ``deleteSubscriptionById``)."""
        path = self._subscription_path("deleteSubscriptionById", notification_type, subscription_id)
        self.call("deleteSubscriptionById", "DELETE", NOTIFICATIONS + path, auth=GRANTLESS)
