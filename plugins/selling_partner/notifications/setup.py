"""What the notification setup must check before calling Amazon, and how it decides (pure functions).

Amazon delivers notifications to an SQS *standard* queue in the AWS region of the seller's SP-API
region, and only if the queue's policy lets Amazon's account (``437568002678``) send to it and read its
attributes. These checks run first, so a wrong queue is reported with the fix instead of as Amazon's
error after a destination was half created.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from selling_partner.regions import get_region

#: The AWS account Amazon's notifications are sent from (Notifications API docs).
AMAZON_PRINCIPAL = "arn:aws:iam::437568002678:root"
REQUIRED_ACTIONS = ("sqs:SendMessage", "sqs:GetQueueAttributes")
ORDER_CHANGE_TYPES = ("BuyerRequestedChange", "DeliveryTipChange", "OrderStatusChange")


@dataclass(frozen=True)
class QueueArn:
    """An SQS queue ARN's parts: ``arn:aws:sqs:<region>:<account>:<name>``."""

    region: str
    account: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> QueueArn:
        parts = arn.split(":") if isinstance(arn, str) else []
        if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"] or not all(parts[3:]):
            raise ValueError(
                f"not an SQS queue ARN: {str(arn)[:100]!r} (expected arn:aws:sqs:<region>:<account>:<name>)"
            )
        if parts[5].endswith(".fifo"):
            raise ValueError(
                f"queue {parts[5]} is a FIFO queue; Amazon delivers notifications to standard queues only"
            )
        return cls(parts[3], parts[4], parts[5])


def region_problem(queue_arn: str, sp_api_region: str) -> str | None:
    """Why the queue is in the wrong AWS region for the seller's SP-API region (``None``: it is right)."""
    arn = QueueArn.parse(queue_arn)
    expected = get_region(sp_api_region).aws_region
    if arn.region != expected:
        return (
            f"the queue {arn.name} is in AWS region {arn.region}, but sellers of SP-API region "
            f"{sp_api_region!r} need it in {expected}: create the queue there and point "
            "sp_api_events_queue_url at it"
        )
    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def _action_covers(actions: Iterable[str], wanted: str) -> bool:
    for action in actions:
        action = str(action)
        if action in ("*", "sqs:*") or action.lower() == wanted.lower():
            return True
    return False


def _principal_covers(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(p in ("*", AMAZON_PRINCIPAL, "437568002678") for p in _as_list(principal.get("AWS")))
    return False


def policy_allows_amazon(policy: str | Mapping[str, Any] | None, queue_arn: str) -> list[str]:
    """The required actions the queue policy does NOT grant Amazon's account (``[]``: all granted)."""
    doc = json.loads(policy) if isinstance(policy, str) and policy.strip() else policy or {}
    missing = []
    for action in REQUIRED_ACTIONS:
        granted = False
        for st in _as_list(doc.get("Statement") if isinstance(doc, Mapping) else None):
            if (
                not isinstance(st, Mapping)
                or st.get("Effect") != "Allow"
                or not _principal_covers(st.get("Principal"))
            ):
                continue
            resources = [str(r) for r in _as_list(st.get("Resource"))] or ["*"]
            if _action_covers(_as_list(st.get("Action")), action) and any(
                r in ("*", queue_arn) for r in resources
            ):
                granted = True
        if not granted:
            missing.append(action)
    return missing


def statement_to_add(queue_arn: str) -> dict[str, Any]:
    """The policy statement that lets Amazon send notifications to the queue."""
    return {
        "Sid": "AllowAmazonSellingPartnerNotifications",
        "Effect": "Allow",
        "Principal": {"AWS": AMAZON_PRINCIPAL},
        "Action": list(REQUIRED_ACTIONS),
        "Resource": queue_arn,
    }


def order_change_filter(
    marketplace_ids: Sequence[str] | None, change_types: Sequence[str] | None
) -> dict[str, Any]:
    """The ORDER_CHANGE ``eventFilter`` (empty lists mean everything)."""
    bad = [t for t in change_types or () if t not in ORDER_CHANGE_TYPES]
    if bad:
        raise ValueError(f"unknown orderChangeTypes {bad}; choose from {', '.join(ORDER_CHANGE_TYPES)}")
    out: dict[str, Any] = {"eventFilterType": "ORDER_CHANGE"}
    if marketplace_ids:
        out["marketplaceIds"] = sorted(marketplace_ids)
    if change_types:
        out["orderChangeTypes"] = sorted(change_types)
    return out


Action = Literal["exists", "create", "mismatch"]


def _normalised(event_filter: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: sorted(v) if isinstance(v, list) else v for k, v in (event_filter or {}).items()}


def subscription_action(
    existing: Mapping[str, Any] | None, *, destination_id: str, event_filter: Mapping[str, Any] | None
) -> tuple[Action, str]:
    """Compare a seller's subscription with the wanted one: ``exists``, ``create`` or ``mismatch`` (+ why)."""
    if existing is None:
        return "create", "no subscription yet"
    if existing.get("destinationId") != destination_id:
        return "mismatch", f"it delivers to destination {existing.get('destinationId')}, not {destination_id}"
    have = ((existing.get("processingDirective") or {}).get("eventFilter")) or None
    if _normalised(event_filter) != _normalised(have):
        return "mismatch", f"its event filter is {json.dumps(have)}, not {json.dumps(event_filter)}"
    return "exists", f"subscription {existing.get('subscriptionId')} already delivers to {destination_id}"
