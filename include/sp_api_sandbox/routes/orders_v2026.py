"""Orders API v2026-01-01: ``searchOrders`` and ``getOrder``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sp_api_sandbox.pagetokens import filters_hash, keyset_page
from sp_api_sandbox.render import orders_v2026
from sp_api_sandbox.server import CallContext, Route, SandboxServer
from sp_api_sandbox.validation import (
    check_enum,
    check_marketplaces,
    check_order_id,
    format_time,
    list_param,
    parse_page_size,
    parse_time,
    parse_window,
    window_filters,
)
from sp_api_sandbox.world_data import FULFILLED_BY, FULFILLMENT_STATUSES, INCLUDED_DATA

PATH = "/orders/2026-01-01/orders"


def _included(ctx: CallContext) -> list[str]:
    return check_enum(
        "includedData", list_param(ctx.request.query_params.getlist("includedData")), INCLUDED_DATA
    )


def search_orders(ctx: CallContext) -> dict[str, Any]:
    server, q = ctx.server, ctx.request.query_params
    statuses = check_enum(
        "fulfillmentStatuses", list_param(q.getlist("fulfillmentStatuses")), FULFILLMENT_STATUSES
    )
    fulfilled_by = check_enum("fulfilledBy", list_param(q.getlist("fulfilledBy")), FULFILLED_BY)
    included = _included(ctx)
    marketplaces = check_marketplaces(
        "marketplaceIds",
        list_param(q.getlist("marketplaceIds")),
        server.world.marketplace_ids,
        required=False,
    )
    size = parse_page_size("maxResultsPerPage", q.get("maxResultsPerPage"))
    token = ctx.read_page_token(q["paginationToken"], "searchOrders") if q.get("paginationToken") else None
    pinned = parse_time("token", token["x"]["before"]) if token else None
    window = parse_window(dict(q), server.now(), server.settings.min_before_lag, pinned_before=pinned)
    filters = {
        **window_filters(window),
        "statuses": statuses,
        "fulfilledBy": fulfilled_by,
        "marketplaces": marketplaces,
    }
    fhash = filters_hash(filters)
    if token is not None:
        server.page_tokens.check_filters(token, fhash)
    with server.world_lock:
        found = server.world.search(
            **window.search_kwargs(),
            fulfillment_statuses=statuses or None,
            marketplace_ids=marketplaces,
            fulfilled_by=fulfilled_by or None,
        )
        page, position = keyset_page(found, token["p"] if token else None, size)
        orders = [orders_v2026.render_order(o, included, server.corruption(o)) for o in page]
    field_name, echoed = window.echo()
    body: dict[str, Any] = {"orders": orders, field_name: echoed}
    if position is not None:
        next_token = server.page_tokens.encode(
            "searchOrders", fhash, position, {"before": format_time(window.before)}
        )
        body["pagination"] = {"nextToken": next_token}
    return body


def get_order(ctx: CallContext) -> dict[str, Any]:
    server = ctx.server
    order_id = check_order_id(ctx.param("order_id"))
    included = _included(ctx)
    with server.world_lock:
        order = server.lookup(order_id)
        return {"order": orders_v2026.render_order(order, included, server.corruption(order))}


ROUTES = (
    Route("GET", PATH, "searchOrders", "seller", search_orders),
    Route("GET", PATH + "/{order_id}", "getOrder", "seller", get_order),
)


def router(server: SandboxServer) -> APIRouter:
    return server.router(ROUTES)
