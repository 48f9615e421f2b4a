"""The sandbox's ASGI application: one base URL for LWA, Orders v2026-01-01 and v0, Tokens,
Notifications and the admin API.

``create_app(settings)`` builds the world, the ``SandboxServer`` around it (state and the request
pipeline, ``sp_api_sandbox.server``) and mounts each API's router (``sp_api_sandbox.routes``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from sp_api_sandbox.routes import admin, lwa, notifications, orders_v0, orders_v2026, reports, tokens
from sp_api_sandbox.server import (
    Access,
    ApiError,
    CallContext,
    DroppedConnection,
    OpStats,
    Route,
    SandboxServer,
    ServerSettings,
    TransportAccess,
    error_response,
)
from sp_api_sandbox.world import World, WorldConfig

__all__ = [
    "ROUTERS",
    "Access",
    "ApiError",
    "CallContext",
    "DroppedConnection",
    "OpStats",
    "Route",
    "SandboxServer",
    "ServerSettings",
    "TransportAccess",
    "create_app",
    "error_response",
]

#: The route modules ``create_app`` mounts, each with ``router(server) -> APIRouter``.
ROUTERS = (lwa, orders_v2026, orders_v0, tokens, notifications, reports, admin)


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

    for module in ROUTERS:
        app.include_router(module.router(server))
    return TransportAccess(app)
