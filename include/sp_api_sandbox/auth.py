"""Login with Amazon (LWA) access tokens and Restricted Data Tokens, as the sandbox issues them.

Tokens are random strings remembered in memory with their kind and expiry; nothing about them is
ever logged. Lifetimes are Amazon's (3600 s) divided by the time scale.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.sandbox"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_REFRESH_TOKEN = "Atzr|sandbox-refresh-token"
NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"
GRANTLESS_SCOPES = frozenset({NOTIFICATIONS_SCOPE, "sellingpartnerapi::migration"})
TOKEN_LIFETIME = 3600.0

TokenKind = Literal["seller", "grantless", "rdt"]

#: Restricted resources an RDT may name; ``{orderId}`` may be a real id or the literal placeholder.
RDT_PATH_TEMPLATES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"^/orders/v0/orders$",
        r"^/orders/v0/orders/(\d{3}-\d{7}-\d{7}|\{orderId\})$",
        r"^/orders/v0/orders/(\d{3}-\d{7}-\d{7}|\{orderId\})/buyerInfo$",
        r"^/orders/v0/orders/(\d{3}-\d{7}-\d{7}|\{orderId\})/address$",
        r"^/orders/v0/orders/(\d{3}-\d{7}-\d{7}|\{orderId\})/orderItems$",
        r"^/orders/v0/orders/(\d{3}-\d{7}-\d{7}|\{orderId\})/orderItems/buyerInfo$",
    )
)
RDT_DATA_ELEMENTS = frozenset({"buyerInfo", "shippingAddress", "buyerTaxInformation"})


class LwaError(Exception):
    """An LWA failure rendered as ``{"error", "error_description"}`` with ``status``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


class TokenRejected(Exception):
    """The presented access token is missing, unknown or expired (403, token kind)."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


@dataclass(frozen=True)
class Credentials:
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    refresh_token: str = DEFAULT_REFRESH_TOKEN


@dataclass
class IssuedToken:
    kind: TokenKind
    expires_at: float
    scope: str | None = None
    resources: tuple[tuple[str, str, frozenset[str]], ...] = ()  # (method, path, dataElements)

    def covers(self, method: str, path: str) -> frozenset[str] | None:
        """The data elements an RDT grants for ``method path`` (None if it does not cover it)."""
        for res_method, res_path, elements in self.resources:
            if res_method != method:
                continue
            if res_path == path or _placeholder_match(res_path, path):
                return elements
        return None


def _placeholder_match(template: str, path: str) -> bool:
    if "{orderId}" not in template:
        return False
    pattern = "^" + re.escape(template).replace(re.escape("{orderId}"), r"\d{3}-\d{7}-\d{7}") + "$"
    return re.match(pattern, path) is not None


@dataclass
class TokenStore:
    """Issues and checks LWA access tokens and RDTs."""

    credentials: Credentials = field(default_factory=Credentials)
    time_scale: float = 1.0
    clock: Callable[[], float] = time.time
    _tokens: dict[str, IssuedToken] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def lifetime(self) -> float:
        return TOKEN_LIFETIME / self.time_scale

    def expires_in(self) -> int:
        """``expires_in`` as LWA reports it: whole seconds, at least 1."""
        return max(1, int(self.lifetime))

    def _issue(self, prefix: str, token: IssuedToken) -> str:
        value = prefix + secrets.token_urlsafe(48)
        with self._lock:
            now = self.clock()
            self._tokens = {k: v for k, v in self._tokens.items() if v.expires_at > now - 3 * self.lifetime}
            self._tokens[value] = token
        return value

    def exchange(self, form: dict[str, str]) -> dict[str, object]:
        """Handle an LWA ``POST /auth/o2/token`` form; raise ``LwaError`` on any failure."""
        grant = form.get("grant_type", "")
        if not grant:
            raise LwaError(400, "invalid_request", "The request is missing a required parameter : grant_type")
        if grant not in ("refresh_token", "client_credentials"):
            raise LwaError(
                400, "unsupported_grant_type", f"The authorization grant type {grant} is not supported"
            )
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if not client_id or not client_secret:
            raise LwaError(400, "invalid_request", "The request is missing client_id or client_secret")
        if not (
            secrets.compare_digest(client_id, self.credentials.client_id)
            and secrets.compare_digest(client_secret, self.credentials.client_secret)
        ):
            raise LwaError(401, "invalid_client", "Client authentication failed")
        expires_at = self.clock() + self.lifetime
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if not refresh:
                raise LwaError(
                    400, "invalid_request", "The request is missing a required parameter : refresh_token"
                )
            if not secrets.compare_digest(refresh, self.credentials.refresh_token):
                raise LwaError(
                    400,
                    "invalid_grant",
                    "The request has an invalid grant parameter : refresh_token. "
                    "User may have revoked or didn't grant the permission.",
                )
            token = self._issue("Atza|", IssuedToken("seller", expires_at))
            return {
                "access_token": token,
                "refresh_token": self.credentials.refresh_token,
                "token_type": "bearer",
                "expires_in": self.expires_in(),
            }
        scope = form.get("scope", "")
        if scope not in GRANTLESS_SCOPES:
            raise LwaError(400, "invalid_scope", "The request has an invalid parameter : scope")
        token = self._issue("Atza|", IssuedToken("grantless", expires_at, scope=scope))
        return {
            "access_token": token,
            "scope": scope,
            "token_type": "bearer",
            "expires_in": self.expires_in(),
        }

    def issue_rdt(self, resources: Iterable[tuple[str, str, frozenset[str]]]) -> dict[str, object]:
        """A Restricted Data Token for already validated resources."""
        expires_at = self.clock() + self.lifetime
        token = self._issue("Atz.sprdt|", IssuedToken("rdt", expires_at, resources=tuple(resources)))
        return {"restrictedDataToken": token, "expiresIn": self.expires_in()}

    def check(self, value: str | None) -> IssuedToken:
        """The token behind an ``x-amz-access-token`` header, or ``TokenRejected``."""
        if not value:
            raise TokenRejected("Access token is missing in the request header.")
        with self._lock:
            token = self._tokens.get(value)
        if token is None:
            raise TokenRejected("The access token you provided is revoked, malformed or invalid.")
        if token.expires_at <= self.clock():
            raise TokenRejected("The access token you provided has expired.")
        return token

    def expire_all(self) -> int:
        """Expire every token issued so far (as if their lifetime had passed); returns the count."""
        with self._lock:
            now = self.clock()
            for token in self._tokens.values():
                token.expires_at = min(token.expires_at, now)
            return len(self._tokens)


def validate_rdt_request(body: object) -> list[tuple[str, str, frozenset[str]]]:
    """Validate a createRestrictedDataToken body; raise ``ValueError`` naming the problem."""
    if not isinstance(body, dict):
        raise ValueError("The request body must be a JSON object.")
    resources = body.get("restrictedResources")
    if not isinstance(resources, list) or not resources:
        raise ValueError("restrictedResources is required and must be a non-empty list.")
    if len(resources) > 50:
        raise ValueError("restrictedResources accepts at most 50 resources.")
    target = body.get("targetApplication")
    if target is not None and not isinstance(target, str):
        raise ValueError("targetApplication must be a string.")
    out: list[tuple[str, str, frozenset[str]]] = []
    for res in resources:
        if not isinstance(res, dict):
            raise ValueError("Each restricted resource must be an object.")
        method, path, elements = res.get("method"), res.get("path"), res.get("dataElements", [])
        if method != "GET":
            raise ValueError(
                f"Unsupported method {method!r} for a restricted resource; only GET is supported."
            )
        if not isinstance(path, str) or not any(t.match(path) for t in RDT_PATH_TEMPLATES):
            raise ValueError(f"The path {path!r} is not a restricted resource of this API.")
        if not isinstance(elements, list) or not all(isinstance(e, str) for e in elements):
            raise ValueError("dataElements must be a list of strings.")
        unknown = set(elements) - RDT_DATA_ELEMENTS
        if unknown:
            raise ValueError(f"Unknown dataElements: {sorted(unknown)}.")
        out.append((method, path, frozenset(elements)))
    return out
