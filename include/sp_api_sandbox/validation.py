"""Pure request validation for the sandbox's SP-API operations.

Everything here turns query parameters into normalised filters or raises ``InvalidInput`` with the
message Amazon would give; no I/O and no world access, so it is easy to test and to read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sp_api_sandbox.world_data import V0_TO_V2026

ORDER_ID_RE = re.compile(r"^\d{3}-\d{7}-\d{7}$")
RESOURCE_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

V0_ORDER_STATUSES = V0_TO_V2026
V0_CHANNELS = {"AFN": "AMAZON", "MFN": "MERCHANT"}
V0_PAYMENT_METHODS = ("COD", "CVS", "Other")
V0_EASY_SHIP = (
    "PendingSchedule",
    "PendingPickUp",
    "PendingDropOff",
    "LabelCanceled",
    "PickedUp",
    "DroppedOff",
    "AtOriginFC",
    "AtDestinationFC",
    "Delivered",
    "RejectedByBuyer",
    "Undeliverable",
    "ReturningToSeller",
    "ReturnedToSeller",
    "Lost",
    "OutForDelivery",
    "Damaged",
)
V0_INVOICE_STATUSES = ("NotRequired", "NotFound", "Processing", "Errored", "Accepted")


class InvalidInput(ValueError):
    """A request Amazon would answer with 400 InvalidInput."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def parse_time(name: str, value: str) -> datetime:
    """An ISO-8601 date-time as an aware UTC datetime (naive means UTC)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"Invalid {name}: {value!r} is not an ISO-8601 date-time.", name) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """ISO-8601 UTC with ``Z``; fractions only when present."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def list_param(values: Iterable[str]) -> list[str]:
    """A list parameter sent comma-separated, repeated, or both."""
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def check_enum(name: str, values: Sequence[str], allowed: Iterable[str]) -> list[str]:
    allowed = tuple(allowed)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise InvalidInput(f"Invalid {name}: {', '.join(bad)}. Allowed values: {', '.join(allowed)}.", name)
    return sorted(set(values))


def check_order_id(order_id: str) -> str:
    if not ORDER_ID_RE.match(order_id):
        raise InvalidInput(
            f"Invalid orderId {order_id[:40]!r}: expected the form 123-1234567-1234567.", "orderId"
        )
    return order_id


def check_resource_id(name: str, value: str) -> str:
    if not RESOURCE_ID_RE.match(value):
        raise InvalidInput(f"Invalid {name}.", name)
    return value


def parse_page_size(name: str, raw: str | None, default: int = 100) -> int:
    if raw is None or raw == "":
        return default
    try:
        size = int(raw)
    except ValueError as exc:
        raise InvalidInput(f"Invalid {name}: {raw[:20]!r} is not an integer.", name) from exc
    if not 1 <= size <= 100:
        raise InvalidInput(f"Invalid {name}: {size}. It must be between 1 and 100.", name)
    return size


def check_marketplaces(name: str, ids: list[str], known: Sequence[str], *, required: bool) -> list[str]:
    if not ids:
        if required:
            raise InvalidInput(f"{name} is required.", name)
        return sorted(known)
    if len(ids) > 50:
        raise InvalidInput(f"Too many {name}: at most 50 are allowed.", name)
    unknown = [m for m in ids if m not in known]
    if unknown:
        raise InvalidInput(
            f"Invalid {name}: {', '.join(unknown[:5])} is not a marketplace this seller participates in.",
            name,
        )
    return sorted(set(ids))


@dataclass(frozen=True)
class DateWindow:
    """The date filter of a search: which field, its lower bound, and the effective upper bound."""

    mode: str  # "created" | "lastUpdated"
    after: datetime
    before: datetime  # effective: the given one, or now - lag
    before_given: bool

    def search_kwargs(self) -> dict[str, datetime]:
        if self.mode == "created":
            return {"created_after": self.after, "created_before": self.before}
        return {"last_updated_after": self.after, "last_updated_before": self.before}

    def echo(self) -> tuple[str, str]:
        """The response field and value echoing the effective upper bound."""
        field = "createdBefore" if self.mode == "created" else "lastUpdatedBefore"
        return field, format_time(self.before)


def parse_window(
    params: dict[str, str | None],
    now: datetime,
    min_before_lag: float,
    *,
    names: tuple[str, str, str, str] = (
        "createdAfter",
        "createdBefore",
        "lastUpdatedAfter",
        "lastUpdatedBefore",
    ),
    pinned_before: datetime | None = None,
) -> DateWindow:
    """Apply Amazon's date rules: one ``...After``, no mixing, ``Before >= After``, ``Before <= now - lag``.

    ``pinned_before`` is the bound a page token carries; later pages reuse it instead of the clock.
    """
    ca_name, cb_name, la_name, lb_name = names
    ca, cb, la, lb = (params.get(n) for n in names)
    if ca and la:
        raise InvalidInput(f"Only one of {ca_name} and {la_name} may be specified.", f"{ca_name}, {la_name}")
    if not ca and not la:
        raise InvalidInput(f"Exactly one of {ca_name} or {la_name} is required.", f"{ca_name}, {la_name}")
    if ca and lb:
        raise InvalidInput(f"{lb_name} cannot be used with {ca_name}.", lb_name)
    if la and cb:
        raise InvalidInput(f"{cb_name} cannot be used with {la_name}.", cb_name)
    mode = "created" if ca else "lastUpdated"
    after_name, before_name = (ca_name, cb_name) if ca else (la_name, lb_name)
    after = parse_time(after_name, ca or la or "")
    latest = now - timedelta(seconds=min_before_lag)
    raw_before = cb if ca else lb
    if raw_before:
        before = parse_time(before_name, raw_before)
        if pinned_before is not None:
            if before != pinned_before:
                raise InvalidInput(
                    f"{before_name} differs from the request that returned the pagination token.", before_name
                )
        elif before > latest:
            raise InvalidInput(
                f"{before_name} must be at least {min_before_lag:g} seconds before the time of the request.",
                before_name,
            )
        given = True
    else:
        before = pinned_before if pinned_before is not None else latest.replace(microsecond=0)
        given = False
    if after > latest and pinned_before is None:
        raise InvalidInput(
            f"{after_name} must be at least {min_before_lag:g} seconds before the time of the request.",
            after_name,
        )
    if before < after:
        raise InvalidInput(f"{before_name} must be later than or equal to {after_name}.", before_name)
    return DateWindow(mode=mode, after=after, before=before, before_given=given)


def window_filters(window: DateWindow) -> dict[str, Any]:
    """The part of a window that binds a page token (the upper bound travels inside the token)."""
    return {"mode": window.mode, "after": format_time(window.after)}
