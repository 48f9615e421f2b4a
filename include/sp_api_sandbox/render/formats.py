"""Formats shared by the renderers: times as each API renders them, money as decimal strings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sp_api_sandbox.world_data import CURRENCY_DECIMALS, CURRENCY_FACTOR

_QUANTUM = {cur: Decimal(1).scaleb(-CURRENCY_DECIMALS.get(cur, 2)) for cur in CURRENCY_FACTOR}


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {dt!r}")
    return dt.astimezone(UTC)


def api_time(dt: datetime) -> str:
    """A time as the Orders APIs (v0 and v2026-01-01) render it: whole seconds, ``2026-11-01T22:20:55Z``.

    The world's times are whole seconds already; a fraction would be dropped.
    """
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def notification_time(dt: datetime) -> str:
    """A time as notifications render it (Amazon's schema examples): milliseconds,
    ``2020-01-11T00:09:53.109Z``."""
    return _utc(dt).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def quantize(value: Decimal, currency: str) -> Decimal:
    """``value`` in the currency's decimals (JPY none), rounded half up."""
    return value.quantize(_QUANTUM[currency], rounding=ROUND_HALF_UP)


def amount(value: Decimal, currency: str) -> str:
    """A money amount as SP-API renders it: a decimal string in the currency's decimals, never ``-0.00``."""
    value = quantize(value, currency)
    return str(value if value else abs(value))
