"""Login with Amazon (LWA) access tokens and v0 Restricted Data Tokens, cached per credential.

* ``refresh_token`` grant for seller calls, ``client_credentials`` (scope
  ``sellingpartnerapi::notifications``) for grantless notification calls.
* One process-wide cache, keyed by a hash of (token endpoint, client id, secret, refresh token or
  scope), safe across threads: a token is reused until ``REFRESH_MARGIN`` before it expires (shorter
  for short-lived tokens) and refreshed by exactly one thread at a time.
* Tokens and secrets are registered with Airflow's secret masker and never logged.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import requests

from selling_partner.hooks.errors import SpApiAuthError, SpApiServerError

log = logging.getLogger(__name__)

NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"
#: Refresh a cached token this many seconds before it expires (Amazon's own clients use 60 s).
REFRESH_MARGIN = 60.0


def mask(secret: str | None, name: str | None = None) -> None:
    """Register ``secret`` with Airflow's secret masker (no-op outside Airflow or for empty values)."""
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDK
        try:
            from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
        except ImportError:
            return
    try:
        mask_secret(secret, name)
    except Exception:  # pragma: no cover - masking must never break a call
        log.debug("could not register a secret with the masker")


def expiry_margin(expires_in: float) -> float:
    """Seconds before expiry to refresh: 60 s, or a tenth of the lifetime for short-lived tokens."""
    return min(REFRESH_MARGIN, max(0.0, expires_in) / 10.0)


@dataclass
class CachedToken:
    """An access token and the monotonic time after which it must not be used."""

    value: str
    refresh_after: float


class TokenCache:
    """Process-wide, thread-safe cache of tokens by credential key, holding at most ``max_entries``.

    A full cache first forgets expired tokens, then the least recently used ones (with their locks), so a
    cache of per-order RDTs cannot grow without bound.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max(1, int(max_entries))
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, CachedToken] = OrderedDict()
        self._key_locks: dict[str, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def get(self, key: str, fetch: Callable[[], tuple[str, float]], *, force: bool = False) -> str:
        """Return a valid token for ``key``; ``fetch() -> (token, expires_in)`` runs when needed.

        ``force`` drops the cached token first (after Amazon rejected it), unless another thread has
        already replaced it.
        """
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
            stale = self._tokens.get(key) if force else None
        with key_lock:
            with self._lock:
                cached = self._tokens.get(key)
                if cached is not None:
                    self._tokens.move_to_end(key)
            if force and cached is not None and cached is stale:
                cached = None
            if cached is not None and time.monotonic() < cached.refresh_after:
                return cached.value
            token, expires_in = fetch()
            mask(token)
            entry = CachedToken(token, time.monotonic() + expires_in - expiry_margin(expires_in))
            with self._lock:
                self._tokens[key] = entry
                self._tokens.move_to_end(key)
                self._evict()
            return token

    def _evict(self) -> None:
        """Keep at most ``max_entries`` tokens (expired ones go first); drop locks of forgotten keys."""
        if len(self._tokens) <= self.max_entries:
            return
        now = time.monotonic()
        for key in [k for k, t in self._tokens.items() if t.refresh_after <= now]:
            del self._tokens[key]
        while len(self._tokens) > self.max_entries:
            self._tokens.popitem(last=False)
        for key in [k for k in self._key_locks if k not in self._tokens]:
            lock = self._key_locks[key]
            if not lock.locked():
                del self._key_locks[key]

    def clear(self) -> None:
        """Drop every cached token (tests)."""
        with self._lock:
            self._tokens.clear()
            self._key_locks.clear()


#: Shared by every hook of the process.
ACCESS_TOKENS = TokenCache()
#: v0 RDTs: one per path template, or one per order where Amazon refuses templates (bounded).
RESTRICTED_DATA_TOKENS = TokenCache(max_entries=256)


def credential_key(*parts: str | None) -> str:
    """A cache key that identifies a credential without holding it in clear."""
    digest = hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()
    return digest[:32]


def parse_lwa_error(response: requests.Response) -> tuple[str, str]:
    """``(error, error_description)`` of an LWA error response (robust to non-JSON bodies)."""
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}", (response.text or "")[:200]
    if not isinstance(body, dict):
        return f"http_{response.status_code}", ""
    return str(body.get("error") or f"http_{response.status_code}"), str(body.get("error_description") or "")


class LwaClient:
    """Exchanges LWA credentials for access tokens at ``token_endpoint``.

    :param session: the hook's pooled ``requests.Session``
    :param timeout: (connect, read) seconds
    """

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        client_secret: str,
        refresh_token: str | None,
        session: requests.Session,
        timeout: tuple[float, float],
    ) -> None:
        self.token_endpoint = token_endpoint
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.session = session
        self.timeout = timeout
        mask(client_secret, "client_secret")
        mask(refresh_token, "refresh_token")

    def _key(self, scope: str | None) -> str:
        grant = f"scope={scope}" if scope else f"refresh={self.refresh_token}"
        return credential_key(self.token_endpoint, self.client_id, self.client_secret, grant)

    def access_token(self, scope: str | None = None, *, force: bool = False) -> str:
        """A cached access token: seller token (``scope=None``) or grantless for ``scope``."""
        return ACCESS_TOKENS.get(self._key(scope), lambda: self._exchange(scope), force=force)

    def _exchange(self, scope: str | None) -> tuple[str, float]:
        operation = "LWA client_credentials" if scope else "LWA refresh_token"
        if scope:
            data = {
                "grant_type": "client_credentials",
                "scope": scope,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        else:
            if not self.refresh_token:
                raise SpApiAuthError(
                    "the connection has no refresh_token",
                    operation=operation,
                    hint="Authorize the app for the seller; put the refresh token in the connection extra.",
                )
            data = {
                "grant_type": "refresh_token",
                "refresh_token": self.refresh_token,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        last_error: Exception | None = None
        for attempt in range(4):
            try:
                response = self.session.post(self.token_endpoint, data=data, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_error = exc
                time.sleep(min(8.0, 0.5 * 2**attempt))
                continue
            if response.status_code == 200:
                body = response.json()
                token = body.get("access_token")
                if not token:
                    raise SpApiAuthError("LWA answered 200 without access_token", operation=operation)
                mask(token)
                return token, float(body.get("expires_in") or 3600)
            error, description = parse_lwa_error(response)
            request_id = response.headers.get("x-amzn-RequestId")
            if response.status_code >= 500 or error in ("server_error", "temporarily_unavailable"):
                last_error = SpApiServerError(
                    f"LWA {error}", operation=operation, status=response.status_code, request_id=request_id
                )
                time.sleep(min(8.0, 0.5 * 2**attempt))
                continue
            hint = None
            if error == "invalid_grant":
                hint = (
                    "The refresh token was revoked, expired or belongs to another app: re-authorize the "
                    "application for this seller and store the new refresh token in the connection."
                )
            elif error in ("invalid_client", "unauthorized_client"):
                hint = (
                    "The LWA client id/secret were rejected: rotate the client secret in the Solution "
                    "Provider Portal (secrets expire every 180 days) and update the connection password."
                )
            raise SpApiAuthError(
                f"LWA refused the credentials: {error} ({description[:200]})",
                operation=operation,
                status=response.status_code,
                request_id=request_id,
                code=error,
                hint=hint,
            )
        if isinstance(last_error, SpApiServerError):
            raise last_error
        raise SpApiServerError(
            f"LWA token endpoint unreachable: {type(last_error).__name__}",
            operation=operation,
            hint="Check network access to the LWA endpoint (lwa_endpoint) and retry.",
        )
