"""SellingPartnerHook: the connection, auth, rate limits, retries and sessions of every SP-API call, once.

Like the amazon provider's ``AwsGenericHook``, this base hook owns what every API surface shares: the
``amazon_sp_api`` connection, Login with Amazon tokens (seller, grantless) and Restricted Data Tokens,
one pooled HTTP session, the rate limiter (proactive, persisted across task processes, optionally
shared by all workers), retries (tenacity) and typed errors, plus one paginator. The API surfaces are
hooks beside it: :class:`~selling_partner.hooks.orders.SellingPartnerOrdersHook` (Orders v2026-01-01
and v0) and :class:`~selling_partner.hooks.notifications.SellingPartnerNotificationsHook`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from selling_partner import metrics
from selling_partner.hooks.auth import RESTRICTED_DATA_TOKENS, LwaClient, credential_key, mask
from selling_partner.hooks.config import API_V2026, SpApiConfig, config_from_connection
from selling_partner.hooks.errors import (
    SpApiConfigError,
    SpApiError,
    SpApiForbidden,
    SpApiNotFound,
    SpApiRateLimitWait,
    SpApiServerError,
    SpApiThrottled,
)
from selling_partner.hooks.ratelimit import Quota, RateLimiter, build_limiter, send_margin
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

log = logging.getLogger(__name__)

RDT_PATH = "/tokens/2021-03-01/restrictedDataToken"
USER_AGENT = "airflow-provider-selling-partner/0.1 (Language=Python)"
#: A well-formed order id that cannot exist: ``getOrder`` of it answers 404 when the Orders role works.
PROBE_ORDER_ID = "000-0000000-0000000"

#: How a call authenticates: ``None`` = the seller's LWA token; ``("grantless", scope)``; or
#: ``("rdt", path_template, data_elements)`` for a Restricted Data Token.
Auth = tuple[Any, ...] | None


@dataclass
class CallStats:
    """What this hook instance sent: calls, 429s and retries per operation."""

    calls: Counter = field(default_factory=Counter)
    throttled: Counter = field(default_factory=Counter)
    retries: Counter = field(default_factory=Counter)

    def totals(self) -> dict[str, int]:
        """``{"calls", "throttled", "retries"}`` summed over operations."""
        return {
            "calls": sum(self.calls.values()),
            "throttled": sum(self.throttled.values()),
            "retries": sum(self.retries.values()),
        }


@dataclass(frozen=True)
class Page:
    """One page of a paged operation: its JSON body, the token sent for it, and the response's request id."""

    body: dict[str, Any]
    token_sent: str | None
    request_id: str | None


class SellingPartnerHook(BaseHook):
    """Hook for Amazon's Selling Partner API: connection, auth, rate limits, retries, paging.

    :param sp_api_conn_id: an ``amazon_sp_api`` connection: login = LWA client id, password = LWA
        client secret, extra = ``refresh_token``, ``region``, ``marketplace_ids``, ``seller_id`` and the
        optional settings documented in the README (``orders_api_version``, ``include_pii``,
        ``endpoint``, ``lwa_endpoint``, ``min_before_lag_seconds``, ``rate_limit_backend``, ...).
    :param limiter: a :class:`~selling_partner.hooks.ratelimit.RateLimiter` to use instead of the one
        the connection names
    :param max_wait: longest wait (seconds) for a rate-limit token before raising
        :class:`SpApiRateLimitWait` (default 60); operators set it to what they wait out inline
    :param max_attempts: attempts per call for retryable failures (default 6)
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sp_api_conn_id = sp_api_conn_id
        self._limiter_override = limiter
        self.max_wait = 60.0 if max_wait is None else float(max_wait)
        self.max_attempts = 6 if max_attempts is None else max(1, int(max_attempts))
        self.stats = CallStats()

    # --- configuration ------------------------------------------------------------------------------

    @cached_property
    def config(self) -> SpApiConfig:
        """The validated connection settings (the one reading of the connection)."""
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

    def quota(self, operation: str) -> Quota:
        """How full ``operation``'s bucket is and how long until its next token; spends nothing."""
        return self.limiter.quota(operation)

    def seconds_until_available(self, operation: str) -> float:
        """Seconds until ``operation`` has a rate-limit token (0 = now); spends nothing."""
        return self.limiter.seconds_until_available(operation)

    def close(self) -> None:
        """Close the HTTP session and the limiter's backend connection."""
        if "session" in self.__dict__:
            self.session.close()
        if "limiter" in self.__dict__ and self._limiter_override is None:
            self.limiter.close()

    # --- the request core -----------------------------------------------------------------------------

    def _throttle(self, operation: str, max_wait: float) -> None:
        granted, wait = self.limiter.acquire(operation, max_wait)
        if not granted:
            raise SpApiRateLimitWait(operation, wait)
        if wait > 0:
            # Amazon's bucket starts when the first request arrives, ours when it was reserved: once the
            # burst is spent, send a little after our token so latency jitter cannot arrive early.
            wait += send_margin(self.limiter.limit(operation)[0])
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

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        auth: Auth = None,
        page_token_sent: bool = False,
        max_wait: float | None = None,
    ) -> tuple[Any, requests.Response]:
        """Send one SP-API call with rate limiting, token refresh and retries; return (json, response).

        Every value in ``path`` must have been validated by the caller (``selling_partner.validation``).

        :param auth: ``None`` (seller token), ``("grantless", scope)`` or ``("rdt", path, data_elements)``
        :param page_token_sent: a 400 then means the page token was rejected (:class:`SpApiPageTokenExpired`)
        :param max_wait: longest inline wait for a rate-limit token (default: the hook's ``max_wait``)
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
            self._attempt, operation, method, path, clean, json_body, auth, page_token_sent, wait_cap
        )

    def paginate(
        self,
        operation: str,
        path: str,
        params: dict[str, Any],
        *,
        token_param: str,
        next_token: Callable[[dict[str, Any]], str | None],
        start_token: str | None = None,
        max_pages: int | None = None,
        max_wait: float | None = None,
    ) -> Iterator[Page]:
        """The one paginator: GET ``path`` with ``params``, then again with ``token_param`` = the token
        ``next_token(body)`` returns, until it returns none (or ``max_pages``). Filters are re-sent with
        every token (Amazon binds tokens to their filters)."""
        token = start_token
        pages = 0
        while True:
            query = dict(params)
            if token:
                query[token_param] = token
            body, response = self.call(
                operation, "GET", path, params=query, page_token_sent=bool(token), max_wait=max_wait
            )
            body = body if isinstance(body, dict) else {}
            yield Page(body, token, response.headers.get(REQUEST_ID_HEADER))
            pages += 1
            token = next_token(body) or None
            if not token or (max_pages is not None and pages >= max_pages):
                return

    def _send(
        self, operation: str, method: str, path: str, params: dict, json_body: Any, token: str
    ) -> requests.Response:
        try:
            response = self.session.request(
                method,
                self.config.endpoint + path,
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
        finally:
            self.stats.calls[operation] += 1
            metrics.incr("calls", operation)
        rate = rate_limit_from_headers(response.headers)
        if rate is not None:
            self.limiter.observe_rate(operation, rate)
        log.debug(
            "SP-API %s -> %s [%s]", operation, response.status_code, response.headers.get(REQUEST_ID_HEADER)
        )
        return response

    def _access_token(self, auth: Auth, force: bool) -> str:
        if auth is None:
            return self.lwa.access_token(None, force=force)
        if auth[0] == "grantless":
            return self.lwa.access_token(auth[1], force=force)
        return self.restricted_data_token(auth[1], auth[2], force=force)

    def _attempt(
        self,
        operation: str,
        method: str,
        path: str,
        params: dict,
        json_body: Any,
        auth: Auth,
        page_token_sent: bool,
        max_wait: float,
    ) -> tuple[Any, requests.Response]:
        self._throttle(operation, max_wait)
        token = self._access_token(auth, force=False)
        response = self._send(operation, method, path, params, json_body, token)
        if response.status_code in (401, 403):
            code, message, details = parse_errors(response_json(response))
            if response.status_code == 401 or is_token_problem(code, message, details):
                # An expired or revoked token: refresh once and retry this call.
                log.info("SP-API %s: access token rejected; refreshing it once", operation)
                token = self._access_token(auth, force=True)
                self._throttle(operation, max_wait)
                response = self._send(operation, method, path, params, json_body, token)
        if response.status_code == 429:
            self.stats.throttled[operation] += 1
            metrics.incr("throttled", operation)
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

    def restricted_data_token(self, path: str, data_elements: tuple[str, ...], *, force: bool = False) -> str:
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
            body, _ = self.call(
                "createRestrictedDataToken", "POST", RDT_PATH, json_body={"restrictedResources": [resource]}
            )
            token = body.get("restrictedDataToken") if isinstance(body, dict) else None
            if not token:
                raise SpApiServerError(
                    "no restrictedDataToken in the response", operation="createRestrictedDataToken"
                )
            return token, float(body.get("expiresIn") or 3600)

        return RESTRICTED_DATA_TOKENS.get(key, fetch, force=force)

    # --- Test connection ------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Exchange a token and make one cheap call that proves the Orders role; return ``(ok, message)``.

        The call is ``getOrder`` of a well-formed id that cannot exist (0.5/s, burst 30 - not the scarce
        ``searchOrders`` budget): 404 means the role works, 403 that it is missing.
        """
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
        if self.api_version == API_V2026:
            operation, path = "getOrder", f"/orders/2026-01-01/orders/{PROBE_ORDER_ID}"
        else:
            operation, path = "getOrderV0", f"/orders/v0/orders/{PROBE_ORDER_ID}"
        where = (
            f"{cfg.endpoint} (region {cfg.region}, Orders API {self.api_version}) as seller {cfg.seller_id}"
        )
        try:
            self.call(operation, "GET", path, max_wait=5.0)
        except SpApiNotFound as exc:
            return True, (
                f"Connected to {where}: the token works and the Orders role is granted ({operation} probe "
                f"answered 404 as expected) [x-amzn-RequestId: {exc.request_id or 'none'}]."
            )
        except SpApiRateLimitWait as exc:
            return True, f"Credentials work; {exc.operation} is rate limited for {exc.wait_seconds:.0f} s."
        except SpApiForbidden as exc:
            return False, f"Token works but {operation} was refused ({exc.reason}): {exc}"
        except SpApiError as exc:
            return False, f"Token works but the {operation} probe failed: {exc}"
        except requests.RequestException as exc:
            return False, f"SP-API endpoint {cfg.endpoint} unreachable: {type(exc).__name__}"
        return False, f"{operation} of the probe id {PROBE_ORDER_ID} answered 200 at {where}: is this SP-API?"
