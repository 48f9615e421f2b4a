"""The sandbox server: its settings, its state, and the pipeline every SP-API call goes through.

``SandboxServer.call`` runs one operation: count it, check the access token, take a token from the
operation's bucket, maybe inject a fault, run the handler, and stamp the headers Amazon sends
(``x-amzn-RequestId`` always, ``x-amzn-RateLimit-Limit`` on 200/400/404). Handlers are plain
functions of a ``CallContext`` that return the JSON body or raise ``ApiError`` (``InvalidInput`` and
``PageTokenError`` become 400 InvalidInput). Each API's routes live in ``sp_api_sandbox.routes`` as
a table of ``Route`` that ``SandboxServer.router`` turns into a FastAPI router.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from sp_api_sandbox.auth import NOTIFICATIONS_SCOPE, Credentials, IssuedToken, TokenRejected, TokenStore
from sp_api_sandbox.faults import FaultInjector, parse_faults
from sp_api_sandbox.pagetokens import PageTokenCodec, PageTokenError
from sp_api_sandbox.publisher import SqsPublisher
from sp_api_sandbox.ratelimit import RateLimiter, format_rate
from sp_api_sandbox.render.bad_records import BadRecords, check_fraction
from sp_api_sandbox.render.notifications import Notifier
from sp_api_sandbox.validation import InvalidInput, check_order_id
from sp_api_sandbox.world import SimOrder, World

log = logging.getLogger("sp_api_sandbox")

#: Who may call an operation: a seller's LWA token, a seller token or a covering RDT, only an RDT, or
#: a grantless (client_credentials) token of the notifications scope.
Access = Literal["seller", "seller_or_rdt", "rdt", "grantless"]


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
    bad_records: float = 0.0

    @property
    def effective_page_token_ttl(self) -> float:
        return self.page_token_ttl if self.page_token_ttl is not None else 86400.0 / self.time_scale


# ---------------------------------------------------------------------------------- errors


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


def invalid_input(exc: InvalidInput | PageTokenError) -> ApiError:
    """400 InvalidInput for a rejected parameter or page token."""
    if isinstance(exc, InvalidInput):
        return ApiError(400, "InvalidInput", exc.message, exc.details)
    return ApiError(400, "InvalidInput", str(exc), "paginationToken")


def not_found(order_id: str) -> ApiError:
    return ApiError(
        404, "NotFound", "The requested order was not found.", f"Order {order_id} does not exist."
    )


def _quota_exceeded() -> JSONResponse:
    return error_response(429, "QuotaExceeded", "You exceeded your quota for the requested resource.", "")


def _fault_response(outcome: str) -> JSONResponse:
    if outcome == "throttle":
        return _quota_exceeded()
    if outcome == "error503":
        return error_response(503, "ServiceUnavailable", "Service temporarily unavailable. Please retry.", "")
    return error_response(500, "InternalFailure", "We encountered an internal error. Please try again.", "")


# ---------------------------------------------------------------------------------- transport


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


# ---------------------------------------------------------------------------------- the pipeline


@dataclass
class OpStats:
    calls: int = 0
    ok: int = 0
    throttled: int = 0
    errors: int = 0
    faults: int = 0


@dataclass
class CallContext:
    """One admitted call, as a handler sees it."""

    server: SandboxServer
    request: Request
    token: IssuedToken
    body: bytes
    invalidate_page_token: bool
    fault_applied: bool = False

    def param(self, name: str) -> str:
        """A path parameter."""
        return str(self.request.path_params[name])

    def json(self) -> Any:
        """The request body as JSON, or 400 InvalidInput (inside the pipeline, so it is counted)."""
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "InvalidInput", "The request body is not valid JSON.", "body") from exc

    def read_page_token(self, raw: str, kind: str) -> dict[str, Any]:
        """A page token's body, unless a fault invalidates it or it is not valid (400)."""
        if self.invalidate_page_token:
            self.fault_applied = True
            raise PageTokenError("The pagination token has expired. Start the search again without it.")
        return self.server.page_tokens.decode(raw, kind)

    def rdt_elements(self) -> frozenset[str]:
        """The ``dataElements`` the caller's RDT grants on this path (none for an LWA token)."""
        if self.token.kind != "rdt":
            return frozenset()
        return self.token.covers("GET", self.request.url.path) or frozenset()


Handler = Callable[[CallContext], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """One SP-API operation: ``method path`` -> ``handler``, counted and limited as ``operation``."""

    method: str
    path: str
    operation: str
    access: Access
    handler: Handler


@dataclass
class SandboxServer:
    """State and behaviour of one sandbox: the world plus the rules Amazon enforces around it."""

    settings: ServerSettings
    world: World
    tokens: TokenStore = field(init=False)
    limiter: RateLimiter = field(init=False)
    faults: FaultInjector = field(init=False)
    page_tokens: PageTokenCodec = field(init=False)
    notifier: Notifier = field(init=False)
    bad_records: BadRecords = field(init=False)
    publisher: SqsPublisher | None = field(init=False, default=None)
    world_lock: threading.Lock = field(default_factory=threading.Lock)
    stats_lock: threading.Lock = field(default_factory=threading.Lock)
    stats: dict[str, OpStats] = field(default_factory=dict)
    advance_count: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        creds = Credentials(s.client_id, s.client_secret, s.refresh_token)
        self.tokens = TokenStore(credentials=creds, time_scale=s.time_scale)
        self.limiter = RateLimiter(time_scale=s.time_scale)
        self.faults = parse_faults(s.faults, s.seed)
        self.page_tokens = PageTokenCodec(ttl=s.effective_page_token_ttl)
        self.notifier = Notifier(self.world)
        self.bad_records = BadRecords(self.world, s.bad_records)
        if s.sqs_endpoint and s.queue_url:
            self.publisher = SqsPublisher(s.sqs_endpoint, s.queue_url)

    # -- bookkeeping -------------------------------------------------------------------------------
    def count(self, operation: str, **increments: int) -> None:
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

    async def call(self, request: Request, operation: str, access: Access, handler: Handler) -> Response:
        """Run one SP-API operation through auth, rate limit, faults and the handler."""
        self.count(operation, calls=1)
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
                    self.count(operation, faults=1, errors=1)
                    log.info("fault: dropped connection on %s", operation)
                    return DroppedConnection()
                if decision.outcome in ("error500", "error503", "throttle"):
                    fault_applied = True
                    response = _fault_response(decision.outcome)
                else:
                    ctx = CallContext(
                        self, request, token, await request.body(), decision.invalidate_page_token
                    )
                    try:
                        response = JSONResponse(handler(ctx))
                    except ApiError as exc:
                        response = exc.response()
                    except (InvalidInput, PageTokenError) as exc:
                        response = invalid_input(exc).response()
                    fault_applied = fault_applied or ctx.fault_applied
        status = response.status_code
        response.headers["x-amzn-RequestId"] = request_id
        if self.settings.rate_limit_header and status in (200, 400, 404):
            response.headers["x-amzn-RateLimit-Limit"] = format_rate(self.limiter.rate(operation))
        self.count(
            operation,
            ok=int(200 <= status < 300),
            throttled=int(status == 429),
            errors=int(status >= 400 and status != 429),
            faults=int(fault_applied),
        )
        log.info("%s %s -> %d", operation, request.url.path, status)
        return response

    def router(self, routes: Iterable[Route]) -> APIRouter:
        """A FastAPI router serving ``routes`` through ``call``."""
        api = APIRouter()
        for route in routes:
            api.add_api_route(route.path, self._endpoint(route), methods=[route.method], name=route.operation)
        return api

    def _endpoint(self, route: Route) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.call(request, route.operation, route.access, route.handler)

        return endpoint

    # -- the world as served -----------------------------------------------------------------------
    def lookup(self, order_id: str) -> SimOrder:
        """The order with this id (call under ``world_lock``), or 400 for a malformed id, 404."""
        check_order_id(order_id)
        order = self.world.get(order_id)
        if order is None:
            raise not_found(order_id)
        return order

    def corruption(self, order: SimOrder) -> str | None:
        """The ``bad_records`` kind ``order`` is served with (call under ``world_lock``)."""
        return self.bad_records.kind(order)

    # -- settings at run time ----------------------------------------------------------------------
    def update_config(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply ``POST /_sandbox/config``; ``ValueError`` names an unknown or invalid setting."""
        unknown = set(body) - {
            "min_before_lag",
            "page_token_ttl",
            "faults",
            "rate_limit_header",
            "bad_records",
        }
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
        if "bad_records" in body:
            fraction = check_fraction(body["bad_records"])
            with self.world_lock:
                self.bad_records = BadRecords(self.world, fraction)
            self.settings.bad_records = fraction
        log.info("config: %s", ", ".join(f"{key}={body[key]!r}" for key in sorted(body)))
        return self.config_payload()

    def config_payload(self) -> dict[str, Any]:
        return {
            "min_before_lag": self.settings.min_before_lag,
            "page_token_ttl": self.settings.effective_page_token_ttl,
            "faults": self.faults.describe(),
            "rate_limit_header": self.settings.rate_limit_header,
            "time_scale": self.settings.time_scale,
            "bad_records": self.settings.bad_records,
        }
