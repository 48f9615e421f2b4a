"""Opaque, signed pagination tokens bound to their filters.

A token is ``base64url(json).base64url(hmac)``; the JSON carries a hash of the filters, the
resume position (a keyset on the sort key, so it survives orders being added or changed), the
issue time and the invalidation generation. The server refuses a token whose filters differ, that
has outlived its TTL, or that was issued before the last ``/_sandbox/expire-page-tokens``.
``keyset_page`` cuts one page of orders after such a position.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sp_api_sandbox.validation import format_time, parse_time


class PageTokenError(ValueError):
    """A token that is malformed, tampered with, bound to other filters, or expired."""


def filters_hash(filters: Mapping[str, Any]) -> str:
    """A stable hash of a filter set (values already normalised to JSON types)."""
    blob = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _b64(data: bytes, standard: bool) -> str:
    if standard:  # like v0's NextToken: '+', '/' and '=' that a client must URL-encode
        return base64.b64encode(data).decode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if any(c in text for c in "+/="):
        return base64.b64decode(text, validate=True)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PageTokenCodec:
    """Signs and checks page tokens; ``ttl`` in seconds of real time."""

    ttl: float
    clock: Callable[[], float] = time.time
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    generation: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def encode(
        self,
        kind: str,
        fhash: str,
        position: Any,
        extra: Mapping[str, Any] | None = None,
        *,
        standard_base64: bool = False,
    ) -> str:
        """A token for ``kind``; ``standard_base64`` gives v0-style tokens with ``+``, ``/`` and ``=``."""
        body = {"k": kind, "f": fhash, "p": position, "t": round(self.clock(), 3), "g": self.generation}
        if extra:
            body["x"] = dict(extra)
        raw = json.dumps(body, separators=(",", ":")).encode()
        sig = hmac.new(self.key, raw, hashlib.sha256).digest()[:16]
        return f"{_b64(raw, standard_base64)}.{_b64(sig, standard_base64)}"

    def decode(self, token: str, kind: str) -> dict[str, Any]:
        """The token's body; raises ``PageTokenError`` with a message fit for a 400 response."""
        try:
            raw_part, sig_part = token.split(".")
            raw, sig = _unb64(raw_part), _unb64(sig_part)
        except (ValueError, binascii.Error) as exc:
            raise PageTokenError("The pagination token is malformed.") from exc
        if not hmac.compare_digest(sig, hmac.new(self.key, raw, hashlib.sha256).digest()[:16]):
            raise PageTokenError("The pagination token is malformed.")
        body = json.loads(raw)
        if body.get("k") != kind:
            raise PageTokenError("The pagination token does not belong to this operation.")
        if body.get("g") != self.generation or self.clock() - float(body["t"]) > self.ttl:
            raise PageTokenError("The pagination token has expired. Start the search again without it.")
        return body

    def check_filters(self, body: Mapping[str, Any], fhash: str) -> None:
        if body.get("f") != fhash:
            raise PageTokenError(
                "The pagination token was issued for different filters; send the same parameters as the "
                "request that returned it (only maxResultsPerPage and includedData may change)."
            )

    def expire_all(self) -> None:
        with self._lock:
            self.generation += 1


def keyset_page(
    orders: Sequence[Any], position: Sequence[str] | None, size: int
) -> tuple[list[Any], list[str] | None]:
    """One page of ``orders`` after ``position`` in (createdTime, orderId) order, and the position to
    resume from if more remain (what a token carries: it survives orders being added or changed)."""
    ordered = sorted(orders, key=lambda o: (o.created_time, o.order_id))
    if position is not None:
        after = (parse_time("position", position[0]), position[1])
        ordered = [o for o in ordered if (o.created_time, o.order_id) > after]
    page = ordered[:size]
    if len(ordered) > size:
        last = page[-1]
        return page, [format_time(last.created_time), last.order_id]
    return page, None
