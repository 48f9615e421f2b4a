"""Notifications API through the hook against the sandbox: grantless destinations, subscriptions."""

from __future__ import annotations

import pytest
from selling_partner.hooks.errors import SpApiConfigError, SpApiInvalidInput, SpApiNotFound
from selling_partner.hooks.notifications import SellingPartnerNotificationsHook
from selling_partner.validation import ValidationError

pytestmark = pytest.mark.integration

ARN = "arn:aws:sqs:us-east-1:000000000000:sp-api-notifications"


def test_destinations_and_subscriptions_lifecycle(sandbox_factory, hook_for) -> None:
    sb = sandbox_factory(seed=2, orders=5, days=2, time_scale=600)
    hook = hook_for(sb, hook_class=SellingPartnerNotificationsHook)
    destination = hook.create_destination("orders", ARN)
    assert destination["resource"]["sqs"]["arn"] == ARN
    assert hook.create_destination("orders-again", ARN) == destination  # 409: the existing one
    assert [d["destinationId"] for d in hook.get_destinations()] == [destination["destinationId"]]

    assert hook.get_subscription("ORDER_CHANGE") is None
    event_filter = {
        "eventFilterType": "ORDER_CHANGE",
        "marketplaceIds": sb.marketplace_ids[:1],
        "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
    }
    subscription, created = hook.create_subscription(
        "ORDER_CHANGE", destination["destinationId"], event_filter
    )
    assert created and subscription["processingDirective"]["eventFilter"] == event_filter
    again, created = hook.create_subscription("ORDER_CHANGE", destination["destinationId"], event_filter)
    assert not created and again == subscription  # 409 returned as "already there"
    assert hook.get_subscription("ORDER_CHANGE") == subscription
    assert hook.get_subscription_by_id("ORDER_CHANGE", subscription["subscriptionId"]) == subscription

    hook.delete_subscription("ORDER_CHANGE", subscription["subscriptionId"])
    assert hook.get_subscription("ORDER_CHANGE") is None
    hook.delete_destination(destination["destinationId"])
    assert hook.get_destinations() == []
    with pytest.raises(SpApiNotFound):
        hook.delete_destination(destination["destinationId"])
    ops = sb.stats()["operations"]
    assert ops["createDestination"]["calls"] == 2 and ops["createSubscription"]["calls"] == 2


def test_notification_inputs_are_validated(sandbox_factory, hook_for) -> None:
    sb = sandbox_factory(seed=2, orders=5, days=2, time_scale=600)
    hook = hook_for(sb, hook_class=SellingPartnerNotificationsHook)
    calls = sb.stats()["totals"]["calls"]
    with pytest.raises(SpApiConfigError, match="not an SQS queue ARN"):
        hook.create_destination("x", "https://sqs.us-east-1.amazonaws.com/1/q")
    with pytest.raises(ValidationError):
        hook.delete_subscription("ORDER_CHANGE", "../destinations")
    with pytest.raises(ValidationError, match="not served by region"):
        hook.create_subscription(
            "ORDER_CHANGE", "d1", {"eventFilterType": "ORDER_CHANGE", "marketplaceIds": ["A1PA6795UKMFR9"]}
        )
    with pytest.raises(SpApiConfigError, match="eventFilterType"):
        hook.create_subscription("ORDER_CHANGE", "d1", {"marketplaceIds": ["ATVPDKIKX0DER"]})
    assert sb.stats()["totals"]["calls"] == calls
    with pytest.raises(SpApiInvalidInput) as bad:  # Amazon's own validation still speaks through
        hook.create_subscription("ORDER_CHANGE", "no-such-destination")
    assert "destinationId" in str(bad.value) and bad.value.request_id
