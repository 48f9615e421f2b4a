"""Tokens API 2021-03-01: ``createRestrictedDataToken`` (RDTs for v0's restricted order data)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sp_api_sandbox.auth import validate_rdt_request
from sp_api_sandbox.server import ApiError, CallContext, Route, SandboxServer


def create_rdt(ctx: CallContext) -> dict[str, Any]:
    try:
        resources = validate_rdt_request(ctx.json())
    except ValueError as exc:
        raise ApiError(400, "InvalidInput", str(exc), "restrictedResources") from exc
    return ctx.server.tokens.issue_rdt(resources)


ROUTES = (
    Route(
        "POST", "/tokens/2021-03-01/restrictedDataToken", "createRestrictedDataToken", "seller", create_rdt
    ),
)


def router(server: SandboxServer) -> APIRouter:
    return server.router(ROUTES)
