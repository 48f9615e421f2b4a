"""SellingPartnerHook: every call to Amazon's Selling Partner API goes through here.

The hook owns, once: the connection (``amazon_sp_api``), LWA tokens and RDTs, the pooled HTTP session,
the rate limiter (proactive, optionally shared by all workers), retries (tenacity) and typed errors.
It offers raw typed calls (Orders v2026-01-01 and v0, Tokens, Notifications) and two
version-agnostic calls that return canonical records: :meth:`iter_order_pages` and
:meth:`get_canonical_order`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from selling_partner.hooks.auth import (
    NOTIFICATIONS_SCOPE,
    RESTRICTED_DATA_TOKENS,
    LwaClient,
    credential_key,
    mask,
)
from selling_partner.hooks.config import API_V2026, SpApiConfig, config_from_connection
from selling_partner.hooks.errors import (
    SpApiConfigError,
    SpApiError,
    SpApiForbidden,
    SpApiInvalidInput,
    SpApiNotFound,
    SpApiPageTokenExpired,
    SpApiRateLimitWait,
    SpApiServerError,
    SpApiThrottled,
)
from selling_partner.hooks.ratelimit import RateLimiter, build_limiter
from selling_partner.hooks.responses import (
    REQUEST_ID_HEADER,
    backoff_seconds,
    error_for_response,
    is_retryable,
    is_token_problem,
    parse_errors,
    rate_limit_from_headers,
    response_json,
)
from selling_partner.orders import v0 as v0_adapter
from selling_partner.orders import v2026 as v2026_adapter
from selling_partner.orders.canonical import CanonicalOrder
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
RDT_PATH = "/tokens/2021-03-01/restrictedDataToken"
NOTIFICATIONS = "/notifications/v1"
#: Extra safety on top of the 2-minute rule when the hook picks ``...Before`` itself.
BEFORE_SAFETY_SECONDS = 2.0
USER_AGENT = "airflow-provider-selling-partner/0.1 (Language=Python)"


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
    """One page of canonical orders (see docs/CONTRACTS.md)."""

    orders: list[CanonicalOrder]
    next_token: str | None
    page_token: str | None
    window_end: datetime
    calls: int


@dataclass
class _CallStats:
    calls: Counter = field(default_factory=Counter)
    throttled: Counter = field(default_factory=Counter)
    retries: Counter = field(default_factory=Counter)


def _csv(values: Sequence[str] | None) -> str | None:
    return ",".join(values) if values else None


class SellingPartnerHook(BaseHook):
    """Hook for Amazon's Selling Partner API (Orders v2026-01-01 and v0, Tokens, Notifications).

    :param sp_api_conn_id: an ``amazon_sp_api`` connection: login = LWA client id, password = LWA
        client secret, extra = ``refresh_token``, ``region``, ``marketplace_ids``, ``seller_id``,
        ``orders_api_version``, ``include_pii``, ``endpoint``, ``lwa_endpoint``,
        ``min_before_lag_seconds``, ``rate_limit_backend``, ``rate_limit_dsn``/``rate_limit_conn_id``,
        ``rate_limits``, ``timeout``.
    :param limiter: a :class:`~selling_partner.hooks.ratelimit.RateLimiter` to use instead of the one
        the connection names
    :param max_wait: longest wait (seconds) for a rate-limit token before raising
        :class:`SpApiRateLimitWait` (default 60)
    :param max_attempts: attempts per call for retryable failures (default 6)
    :param page_max_wait: longest wait for per-order calls inside one v0 page (getOrderItems and RDT
        calls), so a fetched page is completed rather than abandoned (default 900)
    """

    conn_name_attr = "sp_api_conn_id"
    default_conn_name = "sp_api_default"
    conn_type = "amazon_sp_api"
    hook_name = "Amazon Selling Partner API"

    def __init__(
        self,
        sp_api_conn_id: str = default_conn_name,
        *,
        limiter: RateLimiter | None = None,
        max_wait: float | None = None,
        max_attempts: int | None = None,
        page_max_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sp_api_conn_id = sp_api_conn_id
        self._limiter_override = limiter
        self.max_wait = 60.0 if max_wait is None else float(max_wait)
        self.max_attempts = 6 if max_attempts is None else max(1, int(max_attempts))
        self.page_max_wait = 900.0 if page_max_wait is None else float(page_max_wait)
        self.stats = _CallStats()
        self._rdt_generic_ok = True

    # --- configuration --------------------------------------------------------------------------

    @cached_property
    def config(self) -> SpApiConfig:
        """The validated connection settings."""
        conn = self.get_connection(self.sp_api_conn_id)
        cfg = config_from_connection(
            conn.login, conn.password, conn.extra_dejson, conn_id=self.sp_api_conn_id
        )
        mask(cfg.client_secret, "client_secret")
        mask(cfg.refresh_token, "refresh_token")
        mask(cfg.rate_limit_dsn, "rate_limit_dsn")  # may carry a database password
        return cfg

    @property
    def api_version(self) -> str:
        """``"2026-01-01"`` or ``"v0"``."""
        return self.config.orders_api_version

    @property
    def search_operation(self) -> str:
        """Rate-limited operation that lists orders in this API version (for deferral decisions)."""
        return "searchOrders" if self.api_version == API_V2026 else "getOrders"

    @property
    def get_operation(self) -> str:
        """Rate-limited operation that fetches one order in this API version."""
        return "getOrder" if self.api_version == API_V2026 else "getOrderV0"

    @cached_property
    def session(self) -> requests.Session:
        """One pooled HTTP session per hook."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        return session

    @cached_property
    def lwa(self) -> LwaClient:
        """LWA token client for this connection."""
        cfg = self.config
        return LwaClient(
            cfg.lwa_endpoint, cfg.client_id, cfg.client_secret, cfg.refresh_token, self.session, cfg.timeout
        )

    @cached_property
    def limiter(self) -> RateLimiter:
        """The rate limiter: given to the hook, or built from the connection's backend."""
        if self._limiter_override is not None:
            return self._limiter_override
        cfg = self.config
        dsn = cfg.rate_limit_dsn
        if cfg.rate_limit_backend == "postgres" and not dsn and cfg.rate_limit_conn_id:
            dsn = self._dsn_from_conn(cfg.rate_limit_conn_id)
        return build_limiter(
            cfg.rate_limit_backend,
            seller_id=cfg.seller_id,
            region=cfg.region,
            dsn=dsn,
            overrides=cfg.rate_limits,
        )

    def _dsn_from_conn(self, conn_id: str) -> str:
        from psycopg.conninfo import make_conninfo

        conn = self.get_connection(conn_id)
        params = {
            "host": conn.host or "localhost",
            "port": conn.port or 5432,
            "dbname": conn.schema or "postgres",
            "user": conn.login or None,
            "password": conn.password or None,
        }
        return make_conninfo(**{k: v for k, v in params.items() if v is not None})

    def get_conn(self) -> requests.Session:
        """The hook's pooled HTTP session (Airflow hook convention)."""
        return self.session

    def seconds_until_available(self, operation: str) -> float:
        """Seconds until ``operation`` has a rate-limit token (0 = now); spends nothing."""
        return self.limiter.seconds_until_available(operation)

    def close(self) -> None:
        """Close the HTTP session and the limiter's backend connection."""
        if "session" in self.__dict__:
            self.session.close()
        if "limiter" in self.__dict__ and self._limiter_override is None:
            self.limiter.close()

    # --- the request core -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.config.endpoint + path

    def _throttle(self, operation: str, max_wait: float) -> None:
        granted, wait = self.limiter.acquire(operation, max_wait)
        if not granted:
            raise SpApiRateLimitWait(operation, wait)
        if wait > 0:
            log.debug("rate limit: waiting %.2f s for a %s token", wait, operation)
            time.sleep(wait)

    def _retry_wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, SpApiThrottled):
            # the limiter (penalised on the 429) does the real waiting before the next attempt
            return 0.05 + 0.2 * (state.attempt_number - 1)
        return backoff_seconds(state.attempt_number)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        operation = getattr(exc, "operation", "") or "call"
        self.stats.retries[operation] += 1
        log.warning(
            "SP-API %s attempt %d failed (%s); retrying",
            operation,
            state.attempt_number,
            str(exc).split(" What to do:")[0][:300],
        )

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        scope: str | None = None,
        rdt: tuple[str, tuple[str, ...]] | None = None,
        page_token_sent: bool = False,
        max_wait: float | None = None,
    ) -> tuple[Any, requests.Response]:
        """Send one SP-API call with rate limiting, token refresh and retries; return (json, response).

        :param scope: LWA scope for a grantless call (None = seller token)
        :param rdt: ``(path_template, data_elements)`` to call with a Restricted Data Token
        """
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._retry_wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        wait_cap = self.max_wait if max_wait is None else max_wait
        return retrying(
            self._attempt, operation, method, path, clean, json_body, scope, rdt, page_token_sent, wait_cap
        )

    def _send(
        self, operation: str, method: str, path: str, params: dict, json_body: Any, token: str
    ) -> requests.Response:
        try:
            response = self.session.request(
                method,
                self._url(path),
                params=params,
                json=json_body,
                headers={"x-amz-access-token": token},
                timeout=self.config.timeout,
            )
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise SpApiServerError(
                f"network failure ({type(exc).__name__})",
                operation=operation,
                hint="The connection dropped or timed out; the hook retries, then the task retry resumes.",
            ) from exc
        self.stats.calls[operation] += 1
        rate = rate_limit_from_headers(response.headers)
        if rate is not None:
            self.limiter.observe_rate(operation, rate)
        log.debug(
            "SP-API %s -> %s [%s]", operation, response.status_code, response.headers.get(REQUEST_ID_HEADER)
        )
        return response

    def _access_token(self, scope: str | None, rdt: tuple[str, tuple[str, ...]] | None, force: bool) -> str:
        if rdt is not None:
            return self._restricted_data_token(rdt[0], rdt[1], force=force)
        return self.lwa.access_token(scope, force=force)

    def _attempt(
        self,
        operation: str,
        method: str,
        path: str,
        params: dict,
        json_body: Any,
        scope: str | None,
        rdt: tuple[str, tuple[str, ...]] | None,
        page_token_sent: bool,
        max_wait: float,
    ) -> tuple[Any, requests.Response]:
        self._throttle(operation, max_wait)
        token = self._access_token(scope, rdt, force=False)
        response = self._send(operation, method, path, params, json_body, token)
        if response.status_code in (401, 403):
            code, message, details = parse_errors(response_json(response))
            if response.status_code == 401 or is_token_problem(code, message, details):
                # An expired or revoked token: refresh once and retry this call.
                log.info("SP-API %s: access token rejected; refreshing it once", operation)
                token = self._access_token(scope, rdt, force=True)
                self._throttle(operation, max_wait)
                response = self._send(operation, method, path, params, json_body, token)
        if response.status_code == 429:
            self.stats.throttled[operation] += 1
            self.limiter.penalize(operation)
        if response.status_code >= 400:
            raise error_for_response(operation, response, sent_page_token=page_token_sent)
        body = response_json(response)
        if body is None and response.content:
            raise SpApiServerError(
                "the response body is not valid JSON (truncated?)",
                operation=operation,
                status=response.status_code,
                request_id=response.headers.get(REQUEST_ID_HEADER),
            )
        return body, response

    def _restricted_data_token(
        self, path: str, data_elements: tuple[str, ...], *, force: bool = False
    ) -> str:
        """An RDT for ``GET path`` (a template like ``/orders/v0/orders/{orderId}/address`` or a real
        path), cached for its lifetime per (credential, path, data elements)."""
        cfg = self.config
        key = credential_key(
            cfg.lwa_endpoint, cfg.client_id, cfg.refresh_token, cfg.endpoint, path, *data_elements
        )

        def fetch() -> tuple[str, float]:
            resource: dict[str, Any] = {"method": "GET", "path": path}
            if data_elements:
                resource["dataElements"] = list(data_elements)
            body, _ = self._call(
                "createRestrictedDataToken",
                "POST",
                RDT_PATH,
                json_body={"restrictedResources": [resource]},
                max_wait=max(self.max_wait, self.page_max_wait),
            )
            token = body.get("restrictedDataToken") if isinstance(body, dict) else None
            if not token:
                raise SpApiServerError(
                    "no restrictedDataToken in the response", operation="createRestrictedDataToken"
                )
            mask(token)
            return token, float(body.get("expiresIn") or 3600)

        return RESTRICTED_DATA_TOKENS.get(key, fetch, force=force)

    def _rdt_call(
        self,
        operation: str,
        order_id: str,
        suffix: str,
        data_elements: tuple[str, ...],
        max_wait: float | None,
    ) -> Any:
        """GET ``/orders/v0/orders/{orderId}{suffix}`` with an RDT (generic template, else specific path)."""
        path = f"{V0_ORDERS}/{order_id}{suffix}"
        if self._rdt_generic_ok:
            try:
                return self._call(
                    operation,
                    "GET",
                    path,
                    rdt=(f"{V0_ORDERS}/{{orderId}}{suffix}", data_elements),
                    max_wait=max_wait,
                )[0]
            except SpApiInvalidInput as exc:
                if exc.operation != "createRestrictedDataToken":
                    raise
                log.info("generic RDT paths are refused here; using one RDT per order")
                self._rdt_generic_ok = False
        return self._call(operation, "GET", path, rdt=(path, data_elements), max_wait=max_wait)[0]

    # --- Orders v2026-01-01 -------------------------------------------------------------------------

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
        params = self._search_params(
            op,
            last_updated_after,
            last_updated_before,
            created_after,
            created_before,
            marketplace_ids,
            names=(
                "lastUpdatedAfter",
                "lastUpdatedBefore",
                "createdAfter",
                "createdBefore",
                "marketplaceIds",
            ),
        )
        if fulfillment_statuses:
            params["fulfillmentStatuses"] = _csv(
                [
                    validate_path_segment(s, name="fulfillment status", operation=op)
                    for s in fulfillment_statuses
                ]
            )
        if fulfilled_by:
            params["fulfilledBy"] = validate_path_segment(fulfilled_by, name="fulfilledBy", operation=op)
        params["includedData"] = _csv(self._included_data(included_data))
        params["maxResultsPerPage"] = validate_max_results(max_results_per_page, operation=op)
        token = page_token
        pages = 0
        while True:
            query = dict(params)
            if token:
                query["paginationToken"] = token
            body, response = self._call(op, "GET", V2026_ORDERS, params=query, page_token_sent=bool(token))
            body = body or {}
            next_token = (body.get("pagination") or {}).get("nextToken") or None
            yield SearchPage(
                orders=list(body.get("orders") or []),
                next_token=next_token,
                page_token=token,
                last_updated_before=parse_amazon_time(body.get("lastUpdatedBefore")),
                created_before=parse_amazon_time(body.get("createdBefore")),
                request_id=response.headers.get(REQUEST_ID_HEADER),
            )
            pages += 1
            if not next_token or (max_pages is not None and pages >= max_pages):
                return
            token = next_token

    def _search_params(
        self,
        op: str,
        last_updated_after: datetime | str | None,
        last_updated_before: datetime | str | None,
        created_after: datetime | str | None,
        created_before: datetime | str | None,
        marketplace_ids: Sequence[str] | None,
        *,
        names: tuple[str, str, str, str, str],
    ) -> dict[str, Any]:
        lag = self.config.min_before_lag_seconds
        if (last_updated_after is None) == (created_after is None):
            raise ValidationError("pass exactly one of last_updated_after / created_after", operation=op)
        if last_updated_after is not None and (created_before is not None):
            raise ValidationError("created_before cannot be combined with last_updated_after", operation=op)
        if created_after is not None and last_updated_before is not None:
            raise ValidationError("last_updated_before cannot be combined with created_after", operation=op)
        params: dict[str, Any] = {}
        if last_updated_after is not None:
            after, before = validate_window(
                last_updated_after, last_updated_before, lag_seconds=lag, operation=op
            )
            params[names[0]] = format_amazon_time(after)
            params[names[1]] = format_amazon_time(before) if before else None
        else:
            after, before = validate_window(
                created_after,
                created_before,
                lag_seconds=lag,
                operation=op,
                after_name="created_after",
                before_name="created_before",
            )
            params[names[2]] = format_amazon_time(after)
            params[names[3]] = format_amazon_time(before) if before else None
        ids = validate_marketplace_ids(
            marketplace_ids if marketplace_ids else list(self.config.marketplace_ids),
            region=self.config.region,
            operation=op,
        )
        params[names[4]] = _csv(ids)
        return params

    def get_order(self, order_id: str, included_data: Sequence[str] | None = None) -> dict[str, Any]:
        """``getOrder`` (v2026): the raw ``order`` object (items always included)."""
        validate_order_id(order_id, operation="getOrder")
        params = {"includedData": _csv(self._included_data(included_data))}
        body, _ = self._call("getOrder", "GET", f"{V2026_ORDERS}/{order_id}", params=params)
        return (body or {}).get("order") or {}

    # --- Orders v0 --------------------------------------------------------------------------------

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
        op = "getOrders"
        params = self._search_params(
            op,
            last_updated_after,
            last_updated_before,
            created_after,
            created_before,
            marketplace_ids,
            names=(
                "LastUpdatedAfter",
                "LastUpdatedBefore",
                "CreatedAfter",
                "CreatedBefore",
                "MarketplaceIds",
            ),
        )
        if order_statuses:
            params["OrderStatuses"] = _csv(
                [validate_path_segment(s, name="order status", operation=op) for s in order_statuses]
            )
        params["MaxResultsPerPage"] = validate_max_results(max_results_per_page, operation=op)
        token = next_token
        pages = 0
        while True:
            query = dict(params)
            if token:
                query["NextToken"] = token
            body, response = self._call(op, "GET", V0_ORDERS, params=query, page_token_sent=bool(token))
            payload = (body or {}).get("payload") or {}
            new_token = payload.get("NextToken") or None
            yield SearchPage(
                orders=list(payload.get("Orders") or []),
                next_token=new_token,
                page_token=token,
                last_updated_before=parse_amazon_time(payload.get("LastUpdatedBefore")),
                created_before=parse_amazon_time(payload.get("CreatedBefore")),
                request_id=response.headers.get(REQUEST_ID_HEADER),
            )
            pages += 1
            if not new_token or (max_pages is not None and pages >= max_pages):
                return
            token = new_token

    def get_order_v0(self, order_id: str) -> dict[str, Any]:
        """v0 ``getOrder``: the raw order payload (no items)."""
        validate_order_id(order_id, operation="getOrderV0")
        body, _ = self._call("getOrderV0", "GET", f"{V0_ORDERS}/{order_id}")
        return (body or {}).get("payload") or {}

    def get_order_items(self, order_id: str, *, max_wait: float | None = None) -> list[dict[str, Any]]:
        """v0 ``getOrderItems``: every item of the order (all pages).

        A rejected item page token restarts this order's item list (at most 3 times): it is cheap, and
        a page of orders must not be abandoned for it.
        """
        validate_order_id(order_id, operation="getOrderItems")
        for restart in range(4):
            try:
                return self._order_items_pages(order_id, max_wait)
            except SpApiPageTokenExpired:
                if restart == 3:
                    raise
                log.info("getOrderItems page token rejected; restarting the item list of one order")
        raise AssertionError("unreachable")  # pragma: no cover

    def _order_items_pages(self, order_id: str, max_wait: float | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params = {"NextToken": token} if token else None
            body, _ = self._call(
                "getOrderItems",
                "GET",
                f"{V0_ORDERS}/{order_id}/orderItems",
                params=params,
                page_token_sent=bool(token),
                max_wait=max_wait,
            )
            payload = (body or {}).get("payload") or {}
            items.extend(payload.get("OrderItems") or [])
            token = payload.get("NextToken") or None
            if not token:
                return items

    def get_order_buyer_info(self, order_id: str, *, max_wait: float | None = None) -> dict[str, Any]:
        """v0 ``getOrderBuyerInfo`` with an RDT (``buyerInfo``). Restricted data: never log it."""
        validate_order_id(order_id, operation="getOrderBuyerInfo")
        body = self._rdt_call("getOrderBuyerInfo", order_id, "/buyerInfo", (), max_wait)
        return (body or {}).get("payload") or {}

    def get_order_address(self, order_id: str, *, max_wait: float | None = None) -> dict[str, Any]:
        """v0 ``getOrderAddress`` with an RDT (``shippingAddress``). Restricted data: never log it."""
        validate_order_id(order_id, operation="getOrderAddress")
        body = self._rdt_call("getOrderAddress", order_id, "/address", (), max_wait)
        return (body or {}).get("payload") or {}

    # --- version-agnostic canonical calls ---------------------------------------------------------

    def iter_order_pages(
        self,
        *,
        last_updated_after: datetime | str,
        last_updated_before: datetime | str | None = None,
        marketplace_ids: Sequence[str] | None = None,
        page_token: str | None = None,
        max_results_per_page: int = 100,
    ) -> Iterator[OrderPage]:
        """Canonical orders updated in ``[last_updated_after, last_updated_before]``, page by page.

        ``last_updated_before=None`` means ``now - min_before_lag_seconds``; the hook sends it
        explicitly, so resume with ``page_token`` *and the page's* ``window_end`` as
        ``last_updated_before`` (page tokens are bound to their filters). In v0 mode each order's
        items come from ``getOrderItems`` and, with ``include_pii``, buyer info and address via RDT.
        """
        if last_updated_before is None:
            last_updated_before = latest_allowed_before(
                lag_seconds=self.config.min_before_lag_seconds + BEFORE_SAFETY_SECONDS
            )
        cfg = self.config
        if self.api_version == API_V2026:
            calls_before = self.stats.calls["searchOrders"]
            for page in self.search_orders(
                last_updated_after=last_updated_after,
                last_updated_before=last_updated_before,
                marketplace_ids=marketplace_ids,
                page_token=page_token,
                max_results_per_page=max_results_per_page,
            ):
                orders = [v2026_adapter.normalize_order(raw, seller_id=cfg.seller_id) for raw in page.orders]
                calls = self.stats.calls["searchOrders"] - calls_before
                calls_before = self.stats.calls["searchOrders"]
                self._log_page(page, len(orders))
                yield OrderPage(
                    orders,
                    page.next_token,
                    page.page_token,
                    self._window_end(page, last_updated_before),
                    calls,
                )
            return
        total_before = sum(self.stats.calls.values())
        for page in self.get_orders_v0(
            last_updated_after=last_updated_after,
            last_updated_before=last_updated_before,
            marketplace_ids=marketplace_ids,
            next_token=page_token,
            max_results_per_page=max_results_per_page,
        ):
            orders = [self._canonical_v0(raw, max_wait=self.page_max_wait) for raw in page.orders]
            total = sum(self.stats.calls.values())
            self._log_page(page, len(orders))
            yield OrderPage(
                orders,
                page.next_token,
                page.page_token,
                self._window_end(page, last_updated_before),
                total - total_before,
            )
            total_before = total

    def _log_page(self, page: SearchPage, count: int) -> None:
        op = self.search_operation
        log.info(
            "%s page: %d orders, window end %s, %s; next %s token in %.0f s [x-amzn-RequestId: %s]",
            op,
            count,
            page.last_updated_before.isoformat() if page.last_updated_before else "-",
            "more pages" if page.next_token else "last page",
            op,
            self.seconds_until_available(op),
            page.request_id or "none",
        )

    @staticmethod
    def _window_end(page: SearchPage, sent: datetime | str) -> datetime:
        if page.last_updated_before is not None:
            return page.last_updated_before
        return parse_amazon_time(sent) if isinstance(sent, str) else sent

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
        """One order as a canonical record (v2026 getOrder with items/packages; v0 getOrder + items)."""
        validate_order_id(order_id, operation=self.get_operation)
        if self.api_version == API_V2026:
            return v2026_adapter.normalize_order(self.get_order(order_id), seller_id=self.config.seller_id)
        return self._canonical_v0(self.get_order_v0(order_id))

    # --- Notifications ------------------------------------------------------------------------------

    def get_destinations(self) -> list[dict[str, Any]]:
        """All notification destinations of the application (grantless)."""
        body, _ = self._call(
            "getDestinations", "GET", f"{NOTIFICATIONS}/destinations", scope=NOTIFICATIONS_SCOPE
        )
        return list((body or {}).get("payload") or [])

    def create_destination(self, name: str, sqs_arn: str) -> dict[str, Any]:
        """Create an SQS destination (grantless); if the ARN is already registered, return that one."""
        if not isinstance(sqs_arn, str) or not sqs_arn.startswith("arn:aws:sqs:"):
            raise ValidationError(
                f"not an SQS queue ARN: {str(sqs_arn)[:80]!r}", operation="createDestination"
            )
        body = {"name": name, "resourceSpecification": {"sqs": {"arn": sqs_arn}}}
        try:
            result, _ = self._call(
                "createDestination",
                "POST",
                f"{NOTIFICATIONS}/destinations",
                json_body=body,
                scope=NOTIFICATIONS_SCOPE,
            )
        except SpApiError as exc:
            if exc.status != 409:
                raise
            for destination in self.get_destinations():
                if ((destination.get("resource") or {}).get("sqs") or {}).get("arn") == sqs_arn:
                    return destination
            raise
        return (result or {}).get("payload") or {}

    def delete_destination(self, destination_id: str) -> None:
        """Delete a destination (grantless)."""
        validate_path_segment(destination_id, name="destination id", operation="deleteDestination")
        self._call(
            "deleteDestination",
            "DELETE",
            f"{NOTIFICATIONS}/destinations/{destination_id}",
            scope=NOTIFICATIONS_SCOPE,
        )

    def get_subscription(
        self, notification_type: str, payload_version: str | None = None
    ) -> dict[str, Any] | None:
        """The seller's subscription to ``notification_type``, or ``None`` when there is none."""
        validate_path_segment(notification_type, name="notification type", operation="getSubscription")
        params = {"payloadVersion": payload_version} if payload_version else None
        try:
            body, _ = self._call(
                "getSubscription", "GET", f"{NOTIFICATIONS}/subscriptions/{notification_type}", params=params
            )
        except SpApiNotFound:
            return None
        return (body or {}).get("payload") or None

    def create_subscription(
        self,
        notification_type: str,
        destination_id: str,
        event_filter: dict[str, Any] | None = None,
        *,
        payload_version: str = "1.0",
    ) -> tuple[dict[str, Any], bool]:
        """Subscribe the seller to ``notification_type``; returns ``(subscription, created)``.

        A 409 (already subscribed) returns the existing subscription with ``created=False``.
        ``event_filter`` is the ``processingDirective.eventFilter`` object, e.g.
        ``{"eventFilterType": "ORDER_CHANGE", "marketplaceIds": [...], "orderChangeTypes": [...]}``.
        """
        op = "createSubscription"
        validate_path_segment(notification_type, name="notification type", operation=op)
        validate_path_segment(destination_id, name="destination id", operation=op)
        body: dict[str, Any] = {"payloadVersion": payload_version, "destinationId": destination_id}
        if event_filter:
            if "eventFilterType" not in event_filter:
                raise ValidationError("event_filter needs eventFilterType (e.g. ORDER_CHANGE)", operation=op)
            if event_filter.get("marketplaceIds"):
                validate_marketplace_ids(
                    event_filter["marketplaceIds"], region=self.config.region, operation=op
                )
            body["processingDirective"] = {"eventFilter": dict(event_filter)}
        try:
            result, _ = self._call(
                op, "POST", f"{NOTIFICATIONS}/subscriptions/{notification_type}", json_body=body
            )
        except SpApiError as exc:
            if exc.status != 409:
                raise
            existing = self.get_subscription(notification_type, payload_version)
            if existing is None:
                raise
            return existing, False
        return (result or {}).get("payload") or {}, True

    def get_subscription_by_id(self, notification_type: str, subscription_id: str) -> dict[str, Any]:
        """A subscription by id (grantless)."""
        op = "getSubscriptionById"
        validate_path_segment(notification_type, name="notification type", operation=op)
        validate_path_segment(subscription_id, name="subscription id", operation=op)
        body, _ = self._call(
            op,
            "GET",
            f"{NOTIFICATIONS}/subscriptions/{notification_type}/{subscription_id}",
            scope=NOTIFICATIONS_SCOPE,
        )
        return (body or {}).get("payload") or {}

    def delete_subscription(self, notification_type: str, subscription_id: str) -> None:
        """Delete a subscription by id (grantless ``deleteSubscriptionById``)."""
        op = "deleteSubscriptionById"
        validate_path_segment(notification_type, name="notification type", operation=op)
        validate_path_segment(subscription_id, name="subscription id", operation=op)
        self._call(
            op,
            "DELETE",
            f"{NOTIFICATIONS}/subscriptions/{notification_type}/{subscription_id}",
            scope=NOTIFICATIONS_SCOPE,
        )

    # --- Test connection ----------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Exchange a token and make one cheap call; return ``(ok, message)`` saying what is wrong."""
        try:
            cfg = self.config
        except SpApiConfigError as exc:
            return False, f"Connection settings are invalid: {exc.detail}"
        except Exception as exc:  # the connection itself could not be read
            return False, f"Could not read connection {self.sp_api_conn_id!r}: {type(exc).__name__}: {exc}"
        try:
            self.lwa.access_token()
        except SpApiError as exc:
            return False, f"LWA token exchange at {cfg.lwa_endpoint} failed: {exc}"
        except requests.RequestException as exc:
            return False, f"LWA endpoint {cfg.lwa_endpoint} unreachable: {type(exc).__name__}"
        try:
            if self.api_version == API_V2026:
                after = latest_allowed_before(lag_seconds=cfg.min_before_lag_seconds + 300)
                page = next(
                    self.search_orders(
                        last_updated_after=after, included_data=[], max_results_per_page=1, max_pages=1
                    )
                )
            else:
                after = latest_allowed_before(lag_seconds=cfg.min_before_lag_seconds + 300)
                page = next(self.get_orders_v0(last_updated_after=after, max_results_per_page=1, max_pages=1))
        except SpApiRateLimitWait as exc:
            return True, f"Credentials work; {exc.operation} is rate limited for {exc.wait_seconds:.0f} s."
        except SpApiForbidden as exc:
            return False, f"Token works but the call was refused ({exc.reason}): {exc}"
        except SpApiError as exc:
            return False, f"Token works but the test call failed: {exc}"
        except requests.RequestException as exc:
            return False, f"SP-API endpoint {cfg.endpoint} unreachable: {type(exc).__name__}"
        return True, (
            f"Connected to {cfg.endpoint} (region {cfg.region}, Orders API {self.api_version}) as seller "
            f"{cfg.seller_id}; test call returned {len(page.orders)} order(s) "
            f"[x-amzn-RequestId: {page.request_id or 'none'}]."
        )
