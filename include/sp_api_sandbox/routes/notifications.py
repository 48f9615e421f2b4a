"""Notifications API v1: destinations (grantless) and subscriptions.

The registry of destinations and subscriptions belongs to this module: ``router`` makes one per app.
Destinations, subscriptions and their ids are what Amazon returns; what the world publishes into SQS
does not depend on them (``POST /_sandbox/advance`` publishes to the configured queue).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import APIRouter

from sp_api_sandbox.render.notifications import NOTIFICATION_TYPES
from sp_api_sandbox.server import ApiError, CallContext, Route, SandboxServer
from sp_api_sandbox.validation import check_resource_id

ORDER_CHANGE_TYPES = ("BuyerRequestedChange", "DeliveryTipChange", "OrderStatusChange")
EVENT_FILTER_TYPES = {"ORDER_CHANGE": "ORDER_CHANGE"}
DESTINATIONS = "/notifications/v1/destinations"
SUBSCRIPTIONS = "/notifications/v1/subscriptions/{notification_type}"


def _bad(message: str, details: str) -> ApiError:
    return ApiError(400, "InvalidInput", message, details)


@dataclass
class Registry:
    """Destinations by id and subscriptions by notification type."""

    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def destination(self, dest_id: str) -> dict[str, Any]:
        check_resource_id("destinationId", dest_id)
        dest = self.destinations.get(dest_id)
        if dest is None:
            raise ApiError(404, "NotFound", "The requested destination was not found.", dest_id)
        return dest


def _notification_type(ctx: CallContext) -> str:
    notification_type = ctx.param("notification_type")
    if notification_type not in NOTIFICATION_TYPES:
        raise _bad(
            f"Unsupported notificationType {notification_type[:60]!r}; the sandbox supports "
            + ", ".join(NOTIFICATION_TYPES),
            "notificationType",
        )
    return notification_type


def create_destination(registry: Registry, ctx: CallContext) -> dict[str, Any]:
    body = ctx.json()
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        raise _bad("name is required.", "name")
    if len(body["name"]) > 256:
        raise _bad("name must be at most 256 characters.", "name")
    spec = body.get("resourceSpecification")
    sqs = spec.get("sqs") if isinstance(spec, dict) else None
    arn = sqs.get("arn") if isinstance(sqs, dict) else None
    if not isinstance(arn, str) or not arn.startswith("arn:aws:sqs:") or len(arn.split(":")) != 6:
        raise _bad("resourceSpecification.sqs.arn must be an SQS queue ARN.", "resourceSpecification")
    with registry.lock:
        if any(dest["resource"]["sqs"]["arn"] == arn for dest in registry.destinations.values()):
            raise ApiError(409, "Conflict", "A destination for this resource already exists.", arn)
        dest_id = str(uuid.uuid4())
        dest = {"destinationId": dest_id, "name": body["name"], "resource": {"sqs": {"arn": arn}}}
        registry.destinations[dest_id] = dest
    return {"payload": dest}


def get_destinations(registry: Registry, ctx: CallContext) -> dict[str, Any]:
    with registry.lock:
        return {"payload": list(registry.destinations.values())}


def get_destination(registry: Registry, ctx: CallContext) -> dict[str, Any]:
    with registry.lock:
        return {"payload": registry.destination(ctx.param("dest_id"))}


def delete_destination(registry: Registry, ctx: CallContext) -> dict[str, Any]:
    dest_id = ctx.param("dest_id")
    with registry.lock:
        registry.destination(dest_id)
        del registry.destinations[dest_id]
    return {}


def create_subscription(registry: Registry, ctx: CallContext) -> dict[str, Any]:
    notification_type = _notification_type(ctx)
    body = ctx.json()
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", "body")
    if body.get("payloadVersion") != "1.0":
        raise _bad("payloadVersion must be 1.0.", "payloadVersion")
    dest_id = body.get("destinationId")
    if not isinstance(dest_id, str):
        raise _bad("destinationId is required.", "destinationId")
    directive = body.get("processingDirective")
    if directive is not None:
        _check_directive(notification_type, directive)
    with registry.lock:
        if dest_id not in registry.destinations:
            raise _bad("destinationId does not name an existing destination.", dest_id)
        if notification_type in registry.subscriptions:
            raise ApiError(
                409,
                "Conflict",
                f"Subscription already exist for notification type {notification_type}",
                registry.subscriptions[notification_type]["subscriptionId"],
            )
        sub: dict[str, Any] = {
            "subscriptionId": str(uuid.uuid4()),
            "payloadVersion": "1.0",
            "destinationId": dest_id,
        }
        if directive is not None:
            sub["processingDirective"] = directive
        registry.subscriptions[notification_type] = sub
    return {"payload": sub}


def get_subscription(registry: Registry, ctx: CallContext) -> dict[str, Any]:
    notification_type = _notification_type(ctx)
    if ctx.request.query_params.get("payloadVersion") not in (None, "1.0"):
        raise _bad("payloadVersion must be 1.0.", "payloadVersion")
    with registry.lock:
        sub = registry.subscriptions.get(notification_type)
    if sub is None:
        raise ApiError(404, "NotFound", f"No subscription for notification type {notification_type}.", "")
    return {"payload": sub}


def _subscription_by_id(registry: Registry, ctx: CallContext, *, delete: bool) -> dict[str, Any]:
    notification_type = _notification_type(ctx)
    sub_id = check_resource_id("subscriptionId", ctx.param("sub_id"))
    with registry.lock:
        sub = registry.subscriptions.get(notification_type)
        if sub is None or sub["subscriptionId"] != sub_id:
            raise ApiError(404, "NotFound", "The requested subscription was not found.", sub_id)
        if delete:
            del registry.subscriptions[notification_type]
            return {}
    return {"payload": sub}


def _check_directive(notification_type: str, directive: Any) -> None:
    if not isinstance(directive, dict):
        raise _bad("processingDirective must be an object.", "processingDirective")
    event_filter, expression = directive.get("eventFilter"), directive.get("filterExpression")
    if event_filter is not None and expression is not None:
        raise _bad("Use either eventFilter or filterExpression, not both.", "processingDirective")
    if expression is not None and (not isinstance(expression, str) or len(expression) > 256):
        raise _bad("filterExpression must be a string of at most 256 characters.", "filterExpression")
    if event_filter is None:
        return
    if not isinstance(event_filter, dict):
        raise _bad("eventFilter must be an object.", "eventFilter")
    expected = EVENT_FILTER_TYPES.get(notification_type)
    if expected is None or event_filter.get("eventFilterType") != expected:
        raise _bad(
            f"eventFilterType {event_filter.get('eventFilterType')!r} is not valid for {notification_type}.",
            "eventFilterType",
        )
    marketplaces = event_filter.get("marketplaceIds", [])
    if not isinstance(marketplaces, list) or not all(isinstance(m, str) for m in marketplaces):
        raise _bad("marketplaceIds must be a list of strings.", "marketplaceIds")
    change_types = event_filter.get("orderChangeTypes", [])
    if not isinstance(change_types, list) or any(c not in ORDER_CHANGE_TYPES for c in change_types):
        raise _bad(f"orderChangeTypes must be among {', '.join(ORDER_CHANGE_TYPES)}.", "orderChangeTypes")


def routes(registry: Registry) -> tuple[Route, ...]:
    """The operations, bound to one registry."""
    by_id = SUBSCRIPTIONS + "/{sub_id}"
    return (
        Route("GET", DESTINATIONS, "getDestinations", "grantless", partial(get_destinations, registry)),
        Route("POST", DESTINATIONS, "createDestination", "grantless", partial(create_destination, registry)),
        Route(
            "GET",
            DESTINATIONS + "/{dest_id}",
            "getDestination",
            "grantless",
            partial(get_destination, registry),
        ),
        Route(
            "DELETE",
            DESTINATIONS + "/{dest_id}",
            "deleteDestination",
            "grantless",
            partial(delete_destination, registry),
        ),
        Route("POST", SUBSCRIPTIONS, "createSubscription", "seller", partial(create_subscription, registry)),
        Route("GET", SUBSCRIPTIONS, "getSubscription", "seller", partial(get_subscription, registry)),
        Route(
            "GET",
            by_id,
            "getSubscriptionById",
            "grantless",
            partial(_subscription_by_id, registry, delete=False),
        ),
        Route(
            "DELETE",
            by_id,
            "deleteSubscriptionById",
            "grantless",
            partial(_subscription_by_id, registry, delete=True),
        ),
    )


def router(server: SandboxServer) -> APIRouter:
    return server.router(routes(Registry()))
