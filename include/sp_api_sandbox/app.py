"""The sandbox's HTTP server: LWA, Orders v2026-01-01 and v0, Tokens, Notifications, admin.

Every SP-API call goes through ``SandboxServer.call``: count it, check the access token, take a
token from the operation's bucket, maybe inject a fault, run the handler, and stamp the headers
Amazon sends (``x-amzn-RequestId`` always, ``x-amzn-RateLimit-Limit`` on 200/400/404). Handlers are
small functions over the world, which one lock guards (it is not thread-safe).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from sp_api_sandbox.auth import (
    NOTIFICATIONS_SCOPE,
    Credentials,
    IssuedToken,
    LwaError,
    TokenRejected,
    TokenStore,
    validate_rdt_request,
)
from sp_api_sandbox.faults import FaultInjector, parse_faults
from sp_api_sandbox.pagetokens import PageTokenCodec, PageTokenError, filters_hash
from sp_api_sandbox.publisher import DeliveryOptions, SqsPublisher, build_bodies
from sp_api_sandbox.ratelimit import RateLimiter, format_rate
from sp_api_sandbox.validation import (
    V0_CHANNELS,
    V0_EASY_SHIP,
    V0_INVOICE_STATUSES,
    V0_ORDER_STATUSES,
    V0_PAYMENT_METHODS,
    InvalidInput,
    check_enum,
    check_marketplaces,
    check_order_id,
    check_resource_id,
    format_time,
    list_param,
    parse_page_size,
    parse_time,
    parse_window,
    window_filters,
)
from sp_api_sandbox.world import World, WorldConfig
from sp_api_sandbox.world_data import FULFILLED_BY, FULFILLMENT_STATUSES, INCLUDED_DATA

log = logging.getLogger("sp_api_sandbox")

Access = Literal["seller", "seller_or_rdt", "rdt", "grantless"]
SUPPORTED_NOTIFICATION_TYPES = ("ORDER_CHANGE", "FBA_OUTBOUND_SHIPMENT_STATUS")
ORDER_CHANGE_TYPES = ("BuyerRequestedChange", "DeliveryTipChange", "OrderStatusChange")
EVENT_FILTER_TYPES = {"ORDER_CHANGE": "ORDER_CHANGE"}
V0_POST_FILTERS = (
    "OrderStatuses",
    "PaymentMethods",
    "EasyShipShipmentStatuses",
    "ElectronicInvoiceStatuses",
    "AmazonOrderIds",
    "SellerOrderId",
    "IsISPU",
    "BuyerEmail",
)
V0_RESTRICTED_KEYS = {"buyerInfo": "BuyerInfo", "shippingAddress": "ShippingAddress"}


@dataclass
class ServerSettings:
    """Everything ``serve`` accepts on the command line (see docs/CONTRACTS.md)."""

    seed: int = 7
    orders: int = 2000
    days: int = 30
    time_scale: float = 60.0
    region: str = "na"
    sqs_endpoint: str | None = None
    queue_url: str | None = None
    faults: str = "none"
    client_id: str = Credentials.client_id
    client_secret: str = Credentials.client_secret
    refresh_token: str = Credentials.refresh_token
    min_before_lag: float = 120.0
    page_token_ttl: float | None = None
    rate_limit_header: bool = True
    items_page_size: int = 2

    @property
    def effective_page_token_ttl(self) -> float:
        return self.page_token_ttl if self.page_token_ttl is not None else 86400.0 / self.time_scale


class ApiError(Exception):
    """An SP-API error response: ``{"errors":[{"code","message","details"}]}``."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.details)


def error_response(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    return JSONResponse(
        {"errors": [{"code": code, "message": message, "details": details}]}, status_code=status
    )


def _invalid(exc: InvalidInput | PageTokenError) -> ApiError:
    details = exc.details if isinstance(exc, InvalidInput) else "paginationToken"
    message = exc.message if isinstance(exc, InvalidInput) else str(exc)
    return ApiError(400, "InvalidInput", message, details)


def _not_found(order_id: str) -> ApiError:
    return ApiError(
        404, "NotFound", "The requested order was not found.", f"Order {order_id} does not exist."
    )


class DroppedConnection(Response):
    """Closes the client's connection without any response (a transport-level failure)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort = scope.get("sandbox.abort")
        if abort is None or not await abort():
            raise ConnectionAbortedError("sandbox fault: connection dropped")


async def _abort_transport(send: Send) -> bool:
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.abort()
    await asyncio.sleep(0.05)  # let the server notice the lost connection before the app returns
    return True


class TransportAccess:
    """Outermost ASGI layer: lets a response drop the raw connection (uvicorn's transport) and makes
    sure every response has a request id."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["sandbox.abort"] = lambda: _abort_transport(send)

        async def send_with_request_id(message: Any) -> None:
            # every response carries x-amzn-RequestId (the pipeline sets it; this covers the rest)
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-amzn-requestid" for name, _ in headers):
                    headers.append((b"x-amzn-requestid", str(uuid.uuid4()).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_request_id)


@dataclass
class OpStats:
    calls: int = 0
    ok: int = 0
    throttled: int = 0
    errors: int = 0
    faults: int = 0


@dataclass
class CallContext:
    request: Request
    token: IssuedToken
    invalidate_page_token: bool
    fault_applied: bool = False


@dataclass
class SandboxServer:
    """State and behaviour of one sandbox: the world plus the rules Amazon enforces around it."""

    settings: ServerSettings
    world: World
    tokens: TokenStore = field(init=False)
    limiter: RateLimiter = field(init=False)
    faults: FaultInjector = field(init=False)
    page_tokens: PageTokenCodec = field(init=False)
    publisher: SqsPublisher | None = field(init=False, default=None)
    world_lock: threading.Lock = field(default_factory=threading.Lock)
    stats_lock: threading.Lock = field(default_factory=threading.Lock)
    stats: dict[str, OpStats] = field(default_factory=dict)
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # notificationType -> subscription
    advance_count: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        creds = Credentials(s.client_id, s.client_secret, s.refresh_token)
        self.tokens = TokenStore(credentials=creds, time_scale=s.time_scale)
        self.limiter = RateLimiter(time_scale=s.time_scale)
        self.faults = parse_faults(s.faults, s.seed)
        self.page_tokens = PageTokenCodec(ttl=s.effective_page_token_ttl)
        if s.sqs_endpoint and s.queue_url:
            self.publisher = SqsPublisher(s.sqs_endpoint, s.queue_url)

    # -- bookkeeping -------------------------------------------------------------------------------
    def _count(self, operation: str, **increments: int) -> None:
        with self.stats_lock:
            entry = self.stats.setdefault(operation, OpStats())
            for name, value in increments.items():
                setattr(entry, name, getattr(entry, name) + value)

    def stats_payload(self) -> dict[str, Any]:
        with self.stats_lock:
            operations = {op: asdict(st) for op, st in sorted(self.stats.items())}
        totals = {k: sum(op[k] for op in operations.values()) for k in asdict(OpStats())}
        return {"operations": operations, "totals": totals}

    def reset_stats(self) -> None:
        with self.stats_lock:
            self.stats.clear()

    def now(self) -> datetime:
        return datetime.now(UTC)

    # -- the request pipeline ----------------------------------------------------------------------
    def _authorize(self, request: Request, access: Access) -> IssuedToken:
        token = self.tokens.check(request.headers.get("x-amz-access-token"))
        allowed: bool
        if access == "grantless":
            allowed = token.kind == "grantless" and token.scope == NOTIFICATIONS_SCOPE
        elif access == "seller":
            allowed = token.kind == "seller"
        elif access == "seller_or_rdt":
            allowed = token.kind == "seller" or (
                token.kind == "rdt" and token.covers("GET", request.url.path) is not None
            )
        else:  # rdt
            allowed = token.kind == "rdt" and token.covers("GET", request.url.path) is not None
        if not allowed:
            raise ApiError(403, "Unauthorized", "Access to requested resource is denied.", "")
        return token

    async def call(
        self,
        request: Request,
        operation: str,
        access: Access,
        handler: Callable[[CallContext], dict[str, Any]],
    ) -> Response:
        """Run one SP-API operation through auth, rate limit, faults and the handler."""
        self._count(operation, calls=1)
        request_id = str(uuid.uuid4())
        response: Response
        fault_applied = False
        try:
            token = self._authorize(request, access)
        except TokenRejected as exc:
            response = error_response(
                403, "Unauthorized", "Access to requested resource is denied.", exc.details
            )
        except ApiError as exc:
            response = exc.response()
        else:
            if not self.limiter.try_acquire(operation):
                response = _quota_exceeded()
            else:
                decision = self.faults.decide(operation)
                if decision.delay > 0:
                    fault_applied = True
                    await asyncio.sleep(decision.delay)
                if decision.outcome == "drop":
                    self._count(operation, faults=1, errors=1)
                    log.info("fault: dropped connection on %s", operation)
                    return DroppedConnection()
                if decision.outcome in ("error500", "error503", "throttle"):
                    fault_applied = True
                    response = _fault_response(decision.outcome)
                else:
                    ctx = CallContext(request, token, decision.invalidate_page_token)
                    try:
                        response = JSONResponse(handler(ctx))
                    except ApiError as exc:
                        response = exc.response()
                    fault_applied = fault_applied or ctx.fault_applied
        status = response.status_code
        response.headers["x-amzn-RequestId"] = request_id
        if self.settings.rate_limit_header and status in (200, 400, 404):
            response.headers["x-amzn-RateLimit-Limit"] = format_rate(self.limiter.rate(operation))
        self._count(
            operation,
            ok=int(200 <= status < 300),
            throttled=int(status == 429),
            errors=int(status >= 400 and status != 429),
            faults=int(fault_applied),
        )
        log.info("%s %s -> %d", operation, request.url.path, status)
        return response

    # -- page tokens -------------------------------------------------------------------------------
    def _read_page_token(self, ctx: CallContext, raw: str, kind: str) -> dict[str, Any]:
        if ctx.invalidate_page_token:
            ctx.fault_applied = True
            raise _invalid(
                PageTokenError("The pagination token has expired. Start the search again without it.")
            )
        try:
            return self.page_tokens.decode(raw, kind)
        except PageTokenError as exc:
            raise _invalid(exc) from exc

    # -- Orders v2026-01-01 ------------------------------------------------------------------------
    def search_orders(self, ctx: CallContext) -> dict[str, Any]:
        q = ctx.request.query_params
        try:
            statuses = check_enum(
                "fulfillmentStatuses", list_param(q.getlist("fulfillmentStatuses")), FULFILLMENT_STATUSES
            )
            fulfilled_by = check_enum("fulfilledBy", list_param(q.getlist("fulfilledBy")), FULFILLED_BY)
            included = check_enum("includedData", list_param(q.getlist("includedData")), INCLUDED_DATA)
            marketplaces = check_marketplaces(
                "marketplaceIds",
                list_param(q.getlist("marketplaceIds")),
                self.world.marketplace_ids,
                required=False,
            )
            size = parse_page_size("maxResultsPerPage", q.get("maxResultsPerPage"))
            token_body = None
            if q.get("paginationToken"):
                token_body = self._read_page_token(ctx, q["paginationToken"], "searchOrders")
            pinned = parse_time("token", token_body["x"]["before"]) if token_body else None
            window = parse_window(dict(q), self.now(), self.settings.min_before_lag, pinned_before=pinned)
            filters = {
                **window_filters(window),
                "statuses": statuses,
                "fulfilledBy": fulfilled_by,
                "marketplaces": marketplaces,
            }
            fhash = filters_hash(filters)
            if token_body is not None:
                self.page_tokens.check_filters(token_body, fhash)
        except InvalidInput as exc:
            raise _invalid(exc) from exc
        except PageTokenError as exc:
            raise _invalid(exc) from exc
        with self.world_lock:
            found = self.world.search(
                **window.search_kwargs(),
                fulfillment_statuses=statuses or None,
                marketplace_ids=marketplaces,
                fulfilled_by=fulfilled_by or None,
            )
            page, position = _keyset_page(found, token_body["p"] if token_body else None, size)
            orders = [self.world.render_v2026(order, included) for order in page]
        field_name, echoed = window.echo()
        body: dict[str, Any] = {"orders": orders, field_name: echoed}
        if position is not None:
            token = self.page_tokens.encode(
                "searchOrders", fhash, position, {"before": format_time(window.before)}
            )
            body["pagination"] = {"nextToken": token}
        return body

    def get_order(self, ctx: CallContext, order_id: str) -> dict[str, Any]:
        try:
            check_order_id(order_id)
            included = check_enum(
                "includedData", list_param(ctx.request.query_params.getlist("includedData")), INCLUDED_DATA
            )
        except InvalidInput as exc:
            raise _invalid(exc) from exc
        with self.world_lock:
            order = self.world.get(order_id)
            if order is None:
                raise _not_found(order_id)
            return {"order": self.world.render_v2026(order, included)}

    # -- Orders v0 ---------------------------------------------------------------------------------
    def _v0_filters(self, q: dict[str, list[str]]) -> tuple[dict[str, Any], Any]:
        """Normalised v0 getOrders filters (without the window) from repeated/comma-separated params."""

        def many(name: str) -> list[str]:
            return list_param(q.get(name, []))

        def one(name: str) -> str | None:
            values = q.get(name) or []
            return values[-1] if values else None

        filters: dict[str, Any] = {
            "MarketplaceIds": check_marketplaces(
                "MarketplaceIds", many("MarketplaceIds"), self.world.marketplace_ids, required=True
            ),
            "OrderStatuses": check_enum("OrderStatuses", many("OrderStatuses"), V0_ORDER_STATUSES),
            "FulfillmentChannels": check_enum(
                "FulfillmentChannels", many("FulfillmentChannels"), V0_CHANNELS
            ),
            "PaymentMethods": check_enum("PaymentMethods", many("PaymentMethods"), V0_PAYMENT_METHODS),
            "EasyShipShipmentStatuses": check_enum(
                "EasyShipShipmentStatuses", many("EasyShipShipmentStatuses"), V0_EASY_SHIP
            ),
            "ElectronicInvoiceStatuses": check_enum(
                "ElectronicInvoiceStatuses", many("ElectronicInvoiceStatuses"), V0_INVOICE_STATUSES
            ),
            "AmazonOrderIds": sorted({check_order_id(o) for o in many("AmazonOrderIds")}),
            "BuyerEmail": one("BuyerEmail"),
            "SellerOrderId": one("SellerOrderId"),
            "IsISPU": None,
        }
        if len(filters["AmazonOrderIds"]) > 50:
            raise InvalidInput("Too many AmazonOrderIds: at most 50 are allowed.", "AmazonOrderIds")
        ispu = one("IsISPU")
        if ispu is not None:
            if ispu.lower() not in ("true", "false"):
                raise InvalidInput("IsISPU must be true or false.", "IsISPU")
            filters["IsISPU"] = ispu.lower() == "true"
        if filters["SellerOrderId"] and (
            filters["FulfillmentChannels"] or filters["OrderStatuses"] or filters["PaymentMethods"]
        ):
            raise InvalidInput(
                "SellerOrderId cannot be combined with FulfillmentChannels, OrderStatuses or PaymentMethods.",
                "SellerOrderId",
            )
        params = {
            k: one(k) for k in ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
        }
        return filters, params

    def get_orders_v0(self, ctx: CallContext) -> dict[str, Any]:
        q: dict[str, list[str]] = {}
        for key, value in ctx.request.query_params.multi_items():
            q.setdefault(key, []).append(value)
        next_token = (q.get("NextToken") or [None])[-1]
        names = ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
        try:
            token_body = self._read_page_token(ctx, next_token, "getOrders") if next_token else None
            if token_body is not None and set(q) <= {"NextToken", "MaxResultsPerPage"}:
                # NextToken alone: the token carries the original filters
                stored = token_body["x"]
                filters, params = stored["filters"], stored["params"]
            else:
                filters, params = self._v0_filters(q)
            # a NextToken keeps its page size unless the caller sends another one
            default_size = int(token_body["x"].get("size", 100)) if token_body else 100
            size = parse_page_size(
                "MaxResultsPerPage", (q.get("MaxResultsPerPage") or [None])[-1], default_size
            )
            pinned = parse_time("token", token_body["x"]["before"]) if token_body else None
            window = parse_window(
                params, self.now(), self.settings.min_before_lag, names=names, pinned_before=pinned
            )
            fhash = filters_hash({**window_filters(window), **filters})
            if token_body is not None:
                self.page_tokens.check_filters(token_body, fhash)
        except InvalidInput as exc:
            raise _invalid(exc) from exc
        except PageTokenError as exc:
            raise _invalid(exc) from exc
        statuses = sorted({V0_ORDER_STATUSES[s] for s in filters["OrderStatuses"]})
        channels = sorted({V0_CHANNELS[c] for c in filters["FulfillmentChannels"]})
        with self.world_lock:
            found = self.world.search(
                **window.search_kwargs(),
                fulfillment_statuses=statuses or None,
                marketplace_ids=filters["MarketplaceIds"],
                fulfilled_by=channels or None,
            )
            post_filters = [k for k in V0_POST_FILTERS if filters[k] not in (None, [])]
            if post_filters:  # filters only a rendered v0 order can answer
                found = [o for o in found if self._v0_matches(o, self.world.render_v0_order(o), filters)]
            page, position = _keyset_page(found, token_body["p"] if token_body else None, size)
            elements = self._rdt_elements(ctx)
            orders = [self._v0_order_doc(o, elements) for o in page]
        field_name, echoed = window.echo()
        payload: dict[str, Any] = {"Orders": orders, field_name[0].upper() + field_name[1:]: echoed}
        if position is not None:
            extra = {"before": format_time(window.before), "filters": filters, "params": params, "size": size}
            payload["NextToken"] = self.page_tokens.encode(
                "getOrders", fhash, position, extra, standard_base64=True
            )
        return {"payload": payload}

    def _v0_matches(self, order: Any, doc: dict[str, Any], filters: dict[str, Any]) -> bool:
        checks: list[tuple[str, str]] = [
            ("OrderStatuses", "OrderStatus"),
            ("PaymentMethods", "PaymentMethod"),
            ("EasyShipShipmentStatuses", "EasyShipShipmentStatus"),
            ("ElectronicInvoiceStatuses", "ElectronicInvoiceStatus"),
        ]
        for fkey, dkey in checks:
            if filters[fkey] and doc.get(dkey) not in filters[fkey]:
                return False
        if filters["AmazonOrderIds"] and doc.get("AmazonOrderId") not in filters["AmazonOrderIds"]:
            return False
        if filters["SellerOrderId"] and doc.get("SellerOrderId") != filters["SellerOrderId"]:
            return False
        if filters["IsISPU"] is not None and bool(doc.get("IsISPU", False)) != filters["IsISPU"]:
            return False
        if filters["BuyerEmail"]:
            info = self.world.render_v0_buyer_info(order) or {}
            if info.get("BuyerEmail") != filters["BuyerEmail"]:
                return False
        return True

    def get_order_v0(self, ctx: CallContext, order_id: str) -> dict[str, Any]:
        elements = self._rdt_elements(ctx)
        with self.world_lock:
            return {"payload": self._v0_order_doc(self._v0_lookup(order_id), elements)}

    def _v0_order_doc(self, order: Any, elements: frozenset[str]) -> dict[str, Any]:
        """A v0 Order with exactly the restricted fields the RDT's ``dataElements`` grant."""
        doc = _strip_restricted(self.world.render_v0_order(order))
        if "buyerInfo" in elements:
            info = dict(self.world.render_v0_buyer_info(order) or {})
            info.pop("AmazonOrderId", None)
            doc["BuyerInfo"] = info
        if "shippingAddress" in elements:
            address = (self.world.render_v0_address(order) or {}).get("ShippingAddress")
            if address:
                doc["ShippingAddress"] = address
        return doc

    def get_order_items(self, ctx: CallContext, order_id: str) -> dict[str, Any]:
        raw_token = ctx.request.query_params.get("NextToken")
        offset = 0
        if raw_token:
            body = self._read_page_token(ctx, raw_token, "getOrderItems")
            try:
                self.page_tokens.check_filters(body, filters_hash({"orderId": order_id}))
            except PageTokenError as exc:
                raise _invalid(exc) from exc
            offset = int(body["p"])
        elements = self._rdt_elements(ctx)
        with self.world_lock:
            order = self._v0_lookup(order_id)
            items = self.world.render_v0_items(order)
        size = self.settings.items_page_size
        page = [dict(item) for item in items[offset : offset + size]]
        if "buyerInfo" not in elements:
            for item in page:
                item.pop("BuyerInfo", None)
        payload: dict[str, Any] = {"AmazonOrderId": order_id, "OrderItems": page}
        if offset + size < len(items):
            payload["NextToken"] = self.page_tokens.encode(
                "getOrderItems", filters_hash({"orderId": order_id}), offset + size, standard_base64=True
            )
        return {"payload": payload}

    def get_order_buyer_info(self, ctx: CallContext, order_id: str) -> dict[str, Any]:
        with self.world_lock:
            return {"payload": self.world.render_v0_buyer_info(self._v0_lookup(order_id))}

    def get_order_address(self, ctx: CallContext, order_id: str) -> dict[str, Any]:
        with self.world_lock:
            return {"payload": self.world.render_v0_address(self._v0_lookup(order_id))}

    def _v0_lookup(self, order_id: str) -> Any:
        try:
            check_order_id(order_id)
        except InvalidInput as exc:
            raise _invalid(exc) from exc
        order = self.world.get(order_id)
        if order is None:
            raise _not_found(order_id)
        return order

    def _rdt_elements(self, ctx: CallContext) -> frozenset[str]:
        if ctx.token.kind != "rdt":
            return frozenset()
        return ctx.token.covers("GET", ctx.request.url.path) or frozenset()

    # -- Tokens ------------------------------------------------------------------------------------
    def create_rdt(self, body: Any) -> dict[str, Any]:
        try:
            resources = validate_rdt_request(body)
        except ValueError as exc:
            raise ApiError(400, "InvalidInput", str(exc), "restrictedResources") from exc
        return self.tokens.issue_rdt(resources)

    # -- Notifications -----------------------------------------------------------------------------
    def create_destination(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise ApiError(400, "InvalidInput", "name is required.", "name")
        if len(body["name"]) > 256:
            raise ApiError(400, "InvalidInput", "name must be at most 256 characters.", "name")
        spec = body.get("resourceSpecification")
        arn = (
            spec.get("sqs", {}).get("arn")
            if isinstance(spec, dict) and isinstance(spec.get("sqs"), dict)
            else None
        )
        if not isinstance(arn, str) or not arn.startswith("arn:aws:sqs:") or len(arn.split(":")) != 6:
            raise ApiError(
                400,
                "InvalidInput",
                "resourceSpecification.sqs.arn must be an SQS queue ARN.",
                "resourceSpecification",
            )
        with self.world_lock:
            for dest in self.destinations.values():
                if dest["resource"]["sqs"]["arn"] == arn:
                    raise ApiError(409, "Conflict", "A destination for this resource already exists.", arn)
            dest_id = str(uuid.uuid4())
            dest = {"destinationId": dest_id, "name": body["name"], "resource": {"sqs": {"arn": arn}}}
            self.destinations[dest_id] = dest
        return {"payload": dest}

    def get_destinations(self) -> dict[str, Any]:
        with self.world_lock:
            return {"payload": list(self.destinations.values())}

    def get_destination(self, dest_id: str) -> dict[str, Any]:
        with self.world_lock:
            return {"payload": self._destination(dest_id)}

    def delete_destination(self, dest_id: str) -> dict[str, Any]:
        with self.world_lock:
            self._destination(dest_id)
            del self.destinations[dest_id]
        return {}

    def _destination(self, dest_id: str) -> dict[str, Any]:
        try:
            check_resource_id("destinationId", dest_id)
        except InvalidInput as exc:
            raise _invalid(exc) from exc
        dest = self.destinations.get(dest_id)
        if dest is None:
            raise ApiError(404, "NotFound", "The requested destination was not found.", dest_id)
        return dest

    def create_subscription(self, notification_type: str, body: Any) -> dict[str, Any]:
        self._check_notification_type(notification_type)
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidInput", "The request body must be a JSON object.", "body")
        if body.get("payloadVersion") != "1.0":
            raise ApiError(400, "InvalidInput", "payloadVersion must be 1.0.", "payloadVersion")
        dest_id = body.get("destinationId")
        if not isinstance(dest_id, str):
            raise ApiError(400, "InvalidInput", "destinationId is required.", "destinationId")
        directive = body.get("processingDirective")
        if directive is not None:
            _check_directive(notification_type, directive)
        with self.world_lock:
            if dest_id not in self.destinations:
                raise ApiError(
                    400, "InvalidInput", "destinationId does not name an existing destination.", dest_id
                )
            if notification_type in self.subscriptions:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Subscription already exist for notification type {notification_type}",
                    self.subscriptions[notification_type]["subscriptionId"],
                )
            sub: dict[str, Any] = {
                "subscriptionId": str(uuid.uuid4()),
                "payloadVersion": "1.0",
                "destinationId": dest_id,
            }
            if directive is not None:
                sub["processingDirective"] = directive
            self.subscriptions[notification_type] = sub
        return {"payload": sub}

    def get_subscription(self, notification_type: str, payload_version: str | None) -> dict[str, Any]:
        self._check_notification_type(notification_type)
        if payload_version not in (None, "1.0"):
            raise ApiError(400, "InvalidInput", "payloadVersion must be 1.0.", "payloadVersion")
        with self.world_lock:
            sub = self.subscriptions.get(notification_type)
        if sub is None:
            raise ApiError(404, "NotFound", f"No subscription for notification type {notification_type}.", "")
        return {"payload": sub}

    def subscription_by_id(self, notification_type: str, sub_id: str, *, delete: bool) -> dict[str, Any]:
        self._check_notification_type(notification_type)
        try:
            check_resource_id("subscriptionId", sub_id)
        except InvalidInput as exc:
            raise _invalid(exc) from exc
        with self.world_lock:
            sub = self.subscriptions.get(notification_type)
            if sub is None or sub["subscriptionId"] != sub_id:
                raise ApiError(404, "NotFound", "The requested subscription was not found.", sub_id)
            if delete:
                del self.subscriptions[notification_type]
                return {}
        return {"payload": sub}

    def _check_notification_type(self, notification_type: str) -> None:
        if notification_type not in SUPPORTED_NOTIFICATION_TYPES:
            raise ApiError(
                400,
                "InvalidInput",
                f"Unsupported notificationType {notification_type[:60]!r}; the sandbox supports "
                + ", ".join(SUPPORTED_NOTIFICATION_TYPES),
                "notificationType",
            )

    # -- admin -------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        with self.world_lock:
            count = len(self.world)
        return {
            "status": "ok",
            "seller_id": self.world.seller_id,
            "region": self.world.region,
            "marketplace_ids": list(self.world.marketplace_ids),
            "orders": count,
            "time_scale": self.settings.time_scale,
        }

    def truth(self, after: str | None, before: str | None) -> dict[str, Any]:
        kwargs = {}
        if after:
            kwargs["last_updated_after"] = parse_time("lastUpdatedAfter", after)
        if before:
            kwargs["last_updated_before"] = parse_time("lastUpdatedBefore", before)
        with self.world_lock:
            orders = self.world.truth(**kwargs)
        return {
            "seller_id": self.world.seller_id,
            "region": self.world.region,
            "now": format_time(self.now()),
            "orders": orders,
        }

    def advance(self, body: dict[str, Any]) -> dict[str, Any]:
        steps = int(body.get("steps", 1))
        new_orders = body.get("new_orders")
        changes_n = body.get("changes")
        options = DeliveryOptions(
            duplicates=float(body.get("duplicates", 0.0)),
            shuffle=bool(body.get("shuffle", False)),
            double_encoded=float(body.get("double_encoded", 0.0)),
            poison=int(body.get("poison", 0)),
            foreign_seller=int(body.get("foreign_seller", 0)),
        )
        if steps < 1:
            raise ValueError("steps must be at least 1")
        kwargs = {k: int(v) for k, v in (("new_orders", new_orders), ("changes", changes_n)) if v is not None}
        report: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        with self.world_lock:
            self.advance_count += 1
            rng = random.Random(f"{self.settings.seed}:advance:{self.advance_count}")
            for _ in range(steps):
                for change in self.world.advance(**kwargs):
                    change_messages = self.world.messages_for(change)
                    messages.extend(change_messages)
                    for message in change_messages:
                        report.append(_describe_change(change, message))
            poison = self.world.poison_messages(options.poison) if options.poison else []
            foreign = (
                self.world.foreign_seller_messages(options.foreign_seller) if options.foreign_seller else []
            )
        bodies = build_bodies(messages, options, rng, poison=poison, foreign=foreign)
        published = self.publisher.send(bodies) if self.publisher is not None else 0
        return {"published": published, "changes": report, "messages": len(messages)}

    def update_config(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"min_before_lag", "page_token_ttl", "faults", "rate_limit_header"}
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        if "min_before_lag" in body:
            lag = float(body["min_before_lag"])
            if lag < 0:
                raise ValueError("min_before_lag must not be negative")
            self.settings.min_before_lag = lag
        if "page_token_ttl" in body:
            ttl = body["page_token_ttl"]
            self.settings.page_token_ttl = None if ttl is None else float(ttl)
            self.page_tokens.ttl = self.settings.effective_page_token_ttl
        if "faults" in body:
            self.faults = parse_faults(body["faults"], self.settings.seed)
            self.settings.faults = self.faults.profile
        if "rate_limit_header" in body:
            self.settings.rate_limit_header = bool(body["rate_limit_header"])
        return self.config_payload()

    def config_payload(self) -> dict[str, Any]:
        return {
            "min_before_lag": self.settings.min_before_lag,
            "page_token_ttl": self.settings.effective_page_token_ttl,
            "faults": self.faults.describe(),
            "rate_limit_header": self.settings.rate_limit_header,
            "time_scale": self.settings.time_scale,
        }


def _describe_change(change: Any, message: dict[str, Any]) -> dict[str, Any]:
    kind = getattr(change, "kind", None) or getattr(change, "change", None) or type(change).__name__
    return {
        "order_id": getattr(change, "order_id", None),
        "change": str(kind),
        "notification_type": message.get("NotificationType"),
        "notification_id": message.get("NotificationMetadata", {}).get("NotificationId"),
    }


def _keyset_page(orders: list[Any], position: Any, size: int) -> tuple[list[Any], Any]:
    """One page after ``position`` in (createdTime, orderId) order, and the next position if more remain."""

    ordered = sorted(orders, key=lambda o: (o.created_time, o.order_id))
    if position is not None:
        after = (parse_time("position", position[0]), position[1])
        ordered = [o for o in ordered if (o.created_time, o.order_id) > after]
    page = ordered[:size]
    if len(ordered) > size:
        last = page[-1]
        return page, [format_time(last.created_time), last.order_id]
    return page, None


def _strip_restricted(doc: dict[str, Any]) -> dict[str, Any]:
    """A v0 order without the fields only an RDT may see."""
    return {k: v for k, v in doc.items() if k not in V0_RESTRICTED_KEYS.values()}


def _check_directive(notification_type: str, directive: Any) -> None:
    if not isinstance(directive, dict):
        raise ApiError(400, "InvalidInput", "processingDirective must be an object.", "processingDirective")
    event_filter, expression = directive.get("eventFilter"), directive.get("filterExpression")
    if event_filter is not None and expression is not None:
        raise ApiError(
            400,
            "InvalidInput",
            "Use either eventFilter or filterExpression, not both.",
            "processingDirective",
        )
    if expression is not None and (not isinstance(expression, str) or len(expression) > 256):
        raise ApiError(
            400,
            "InvalidInput",
            "filterExpression must be a string of at most 256 characters.",
            "filterExpression",
        )
    if event_filter is None:
        return
    if not isinstance(event_filter, dict):
        raise ApiError(400, "InvalidInput", "eventFilter must be an object.", "eventFilter")
    expected = EVENT_FILTER_TYPES.get(notification_type)
    if expected is None or event_filter.get("eventFilterType") != expected:
        raise ApiError(
            400,
            "InvalidInput",
            f"eventFilterType {event_filter.get('eventFilterType')!r} is not valid for {notification_type}.",
            "eventFilterType",
        )
    marketplaces = event_filter.get("marketplaceIds", [])
    if not isinstance(marketplaces, list) or not all(isinstance(m, str) for m in marketplaces):
        raise ApiError(400, "InvalidInput", "marketplaceIds must be a list of strings.", "marketplaceIds")
    change_types = event_filter.get("orderChangeTypes", [])
    if not isinstance(change_types, list) or any(c not in ORDER_CHANGE_TYPES for c in change_types):
        raise ApiError(
            400,
            "InvalidInput",
            f"orderChangeTypes must be among {', '.join(ORDER_CHANGE_TYPES)}.",
            "orderChangeTypes",
        )


def _quota_exceeded() -> JSONResponse:
    return error_response(429, "QuotaExceeded", "You exceeded your quota for the requested resource.", "")


def _fault_response(outcome: str) -> JSONResponse:
    if outcome == "throttle":
        return _quota_exceeded()
    if outcome == "error503":
        return error_response(503, "ServiceUnavailable", "Service temporarily unavailable. Please retry.", "")
    return error_response(500, "InternalFailure", "We encountered an internal error. Please try again.", "")


async def _lwa_form(request: Request) -> dict[str, str]:
    """LWA parameters: form-encoded (most clients) or a JSON object (Amazon's Java client)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LwaError(400, "invalid_request", "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise LwaError(400, "invalid_request", "The request body must be a JSON object.")
        return {str(k): str(v) for k, v in body.items()}
    return {k: str(v) for k, v in (await request.form()).items()}


def _parse_json(raw: bytes) -> Any:
    """A request body as JSON, or a 400 InvalidInput (raised inside the pipeline, so it is counted)."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "InvalidInput", "The request body is not valid JSON.", "body") from exc


def create_app(
    settings: ServerSettings, world: World | None = None
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application (FastAPI wrapped so faults can drop connections)."""
    if world is None:
        world = World(
            WorldConfig(
                seed=settings.seed, orders=settings.orders, days=settings.days, region=settings.region
            )
        )
    server = SandboxServer(settings=settings, world=world)
    app = FastAPI(title="SP-API sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "NotFound" if exc.status_code == 404 else "InvalidInput"
        message = "Resource not found." if exc.status_code == 404 else str(exc.detail)
        response = error_response(exc.status_code, code, message, request.url.path[:200])
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return response

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = exc.response()
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return response

    # -- LWA ---------------------------------------------------------------------------------------
    @app.post("/auth/o2/token")
    async def lwa_token(request: Request) -> Response:
        try:
            form = await _lwa_form(request)
            body = server.tokens.exchange(form)
            response = JSONResponse(body)
        except LwaError as exc:
            response = JSONResponse(
                {"error": exc.error, "error_description": exc.description}, status_code=exc.status
            )
        server._count(
            "lwaToken", calls=1, ok=int(response.status_code == 200), errors=int(response.status_code != 200)
        )
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- Orders v2026-01-01 ------------------------------------------------------------------------
    @app.get("/orders/2026-01-01/orders")
    async def search_orders(request: Request) -> Response:
        return await server.call(request, "searchOrders", "seller", server.search_orders)

    @app.get("/orders/2026-01-01/orders/{order_id}")
    async def get_order(request: Request, order_id: str) -> Response:
        return await server.call(request, "getOrder", "seller", lambda ctx: server.get_order(ctx, order_id))

    # -- Orders v0 ---------------------------------------------------------------------------------
    @app.get("/orders/v0/orders")
    async def get_orders(request: Request) -> Response:
        return await server.call(request, "getOrders", "seller_or_rdt", server.get_orders_v0)

    @app.get("/orders/v0/orders/{order_id}")
    async def get_order_v0(request: Request, order_id: str) -> Response:
        return await server.call(
            request, "getOrderV0", "seller_or_rdt", lambda c: server.get_order_v0(c, order_id)
        )

    @app.get("/orders/v0/orders/{order_id}/orderItems")
    async def get_order_items(request: Request, order_id: str) -> Response:
        return await server.call(
            request, "getOrderItems", "seller_or_rdt", lambda c: server.get_order_items(c, order_id)
        )

    @app.get("/orders/v0/orders/{order_id}/buyerInfo")
    async def get_order_buyer_info(request: Request, order_id: str) -> Response:
        return await server.call(
            request, "getOrderBuyerInfo", "rdt", lambda c: server.get_order_buyer_info(c, order_id)
        )

    @app.get("/orders/v0/orders/{order_id}/address")
    async def get_order_address(request: Request, order_id: str) -> Response:
        return await server.call(
            request, "getOrderAddress", "rdt", lambda c: server.get_order_address(c, order_id)
        )

    # -- Tokens ------------------------------------------------------------------------------------
    @app.post("/tokens/2021-03-01/restrictedDataToken")
    async def create_rdt(request: Request) -> Response:
        raw = await request.body()
        return await server.call(
            request, "createRestrictedDataToken", "seller", lambda c: server.create_rdt(_parse_json(raw))
        )

    # -- Notifications -----------------------------------------------------------------------------
    @app.get("/notifications/v1/destinations")
    async def get_destinations(request: Request) -> Response:
        return await server.call(request, "getDestinations", "grantless", lambda c: server.get_destinations())

    @app.post("/notifications/v1/destinations")
    async def create_destination(request: Request) -> Response:
        raw = await request.body()
        return await server.call(
            request, "createDestination", "grantless", lambda c: server.create_destination(_parse_json(raw))
        )

    @app.get("/notifications/v1/destinations/{dest_id}")
    async def get_destination(request: Request, dest_id: str) -> Response:
        return await server.call(
            request, "getDestination", "grantless", lambda c: server.get_destination(dest_id)
        )

    @app.delete("/notifications/v1/destinations/{dest_id}")
    async def delete_destination(request: Request, dest_id: str) -> Response:
        return await server.call(
            request, "deleteDestination", "grantless", lambda c: server.delete_destination(dest_id)
        )

    @app.post("/notifications/v1/subscriptions/{notification_type}")
    async def create_subscription(request: Request, notification_type: str) -> Response:
        raw = await request.body()
        return await server.call(
            request,
            "createSubscription",
            "seller",
            lambda c: server.create_subscription(notification_type, _parse_json(raw)),
        )

    @app.get("/notifications/v1/subscriptions/{notification_type}")
    async def get_subscription(request: Request, notification_type: str) -> Response:
        version = request.query_params.get("payloadVersion")
        return await server.call(
            request,
            "getSubscription",
            "seller",
            lambda c: server.get_subscription(notification_type, version),
        )

    @app.get("/notifications/v1/subscriptions/{notification_type}/{sub_id}")
    async def get_subscription_by_id(request: Request, notification_type: str, sub_id: str) -> Response:
        return await server.call(
            request,
            "getSubscriptionById",
            "grantless",
            lambda c: server.subscription_by_id(notification_type, sub_id, delete=False),
        )

    @app.delete("/notifications/v1/subscriptions/{notification_type}/{sub_id}")
    async def delete_subscription_by_id(request: Request, notification_type: str, sub_id: str) -> Response:
        return await server.call(
            request,
            "deleteSubscriptionById",
            "grantless",
            lambda c: server.subscription_by_id(notification_type, sub_id, delete=True),
        )

    # -- admin (never faulted, never rate limited) -------------------------------------------------
    def admin(fn: Callable[[], dict[str, Any]]) -> JSONResponse:
        try:
            return JSONResponse(fn())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/_sandbox/health")
    async def health() -> JSONResponse:
        return admin(server.health)

    @app.get("/_sandbox/truth")
    async def truth(request: Request) -> JSONResponse:
        q = request.query_params
        return admin(lambda: server.truth(q.get("lastUpdatedAfter"), q.get("lastUpdatedBefore")))

    @app.get("/_sandbox/stats")
    async def stats() -> JSONResponse:
        return admin(server.stats_payload)

    @app.post("/_sandbox/stats/reset")
    async def stats_reset() -> JSONResponse:
        server.reset_stats()
        return admin(server.stats_payload)

    @app.post("/_sandbox/advance")
    async def advance(request: Request) -> JSONResponse:
        raw = await request.body()
        body = json.loads(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(server.advance, body)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        log.info(
            "advance: %d messages, %d published in %.2fs",
            result["messages"],
            result["published"],
            time.monotonic() - started,
        )
        return JSONResponse(result)

    @app.get("/_sandbox/config")
    async def get_config() -> JSONResponse:
        return admin(server.config_payload)

    @app.post("/_sandbox/config")
    async def set_config(request: Request) -> JSONResponse:
        body = await request.json()
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        return admin(lambda: server.update_config(body))

    @app.post("/_sandbox/expire-access-tokens")
    async def expire_access_tokens() -> JSONResponse:
        return admin(lambda: {"expired": server.tokens.expire_all()})

    @app.post("/_sandbox/expire-page-tokens")
    async def expire_page_tokens() -> JSONResponse:
        server.page_tokens.expire_all()
        return admin(lambda: {"generation": server.page_tokens.generation})

    return TransportAccess(app)
