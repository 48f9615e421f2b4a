"""The admin API under ``/_sandbox/`` (JSON; never rate limited, faulted or counted).

``health``, ``truth``, ``stats`` and ``stats/reset``, ``advance``, ``config`` (GET and POST),
``expire-access-tokens`` and ``expire-page-tokens``; see docs/CONTRACTS.md. A bad request answers
400 ``{"error": "<what is wrong>"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sp_api_sandbox.publisher import DeliveryOptions, build_bodies, split_dropped
from sp_api_sandbox.render import orders_v2026
from sp_api_sandbox.server import SandboxServer
from sp_api_sandbox.validation import format_time, parse_time
from sp_api_sandbox.world import Change
from sp_api_sandbox.world_data import INCLUDED_DATA, TRUTH_INCLUDED_DATA

log = logging.getLogger("sp_api_sandbox")


def _flag(name: str, raw: str | None) -> bool:
    if raw is None or raw.lower() in ("", "false", "0", "no"):
        return False
    if raw.lower() in ("true", "1", "yes"):
        return True
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def health(server: SandboxServer) -> dict[str, Any]:
    with server.world_lock:
        count = len(server.world)
    return {
        "status": "ok",
        "seller_id": server.world.seller_id,
        "region": server.world.region,
        "marketplace_ids": list(server.world.marketplace_ids),
        "orders": count,
        "time_scale": server.settings.time_scale,
    }


def truth(server: SandboxServer, query: Mapping[str, str]) -> dict[str, Any]:
    """Every order (by id) as searchOrders serves it with every includedData but BUYER and RECIPIENT
    (with them when ``include_pii``), bad records corrupted as served, and ``bad_records`` describing
    each corrupted order. ``lastUpdatedAfter`` (inclusive) / ``lastUpdatedBefore`` (exclusive) filter."""
    window = {}
    if query.get("lastUpdatedAfter"):
        window["last_updated_after"] = parse_time("lastUpdatedAfter", query["lastUpdatedAfter"])
    if query.get("lastUpdatedBefore"):
        window["last_updated_before"] = parse_time("lastUpdatedBefore", query["lastUpdatedBefore"])
    included = INCLUDED_DATA if _flag("include_pii", query.get("include_pii")) else TRUTH_INCLUDED_DATA
    with server.world_lock:
        found = sorted(server.world.search(**window), key=lambda o: o.order_id)
        orders = [orders_v2026.render_order(o, included, server.corruption(o)) for o in found]
        bad = {o.order_id: d for o in found if (d := server.bad_records.describe(o)) is not None}
    return {
        "seller_id": server.world.seller_id,
        "region": server.world.region,
        "now": format_time(server.now()),
        "orders": orders,
        "bad_records": bad,
    }


def _describe(change: Change, message: dict[str, Any], order_status: str | None) -> dict[str, Any]:
    """What one published notification says, for tests: the change's time (the order's new
    lastUpdatedTime), the v2026 status it left the order in, and an FBA message's shipment."""
    out = {
        "order_id": change.order_id,
        "change": change.kind,
        "notification_type": message["NotificationType"],
        "notification_id": message["NotificationMetadata"]["NotificationId"],
        "time": format_time(change.time),
        "order_status": order_status,
    }
    fba = message["Payload"].get("FBAOutboundShipmentStatusNotification")
    if fba is not None:
        out.update(shipment_id=fba["AmazonShipmentId"], shipment_status=fba["ShipmentStatus"])
    return out


def _noise(poison: list[str], foreign: list[dict[str, Any]]) -> dict[str, Any]:
    """The bodies that are not this seller's notifications: poison as sent, foreign ones by id."""
    return {
        "poison": list(poison),
        "foreign_seller": [
            {
                "notification_id": m["NotificationMetadata"]["NotificationId"],
                "seller_id": m["Payload"]["OrderChangeNotification"]["SellerId"],
                "order_id": m["Payload"]["OrderChangeNotification"]["AmazonOrderId"],
            }
            for m in foreign
        ],
    }


def advance(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    """Move the world on ``steps`` times and publish the notifications (see docs/CONTRACTS.md)."""
    steps = int(body.get("steps", 1))
    if steps < 1:
        raise ValueError("steps must be at least 1")
    options = DeliveryOptions(
        duplicates=float(body.get("duplicates", 0.0)),
        shuffle=bool(body.get("shuffle", False)),
        double_encoded=float(body.get("double_encoded", 0.0)),
        poison=int(body.get("poison", 0)),
        foreign_seller=int(body.get("foreign_seller", 0)),
        drop=float(body.get("drop", 0.0)),
    )
    sizes = {k: int(body[k]) for k in ("new_orders", "changes") if body.get(k) is not None}
    report: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    notifier = server.notifier
    with server.world_lock:
        server.advance_count += 1
        rng = random.Random(f"{server.settings.seed}:advance:{server.advance_count}")
        for _ in range(steps):
            for change in server.world.advance(**sizes):
                state = change.state if change.state is not None else server.world.get(change.order_id)
                status = state.status if state is not None else None
                for message in notifier.messages_for(change):
                    messages.append(message)
                    report.append(_describe(change, message, status))
        poison = notifier.poison_messages(options.poison) if options.poison else []
        foreign = notifier.foreign_seller_messages(options.foreign_seller) if options.foreign_seller else []
    # A separate stream for drops, so the other options' draws do not change when drop is set.
    drop_rng = random.Random(f"{server.settings.seed}:drop:{server.advance_count}")
    delivered, dropped = split_dropped(messages, options.drop, drop_rng)
    bodies = build_bodies(delivered, options, rng, poison=poison, foreign=foreign)
    published = server.publisher.send(bodies) if server.publisher is not None else 0
    lost = [_lost(m) for m in dropped]
    return {
        "published": published,
        "changes": report,
        "messages": len(messages),
        "dropped": lost,
        "noise": _noise(poison, foreign),
    }


def _lost(message: dict[str, Any]) -> dict[str, Any]:
    payload = message.get("Payload") or {}
    change = (
        payload.get("OrderChangeNotification") or payload.get("FBAOutboundShipmentStatusNotification") or {}
    )
    return {
        "notification_type": message["NotificationType"],
        "notification_id": message["NotificationMetadata"]["NotificationId"],
        "order_id": change.get("AmazonOrderId"),
    }


def _admin(fn: Callable[[], dict[str, Any]]) -> JSONResponse:
    try:
        return JSONResponse(fn())
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)


async def _object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    body = json.loads(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def router(server: SandboxServer) -> APIRouter:
    api = APIRouter(prefix="/_sandbox")

    @api.get("/health")
    async def get_health() -> JSONResponse:
        return _admin(lambda: health(server))

    @api.get("/truth")
    async def get_truth(request: Request) -> JSONResponse:
        return _admin(lambda: truth(server, request.query_params))

    @api.get("/stats")
    async def get_stats() -> JSONResponse:
        return _admin(server.stats_payload)

    @api.post("/stats/reset")
    async def reset_stats() -> JSONResponse:
        server.reset_stats()
        return _admin(server.stats_payload)

    @api.post("/advance")
    async def post_advance(request: Request) -> JSONResponse:
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(advance, server, await _object(request))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        log.info(
            "advance: %d messages, %d published in %.2fs",
            result["messages"],
            result["published"],
            time.monotonic() - started,
        )
        return JSONResponse(result)

    @api.get("/config")
    async def get_config() -> JSONResponse:
        return _admin(server.config_payload)

    @api.post("/config")
    async def post_config(request: Request) -> JSONResponse:
        try:
            body = await _object(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return _admin(lambda: server.update_config(body))

    @api.post("/expire-access-tokens")
    async def expire_access_tokens() -> JSONResponse:
        return _admin(lambda: {"expired": server.tokens.expire_all()})

    @api.post("/expire-page-tokens")
    async def expire_page_tokens() -> JSONResponse:
        server.page_tokens.expire_all()
        return _admin(lambda: {"generation": server.page_tokens.generation})

    return api
