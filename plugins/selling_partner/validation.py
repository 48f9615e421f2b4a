"""Validation of every value that goes into an SP-API URL or query, before any request is made.

A bad value raises :class:`ValidationError` (a ``ValueError`` and an ``SpApiConfigError``) naming the
parameter; it never reaches a URL path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from selling_partner.hooks.errors import SpApiConfigError
from selling_partner.orders.canonical import MARKETPLACE_ID_RE, ORDER_ID_RE
from selling_partner.regions import REGIONS, get_region, region_of_marketplace

#: SP-API notification types and destination/subscription ids: safe path segments only.
PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$", re.ASCII)
MAX_MARKETPLACES = 50
DEFAULT_MIN_BEFORE_LAG = 120.0


class ValidationError(SpApiConfigError, ValueError):
    """A value failed validation; nothing was sent."""

    default_hint = "Pass a valid value (see the message); nothing was sent to Amazon."


def validate_order_id(order_id: object, *, operation: str = "") -> str:
    """Return ``order_id`` if it matches ``^\\d{3}-\\d{7}-\\d{7}$`` (Amazon order id), else raise."""
    if not isinstance(order_id, str) or not ORDER_ID_RE.fullmatch(order_id):
        raise ValidationError(
            f"invalid Amazon order id {str(order_id)[:40]!r}: expected 3-7-7 digits like 123-1234567-1234567",
            operation=operation,
        )
    return order_id


def validate_path_segment(value: object, *, name: str, operation: str = "") -> str:
    """Return ``value`` if it is a safe URL path segment (letters, digits, ``_.:-``), else raise."""
    if not isinstance(value, str) or not PATH_SEGMENT_RE.fullmatch(value):
        raise ValidationError(f"invalid {name} {str(value)[:40]!r}", operation=operation)
    return value


def parse_bool(value: Any, *, name: str) -> bool:
    """Booleans from JSON extras, the UI form or rendered templates (``true``/``0``/``yes``/``off``...)."""
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return False
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "on"):
        return True
    if text in ("false", "0", "no", "n", "off"):
        return False
    raise ValidationError(f"{name} must be a boolean, got {value!r}")


def parse_names(value: object, *, name: str = "value") -> list[str]:
    """The one parser of name lists from extras, Params and rendered templates: a list/tuple, a
    rendered list (``"['A', 'B']"``, ``'["A"]'``) or a comma/space separated string; ``None``, empty
    or ``"None"`` -> ``[]``."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip().strip("[]").replace('"', " ").replace("'", " ")
        if text.strip().lower() in {"", "none", "null"}:
            return []
        items = [part.strip() for part in re.split(r"[,\s]+", text)]
    elif isinstance(value, Iterable):
        items = [str(part).strip() for part in value]
    else:
        raise ValidationError(f"{name} must be a list or a comma separated string, got {value!r}")
    return [item for item in items if item]


def parse_marketplace_ids(value: object) -> list[str]:
    """Marketplace ids as :func:`parse_names` reads them."""
    return parse_names(value, name="marketplace_ids")


def validate_marketplace_ids(
    marketplace_ids: object, *, region: str | None = None, operation: str = "", required: bool = True
) -> list[str]:
    """Validate marketplace ids: well-formed, known, served by ``region``, at most 50, no duplicates."""
    ids = parse_marketplace_ids(marketplace_ids)
    if required and not ids:
        raise ValidationError("at least one marketplace id is required", operation=operation)
    if len(ids) > MAX_MARKETPLACES:
        raise ValidationError(
            f"at most {MAX_MARKETPLACES} marketplace ids, got {len(ids)}", operation=operation
        )
    region_obj = get_region(region) if region else None
    seen: list[str] = []
    for mid in ids:
        if not MARKETPLACE_ID_RE.fullmatch(mid):
            raise ValidationError(f"malformed marketplace id {mid[:40]!r}", operation=operation)
        if region_obj is not None and mid not in region_obj.marketplaces:
            other = region_of_marketplace(mid)
            where = f"it belongs to region {other!r}" if other else "it is not a known marketplace"
            valid = ", ".join(f"{k} ({v})" for k, v in region_obj.marketplaces.items())
            raise ValidationError(
                f"marketplace id {mid!r} is not served by region {region_obj.code!r}: {where}. "
                f"Valid ids for {region_obj.code}: {valid}",
                operation=operation,
            )
        if mid not in seen:
            seen.append(mid)
    return seen


def validate_region(region: object) -> str:
    """Return the lower-case region code (``na``, ``eu``, ``fe``) or raise."""
    if not isinstance(region, str) or region.strip().lower() not in REGIONS:
        raise ValidationError(f"unknown region {region!r}; expected one of {', '.join(REGIONS)}")
    return region.strip().lower()


def to_utc(value: datetime | str, *, name: str = "timestamp") -> datetime:
    """Return an aware UTC ``datetime`` from an aware datetime or an ISO-8601 string with an offset.

    Naive values are refused: a naive time is ambiguous and Amazon compares in UTC.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"{name} {value[:40]!r} is not an ISO-8601 timestamp") from None
        value = parsed
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime or ISO-8601 string, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} {value.isoformat()} has no timezone; pass an aware UTC datetime")
    return value.astimezone(UTC)


def parse_amazon_time(value: str | None) -> datetime | None:
    """Parse an ISO-8601 time from Amazon (``...Z`` or an offset) to aware UTC; ``None`` passes through."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_amazon_time(value: datetime) -> str:
    """Format an aware datetime as Amazon expects: UTC, ``YYYY-MM-DDTHH:MM:SS[.fff]Z``."""
    value = to_utc(value)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def latest_allowed_before(
    now: datetime | None = None, lag_seconds: float = DEFAULT_MIN_BEFORE_LAG
) -> datetime:
    """The latest ``...Before`` Amazon accepts: ``now - lag`` (the 2-minute rule), truncated to ms."""
    now = to_utc(now) if now is not None else datetime.now(UTC)
    latest = now - timedelta(seconds=lag_seconds)
    return latest.replace(microsecond=(latest.microsecond // 1000) * 1000)


def validate_window(
    after: datetime | str,
    before: datetime | str | None,
    *,
    lag_seconds: float = DEFAULT_MIN_BEFORE_LAG,
    now: datetime | None = None,
    operation: str = "",
    after_name: str = "last_updated_after",
    before_name: str = "last_updated_before",
) -> tuple[datetime, datetime | None]:
    """Validate a date window: UTC, ``after <= before``, and ``before <= now - lag`` (2-minute rule)."""
    after_utc = to_utc(after, name=after_name)
    before_utc = to_utc(before, name=before_name) if before is not None else None
    latest = latest_allowed_before(now, lag_seconds)
    if before_utc is not None:
        if before_utc > latest:
            raise ValidationError(
                f"{before_name} {format_amazon_time(before_utc)} is later than now - {lag_seconds:g} s "
                f"({format_amazon_time(latest)}); Amazon rejects windows closer than that to now",
                operation=operation,
            )
        if after_utc > before_utc:
            raise ValidationError(
                f"{after_name} {format_amazon_time(after_utc)} is after {before_name} "
                f"{format_amazon_time(before_utc)}",
                operation=operation,
            )
    elif after_utc > latest:
        raise ValidationError(
            f"{after_name} {format_amazon_time(after_utc)} is later than now - {lag_seconds:g} s",
            operation=operation,
        )
    return after_utc, before_utc


def validate_max_results(value: int, *, operation: str = "") -> int:
    """``maxResultsPerPage`` is 1..100."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
        raise ValidationError(f"max results per page must be 1..100, got {value!r}", operation=operation)
    return value
