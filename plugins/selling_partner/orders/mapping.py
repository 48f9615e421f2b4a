"""Map raw order records to canonical ones, record by record: what cannot be mapped is rejected, not fatal.

A page of orders is mapped one record at a time. A record the adapters cannot map (an unknown status,
a missing required field, an id that fails its format or length check) becomes a
:class:`RejectedRecord` with a one-line reason and the raw record stripped of buyer PII, so the caller
can quarantine it and load the rest of the page (pure functions, no I/O).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import InvalidOperation
from typing import Any

from selling_partner.orders.canonical import CanonicalOrder, validate_order
from selling_partner.validation import parse_amazon_time

#: Keys holding buyer PII in raw v2026 (``buyer``, ``recipient``) and v0 (``BuyerInfo``,
#: ``ShippingAddress``, ...) records: never kept in a quarantine row.
PII_KEYS = frozenset(
    {"buyer", "recipient", "BuyerInfo", "ShippingAddress", "BuyerEmail", "BuyerName", "BuyerTaxInfo"}
)
#: Errors that mean "this record cannot be mapped" (adapters raise ValueError; the rest are malformed input).
MAPPING_ERRORS = (ValueError, KeyError, TypeError, AttributeError, InvalidOperation)
MAX_REASON = 300


@dataclass(frozen=True)
class RejectedRecord:
    """A raw order record that could not be mapped, and why (no PII in ``reason`` or ``raw``)."""

    order_id: str | None
    reason: str
    raw: dict[str, Any]

    @property
    def raw_json(self) -> str:
        """The redacted record as compact, key-sorted JSON."""
        return json.dumps(self.raw, sort_keys=True, separators=(",", ":"), default=str)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw_json.encode("utf-8")).hexdigest()

    @property
    def last_updated_time(self) -> datetime | None:
        """The record's ``lastUpdatedTime`` (v0: ``LastUpdateDate``) when it can be read, else ``None``."""
        value = self.raw.get("lastUpdatedTime") or self.raw.get("LastUpdateDate")
        try:
            return parse_amazon_time(value) if isinstance(value, str) else None
        except ValueError:
            return None


class UnmappableRecord(ValueError):
    """Raised for a single record (e.g. one ``getOrder``) that cannot be mapped; carries the rejection."""

    def __init__(self, rejected: RejectedRecord) -> None:
        self.rejected = rejected
        super().__init__(f"order {rejected.order_id or '?'} cannot be mapped: {rejected.reason}")


def redact(raw: Any) -> Any:
    """``raw`` without buyer PII (recursively drops :data:`PII_KEYS`)."""
    if isinstance(raw, dict):
        return {k: redact(v) for k, v in raw.items() if k not in PII_KEYS}
    if isinstance(raw, list):
        return [redact(v) for v in raw]
    return raw


def _order_id_of(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    value = raw.get("orderId") or raw.get("AmazonOrderId")
    return value if isinstance(value, str) and value else None


def reason_of(exc: BaseException) -> str:
    """One line naming the problem (the exception's first line, class name for bare ones)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, KeyError):
        text = f"required field {text} is missing"
    reason = text or type(exc).__name__
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def reject(raw: Any, exc: BaseException) -> RejectedRecord:
    """The rejection of ``raw`` for ``exc``."""
    redacted = redact(raw) if isinstance(raw, dict) else {"value": repr(raw)[:1000]}
    return RejectedRecord(_order_id_of(raw), reason_of(exc), redacted)


def map_one(raw: Any, normalize: Callable[[dict[str, Any]], CanonicalOrder]) -> CanonicalOrder:
    """``normalize(raw)`` checked by :func:`validate_order`; :class:`UnmappableRecord` when it cannot be."""
    try:
        if not isinstance(raw, dict):
            raise TypeError(f"an order record must be a JSON object, got {type(raw).__name__}")
        return validate_order(normalize(raw))
    except MAPPING_ERRORS as exc:
        raise UnmappableRecord(reject(raw, exc)) from exc


def map_records(
    raws: Iterable[Any], normalize: Callable[[dict[str, Any]], CanonicalOrder]
) -> tuple[list[CanonicalOrder], list[RejectedRecord]]:
    """Map every record of a page; returns (canonical orders, rejected records), both in page order."""
    orders: list[CanonicalOrder] = []
    rejected: list[RejectedRecord] = []
    for raw in raws:
        try:
            orders.append(map_one(raw, normalize))
        except UnmappableRecord as exc:
            rejected.append(exc.rejected)
    return orders, rejected
