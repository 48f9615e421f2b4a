"""Orders API v0: ``getOrders``, ``getOrder``, ``getOrderItems``, ``getOrderBuyerInfo``, ``getOrderAddress``.

Restricted data (``BuyerInfo``, ``ShippingAddress``) needs a Restricted Data Token covering the path;
on getOrders/getOrder/getOrderItems an RDT adds exactly what its ``dataElements`` grant.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sp_api_sandbox.pagetokens import filters_hash, keyset_page
from sp_api_sandbox.render import orders_v0
from sp_api_sandbox.server import CallContext, Route, SandboxServer
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
    format_time,
    list_param,
    parse_page_size,
    parse_time,
    parse_window,
    window_filters,
)
from sp_api_sandbox.world import SimOrder

PATH = "/orders/v0/orders"
WINDOW_PARAMS = ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
#: getOrders filters only a rendered v0 order can answer (the world searches by the others).
POST_FILTERS = (
    "OrderStatuses",
    "PaymentMethods",
    "EasyShipShipmentStatuses",
    "ElectronicInvoiceStatuses",
    "AmazonOrderIds",
    "SellerOrderId",
    "IsISPU",
    "BuyerEmail",
)
#: filter -> the Order field it matches
_MATCHED_FIELDS = (
    ("OrderStatuses", "OrderStatus"),
    ("PaymentMethods", "PaymentMethod"),
    ("EasyShipShipmentStatuses", "EasyShipShipmentStatus"),
    ("ElectronicInvoiceStatuses", "ElectronicInvoiceStatus"),
    ("AmazonOrderIds", "AmazonOrderId"),
)


def _query(ctx: CallContext) -> dict[str, list[str]]:
    q: dict[str, list[str]] = {}
    for key, value in ctx.request.query_params.multi_items():
        q.setdefault(key, []).append(value)
    return q


def _filters(q: dict[str, list[str]], marketplace_ids: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Normalised getOrders filters and the raw window parameters, from repeated/comma-separated params."""

    def many(name: str) -> list[str]:
        return list_param(q.get(name, []))

    def one(name: str) -> str | None:
        values = q.get(name) or []
        return values[-1] if values else None

    filters: dict[str, Any] = {
        "MarketplaceIds": check_marketplaces(
            "MarketplaceIds", many("MarketplaceIds"), marketplace_ids, required=True
        ),
        "OrderStatuses": check_enum("OrderStatuses", many("OrderStatuses"), V0_ORDER_STATUSES),
        "FulfillmentChannels": check_enum("FulfillmentChannels", many("FulfillmentChannels"), V0_CHANNELS),
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
    return filters, {k: one(k) for k in WINDOW_PARAMS}


def _matches(order: SimOrder, filters: dict[str, Any]) -> bool:
    """Whether an order passes the post-filters (on its true, uncorrupted rendering)."""
    doc = orders_v0.render_order(order)
    for fkey, dkey in _MATCHED_FIELDS:
        if filters[fkey] and doc.get(dkey) not in filters[fkey]:
            return False
    if filters["SellerOrderId"] and doc.get("SellerOrderId") != filters["SellerOrderId"]:
        return False
    if filters["IsISPU"] is not None and bool(doc.get("IsISPU", False)) != filters["IsISPU"]:
        return False
    return (
        not filters["BuyerEmail"]
        or orders_v0.render_buyer_info(order).get("BuyerEmail") == filters["BuyerEmail"]
    )


def _order_doc(ctx: CallContext, order: SimOrder) -> dict[str, Any]:
    """A served ``Order`` with exactly the restricted fields the caller's RDT grants."""
    doc = orders_v0.render_order(order, ctx.server.corruption(order))
    elements = ctx.rdt_elements()
    if "buyerInfo" in elements:
        info = orders_v0.render_buyer_info(order)
        del info["AmazonOrderId"]
        doc["BuyerInfo"] = info
    if "shippingAddress" in elements and (address := orders_v0.shipping_address(order)) is not None:
        doc["ShippingAddress"] = address
    return doc


def get_orders(ctx: CallContext) -> dict[str, Any]:
    server = ctx.server
    q = _query(ctx)
    next_token = (q.get("NextToken") or [None])[-1]
    token = ctx.read_page_token(next_token, "getOrders") if next_token else None
    if token is not None and set(q) <= {"NextToken", "MaxResultsPerPage"}:
        filters, params = token["x"]["filters"], token["x"]["params"]  # NextToken alone: the token's filters
    else:
        filters, params = _filters(q, server.world.marketplace_ids)
    # a NextToken keeps its page size unless the caller sends another one
    default_size = int(token["x"].get("size", 100)) if token else 100
    size = parse_page_size("MaxResultsPerPage", (q.get("MaxResultsPerPage") or [None])[-1], default_size)
    pinned = parse_time("token", token["x"]["before"]) if token else None
    window = parse_window(
        params, server.now(), server.settings.min_before_lag, names=WINDOW_PARAMS, pinned_before=pinned
    )
    fhash = filters_hash({**window_filters(window), **filters})
    if token is not None:
        server.page_tokens.check_filters(token, fhash)
    statuses = sorted({V0_ORDER_STATUSES[s] for s in filters["OrderStatuses"]})
    channels = sorted({V0_CHANNELS[c] for c in filters["FulfillmentChannels"]})
    with server.world_lock:
        found = server.world.search(
            **window.search_kwargs(),
            fulfillment_statuses=statuses or None,
            marketplace_ids=filters["MarketplaceIds"],
            fulfilled_by=channels or None,
        )
        if any(filters[k] not in (None, []) for k in POST_FILTERS):
            found = [o for o in found if _matches(o, filters)]
        page, position = keyset_page(found, token["p"] if token else None, size)
        orders = [_order_doc(ctx, o) for o in page]
    field_name, echoed = window.echo()
    payload: dict[str, Any] = {"Orders": orders, field_name[0].upper() + field_name[1:]: echoed}
    if position is not None:
        extra = {"before": format_time(window.before), "filters": filters, "params": params, "size": size}
        payload["NextToken"] = server.page_tokens.encode(
            "getOrders", fhash, position, extra, standard_base64=True
        )
    return {"payload": payload}


def get_order(ctx: CallContext) -> dict[str, Any]:
    with ctx.server.world_lock:
        return {"payload": _order_doc(ctx, ctx.server.lookup(ctx.param("order_id")))}


def get_order_items(ctx: CallContext) -> dict[str, Any]:
    server = ctx.server
    order_id = ctx.param("order_id")
    raw_token = ctx.request.query_params.get("NextToken")
    offset = 0
    if raw_token:
        token = ctx.read_page_token(raw_token, "getOrderItems")
        server.page_tokens.check_filters(token, filters_hash({"orderId": order_id}))
        offset = int(token["p"])
    with server.world_lock:
        order = server.lookup(order_id)
        items = orders_v0.render_items(order, server.corruption(order))
    size = server.settings.items_page_size
    payload: dict[str, Any] = {"AmazonOrderId": order_id, "OrderItems": items[offset : offset + size]}
    if offset + size < len(items):
        payload["NextToken"] = server.page_tokens.encode(
            "getOrderItems", filters_hash({"orderId": order_id}), offset + size, standard_base64=True
        )
    return {"payload": payload}


def get_order_buyer_info(ctx: CallContext) -> dict[str, Any]:
    with ctx.server.world_lock:
        return {"payload": orders_v0.render_buyer_info(ctx.server.lookup(ctx.param("order_id")))}


def get_order_address(ctx: CallContext) -> dict[str, Any]:
    with ctx.server.world_lock:
        return {"payload": orders_v0.render_address(ctx.server.lookup(ctx.param("order_id")))}


ORDER = PATH + "/{order_id}"
ROUTES = (
    Route("GET", PATH, "getOrders", "seller_or_rdt", get_orders),
    Route("GET", ORDER, "getOrderV0", "seller_or_rdt", get_order),
    Route("GET", ORDER + "/orderItems", "getOrderItems", "seller_or_rdt", get_order_items),
    Route("GET", ORDER + "/buyerInfo", "getOrderBuyerInfo", "rdt", get_order_buyer_info),
    Route("GET", ORDER + "/address", "getOrderAddress", "rdt", get_order_address),
)


def router(server: SandboxServer) -> APIRouter:
    return server.router(ROUTES)
