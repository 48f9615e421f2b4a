"""Pure parsing of Amazon's order reports: bytes -> text -> a pandas frame -> canonical orders.

``GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL`` is a tab-separated file with one row per order
item (columns: ``../shared/reports-notes.md`` A1). Real files vary, so everything here is by header
name: unknown extra columns are ignored (never read), optional columns may be missing, and only
:data:`REQUIRED_COLUMNS` must be there. Every cell is read as text (``dtype=str``, no NA guessing), so
money stays the exact decimal text Amazon wrote (``Decimal``-checked, never a float) and ids keep their
leading zeros. PII columns (ship city/state/postal code/country, ``cpf``, ``purchase-order-number``) are
not even read unless the connection enables PII; then they go to ``sp_order_buyers`` only.

Decoding follows reports-notes A5: gzip is sniffed by its magic bytes (``compressionAlgorithm`` lies in
both directions), the charset comes from the download's ``Content-Type`` (``Cp1252`` and
``Windows-31J`` are seen; Python calls the latter ``cp932``), then UTF-8 (a BOM is dropped), then cp1252.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from selling_partner.orders.canonical import (
    CanonicalBuyer,
    CanonicalItem,
    CanonicalOrder,
    validate_order,
)
from selling_partner.orders.v0 import service_level
from selling_partner.warehouse.rows import REPORT_API_VERSION, REPORT_SOURCE

if TYPE_CHECKING:  # pandas is imported where a report is read: DAG files that import this stay light
    import pandas as pd

#: The report the history backfill requests. BY_LAST_UPDATE (not BY_ORDER_DATE): windows over
#: ``last-updated-date`` are the sweep's own axis, so each order appears once, in its current state, in
#: the window of its last update, and the sweep continues exactly where the history ends; BY_ORDER_DATE
#: would miss orders created before the start but changed since, and carries ``cpf`` (PII).
REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
#: Rows loaded from a report: ``sp_orders.source`` (and the status history's) ``REPORT_SOURCE`` =
#: ``report``; ``api_version`` (a detail column: where the details came from) ``REPORT_API_VERSION``.
__all__ = ["REPORT_API_VERSION", "REPORT_SOURCE", "REPORT_TYPE"]
GZIP_MAGIC = b"\x1f\x8b"
#: Charset names seen in ``Content-Type`` that Python's codecs do not know by that name.
CHARSET_ALIASES = {"windows-31j": "cp932", "x-sjis": "shift_jis", "ms932": "cp932"}
#: The first line of the document Amazon returns (status DONE) for a window longer than it allows
#: (amzn/selling-partner-api-models#2591).
DATE_RANGE_EXCEEDED = "date range exceeded"

REQUIRED_COLUMNS = (
    "amazon-order-id",
    "purchase-date",
    "last-updated-date",
    "order-status",
    "sku",
    "quantity",
)
OPTIONAL_COLUMNS = (
    "order-item-id",
    "merchant-order-id",
    "fulfillment-channel",
    "sales-channel",
    "order-channel",
    "ship-service-level",
    "product-name",
    "asin",
    "item-status",
    "currency",
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
    "item-promotion-discount",
    "ship-promotion-discount",
    "promotion-ids",
    "is-business-order",
    "price-designation",
)
#: Buyer data (read only with PII enabled). ``cpf`` (BY_ORDER_DATE, a Brazilian taxpayer id) is never read.
PII_COLUMNS = ("ship-city", "ship-state", "ship-postal-code", "ship-country", "purchase-order-number")
MONEY_COLUMNS = (
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
    "item-promotion-discount",
    "ship-promotion-discount",
)

#: The report's ``order-status`` vocabulary (reports-notes A3; v0 spellings accepted too) -> warehouse.
#: ``Shipping`` has no documented v2026 equivalent: some units shipped, so PARTIALLY_SHIPPED (inf.).
ORDER_STATUS = {
    "Pending": "PENDING",
    "PendingAvailability": "PENDING_AVAILABILITY",
    "Unshipped": "UNSHIPPED",
    "Shipping": "PARTIALLY_SHIPPED",
    "PartiallyShipped": "PARTIALLY_SHIPPED",
    "Shipped": "SHIPPED",
    "InvoiceUnconfirmed": "SHIPPED",
    "Cancelled": "CANCELLED",
    "Canceled": "CANCELLED",
    "Unfulfillable": "UNFULFILLABLE",
}
#: ``fulfillment-channel`` -> ``fulfilled_by``.
FULFILLED_BY = {"Amazon": "AMAZON", "Merchant": "MERCHANT", "AFN": "AMAZON", "MFN": "MERCHANT"}
TRUE_VALUES = frozenset({"true", "yes", "1"})
FALSE_VALUES = frozenset({"false", "no", "0", ""})


class ReportFormatError(ValueError):
    """The document is not an order report this parser can read (names what is wrong)."""


# --------------------------------------------------------------------------- bytes -> text


def decompress(raw: bytes) -> bytes:
    """``raw`` un-gzipped when it starts with gzip's magic bytes, else unchanged (the flag is not trusted)."""
    return gzip.decompress(raw) if raw[:2] == GZIP_MAGIC else raw


def charset_of(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` as a Python codec name (``None``: absent/unknown)."""
    if not content_type:
        return None
    match = re.search(r"charset\s*=\s*\"?([A-Za-z0-9_.:\-]+)", content_type, re.IGNORECASE)
    if not match:
        return None
    name = CHARSET_ALIASES.get(match.group(1).lower(), match.group(1))
    import codecs

    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_document(raw: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode a (decompressed) document; returns ``(text, codec used)``.

    The response's charset when it decodes cleanly, then UTF-8 (BOM dropped), then cp1252 (undefined
    bytes become U+FFFD, so a document always decodes). A leading BOM is dropped whatever the codec.
    """
    declared = charset_of(content_type)
    candidates = [c for c in (declared, "utf-8") if c]
    for codec in dict.fromkeys(candidates):
        try:
            text = raw.decode("utf-8-sig" if codec == "utf-8" else codec)
        except UnicodeDecodeError:
            continue
        return text.removeprefix("\ufeff"), codec
    return raw.decode("cp1252", errors="replace").removeprefix("\ufeff"), "cp1252"


def is_date_range_exceeded(text: str) -> bool:
    """Whether the document is Amazon's "Date range exceeded" notice instead of a report (header row)."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip().lower()
    return first.startswith(DATE_RANGE_EXCEEDED)


# --------------------------------------------------------------------------- text -> frame


def wanted_columns(include_pii: bool) -> frozenset[str]:
    """Columns read from a report: required, optional and (only with PII) the buyer's."""
    return frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS + (PII_COLUMNS if include_pii else ()))


def read_report(text: str, *, include_pii: bool = False) -> pd.DataFrame:
    """The report as a frame of text cells (``""`` = empty), only the known columns, by header name.

    ``ReportFormatError`` when the document is the date-range notice or lacks a required column.
    """
    import pandas as pd

    if is_date_range_exceeded(text):
        raise ReportFormatError("the document is Amazon's 'Date range exceeded' notice, not a report")
    if not text.strip():
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in REQUIRED_COLUMNS})
    wanted = wanted_columns(include_pii)
    header = [h.strip() for h in text.split("\n", 1)[0].rstrip("\r").split("\t")]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ReportFormatError(
            f"the report lacks the required column(s) {', '.join(missing)} (header: {header[:12]})"
        )
    frame = pd.read_csv(
        io.StringIO(text),
        sep="\t",
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        quoting=csv.QUOTE_NONE,
        usecols=lambda name: name.strip() in wanted,
        engine="c",
    )
    frame.columns = [c.strip() for c in frame.columns]
    return frame


# --------------------------------------------------------------------------- frame -> orders


@dataclass(frozen=True)
class RejectedGroup:
    """An order of the report that could not be mapped, with why (no buyer data in the reason)."""

    order_id: str | None
    reason: str
    raw: dict[str, Any]
    last_updated_time: datetime | None = None


@dataclass
class ReportOrders:
    """What one report yields: canonical orders (source ``report``), rejected orders, item rows read."""

    orders: list[CanonicalOrder] = field(default_factory=list)
    rejected: list[RejectedGroup] = field(default_factory=list)
    rows: int = 0


def parse_time(value: str, column: str) -> datetime:
    """An ISO-8601 time with an offset (``2025-04-03T12:00:00+00:00``) as aware UTC."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{column} {text[:40]!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{column} {text[:40]!r} has no UTC offset")
    return parsed.astimezone(UTC)


def money_text(value: str, column: str) -> str | None:
    """A money cell as exact decimal text (``None`` when empty); ``ValueError`` when it is not a number."""
    text = value.strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{column} {text[:40]!r} is not a decimal amount") from None
    if not number.is_finite():
        raise ValueError(f"{column} {text[:40]!r} is not a decimal amount")
    return text


def _flag(value: str, column: str) -> bool:
    text = value.strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise ValueError(f"{column} {value[:20]!r} is neither true nor false")


def _quantity(value: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise ValueError(f"quantity {text[:20]!r} is not a whole number")
    return int(text)


def _abs_sum(values: Iterable[str | None]) -> str | None:
    present = [abs(Decimal(v)) for v in values if v is not None]
    return str(sum(present, Decimal(0))) if present else None


def _unit_price(item_price: str | None, quantity: int) -> str | None:
    """``item-price`` is the line total (inf., reports-notes A1): the unit price when it divides exactly."""
    if item_price is None or quantity <= 0:
        return None
    total = Decimal(item_price)
    unit = total / quantity
    exponent = total.as_tuple().exponent
    if not isinstance(exponent, int) or unit.quantize(Decimal(1).scaleb(exponent)) * quantity != total:
        return None
    return str(unit.quantize(Decimal(1).scaleb(exponent)))


def _item_id(row: dict[str, str], order_id: str, seen: dict[str, int]) -> str:
    """``order-item-id`` when the file has it; older files do not: a stable id from (order, sku, asin)."""
    given = row.get("order-item-id", "").strip()
    if given:
        return given
    base = f"{order_id}|{row.get('sku', '')}|{row.get('asin', '')}"
    n = seen.get(base, 0)
    seen[base] = n + 1
    return "R" + hashlib.sha1(f"{base}|{n}".encode(), usedforsecurity=False).hexdigest()[:19]


def _map_order(
    order_id: str,
    rows: list[dict[str, str]],
    *,
    marketplace_id: str,
    seller_id: str | None,
    include_pii: bool,
) -> CanonicalOrder:
    first = rows[0]
    status_text = first["order-status"].strip()
    status = ORDER_STATUS.get(status_text)
    if status is None:
        raise ValueError(f"unknown order-status {status_text[:40]!r}")
    channel = first.get("fulfillment-channel", "").strip()
    if channel and channel not in FULFILLED_BY:
        raise ValueError(f"unknown fulfillment-channel {channel[:40]!r}")
    created = parse_time(first["purchase-date"], "purchase-date")
    updated = max(parse_time(r["last-updated-date"], "last-updated-date") for r in rows)
    seen: dict[str, int] = {}
    items: list[CanonicalItem] = []
    totals: list[Decimal] = []
    all_priced = True
    currency: str | None = None
    business = False
    for row in rows:
        money = {c: money_text(row.get(c, ""), c) for c in MONEY_COLUMNS}
        quantity = _quantity(row["quantity"])
        row_currency = row.get("currency", "").strip() or None
        currency = currency or row_currency
        business = business or _flag(row.get("is-business-order", ""), "is-business-order")
        if money["item-price"] is None:
            all_priced = False
        else:
            positive = sum((Decimal(money[c]) for c in MONEY_COLUMNS[:6] if money[c] is not None), Decimal(0))
            discounts = Decimal(_abs_sum([money["item-promotion-discount"], money["ship-promotion-discount"]])
                                or 0)  # fmt: skip
            totals.append(positive - discounts)
        promotions = tuple(sorted(p.strip() for p in row.get("promotion-ids", "").split(",") if p.strip()))
        items.append(
            CanonicalItem(
                order_id=order_id,
                order_item_id=_item_id(row, order_id, seen),
                quantity_ordered=quantity,
                asin=row.get("asin", "").strip() or None,
                seller_sku=row["sku"].strip() or None,
                title=row.get("product-name") or None,
                currency=row_currency,
                unit_price=_unit_price(money["item-price"], quantity),
                item_price=money["item-price"],
                item_tax=money["item-tax"],
                shipping_price=money["shipping-price"],
                shipping_tax=money["shipping-tax"],
                promotion_discount=_abs_sum(
                    [money["item-promotion-discount"], money["ship-promotion-discount"]]
                ),
                promotion_ids=promotions,
            )
        )
    buyer = None
    if include_pii:
        buyer = CanonicalBuyer(
            order_id=order_id,
            buyer_purchase_order_number=first.get("purchase-order-number", "").strip() or None,
            city=first.get("ship-city", "").strip() or None,
            state_or_region=first.get("ship-state", "").strip() or None,
            postal_code=first.get("ship-postal-code", "").strip() or None,
            country_code=first.get("ship-country", "").strip() or None,
        )
    priced = all_priced and bool(totals)
    return validate_order(
        CanonicalOrder(
            order_id=order_id,
            marketplace_id=marketplace_id,
            order_status=status,
            created_time=created,
            last_updated_time=updated,
            seller_id=seller_id,
            sales_channel=first.get("sales-channel", "").strip() or None,
            fulfilled_by=FULFILLED_BY.get(channel),
            fulfillment_service_level=service_level(first.get("ship-service-level", "").strip() or None),
            seller_order_id=first.get("merchant-order-id", "").strip() or None,
            currency=currency if priced else None,
            order_total=str(sum(totals, Decimal(0))) if priced else None,
            programs=("AMAZON_BUSINESS",) if business else (),
            items=tuple(items),
            buyer=buyer,
            api_version=REPORT_API_VERSION,
            source=REPORT_SOURCE,  # type: ignore[arg-type]
            complete=True,
        )
    )


def report_orders(
    frame: pd.DataFrame, *, marketplace_id: str, seller_id: str | None = None, include_pii: bool = False
) -> ReportOrders:
    """Group the item rows into orders (file order kept); an order that cannot be mapped is rejected
    with its reason, the others load. One report is one marketplace (reports carry no marketplace id)."""
    out = ReportOrders(rows=len(frame))
    if frame.empty:
        return out
    columns = [c for c in frame.columns if c in wanted_columns(include_pii)]
    groups: dict[str, list[dict[str, str]]] = {}
    for record in frame[columns].to_dict("records"):
        groups.setdefault(str(record["amazon-order-id"]).strip(), []).append(record)
    for order_id, rows in groups.items():
        try:
            out.orders.append(
                _map_order(
                    order_id,
                    rows,
                    marketplace_id=marketplace_id,
                    seller_id=seller_id,
                    include_pii=include_pii,
                )
            )
        except (ValueError, ArithmeticError) as exc:
            updated = None
            with contextlib.suppress(ValueError):
                updated = max(parse_time(r["last-updated-date"], "last-updated-date") for r in rows)
            safe = {k: v for k, v in rows[0].items() if k not in PII_COLUMNS}
            out.rejected.append(RejectedGroup(order_id or None, f"report row: {exc}", safe, updated))
    return out


def parse_document(
    raw: bytes,
    content_type: str | None,
    *,
    marketplace_id: str,
    seller_id: str | None = None,
    include_pii: bool = False,
) -> tuple[ReportOrders, str]:
    """Downloaded bytes -> (orders, codec used): decompress, decode, read, group."""
    text, codec = decode_document(decompress(raw), content_type)
    frame = read_report(text, include_pii=include_pii)
    return report_orders(
        frame, marketplace_id=marketplace_id, seller_id=seller_id, include_pii=include_pii
    ), codec
