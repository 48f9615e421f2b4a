"""Reading an ``amazon_sp_api`` Airflow connection into a validated :class:`SpApiConfig` (pure)."""

from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from selling_partner.hooks.errors import SpApiConfigError
from selling_partner.regions import LWA_ENDPOINT, get_region
from selling_partner.validation import (
    DEFAULT_MIN_BEFORE_LAG,
    ValidationError,
    parse_bool,
    validate_marketplace_ids,
    validate_region,
)

API_V2026 = "2026-01-01"
API_V0 = "v0"
API_VERSIONS = (API_V2026, API_V0)
RATE_LIMIT_BACKENDS = ("variable", "memory", "postgres", "redis")
DEFAULT_RATE_LIMIT_BACKEND = "variable"
DEFAULT_TIMEOUT = (10.0, 60.0)
#: Days buyer PII is kept after the order's last update (Amazon's Data Protection Policy: 30 days after
#: delivery at most); the orders sync purges older rows of ``sp_order_buyers`` after each run.
DEFAULT_PII_RETENTION_DAYS = 30


def parse_float(value: Any, *, name: str, default: float, minimum: float = 0.0) -> float:
    """A non-negative number from extras (strings accepted); ``default`` when empty."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number, got {value!r}") from None
    if number < minimum:
        raise ValidationError(f"{name} must be >= {minimum:g}, got {number:g}")
    return number


def parse_days(value: Any, *, name: str, default: int) -> int:
    """A whole, non-negative number of days from extras (strings accepted); ``default`` when empty."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be a whole number of days, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a whole number of days, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise ValidationError(f"{name} must be a whole number of days >= 0, got {value!r}")
    return int(number)


def _parse_timeout(value: Any) -> tuple[float, float]:
    if value is None or value == "":
        return DEFAULT_TIMEOUT
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        t = parse_float(value, name="timeout", default=DEFAULT_TIMEOUT[1], minimum=0.1)
        return (min(DEFAULT_TIMEOUT[0], t), t)
    if isinstance(value, list | tuple) and len(value) == 2:
        return (
            parse_float(value[0], name="timeout[0]", default=DEFAULT_TIMEOUT[0], minimum=0.1),
            parse_float(value[1], name="timeout[1]", default=DEFAULT_TIMEOUT[1], minimum=0.1),
        )
    raise ValidationError(f"timeout must be seconds or [connect, read], got {value!r}")


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint_url(name: str, url: str, *, allow_insecure_http: bool) -> str:
    """An https URL, or plain http to a loopback host (secrets would travel in clear elsewhere)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError(f"{name} must be an http(s) URL with a host, got {url[:60]!r}")
    if parts.scheme == "http" and not (allow_insecure_http or is_loopback_host(parts.hostname)):
        raise ValidationError(
            f"{name} {url[:60]!r} uses plain http to a host that is not loopback: tokens and the client "
            "secret would travel in clear. Use https, or set allow_insecure_http = true only for a "
            "sandbox on a private network."
        )
    return url.rstrip("/") if name == "endpoint" else url


def _parse_rate_limits(value: Any) -> dict[str, tuple[float, float]]:
    """``{"searchOrders": [rate, burst], ...}`` (dict or JSON string) overriding Amazon's defaults."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError('rate_limits must be JSON like {"searchOrders": [0.0056, 20]}') from None
    if not isinstance(value, dict):
        raise ValidationError("rate_limits must map operation -> [rate, burst]")
    out: dict[str, tuple[float, float]] = {}
    for op, pair in value.items():
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValidationError(f"rate_limits[{op!r}] must be [rate, burst]")
        rate = parse_float(pair[0], name=f"rate_limits[{op}] rate", default=0.0, minimum=1e-6)
        burst = parse_float(pair[1], name=f"rate_limits[{op}] burst", default=1.0, minimum=1.0)
        out[str(op)] = (rate, burst)
    return out


@dataclass(frozen=True)
class SpApiConfig:
    """Validated settings of one SP-API connection (secrets included: never log this object)."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    region: str
    marketplace_ids: tuple[str, ...]
    seller_id: str
    orders_api_version: str = API_V2026
    include_pii: bool = False
    pii_retention_days: int = DEFAULT_PII_RETENTION_DAYS
    endpoint: str = ""
    lwa_endpoint: str = LWA_ENDPOINT
    min_before_lag_seconds: float = DEFAULT_MIN_BEFORE_LAG
    rate_limit_backend: str = DEFAULT_RATE_LIMIT_BACKEND
    rate_limit_dsn: str | None = field(default=None, repr=False)
    rate_limit_conn_id: str | None = None
    rate_limits: dict[str, tuple[float, float]] = field(default_factory=dict)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT


def config_from_connection(
    login: str | None, password: str | None, extra: dict[str, Any] | None, *, conn_id: str = ""
) -> SpApiConfig:
    """Build and validate the config from a connection's login, password and extra (no I/O).

    Raises :class:`~selling_partner.validation.ValidationError` naming the field and the fix.
    """
    extra = dict(extra or {})
    # The UI form stores custom fields as plain keys in Airflow 3; older forms used a prefix.
    for key in list(extra):
        if key.startswith("extra__amazon_sp_api__"):
            extra.setdefault(key.removeprefix("extra__amazon_sp_api__"), extra.pop(key))
    where = f"connection {conn_id!r}: " if conn_id else ""
    client_id = login or extra.get("client_id") or extra.get("lwa_client_id")
    client_secret = password or extra.get("client_secret") or extra.get("lwa_client_secret")
    if not client_id or not client_secret:
        raise ValidationError(f"{where}login (LWA client id) and password (LWA client secret) are required")
    try:
        region = validate_region(extra.get("region") or "na")
        marketplace_ids = validate_marketplace_ids(extra.get("marketplace_ids"), region=region, required=True)
    except ValidationError as exc:
        raise ValidationError(where + exc.detail) from None
    seller_id = str(extra.get("seller_id") or "").strip()
    if not seller_id:
        raise ValidationError(f"{where}extra.seller_id (the merchant token) is required")
    version = str(extra.get("orders_api_version") or API_V2026).strip()
    if version not in API_VERSIONS:
        raise ValidationError(f"{where}orders_api_version must be one of {API_VERSIONS}, got {version!r}")
    backend = str(extra.get("rate_limit_backend") or DEFAULT_RATE_LIMIT_BACKEND).strip().lower()
    if backend == "postgresql":
        backend = "postgres"
    if backend not in RATE_LIMIT_BACKENDS:
        raise ValidationError(
            f"{where}rate_limit_backend must be one of {RATE_LIMIT_BACKENDS}, got {backend!r}"
        )
    dsn = extra.get("rate_limit_dsn") or None
    conn_ref = extra.get("rate_limit_conn_id") or None
    if backend in ("postgres", "redis") and not dsn and not (backend == "postgres" and conn_ref):
        raise ValidationError(
            f"{where}rate_limit_backend {backend!r} needs rate_limit_dsn"
            + (" or rate_limit_conn_id" if backend == "postgres" else "")
        )
    insecure = parse_bool(extra.get("allow_insecure_http"), name="allow_insecure_http")
    try:
        endpoint = check_endpoint_url(
            "endpoint",
            str(extra.get("endpoint") or get_region(region).endpoint),
            allow_insecure_http=insecure,
        )
        lwa_endpoint = check_endpoint_url(
            "lwa_endpoint", str(extra.get("lwa_endpoint") or LWA_ENDPOINT), allow_insecure_http=insecure
        )
    except ValidationError as exc:
        raise ValidationError(where + exc.detail) from None
    return SpApiConfig(
        client_id=str(client_id),
        client_secret=str(client_secret),
        refresh_token=str(extra["refresh_token"]) if extra.get("refresh_token") else None,
        region=region,
        marketplace_ids=tuple(marketplace_ids),
        seller_id=seller_id,
        orders_api_version=version,
        include_pii=parse_bool(extra.get("include_pii"), name="include_pii"),
        pii_retention_days=parse_days(
            extra.get("pii_retention_days"),
            name=f"{where}pii_retention_days",
            default=DEFAULT_PII_RETENTION_DAYS,
        ),
        endpoint=endpoint,
        lwa_endpoint=lwa_endpoint,
        min_before_lag_seconds=parse_float(
            extra.get("min_before_lag_seconds"), name="min_before_lag_seconds", default=DEFAULT_MIN_BEFORE_LAG
        ),
        rate_limit_backend=backend,
        rate_limit_dsn=str(dsn) if dsn else None,
        rate_limit_conn_id=str(conn_ref) if conn_ref else None,
        rate_limits=_parse_rate_limits(extra.get("rate_limits")),
        timeout=_parse_timeout(extra.get("timeout")),
    )


__all__ = ["API_V0", "API_V2026", "SpApiConfig", "SpApiConfigError", "config_from_connection"]
