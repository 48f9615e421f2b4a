"""SellingPartnerOrdersHook: Orders API v2026-01-01 (default) and v0 (compatibility), raw and canonical.

Raw typed calls return Amazon's JSON; the version-agnostic calls :meth:`iter_order_pages` and
:meth:`get_canonical_order` return canonical records (``selling_partner.orders``), mapping record by
record so one record that cannot be mapped is rejected with its reason instead of failing the page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from selling_partner.hooks.config import API_V2026
from selling_partner.hooks.errors import SpApiInvalidInput, SpApiPageTokenExpired
from selling_partner.hooks.sp_api import SellingPartnerHook
from selling_partner.orders import v0 as v0_adapter
from selling_partner.orders import v2026 as v2026_adapter
from selling_partner.orders.canonical import CanonicalOrder
from selling_partner.orders.mapping import RejectedRecord, map_one, map_records
from selling_partner.validation import (
    ValidationError,
    format_amazon_time,
    latest_allowed_before,
    parse_amazon_time,
    validate_marketplace_ids,
    validate_max_results,
    validate_order_id,
    validate_path_segment,
    validate_window,
)

log = logging.getLogger(__name__)

#: includedData for canonical records (v2026): prices, proceeds, fulfillment, FBM packages, promotions,
#: cancellations. BUYER and RECIPIENT are added when the connection sets ``include_pii``.
CANONICAL_INCLUDED_DATA = ("PROCEEDS", "FULFILLMENT", "PACKAGES", "PROMOTION", "CANCELLATION")
PII_INCLUDED_DATA = ("BUYER", "RECIPIENT")
V2026_ORDERS = "/orders/2026-01-01/orders"
V0_ORDERS = "/orders/v0/orders"
#: Extra safety on top of the 2-minute rule when the hook picks ``...Before`` itself.
BEFORE_SAFETY_SECONDS = 2.0
#: Per-order calls inside one v0 page (getOrderItems, RDT calls) wait this long inline rather than
#: abandon a fetched page.
V0_PAGE_MAX_WAIT = 900.0


@dataclass(frozen=True)
class SearchPage:
    """One raw page of ``searchOrders`` (v2026) or ``getOrders`` (v0)."""

    orders: list[dict[str, Any]]
    next_token: str | None
    page_token: str | None  # the token sent to get this page (None for the first page)
    last_updated_before: datetime | None  # echoed by Amazon
    created_before: datetime | None
    request_id: str | None


@dataclass(frozen=True)
class OrderPage:
    """One page of canonical orders, plus the records of the page that could not be mapped."""

    orders: list[CanonicalOrder]
    rejected: list[RejectedRecord]
    next_token: str | None
    page_token: str | None
    window_end: datetime
    calls: int  # HTTP calls this page took (v0: getOrders plus every getOrderItems/RDT call)
    request_id: str | None = None


@dataclass(frozen=True)
class _SearchShape:
    """Parameter and response names of one version's order search (the only difference between them)."""

    operation: str
    path: str
    params: tuple[str, str, str, str, str]  # lastUpdatedAfter/Before, createdAfter/Before, marketplaceIds
    token_param: str
    max_results: str

    def unwrap(self, body: dict[str, Any]) -> dict[str, Any]:
        return body if self.operation == "searchOrders" else (body.get("payload") or {})

    def page(self, body: dict[str, Any], token_sent: str | None, request_id: str | None) -> SearchPage:
        data = self.unwrap(body)
        if self.operation == "searchOrders":
            orders, next_token = data.get("orders"), (data.get("pagination") or {}).get("nextToken")
            before, created = data.get("lastUpdatedBefore"), data.get("createdBefore")
        else:
            orders, next_token = data.get("Orders"), data.get("NextToken")
            before, created = data.get("LastUpdatedBefore"), data.get("CreatedBefore")
        return SearchPage(
            orders=list(orders or []),
            next_token=next_token or None,
            page_token=token_sent,
            last_updated_before=parse_amazon_time(before),
            created_before=parse_amazon_time(created),
            request_id=request_id,
        )


V2026_SEARCH = _SearchShape(
    "searchOrders",
    V2026_ORDERS,
    ("lastUpdatedAfter", "lastUpdatedBefore", "createdAfter", "createdBefore", "marketplaceIds"),
    "paginationToken",
    "maxResultsPerPage",
)
V0_SEARCH = _SearchShape(
    "getOrders",
    V0_ORDERS,
    ("LastUpdatedAfter", "LastUpdatedBefore", "CreatedAfter", "CreatedBefore", "MarketplaceIds"),
    "NextToken",
    "MaxResultsPerPage",
)


def _csv(values: Sequence[str] | None) -> str | None:
    return ",".join(values) if values else None


class SellingPartnerOrdersHook(SellingPartnerHook):
    """Orders API v2026-01-01 and v0 on an ``amazon_sp_api`` connection (see :class:`SellingPartnerHook`)."""

    #: v0 PII calls: one RDT for the path template until Amazon refuses templates, then one per order.
    _rdt_generic_ok = True

    @property
    def search_operation(self) -> str:
        """Rate-limited operation that lists orders in this API version (for deferral decisions)."""
        return "searchOrders" if self.api_version == API_V2026 else "getOrders"

    @property
    def get_operation(self) -> str:
        """Rate-limited operation that fetches one order in this API version."""
        return "getOrder" if self.api_version == API_V2026 else "getOrderV0"

    # --- searching ------------------------------------------------------------------------------------

    def _search(
        self,
        shape: _SearchShape,
        *,
        last_updated_after: datetime | str | None,
        last_updated_before: datetime | str | None,
        created_after: datetime | str | None,
        created_before: datetime | str | None,
        marketplace_ids: Sequence[str] | None,
        extra: dict[str, Any],
        max_results_per_page: int,
        page_token: str | None,
        max_pages: int | None,
    ) -> Iterator[SearchPage]:
        op = shape.operation
        params = self._window_params(
            op, shape.params, last_updated_after, last_updated_before, created_after, created_before
        )
        ids = validate_marketplace_ids(
            marketplace_ids or list(self.config.marketplace_ids), region=self.config.region, operation=op
        )
        params[shape.params[4]] = _csv(ids)
        params.update(extra)
        params[shape.max_results] = validate_max_results(max_results_per_page, operation=op)
        for page in self.paginate(
            op,
            shape.path,
            params,
            token_param=shape.token_param,
            next_token=lambda body: shape.page(body, None, None).next_token,
            start_token=page_token,
            max_pages=max_pages,
        ):
            yield shape.page(page.body, page.token_sent, page.request_id)

    def _window_params(
        self,
        op: str,
        names: tuple[str, ...],
        last_updated_after: datetime | str | None,
        last_updated_before: datetime | str | None,
        created_after: datetime | str | None,
        created_before: datetime | str | None,
    ) -> dict[str, Any]:
        lag = self.config.min_before_lag_seconds
        if (last_updated_after is None) == (created_after is None):
            raise ValidationError("pass exactly one of last_updated_after / created_after", operation=op)
        if last_updated_after is not None and created_before is not None:
            raise ValidationError("created_before cannot be combined with last_updated_after", operation=op)
        if created_after is not None and last_updated_before is not None:
            raise ValidationError("last_updated_before cannot be combined with created_after", operation=op)
        if last_updated_after is not None:
            after, before = validate_window(
                last_updated_after, last_updated_before, lag_seconds=lag, operation=op
            )
            after_name, before_name = names[0], names[1]
        else:
            after, before = validate_window(
                created_after,  # type: ignore[arg-type]
                created_before,
                lag_seconds=lag,
                operation=op,
                after_name="created_after",
                before_name="created_before",
            )
            after_name, before_name = names[2], names[3]
        return {
            after_name: format_amazon_time(after),
            before_name: format_amazon_time(before) if before else None,
        }

    def _included_data(self, included_data: Sequence[str] | None) -> list[str]:
        if included_data is None:
            data = list(CANONICAL_INCLUDED_DATA)
            if self.config.include_pii:
                data += PII_INCLUDED_DATA
            return data
        return [validate_path_segment(d, name="includedData value") for d in included_data]

    def search_orders(
        self,
        *,
        last_updated_after: datetime | str | None = None,
        last_updated_before: datetime | str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        marketplace_ids: Sequence[str] | None = None,
        fulfillment_statuses: Sequence[str] | None = None,
        fulfilled_by: str | None = None,
        included_data: Sequence[str] | None = None,
        max_results_per_page: int = 100,
        page_token: str | None = None,
        max_pages: int | None = None,
    ) -> Iterator[SearchPage]:
        """Page through ``searchOrders`` (v2026); each :class:`SearchPage` exposes the token used, the
        next token and the echoed ``lastUpdatedBefore``. Exactly one of ``last_updated_after`` /
        ``created_after``. ``included_data=None`` asks for what canonical records need."""
        op = "searchOrders"
        extra: dict[str, Any] = {"includedData": _csv(self._included_data(included_data))}
        if fulfillment_statuses:
            extra["fulfillmentStatuses"] = _csv(
                [
                    validate_path_segment(s, name="fulfillment status", operation=op)
                    for s in fulfillment_statuses
                ]
            )
        if fulfilled_by:
            extra["fulfilledBy"] = validate_path_segment(fulfilled_by, name="fulfilledBy", operation=op)
        return self._search(
            V2026_SEARCH,
            last_updated_after=last_updated_after,
            last_updated_before=last_updated_before,
            created_after=created_after,
            created_before=created_before,
            marketplace_ids=marketplace_ids,
            extra=extra,
            max_results_per_page=max_results_per_page,
            page_token=page_token,
            max_pages=max_pages,
        )

    def get_orders_v0(
        self,
        *,
        last_updated_after: datetime | str | None = None,
        last_updated_before: datetime | str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        marketplace_ids: Sequence[str] | None = None,
        order_statuses: Sequence[str] | None = None,
        max_results_per_page: int = 100,
        next_token: str | None = None,
        max_pages: int | None = None,
    ) -> Iterator[SearchPage]:
        """Page through v0 ``getOrders``; the filters are re-sent with every ``NextToken``."""
        extra: dict[str, Any] = {}
        if order_statuses:
            extra["OrderStatuses"] = _csv(
                [validate_path_segment(s, name="order status", operation="getOrders") for s in order_statuses]
            )
        return self._search(
            V0_SEARCH,
            last_updated_after=last_updated_after,
            last_updated_before=last_updated_before,
            created_after=created_after,
            created_before=created_before,
            marketplace_ids=marketplace_ids,
            extra=extra,
            max_results_per_page=max_results_per_page,
            page_token=next_token,
            max_pages=max_pages,
        )

    # --- single orders ----------------------------------------------------------------------------------

    def get_order(self, order_id: str, included_data: Sequence[str] | None = None) -> dict[str, Any]:
        """``getOrder`` (v2026): the raw ``order`` object (items always included)."""
        validate_order_id(order_id, operation="getOrder")
        params = {"includedData": _csv(self._included_data(included_data))}
        body, _ = self.call("getOrder", "GET", f"{V2026_ORDERS}/{order_id}", params=params)
        return (body or {}).get("order") or {}

    def get_order_v0(self, order_id: str) -> dict[str, Any]:
        """v0 ``getOrder``: the raw order payload (no items)."""
        validate_order_id(order_id, operation="getOrderV0")
        body, _ = self.call("getOrderV0", "GET", f"{V0_ORDERS}/{order_id}")
        return (body or {}).get("payload") or {}

    def get_order_items(self, order_id: str, *, max_wait: float | None = None) -> list[dict[str, Any]]:
        """v0 ``getOrderItems``: every item of the order (all pages).

        A rejected item page token restarts this order's item list (at most 3 times): it is cheap, and
        a page of orders must not be abandoned for it.
        """
        validate_order_id(order_id, operation="getOrderItems")
        path = f"{V0_ORDERS}/{order_id}/orderItems"
        for restart in range(4):
            try:
                items: list[dict[str, Any]] = []
                for page in self.paginate(
                    "getOrderItems",
                    path,
                    {},
                    token_param=V0_SEARCH.token_param,
                    next_token=lambda body: (body.get("payload") or {}).get("NextToken"),
                    max_wait=max_wait,
                ):
                    items.extend((page.body.get("payload") or {}).get("OrderItems") or [])
                return items
            except SpApiPageTokenExpired:
                if restart == 3:
                    raise
                log.info("getOrderItems page token rejected; restarting the item list of one order")
        raise AssertionError("unreachable")  # pragma: no cover

    def _rdt_call(self, operation: str, order_id: str, suffix: str, max_wait: float | None) -> Any:
        """GET ``/orders/v0/orders/{orderId}{suffix}`` with an RDT: one RDT for the path template when
        Amazon allows it, else one per order (cached, bounded)."""
        path = f"{V0_ORDERS}/{order_id}{suffix}"
        if self._rdt_generic_ok:
            try:
                return self.call(
                    operation,
                    "GET",
                    path,
                    auth=("rdt", f"{V0_ORDERS}/{{orderId}}{suffix}", ()),
                    max_wait=max_wait,
                )[0]
            except SpApiInvalidInput as exc:
                if exc.operation != "createRestrictedDataToken":
                    raise
                log.info("generic RDT paths are refused here; using one RDT per order")
                self._rdt_generic_ok = False
        return self.call(operation, "GET", path, auth=("rdt", path, ()), max_wait=max_wait)[0]

    def get_order_buyer_info(self, order_id: str, *, max_wait: float | None = None) -> dict[str, Any]:
        """v0 ``getOrderBuyerInfo`` with an RDT (``buyerInfo``). Restricted data: never log it."""
        validate_order_id(order_id, operation="getOrderBuyerInfo")
        return (self._rdt_call("getOrderBuyerInfo", order_id, "/buyerInfo", max_wait) or {}).get(
            "payload"
        ) or {}

    def get_order_address(self, order_id: str, *, max_wait: float | None = None) -> dict[str, Any]:
        """v0 ``getOrderAddress`` with an RDT (``shippingAddress``). Restricted data: never log it."""
        validate_order_id(order_id, operation="getOrderAddress")
        return (self._rdt_call("getOrderAddress", order_id, "/address", max_wait) or {}).get("payload") or {}

    # --- version-agnostic canonical calls ---------------------------------------------------------------

    def iter_order_pages(
        self,
        *,
        last_updated_after: datetime | str,
        last_updated_before: datetime | str | None = None,
        marketplace_ids: Sequence[str] | None = None,
        page_token: str | None = None,
        max_results_per_page: int = 100,
        max_pages: int | None = None,
    ) -> Iterator[OrderPage]:
        """Canonical orders updated in ``[last_updated_after, last_updated_before]``, page by page.

        ``last_updated_before=None`` means ``now - min_before_lag_seconds``; the hook sends it
        explicitly, so resume with ``page_token`` *and the page's* ``window_end`` as
        ``last_updated_before`` (page tokens are bound to their filters). In v0 mode each order's
        items come from ``getOrderItems`` and, with ``include_pii``, buyer info and address via RDT.
        Records that cannot be mapped come back in :attr:`OrderPage.rejected`.
        """
        if last_updated_before is None:
            last_updated_before = latest_allowed_before(
                lag_seconds=self.config.min_before_lag_seconds + BEFORE_SAFETY_SECONDS
            )
        window = {
            "last_updated_after": last_updated_after,
            "last_updated_before": last_updated_before,
            "marketplace_ids": marketplace_ids,
            "max_results_per_page": max_results_per_page,
            "max_pages": max_pages,
        }
        if self.api_version == API_V2026:
            pages = self.search_orders(page_token=page_token, **window)
        else:
            pages = self.get_orders_v0(next_token=page_token, **window)
        calls_before = self.stats.totals()["calls"]
        for page in pages:
            orders, rejected = map_records(page.orders, self._normalizer())
            calls_now = self.stats.totals()["calls"]
            log.info(
                "%s page: %d orders%s, window end %s, %s [x-amzn-RequestId: %s]",
                self.search_operation,
                len(orders),
                f" (+{len(rejected)} that cannot be mapped)" if rejected else "",
                page.last_updated_before.isoformat() if page.last_updated_before else "-",
                "more pages" if page.next_token else "last page",
                page.request_id or "none",
            )
            end = page.last_updated_before or (
                parse_amazon_time(last_updated_before)
                if isinstance(last_updated_before, str)
                else last_updated_before
            )
            yield OrderPage(
                orders,
                rejected,
                page.next_token,
                page.page_token,
                end,
                calls_now - calls_before,
                page.request_id,
            )
            calls_before = calls_now

    def _normalizer(self) -> Any:
        seller_id = self.config.seller_id
        if self.api_version == API_V2026:
            return lambda raw: v2026_adapter.normalize_order(raw, seller_id=seller_id)
        return lambda raw: self._canonical_v0(raw, max_wait=V0_PAGE_MAX_WAIT)

    def _canonical_v0(self, raw_order: dict[str, Any], *, max_wait: float | None = None) -> CanonicalOrder:
        order_id = raw_order.get("AmazonOrderId", "")
        items = self.get_order_items(order_id, max_wait=max_wait)
        buyer_info = address = None
        if self.config.include_pii:
            buyer_info = self.get_order_buyer_info(order_id, max_wait=max_wait)
            address = self.get_order_address(order_id, max_wait=max_wait)
        return v0_adapter.normalize_order(
            raw_order, items, seller_id=self.config.seller_id, buyer_info=buyer_info, address=address
        )

    def get_canonical_order(self, order_id: str) -> CanonicalOrder:
        """One order as a canonical record (v2026 getOrder with items/packages; v0 getOrder + items).

        Raises :class:`~selling_partner.orders.mapping.UnmappableRecord` when Amazon's record cannot be
        mapped (its ``rejected`` carries the reason and the redacted record).
        """
        validate_order_id(order_id, operation=self.get_operation)
        if self.api_version == API_V2026:
            return map_one(self.get_order(order_id), self._normalizer())
        return map_one(self.get_order_v0(order_id), self._normalizer())
