"""Typed SP-API errors raised by :class:`~selling_partner.hooks.sp_api.SellingPartnerHook`.

Every error names the operation, Amazon's request id (``x-amzn-RequestId``) and what to do, so a log
line is enough for on-call. Messages never contain tokens, secrets or buyer data: they are built from
Amazon's error ``code``/``message``/``details`` only (which describe the request, not the buyer).
"""

from __future__ import annotations


class SpApiError(Exception):
    """Base class: an SP-API or LWA call failed.

    :param message: what went wrong (one sentence, no secrets, no PII)
    :param operation: SP-API operation name, e.g. ``searchOrders``
    :param status: HTTP status, ``None`` when no response arrived
    :param request_id: ``x-amzn-RequestId`` of the failed response, if any
    :param code: Amazon's error code (``InvalidInput``, ``QuotaExceeded``, ``invalid_grant`` ...)
    :param hint: what the user should do about it
    """

    default_hint = "Check the request and Amazon's error details; contact SP-API support with the request id."

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.request_id = request_id
        self.code = code
        self.hint = hint or self.default_hint
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.operation or "SP-API call"
        parts = [f"{where} failed"]
        if self.status is not None:
            parts.append(f"(HTTP {self.status}{', ' + self.code if self.code else ''})")
        elif self.code:
            parts.append(f"({self.code})")
        text = " ".join(parts) + f": {self.detail}"
        text += f" [x-amzn-RequestId: {self.request_id or 'none'}]"
        return f"{text} What to do: {self.hint}"

    def __reduce__(self):  # keep errors picklable across processes (Airflow, multiprocessing)
        return (
            _rebuild,
            (
                type(self),
                self.detail,
                {
                    "operation": self.operation,
                    "status": self.status,
                    "request_id": self.request_id,
                    "code": self.code,
                    "hint": self.hint,
                },
                self._extra_state(),
            ),
        )

    def _extra_state(self) -> dict:
        return {}


def _rebuild(cls: type[SpApiError], detail: str, kwargs: dict, extra: dict) -> SpApiError:
    err = cls.__new__(cls)
    for key, value in extra.items():
        setattr(err, key, value)
    SpApiError.__init__(err, detail, **kwargs)
    return err


class SpApiThrottled(SpApiError):
    """429 QuotaExceeded that persisted through the hook's short retries."""

    default_hint = (
        "The rate limit was hit repeatedly. Lower concurrency, use a shared rate_limit_backend "
        "(postgres/redis) for all workers, or defer and retry later."
    )


class SpApiForbidden(SpApiError):
    """403. ``reason`` is ``"token"`` (expired/invalid access token) or ``"role"`` (missing role/grant)."""

    def __init__(self, message: str, *, reason: str = "role", **kwargs) -> None:
        self.reason = reason
        if kwargs.get("hint") is None:
            kwargs["hint"] = (
                "The access token was rejected even after a refresh; check the LWA credentials and "
                "the endpoint/lwa_endpoint pair of the connection."
                if reason == "token"
                else "The application lacks the role for this data (e.g. Direct-to-Consumer Delivery for "
                "addresses, Tax Invoicing for buyer info). Add the role in Seller Central / Solution "
                "Provider Portal and re-authorize the app, or switch include_pii off."
            )
        super().__init__(message, **kwargs)

    def _extra_state(self) -> dict:
        return {"reason": self.reason}


class SpApiNotFound(SpApiError):
    """404: the resource does not exist for this seller."""

    default_hint = "Check the id and that it belongs to this seller account and region."


class SpApiInvalidInput(SpApiError):
    """400: Amazon rejected the request parameters."""

    default_hint = "Fix the request parameters named in Amazon's message; the call is not retried."


class SpApiPageTokenExpired(SpApiInvalidInput):
    """A pagination token was rejected (expired after 24 h, or sent with different filters)."""

    default_hint = "Restart the window from its last committed point without the page token."


class SpApiServerError(SpApiError):
    """5xx, timeout or dropped connection that persisted through the hook's retries."""

    default_hint = "Amazon (or the network) is failing; the task retry will resume. Check SP-API status."


class SpApiAuthError(SpApiError):
    """LWA refused the credentials (invalid_grant, invalid_client, unauthorized_client ...)."""

    default_hint = (
        "Re-authorize the application for this seller to get a new refresh token (invalid_grant), or "
        "rotate/copy the LWA client secret into the connection (invalid_client)."
    )


class SpApiConfigError(SpApiError):
    """The connection or a call argument is invalid; nothing was sent."""

    default_hint = "Fix the connection extras or the argument named in the message."


class SpApiRateLimitWait(SpApiError):
    """The rate limiter says the next token is further away than the caller is willing to wait.

    Raised *before* sending anything; an operator should defer for ``wait_seconds``.
    """

    default_hint = "Defer the task for wait_seconds (or raise max_wait) instead of holding a worker slot."

    def __init__(self, operation: str, wait_seconds: float, **kwargs) -> None:
        self.wait_seconds = float(wait_seconds)
        kwargs.setdefault("operation", operation)
        super().__init__(f"next {operation} token in {self.wait_seconds:.1f} s", **kwargs)

    def __reduce__(self):
        return (type(self), (self.operation, self.wait_seconds))


__all__ = [
    "SpApiAuthError",
    "SpApiConfigError",
    "SpApiError",
    "SpApiForbidden",
    "SpApiInvalidInput",
    "SpApiNotFound",
    "SpApiPageTokenExpired",
    "SpApiRateLimitWait",
    "SpApiServerError",
    "SpApiThrottled",
]
