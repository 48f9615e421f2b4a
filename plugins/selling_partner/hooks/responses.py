"""Pure helpers that read SP-API responses: error bodies, rate-limit headers, typed errors, retry policy."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import requests

from selling_partner.hooks.errors import (
    SpApiError,
    SpApiForbidden,
    SpApiInvalidInput,
    SpApiNotFound,
    SpApiPageTokenExpired,
    SpApiServerError,
    SpApiThrottled,
)

REQUEST_ID_HEADER = "x-amzn-RequestId"
RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"
#: Words in a 403 body that mean the access token (not a role) is the problem.
_TOKEN_WORDS = ("access token", "token you provided", "expired", "revoked", "malformed", "invalid token")
_PAGE_TOKEN_WORDS = ("nexttoken", "paginationtoken", "pagetoken")


def parse_errors(body: Any) -> tuple[str | None, str, str]:
    """``(code, message, details)`` from an SP-API error body ``{"errors":[{code,message,details}]}``."""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            first = errors[0]
            return (
                str(first.get("code")) if first.get("code") is not None else None,
                str(first.get("message") or ""),
                str(first.get("details") or ""),
            )
        if "message" in body or "Message" in body:
            return None, str(body.get("message") or body.get("Message")), ""
    return None, "", ""


def response_json(response: requests.Response) -> Any:
    """The JSON body, or ``None`` when the body is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def rate_limit_from_headers(headers: Mapping[str, str]) -> float | None:
    """The applied rate (requests/second) from ``x-amzn-RateLimit-Limit``, or ``None``."""
    value = headers.get(RATE_LIMIT_HEADER)
    if value is None:
        return None
    try:
        rate = float(str(value).strip())
    except ValueError:
        return None
    return rate if rate > 0 else None


def is_token_problem(code: str | None, message: str, details: str) -> bool:
    """A 403 caused by the access token (expired/invalid) rather than a missing role."""
    text = f"{message} {details}".lower()
    if code and code.lower() in ("invalidtoken", "expiredtoken", "tokenexpired", "invalid_token"):
        return True
    return any(word in text for word in _TOKEN_WORDS)


def is_page_token_rejection(code: str | None, message: str, details: str) -> bool:
    """A 400 that rejects the pagination token (expired, unknown, or sent with other filters)."""
    text = f"{message} {details}".lower()
    compact = text.replace(" ", "").replace("_", "")
    if any(word in compact for word in _PAGE_TOKEN_WORDS):
        return True
    return "token" in text and any(word in text for word in ("expired", "invalid", "unknown", "mismatch"))


def error_for_response(
    operation: str, response: requests.Response, *, sent_page_token: bool = False
) -> SpApiError:
    """Build the typed error for a non-2xx SP-API response (message from Amazon's body, no PII)."""
    status = response.status_code
    request_id = response.headers.get(REQUEST_ID_HEADER)
    code, message, details = parse_errors(response_json(response))
    text = "; ".join(part for part in (message, details) if part)[:300] or response.reason or "no details"
    kwargs = {"operation": operation, "status": status, "request_id": request_id, "code": code}
    if status == 400 or status == 422:
        if sent_page_token and is_page_token_rejection(code, message, details):
            return SpApiPageTokenExpired(text, **kwargs)
        return SpApiInvalidInput(text, **kwargs)
    if status == 401 or status == 403:
        reason = "token" if status == 401 or is_token_problem(code, message, details) else "role"
        return SpApiForbidden(text, reason=reason, **kwargs)
    if status == 404:
        return SpApiNotFound(text, **kwargs)
    if status == 429:
        return SpApiThrottled(text, **kwargs)
    if status >= 500:
        return SpApiServerError(text, **kwargs)
    return SpApiError(text, **kwargs)


def is_retryable(exc: BaseException) -> bool:
    """Retry 5xx, timeouts, dropped connections and 429; never 400/404/403 or config errors."""
    if isinstance(exc, SpApiServerError | SpApiThrottled):
        return True
    return isinstance(
        exc,
        requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError,
    )


def backoff_seconds(
    attempt: int, *, initial: float = 0.5, maximum: float = 30.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter for retry ``attempt`` (1-based): U(0, min(max, initial*2^(n-1)))
    plus a floor of ``initial/2`` so retries never hammer."""
    rng = rng or random
    ceiling = min(maximum, initial * 2 ** max(0, attempt - 1))
    return initial / 2 + rng.uniform(0, ceiling)
