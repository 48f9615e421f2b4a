"""An independent oracle: the warehouse rows a sync must produce from the sandbox's raw truth.

``GET /_sandbox/truth`` returns Amazon's Orders API v2026-01-01 ``Order`` objects (every
``includedData`` but BUYER and RECIPIENT). This module maps them to the rows of every table the sync
fills, *from the specification* - ``docs/data-dictionary.md``, Amazon's model
``include/sp_api_sandbox/models/orders_2026-01-01.json`` (``ordersV0.json`` for v0 mode) and what
docs/CONTRACTS.md says the sandbox renders - and compares them with the warehouse field by field.
It shares no code with the product: it must not import ``selling_partner`` (``tests/test_oracle.py``
parses this module and fails if it does), so a mapping bug in the product's adapters cannot hide here.

Mapping (v2026 ``Order`` -> columns)
------------------------------------
``sp_orders`` (key ``order_id``): ``orderId``; ``seller_id`` = the truth's ``seller_id``;
``salesChannel.marketplaceId`` / ``.marketplaceName`` -> ``marketplace_id`` / ``sales_channel``;
``fulfillment.fulfillmentStatus`` / ``.fulfilledBy`` / ``.fulfillmentServiceLevel`` -> ``order_status``
/ ``fulfilled_by`` / ``fulfillment_service_level``; ``order_type`` NULL (v2026 has none);
``orderAliases[aliasType=SELLER_ORDER_ID].aliasId`` -> ``seller_order_id``; ``proceeds.grandTotal`` ->
``order_total`` and ``currency`` ("ISO-4217 code of order_total": NULL without a total);
``createdTime``, ``lastUpdatedTime``, ``fulfillment.shipByWindow`` / ``deliverByWindow``
``earliestDateTime``/``latestDateTime`` -> the six times; ``programs``; ``items_shipped`` /
``items_unshipped`` = the sum of the items' ``quantityFulfilled`` / ``quantityUnfulfilled`` (NULL when
no item says); ``api_version`` ``2026-01-01``; ``source`` ``sync``; ``status_from_complete`` and
``is_complete`` true; ``details_updated_time`` = ``lastUpdatedTime``.

``sp_order_items`` (key ``order_id, order_item_id``): ``product.asin/sellerSku/title``,
``product.condition.conditionType`` -> ``condition``; ``quantityOrdered``;
``fulfillment.quantityFulfilled/quantityUnfulfilled`` -> ``quantity_shipped/unshipped``;
``product.price.unitPrice`` -> ``unit_price`` (and ``currency``, else the first currency of the
item's proceeds); item ``proceeds.breakdowns``: ``ITEM`` -> ``item_price``, ``SHIPPING`` ->
``shipping_price``, ``TAX`` split by its ``detailedBreakdowns`` subtype (``ITEM`` -> ``item_tax``,
``SHIPPING`` -> ``shipping_tax``; a TAX entry without details counts as item tax; other subtypes such
as GIFT_WRAP have no column), ``DISCOUNT`` (negative in the API) -> ``promotion_discount`` as a
positive amount; a breakdown type that is absent gives NULL; ``promotion.breakdowns[].promotionId``
-> ``promotion_ids``; ``cancellation.cancellationRequest`` (requester ``BUYER``, the model's only
value) -> ``is_buyer_requested_cancel`` true and its ``cancelReason`` -> ``buyer_cancel_reason``,
else false / NULL; ``order_last_updated_time`` = the order's ``lastUpdatedTime``.

``sp_order_packages`` (key ``order_id, package_reference_id``): ``packageReferenceId``, ``carrier``,
``trackingNumber``, ``shippingService``, ``packageStatus.status`` / ``.detailedStatus``, ``shipTime``,
``order_last_updated_time``.

``sp_order_status_history`` (key ``order_id, last_updated_time, order_status``): one row per version
the sync saw - the final truth plus the ``observed`` snapshots taken after earlier syncs, for orders
in the final truth; ``packages_delivered`` = the version has packages and all are ``DELIVERED``
(an order without packages has nothing delivered); ``source`` ``sync``.

``sp_order_buyers`` (key ``order_id``; only with ``include_pii``, and then the truth must carry
``buyer``/``recipient``, which ``/_sandbox/truth`` omits - merge them from getOrder first):
``buyer.buyerName/buyerEmail/buyerPurchaseOrderNumber``, ``buyer.buyerCompanyName`` (else the
delivery address's ``companyName``: v0 reports the buyer's company only with the address, as
``OrderAddress.BuyerCompanyName``), ``recipient.deliveryAddress.name`` -> ``recipient_name``,
``addressLine1..3``, ``city``, ``stateOrRegion``, ``postalCode``, ``countryCode``, ``phone``,
``order_last_updated_time``. Without ``include_pii`` the table must be empty.

Comparison rules
----------------
Every column of each table is compared except the load bookkeeping (``loaded_at``, ``observed_at``,
``recorded_at``); a column the oracle does not know, or a known one the rows lack, is reported.
Values must have the types ``Warehouse.fetch_*`` documents: times aware datetimes compared exactly,
money ``Decimal`` compared numerically (``19.9 == 19.90``), flags ``bool``, counts ``int``, text
``str`` (kept as Amazon sent it: ``""`` is not NULL). Lists (``programs``, ``promotion_ids``) are the
comma-joined text the dictionary documents, compared as sets of names: the dictionary fixes no order
(its own example is ``PRIME,AMAZON_BUSINESS``); an empty list is empty text, not NULL. Messages name
the table, the key and the column with both values - except ``sp_order_buyers``, whose values are
never shown (PII). Child rows of an order that is missing from (or extra in) ``sp_orders`` are not
listed one by one: the order's line says it.

v0 mode (``api_version="v0"``): the same v2026 truth, restricted to what getOrders + getOrderItems
(+ RDT buyer info and address) can carry, checked against real v0 syncs of the sandbox:

* ``sp_order_packages`` is empty and ``packages_delivered`` false: v0 has no package data;
* ``programs`` keeps only the programs v0 expresses: ``IsPrime`` PRIME, ``IsBusinessOrder``
  AMAZON_BUSINESS, ``IsPremiumOrder`` PREMIUM, ``IsISPU`` IN_STORE_PICK_UP and ``OrderType=Preorder``
  PREORDER (``IsIBA`` is not INVOICE_BY_AMAZON: the v0 model defines it as "bought and re-sold by
  Amazon Business EU SARL");
* ``api_version`` is ``v0``;
* ``order_type`` is not compared: v0 fills it (``StandardOrder``...) but the v2026 truth has none;
* every other column agrees, including ``fulfillment_service_level`` (v0 ``SecondDay`` is v2026
  ``SECOND_DAY``), ``order_status`` (v0 statuses map to v2026 names), ``unit_price`` (v0 ItemPrice /
  QuantityOrdered) and ``promotion_discount`` (positive in v0).

Bad records (``truth["bad_records"] = {order_id: {"kind", "expect", "detail"}}``): an order with
``expect: "quarantine"`` is expected in no data table but in ``sp_order_quarantine`` (``source``
``sync``, a non-empty ``reason``, ``attempts`` >= 1, ``resolved_at`` NULL; skipped when the warehouse
has no ``fetch_order_quarantine``); its record may be malformed and is never mapped. A record served
without a usable ``orderId`` is matched with an open row whose key is not an Amazon order id (the
warehouse cannot know the id); open rows no bad record explains are reported. Orders with
``expect: "load"`` are compared like any other, with the loader's rules for text: NUL characters
(``\\u0000``) are stripped from every text value and a lone surrogate (``\\ud83d`` without its pair)
becomes U+FFFD - PostgreSQL text can hold neither; every other character is kept as served.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

V2026 = "2026-01-01"
V0 = "v0"
API_VERSIONS = (V2026, V0)

ORDERS = "sp_orders"
ITEMS = "sp_order_items"
PACKAGES = "sp_order_packages"
HISTORY = "sp_order_status_history"
BUYERS = "sp_order_buyers"
QUARANTINE = "sp_order_quarantine"
#: The data tables a sync fills, in report order.
DATA_TABLES = (ORDERS, ITEMS, PACKAGES, HISTORY, BUYERS)
#: Load bookkeeping: when the warehouse wrote a row, not what the order says.
BOOKKEEPING = frozenset({"loaded_at", "observed_at", "recorded_at"})
#: Programs a v0 order can express (flags and OrderType=Preorder).
V0_PROGRAMS = frozenset({"PRIME", "AMAZON_BUSINESS", "PREMIUM", "IN_STORE_PICK_UP", "PREORDER"})
#: Columns v0 cannot be compared on, per table (see the module docstring).
NOT_COMPARABLE: dict[str, dict[str, frozenset[str]]] = {
    V2026: {},
    V0: {ORDERS: frozenset({"order_type"})},
}
NUL = "\x00"
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Amazon's order id format (the models' examples, the data dictionary's ``123-1234567-1234567``).
AMAZON_ORDER_ID = re.compile(r"\d{3}-\d{7}-\d{7}")

Key = tuple[Any, ...]
Row = dict[str, Any]
Rows = dict[Key, Row]


@dataclass(frozen=True)
class Check:
    """An expected value that is a rule rather than one value (e.g. "non-empty text")."""

    description: str
    test: Callable[[Any], bool]

    def __repr__(self) -> str:
        return self.description


NON_EMPTY_TEXT = Check("non-empty text", lambda v: isinstance(v, str) and v.strip() != "")
AT_LEAST_ONE = Check("a count >= 1", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1)


@dataclass(frozen=True)
class TableSpec:
    """A table as the data dictionary documents it: key columns and each compared column's kind."""

    name: str
    key: tuple[str, ...]
    kinds: Mapping[str, str]  # column -> text | int | money | time | flag | list
    #: Report columns the oracle does not know (off for tables the dictionary does not list yet).
    strict_columns: bool = True
    #: Values are buyer PII: messages name the column, never the value.
    pii: bool = False


def _kinds(spec: str) -> dict[str, str]:
    """``"a:text b:int"`` -> ``{"a": "text", "b": "int"}`` (column order kept)."""
    return dict(part.split(":") for part in spec.split())


TABLES: dict[str, TableSpec] = {
    ORDERS: TableSpec(
        ORDERS,
        ("order_id",),
        _kinds(
            "order_id:text seller_id:text marketplace_id:text sales_channel:text order_status:text "
            "fulfilled_by:text fulfillment_service_level:text order_type:text seller_order_id:text "
            "currency:text order_total:money created_time:time last_updated_time:time "
            "earliest_ship_time:time latest_ship_time:time earliest_delivery_time:time "
            "latest_delivery_time:time programs:list items_shipped:int items_unshipped:int "
            "api_version:text source:text status_from_complete:flag is_complete:flag "
            "details_updated_time:time"
        ),
    ),
    ITEMS: TableSpec(
        ITEMS,
        ("order_id", "order_item_id"),
        _kinds(
            "order_id:text order_item_id:text asin:text seller_sku:text title:text condition:text "
            "quantity_ordered:int quantity_shipped:int quantity_unshipped:int currency:text "
            "unit_price:money item_price:money item_tax:money shipping_price:money shipping_tax:money "
            "promotion_discount:money promotion_ids:list is_buyer_requested_cancel:flag "
            "buyer_cancel_reason:text order_last_updated_time:time"
        ),
    ),
    PACKAGES: TableSpec(
        PACKAGES,
        ("order_id", "package_reference_id"),
        _kinds(
            "order_id:text package_reference_id:text carrier:text tracking_number:text "
            "shipping_service:text package_status:text package_detailed_status:text ship_time:time "
            "order_last_updated_time:time"
        ),
    ),
    HISTORY: TableSpec(
        HISTORY,
        ("order_id", "last_updated_time", "order_status"),
        _kinds("order_id:text last_updated_time:time order_status:text packages_delivered:flag source:text"),
    ),
    BUYERS: TableSpec(
        BUYERS,
        ("order_id",),
        _kinds(
            "order_id:text buyer_name:text buyer_email:text buyer_company_name:text "
            "buyer_purchase_order_number:text recipient_name:text address_line1:text address_line2:text "
            "address_line3:text city:text state_or_region:text postal_code:text country_code:text "
            "phone:text order_last_updated_time:time"
        ),
        pii=True,
    ),
    QUARANTINE: TableSpec(
        QUARANTINE,
        ("order_id", "source"),
        _kinds("order_id:text source:text reason:text attempts:int resolved_at:time"),
        strict_columns=False,
    ),
}


# --- reading the raw truth (tolerant of absent sections, strict about values) ----------------------


def storable_text(value: Any) -> Any:
    """``value`` with every string in it as the warehouse can store it (the loader's text rules).

    NUL is removed and a lone surrogate becomes U+FFFD (the Unicode replacement character): neither
    can be stored in PostgreSQL text (a surrogate is not even encodable as UTF-8). Nothing else changes.
    """
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value.replace(NUL, ""))
    if isinstance(value, list):
        return [storable_text(v) for v in value]
    if isinstance(value, dict):
        return {k: storable_text(v) for k, v in value.items()}
    return value


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time from the API as an aware UTC datetime (no offset: UTC, Amazon's zone)."""
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _amount(money: Any) -> Decimal | None:
    """The ``amount`` of a v2026 ``Money`` as a ``Decimal`` (``None`` when absent)."""
    raw = _obj(money).get("amount")
    if raw is None or raw == "":
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {str(raw)[:40]!r}") from None


def _currency(money: Any) -> str | None:
    return _obj(money).get("currencyCode")


def _sum(values: Iterable[Decimal | None]) -> Decimal | None:
    """Sum of the known values; ``None`` when there is none (absent is not zero)."""
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) if known else None


def _names(values: Iterable[Any]) -> tuple[str, ...]:
    """A list column's expected value: its set of names, sorted."""
    return tuple(sorted({str(v) for v in values if v not in (None, "")}))


def _item_row(raw: Mapping[str, Any], order_id: str, order_updated: datetime | None) -> Row:
    product = _obj(raw.get("product"))
    unit_price = _obj(product.get("price")).get("unitPrice")
    proceeds = _obj(raw.get("proceeds"))
    breakdowns = [_obj(b) for b in _list(proceeds.get("breakdowns"))]

    def subtotal(kind: str) -> Decimal | None:
        return _sum(_amount(b.get("subtotal")) for b in breakdowns if b.get("type") == kind)

    item_tax: list[Decimal | None] = []
    shipping_tax: list[Decimal | None] = []
    for tax in (b for b in breakdowns if b.get("type") == "TAX"):
        details = [_obj(d) for d in _list(tax.get("detailedBreakdowns"))]
        if not details:
            item_tax.append(_amount(tax.get("subtotal")))
        for detail in details:
            if detail.get("subtype") == "ITEM":
                item_tax.append(_amount(detail.get("value")))
            elif detail.get("subtype") == "SHIPPING":
                shipping_tax.append(_amount(detail.get("value")))
    discount = subtotal("DISCOUNT")
    currencies = [_currency(unit_price), *(_currency(b.get("subtotal")) for b in breakdowns)]
    currencies.append(_currency(proceeds.get("proceedsTotal")))
    fulfillment = _obj(raw.get("fulfillment"))
    request = _obj(_obj(raw.get("cancellation")).get("cancellationRequest"))
    by_buyer = bool(request) and request.get("requester", "BUYER") == "BUYER"
    return {
        "order_id": order_id,
        "order_item_id": raw.get("orderItemId"),
        "asin": product.get("asin"),
        "seller_sku": product.get("sellerSku"),
        "title": product.get("title"),
        "condition": _obj(product.get("condition")).get("conditionType"),
        "quantity_ordered": raw.get("quantityOrdered"),
        "quantity_shipped": fulfillment.get("quantityFulfilled"),
        "quantity_unshipped": fulfillment.get("quantityUnfulfilled"),
        "currency": next((c for c in currencies if c), None),
        "unit_price": _amount(unit_price),
        "item_price": subtotal("ITEM"),
        "item_tax": _sum(item_tax),
        "shipping_price": subtotal("SHIPPING"),
        "shipping_tax": _sum(shipping_tax),
        "promotion_discount": abs(discount) if discount is not None else None,
        "promotion_ids": _names(
            _obj(p).get("promotionId") for p in _list(_obj(raw.get("promotion")).get("breakdowns"))
        ),
        "is_buyer_requested_cancel": by_buyer,
        "buyer_cancel_reason": request.get("cancelReason") if by_buyer else None,
        "order_last_updated_time": order_updated,
    }


def _package_row(raw: Mapping[str, Any], order_id: str, order_updated: datetime | None) -> Row:
    status = _obj(raw.get("packageStatus"))
    return {
        "order_id": order_id,
        "package_reference_id": raw.get("packageReferenceId"),
        "carrier": raw.get("carrier"),
        "tracking_number": raw.get("trackingNumber"),
        "shipping_service": raw.get("shippingService"),
        "package_status": status.get("status"),
        "package_detailed_status": status.get("detailedStatus"),
        "ship_time": parse_time(raw.get("shipTime")),
        "order_last_updated_time": order_updated,
    }


def _buyer_row(raw: Mapping[str, Any], order_id: str, order_updated: datetime | None) -> Row | None:
    buyer = _obj(raw.get("buyer"))
    address = _obj(_obj(raw.get("recipient")).get("deliveryAddress"))
    if not buyer and not address:
        return None
    return {
        "order_id": order_id,
        "buyer_name": buyer.get("buyerName"),
        "buyer_email": buyer.get("buyerEmail"),
        "buyer_company_name": buyer.get("buyerCompanyName") or address.get("companyName"),
        "buyer_purchase_order_number": buyer.get("buyerPurchaseOrderNumber"),
        "recipient_name": address.get("name"),
        "address_line1": address.get("addressLine1"),
        "address_line2": address.get("addressLine2"),
        "address_line3": address.get("addressLine3"),
        "city": address.get("city"),
        "state_or_region": address.get("stateOrRegion"),
        "postal_code": address.get("postalCode"),
        "country_code": address.get("countryCode"),
        "phone": address.get("phone"),
        "order_last_updated_time": order_updated,
    }


def _order_rows(raw: Mapping[str, Any], *, api_version: str, seller_id: str | None) -> dict[str, list[Row]]:
    """One raw v2026 order -> its rows per data table (history: this version only)."""
    order_id = raw["orderId"]
    fulfillment = _obj(raw.get("fulfillment"))
    channel = _obj(raw.get("salesChannel"))
    grand_total = _obj(raw.get("proceeds")).get("grandTotal")
    updated = parse_time(raw.get("lastUpdatedTime"))
    ship_by = _obj(fulfillment.get("shipByWindow"))
    deliver_by = _obj(fulfillment.get("deliverByWindow"))
    items = [_item_row(_obj(i), order_id, updated) for i in _list(raw.get("orderItems"))]
    packages = [_package_row(_obj(p), order_id, updated) for p in _list(raw.get("packages"))]
    programs = list(_list(raw.get("programs")))
    if api_version == V0:
        packages = []
        programs = [p for p in programs if p in V0_PROGRAMS]
    shipped = [i["quantity_shipped"] for i in items if i["quantity_shipped"] is not None]
    unshipped = [i["quantity_unshipped"] for i in items if i["quantity_unshipped"] is not None]
    order = {
        "order_id": order_id,
        "seller_id": seller_id,
        "marketplace_id": channel.get("marketplaceId"),
        "sales_channel": channel.get("marketplaceName"),
        "order_status": fulfillment.get("fulfillmentStatus"),
        "fulfilled_by": fulfillment.get("fulfilledBy"),
        "fulfillment_service_level": fulfillment.get("fulfillmentServiceLevel"),
        "order_type": None,
        "seller_order_id": next(
            (
                _obj(a).get("aliasId")
                for a in _list(raw.get("orderAliases"))
                if _obj(a).get("aliasType") == "SELLER_ORDER_ID"
            ),
            None,
        ),
        "currency": _currency(grand_total),
        "order_total": _amount(grand_total),
        "created_time": parse_time(raw.get("createdTime")),
        "last_updated_time": updated,
        "earliest_ship_time": parse_time(ship_by.get("earliestDateTime")),
        "latest_ship_time": parse_time(ship_by.get("latestDateTime")),
        "earliest_delivery_time": parse_time(deliver_by.get("earliestDateTime")),
        "latest_delivery_time": parse_time(deliver_by.get("latestDateTime")),
        "programs": _names(programs),
        "items_shipped": sum(shipped) if shipped else None,
        "items_unshipped": sum(unshipped) if unshipped else None,
        "api_version": api_version,
        "source": "sync",
        "status_from_complete": True,
        "is_complete": True,
        "details_updated_time": updated,
    }
    for column in NOT_COMPARABLE[api_version].get(ORDERS, ()):
        order.pop(column)
    history = {
        "order_id": order_id,
        "last_updated_time": updated,
        "order_status": order["order_status"],
        "packages_delivered": bool(packages) and all(p["package_status"] == "DELIVERED" for p in packages),
        "source": "sync",
    }
    buyer = _buyer_row(raw, order_id, updated)
    return {
        ORDERS: [order],
        ITEMS: items,
        PACKAGES: packages,
        HISTORY: [history],
        BUYERS: [buyer] if buyer is not None else [],
    }


def _quarantined(truth: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """order_id -> bad-record entry, for the records the loader must quarantine."""
    bad = _obj(truth.get("bad_records"))
    return {oid: _obj(entry) for oid, entry in bad.items() if _obj(entry).get("expect") == "quarantine"}


def _loadable(truth: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The truth's orders that must load, as storable text (records to quarantine are never mapped)."""
    quarantined = _quarantined(truth)
    out = []
    for n, raw in enumerate(_list(truth.get("orders"))):
        order_id = _obj(raw).get("orderId")
        if not isinstance(order_id, str) or not order_id:
            if truth.get("bad_records"):
                continue  # a corrupted record without an id: only the quarantine can know it
            raise ValueError(f"truth order #{n} has no orderId and the truth lists no bad_records")
        if order_id in quarantined:
            continue
        out.append(storable_text(raw))
    return out


def _key(spec: TableSpec, row: Mapping[str, Any]) -> Key:
    return tuple(row.get(c) for c in spec.key)


def expected_rows(
    truth: Mapping[str, Any],
    *,
    api_version: str = V2026,
    seller_id: str | None = None,
    include_pii: bool = False,
    observed: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Rows]:
    """The rows each table should hold after syncing ``truth``: ``{table: {key: {column: value}}}``.

    ``seller_id`` defaults to the truth's; ``observed`` are earlier truth snapshots (taken right after
    earlier syncs) whose versions the status history also holds. ``sp_order_quarantine`` is present
    only when the truth lists bad records to quarantine.
    """
    if api_version not in API_VERSIONS:
        raise ValueError(f"api_version must be one of {API_VERSIONS}, got {api_version!r}")
    seller = seller_id if seller_id is not None else truth.get("seller_id")
    out: dict[str, Rows] = {table: {} for table in DATA_TABLES}
    final_ids: set[str] = set()
    for raw in _loadable(truth):
        try:
            rows = _order_rows(raw, api_version=api_version, seller_id=seller)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"order {raw.get('orderId')}: cannot map the truth record: {exc}") from exc
        final_ids.add(raw["orderId"])
        for table, table_rows in rows.items():
            if table == BUYERS and not include_pii:
                continue
            for row in table_rows:
                out[table][_key(TABLES[table], row)] = row
    history = out[HISTORY]
    for snapshot in observed or ():
        for raw in _loadable(snapshot):
            if raw["orderId"] not in final_ids:
                continue
            row = _order_rows(raw, api_version=api_version, seller_id=seller)[HISTORY][0]
            key = _key(TABLES[HISTORY], row)
            if key in history:  # the same version seen twice: delivered once seen delivered
                history[key] = {
                    **history[key],
                    "packages_delivered": history[key]["packages_delivered"] or row["packages_delivered"],
                }
            else:
                history[key] = row
    quarantined = _quarantined(truth)
    if quarantined:
        out[QUARANTINE] = {
            (oid, "sync"): {
                "order_id": oid,
                "source": "sync",
                "reason": NON_EMPTY_TEXT,
                "attempts": AT_LEAST_ONE,
                "resolved_at": None,
            }
            for oid in quarantined
        }
    return out


# --- comparing ---------------------------------------------------------------------------------


def _split(text: str) -> tuple[str, ...]:
    return tuple(sorted(set(text.split(",")))) if text else ()


def _equal(kind: str, expected: Any, got: Any) -> bool:
    """Whether the warehouse value ``got`` is the expected value, with the type the dictionary says."""
    if isinstance(expected, Check):
        return expected.test(got)
    if expected is None or got is None:
        return expected is None and got is None
    if kind == "money":
        return isinstance(got, Decimal) and got == expected
    if kind == "time":
        return isinstance(got, datetime) and got.utcoffset() is not None and got == expected
    if kind == "flag":
        return isinstance(got, bool) and got is expected
    if kind == "int":
        return isinstance(got, int) and not isinstance(got, bool) and got == expected
    if kind == "list":
        return isinstance(got, str) and _split(got) == tuple(expected)
    return isinstance(got, str) and got == expected


def _show(kind: str, value: Any) -> str:
    """A value for a message, readable and with its type when that is what differs."""
    if value is None:
        return "NULL"
    if isinstance(value, Check):
        return value.description
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return f"{value.isoformat()} (naive)"
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if kind == "list" and isinstance(value, tuple):
        return repr(",".join(value))
    if isinstance(value, Decimal) and kind == "money":
        return str(value)
    expected_type = {"money": Decimal, "int": int, "text": str, "list": str, "time": datetime}.get(kind)
    if expected_type is not None and not isinstance(value, expected_type):
        return f"{value!r} ({type(value).__name__})"
    return repr(value)


def _key_text(key: Key) -> str:
    return "/".join(_show("time", k) if isinstance(k, datetime) else str(k) for k in key)


def warehouse_rows(warehouse: Any, *, seller_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows per table read with a ``Warehouse``'s ``fetch_*`` methods (what ``compare`` accepts).

    ``seller_id`` keeps one seller's orders (by ``sp_orders.seller_id``) and their child rows, for a
    warehouse shared by several sellers. ``sp_order_quarantine`` is included only when the warehouse
    has ``fetch_order_quarantine``.
    """
    rows: dict[str, list[dict[str, Any]]] = {
        ORDERS: warehouse.fetch_orders(),
        ITEMS: warehouse.fetch_items(),
        PACKAGES: warehouse.fetch_packages(),
        HISTORY: warehouse.fetch_status_history(),
        BUYERS: warehouse.fetch_buyers(),
    }
    fetch_quarantine = getattr(warehouse, "fetch_order_quarantine", None)
    if fetch_quarantine is not None:
        rows[QUARANTINE] = fetch_quarantine()
    if seller_id is None:
        return rows
    mine = {r["order_id"] for r in rows[ORDERS] if r.get("seller_id") == seller_id}
    others = {r["order_id"] for r in rows[ORDERS]} - mine
    out = {t: [r for r in table_rows if r.get("order_id") not in others] for t, table_rows in rows.items()}
    if QUARANTINE in out:
        out[QUARANTINE] = [r for r in out[QUARANTINE] if r.get("seller_id", seller_id) == seller_id]
    return out


def _read(warehouse: Any, *, quarantine: bool) -> dict[str, list[Mapping[str, Any]] | None]:
    """Rows per table from a ``Warehouse`` or a ``{table: rows}`` mapping.

    A mapping's missing data table is empty; the quarantine table is ``None`` (not checked) when it
    is not needed, not in the mapping, or the warehouse has no ``fetch_order_quarantine`` yet.
    """
    if hasattr(warehouse, "fetch_orders"):
        warehouse = warehouse_rows(warehouse)
    if not isinstance(warehouse, Mapping):
        raise TypeError(f"compare() needs a Warehouse or a {{table: rows}} mapping, not {type(warehouse)}")
    out: dict[str, list[Mapping[str, Any]] | None] = {t: list(warehouse.get(t) or ()) for t in DATA_TABLES}
    out[QUARANTINE] = list(warehouse[QUARANTINE]) if quarantine and QUARANTINE in warehouse else None
    return out


def _compare_table(
    spec: TableSpec,
    expected: Rows,
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_columns: frozenset[str] = frozenset(),
    skip_orders: frozenset[str] = frozenset(),
    extra_note: Mapping[str, str] | None = None,
    extra_default: str = "not in the truth",
) -> list[str]:
    diffs: list[str] = []
    compared = [c for c in spec.kinds if c not in skip_columns]
    present = {c for row in rows for c in row}
    if rows and spec.strict_columns:
        for column in sorted(present - set(spec.kinds) - BOOKKEEPING - skip_columns):
            diffs.append(
                f"{spec.name}: column {column} is not in the data dictionary "
                "(the oracle does not know it: add it to docs/data-dictionary.md and tests/oracle.py)"
            )
    if rows:
        for column in (c for c in compared if c not in present):
            diffs.append(f"{spec.name}: column {column} is missing from the warehouse rows")
    got: Rows = {}
    for row in rows:
        key = _key(spec, row)
        if key in got:
            diffs.append(f"{spec.name} {_key_text(key)}: the warehouse holds this key twice")
        got[key] = dict(row)
    got = {k: v for k, v in got.items() if k[0] not in skip_orders}
    exp = {k: v for k, v in expected.items() if k[0] not in skip_orders}
    for key in sorted(exp.keys() - got.keys(), key=_key_text):
        diffs.append(f"{spec.name} {_key_text(key)}: missing from the warehouse")
    for key in sorted(got.keys() - exp.keys(), key=_key_text):
        note = (extra_note or {}).get(key[0], extra_default)
        diffs.append(f"{spec.name} {_key_text(key)}: in the warehouse but {note}")
    for key in sorted(exp.keys() & got.keys(), key=_key_text):
        want, have = exp[key], got[key]
        for column in compared:
            if column not in want or column not in have:
                continue
            kind = spec.kinds[column]
            if _equal(kind, want[column], have[column]):
                continue
            if spec.pii:
                if have[column] is None:
                    detail = "is NULL, the truth has a value"
                elif want[column] is None:
                    detail = "has a value, the truth has none"
                else:
                    detail = "differs from the truth"
                diffs.append(f"{spec.name} {_key_text(key)}: {column} {detail} (values not shown: PII)")
            else:
                diffs.append(
                    f"{spec.name} {_key_text(key)}: {column} is {_show(kind, have[column])}, "
                    f"truth {_show(kind, want[column])}"
                )
    return diffs


def _quarantine_rows(truth: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The quarantine rows to compare: open ones (and any row of an expected order), with the rows of
    records served without a usable ``orderId`` keyed by their bad-record id.

    The warehouse cannot know the id of a record that arrived without one, so it keys such a row by
    something else: rows whose key is not an Amazon order id (``3-7-7`` digits) and names no truth
    record stand in, in order, for the bad records the truth served without their ``orderId``.
    """
    quarantined = _quarantined(truth)
    served_ids = {_obj(o).get("orderId") for o in _list(truth.get("orders"))}
    kept = [r for r in rows if r.get("resolved_at") is None or r.get("order_id") in quarantined]
    anonymous = sorted(oid for oid in quarantined if oid not in served_ids)
    stand_ins = sorted(
        (
            r
            for r in kept
            if r.get("order_id") not in served_ids | set(quarantined)
            and not AMAZON_ORDER_ID.fullmatch(str(r.get("order_id")))
        ),
        key=lambda r: str(r.get("order_id")),
    )
    paired = [{**row, "order_id": oid} for oid, row in zip(anonymous, stand_ins, strict=False)]
    unpaired = stand_ins[len(paired) :]
    return [r for r in kept if not any(r is s for s in stand_ins)] + paired + unpaired


def compare(
    truth: Mapping[str, Any],
    warehouse: Any,
    *,
    api_version: str = V2026,
    include_pii: bool = False,
    observed: Sequence[Mapping[str, Any]] | None = None,
    limit: int = 30,
) -> list[str]:
    """Differences between the warehouse and what syncing ``truth`` must give (empty list: equal).

    ``warehouse`` is a ``selling_partner.warehouse.Warehouse`` (read with its ``fetch_*`` methods)
    or a mapping ``{table name: [row dicts]}`` typed like ``fetch_*`` returns them (e.g.
    ``warehouse_rows(wh, seller_id=...)`` for one seller of a shared warehouse). At most ``limit``
    messages, then one line counting the rest.
    """
    if (
        include_pii
        and truth.get("orders")
        and not any("buyer" in _obj(o) or "recipient" in _obj(o) for o in _list(truth.get("orders")))
    ):
        raise ValueError(
            "include_pii=True but the truth carries no buyer data: /_sandbox/truth omits BUYER and "
            "RECIPIENT; merge them into the truth from getOrder(includedData=BUYER,RECIPIENT) first"
        )
    expected = expected_rows(truth, api_version=api_version, include_pii=include_pii, observed=observed)
    actual = _read(warehouse, quarantine=QUARANTINE in expected)
    skip = NOT_COMPARABLE[api_version]
    quarantined = _quarantined(truth)
    notes = {
        oid: f"the truth expects it quarantined ({entry.get('kind', 'bad record')})"
        for oid, entry in quarantined.items()
    }

    orders = actual[ORDERS] or []
    got_ids = {row.get("order_id") for row in orders}
    exp_ids = {key[0] for key in expected[ORDERS]}
    unmatched = frozenset(got_ids ^ exp_ids)
    diffs = _compare_table(
        TABLES[ORDERS], expected[ORDERS], orders, skip_columns=skip.get(ORDERS, frozenset()), extra_note=notes
    )
    for table in DATA_TABLES[1:]:
        diffs += _compare_table(
            TABLES[table],
            expected[table],
            actual[table] or [],
            skip_columns=skip.get(table, frozenset()),
            skip_orders=unmatched,
        )
    if QUARANTINE in expected and actual[QUARANTINE] is not None:
        diffs += _compare_table(
            TABLES[QUARANTINE],
            expected[QUARANTINE],
            _quarantine_rows(truth, actual[QUARANTINE]),
            extra_default="no bad record of the truth expects it",
        )
    if len(diffs) > limit:
        diffs = [*diffs[:limit], f"... and {len(diffs) - limit} more differences"]
    return diffs


# --- the event path's view ---------------------------------------------------------------------
#
# What the event path must leave behind, from two things Amazon knows: the notifications it published
# (``POST /_sandbox/advance`` reports each one: ``order_id``, ``notification_type``,
# ``notification_id``, ``time`` = the change's time = the order's new lastUpdatedTime, ``order_status``
# = the v2026 status the change left the order in, and for FBA_OUTBOUND_SHIPMENT_STATUS
# ``shipment_id`` / ``shipment_status``) and the final truth. Per the data dictionary ("Event path",
# "How rows change"):
#
# * ``sp_orders`` / items / packages: each notified order once enriched is its final truth record
#   (getOrder serves what searchOrders serves), ``source`` ``event`` (``sync`` when a sweep loaded
#   that version first and the enrichment skipped it). Before enrichment (``enriched=False``) only the
#   status columns are known: the newest notification's status and time, ``source`` ``summary``,
#   ``is_complete`` and ``status_from_complete`` false, and no items or packages are compared.
# * ``sp_order_status_history``: one row per (order, status, change time) of every ORDER_CHANGE,
#   ``source`` ``summary`` (the notification observed it first), plus the final record's version
#   (``source`` of its loader unless a notification already observed it); ``packages_delivered`` is
#   known only for the version a complete record was loaded at.
# * ``sp_fba_shipment_status``: per (order, shipment) the newest FBA notification.
# * ``sp_notification_inbox``: every delivered NotificationId once, applied (``processed_at`` set),
#   ``event_time`` and ``publish_time`` the change's time.

FBA = "sp_fba_shipment_status"
INBOX = "sp_notification_inbox"
NOTIFICATION_QUARANTINE = "sp_notification_quarantine"
ORDER_CHANGE = "ORDER_CHANGE"
FBA_OUTBOUND_SHIPMENT_STATUS = "FBA_OUTBOUND_SHIPMENT_STATUS"
#: The tables the event path fills, in report order.
EVENT_TABLES = (ORDERS, ITEMS, PACKAGES, HISTORY, FBA, INBOX)
#: The status columns of ``sp_orders`` (what a summary alone can tell).
STATUS_COLUMNS = ("order_status", "last_updated_time", "source", "status_from_complete")
A_TIME = Check("a time", lambda v: isinstance(v, datetime) and v.utcoffset() is not None)

TABLES[FBA] = TableSpec(
    FBA,
    ("order_id", "shipment_id"),
    _kinds(
        "order_id:text shipment_id:text shipment_status:text event_time:time seller_id:text "
        "notification_id:text"
    ),
)
TABLES[INBOX] = TableSpec(
    INBOX,
    ("notification_id",),
    _kinds(
        "notification_id:text notification_type:text order_id:text seller_id:text event_time:time "
        "publish_time:time conn_id:text processed_at:time"
    ),
    strict_columns=False,  # message_id, payload, received_at: delivery bookkeeping
)


def _newest(notifications: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """order_id -> its ORDER_CHANGE with the newest change time."""
    out: dict[str, Mapping[str, Any]] = {}
    for n in notifications:
        if n.get("notification_type") != ORDER_CHANGE:
            continue
        best = out.get(n["order_id"])
        if best is None or parse_time(n["time"]) > parse_time(best["time"]):  # type: ignore[operator]
            out[n["order_id"]] = n
    return out


def _unfetchable(truth: Mapping[str, Any], wanted: Iterable[str], not_found: Iterable[str]) -> set[str]:
    """The wanted orders enrichment cannot load: unknown to Amazon, or bad records to quarantine."""
    wanted = set(wanted)
    return (wanted & set(not_found)) | (wanted & set(_quarantined(truth)))


def event_expected_rows(
    truth: Mapping[str, Any],
    notifications: Iterable[Mapping[str, Any]],
    *,
    api_version: str = V2026,
    seller_id: str | None = None,
    conn_id: str | None = None,
    enriched: bool = True,
    source: str | Mapping[str, str] = "event",
    order_ids: Iterable[str] | None = None,
    not_found: Iterable[str] = (),
) -> dict[str, Rows]:
    """The rows each event table should hold after the event path took ``notifications`` (the
    delivered ones of this seller, duplicates allowed) and, when ``enriched``, fetched every order.

    ``source`` is who loaded each order's final record (one value, or per order id; default
    ``event``); ``order_ids`` the orders expected in ``sp_orders`` (default: the notified ones; a
    sweep adds the rest of the truth); ``conn_id`` the seller connection the inbox rows name;
    ``not_found`` notified orders Amazon does not know (getOrder answers 404). Those, and the truth's
    bad records to quarantine, cannot be enriched: they keep their summary (status columns only) and
    have an open ``sp_order_quarantine`` row of source ``enrich``; with ``enriched`` that table holds
    nothing else of this seller.
    """
    if api_version not in API_VERSIONS:
        raise ValueError(f"api_version must be one of {API_VERSIONS}, got {api_version!r}")
    seller = seller_id if seller_id is not None else truth.get("seller_id")
    notes = list({n["notification_id"]: n for n in notifications}.values())
    notified = {n["order_id"] for n in notes}
    wanted = set(order_ids) if order_ids is not None else notified
    out: dict[str, Rows] = {table: {} for table in EVENT_TABLES}

    def loader(order_id: str) -> str:
        return source if isinstance(source, str) else source.get(order_id, "event")

    history = out[HISTORY]
    for n in notes:
        if n["notification_type"] == ORDER_CHANGE:
            row = {
                "order_id": n["order_id"],
                "last_updated_time": parse_time(n["time"]),
                "order_status": n["order_status"],
                "packages_delivered": False,
                "source": "summary",
            }
            history[_key(TABLES[HISTORY], row)] = row
    unfetchable = _unfetchable(truth, wanted, not_found) if enriched else wanted
    if enriched:
        truth_by_id = {raw["orderId"]: raw for raw in _loadable(truth)}
        missing = sorted(wanted - unfetchable - truth_by_id.keys())
        if missing:
            raise ValueError(f"notified orders missing from the truth: {missing[:5]}")
        out[QUARANTINE] = {
            (oid, "enrich"): {
                "order_id": oid,
                "source": "enrich",
                "reason": NON_EMPTY_TEXT,
                "attempts": AT_LEAST_ONE,
                "resolved_at": None,
            }
            for oid in unfetchable
        }
        for order_id in sorted(wanted - unfetchable):
            rows = _order_rows(truth_by_id[order_id], api_version=api_version, seller_id=seller)
            rows[ORDERS][0]["source"] = loader(order_id)
            for table in (ORDERS, ITEMS, PACKAGES):
                for row in rows[table]:
                    out[table][_key(TABLES[table], row)] = row
            final = {**rows[HISTORY][0], "source": loader(order_id)}
            key = _key(TABLES[HISTORY], final)
            if key in history:  # a notification observed this version first
                final["source"] = history[key]["source"]
            history[key] = final
    newest = _newest(notes)
    for order_id in sorted(unfetchable & newest.keys()):
        n = newest[order_id]
        out[ORDERS][(order_id,)] = {
            "order_id": order_id,
            "seller_id": seller,
            "order_status": n["order_status"],
            "last_updated_time": parse_time(n["time"]),
            "source": "summary",
            "status_from_complete": False,
            "is_complete": False,
        }
    fba: Rows = out[FBA]
    for n in notes:
        if n["notification_type"] != FBA_OUTBOUND_SHIPMENT_STATUS:
            continue
        row = {
            "order_id": n["order_id"],
            "shipment_id": n["shipment_id"],
            "shipment_status": n["shipment_status"],
            "event_time": parse_time(n["time"]),
            "seller_id": seller,
            "notification_id": n["notification_id"],
        }
        key = _key(TABLES[FBA], row)
        if key not in fba or row["event_time"] > fba[key]["event_time"]:
            fba[key] = row
    for n in notes:
        out[INBOX][(n["notification_id"],)] = {
            "notification_id": n["notification_id"],
            "notification_type": n["notification_type"],
            "order_id": n["order_id"],
            "seller_id": seller,
            "event_time": parse_time(n["time"]),
            "publish_time": parse_time(n["time"]),
            "conn_id": conn_id,
            "processed_at": A_TIME,
        }
    if conn_id is None:
        for row in out[INBOX].values():
            row.pop("conn_id")
    return out


def event_warehouse_rows(warehouse: Any, *, seller_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The event tables read with a ``Warehouse``'s ``fetch_*`` methods, optionally of one seller
    (``sp_orders`` / inbox / FBA rows by their ``seller_id``, child rows by their order)."""
    rows: dict[str, list[dict[str, Any]]] = {
        ORDERS: warehouse.fetch_orders(),
        ITEMS: warehouse.fetch_items(),
        PACKAGES: warehouse.fetch_packages(),
        HISTORY: warehouse.fetch_status_history(),
        FBA: warehouse.fetch_fba_shipment_status(),
        INBOX: warehouse.fetch_inbox(),
        QUARANTINE: warehouse.fetch_order_quarantine(),
    }
    if seller_id is None:
        return rows
    mine = {r["order_id"] for r in rows[ORDERS] if r.get("seller_id") == seller_id}
    mine |= {r["order_id"] for r in rows[INBOX] if r.get("seller_id") == seller_id}
    out = {t: [r for r in rows[t] if r.get("order_id") in mine] for t in (ORDERS, ITEMS, PACKAGES, HISTORY)}
    for table in (FBA, INBOX, QUARANTINE):
        out[table] = [r for r in rows[table] if r.get("seller_id") == seller_id]
    return out


def compare_events(
    truth: Mapping[str, Any],
    notifications: Iterable[Mapping[str, Any]],
    warehouse: Any,
    *,
    api_version: str = V2026,
    seller_id: str | None = None,
    conn_id: str | None = None,
    enriched: bool = True,
    source: str | Mapping[str, str] = "event",
    order_ids: Iterable[str] | None = None,
    not_found: Iterable[str] = (),
    limit: int = 30,
) -> list[str]:
    """Differences between the event tables and what the event path must give (empty list: equal).

    ``warehouse`` is a ``Warehouse`` or ``{table: rows}`` (e.g. ``event_warehouse_rows(wh,
    seller_id=...)`` for one seller of a shared warehouse); see :func:`event_expected_rows` for the
    other arguments. Before enrichment only the status columns of ``sp_orders`` are compared.
    """
    seller = seller_id if seller_id is not None else truth.get("seller_id")
    expected = event_expected_rows(
        truth,
        notifications,
        api_version=api_version,
        seller_id=seller,
        conn_id=conn_id,
        enriched=enriched,
        source=source,
        order_ids=order_ids,
        not_found=not_found,
    )
    if hasattr(warehouse, "fetch_orders"):
        warehouse = event_warehouse_rows(warehouse, seller_id=seller)
    actual = {t: list(warehouse.get(t) or ()) for t in (*EVENT_TABLES, QUARANTINE)}
    skip = dict(NOT_COMPARABLE[api_version])
    status_only = frozenset(TABLES[ORDERS].kinds) - {"order_id", "seller_id", "is_complete", *STATUS_COLUMNS}
    if conn_id is None:
        skip[INBOX] = frozenset({"conn_id"})
    # Orders known only from their summaries (all of them before enrichment): status columns only.
    summary_only = {k[0] for k, row in expected[ORDERS].items() if row.get("source") == "summary"}
    unmatched = frozenset({r.get("order_id") for r in actual[ORDERS]} ^ {k[0] for k in expected[ORDERS]})
    diffs: list[str] = []
    for part, columns in ((False, skip.get(ORDERS, frozenset())), (True, status_only)):
        diffs += _compare_table(
            TABLES[ORDERS],
            {k: v for k, v in expected[ORDERS].items() if (k[0] in summary_only) is part},
            [r for r in actual[ORDERS] if (r.get("order_id") in summary_only) is part],
            skip_columns=columns,
        )
    for table in (ITEMS, PACKAGES):
        if enriched:
            diffs += _compare_table(
                TABLES[table], expected[table], actual[table], skip_orders=unmatched | summary_only
            )
    for table in (HISTORY, FBA, INBOX):
        diffs += _compare_table(
            TABLES[table], expected[table], actual[table], skip_columns=skip.get(table, frozenset())
        )
    if QUARANTINE in expected and QUARANTINE in warehouse:
        diffs += _compare_table(TABLES[QUARANTINE], expected[QUARANTINE], actual[QUARANTINE])
    if len(diffs) > limit:
        diffs = [*diffs[:limit], f"... and {len(diffs) - limit} more differences"]
    return diffs


def compare_notification_quarantine(
    noise: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, served_sellers: Iterable[str] = ()
) -> list[str]:
    """Differences between ``sp_notification_quarantine`` rows and the noise the sandbox published
    (``advance``'s ``noise``, merged over calls): every poison body that can travel through SQS (not
    empty) is kept as sent with a reason; every foreign-seller notification (a seller not in
    ``served_sellers``) is kept under its NotificationId with a reason naming the seller; nothing else.
    """
    diffs: list[str] = []
    served = set(served_sellers)
    poison = {b for b in _list(noise.get("poison")) if isinstance(b, str) and b}
    foreign = {
        _obj(f)["notification_id"]: _obj(f)["seller_id"]
        for f in _list(noise.get("foreign_seller"))
        if _obj(f).get("seller_id") not in served
    }
    by_body = {r.get("raw_body"): r for r in rows}
    for body in sorted(poison):
        row = by_body.get(body)
        if row is None:
            diffs.append(f"{NOTIFICATION_QUARANTINE}: poison body {body[:60]!r} is missing")
        elif not NON_EMPTY_TEXT.test(row.get("reason")):
            diffs.append(f"{NOTIFICATION_QUARANTINE}: poison body {body[:60]!r} has no reason")
    for nid, seller in sorted(foreign.items()):
        found = [r for r in rows if r.get("notification_id") == nid]
        if not found:
            diffs.append(f"{NOTIFICATION_QUARANTINE}: foreign-seller notification {nid} is missing")
        for r in found:
            if seller not in str(r.get("reason") or ""):
                diffs.append(
                    f"{NOTIFICATION_QUARANTINE} {nid}: reason {r.get('reason')!r} does not name {seller}"
                )
    for r in rows:
        if r.get("raw_body") not in poison and r.get("notification_id") not in foreign:
            diffs.append(
                f"{NOTIFICATION_QUARANTINE}: {str(r.get('raw_body'))[:60]!r} quarantined ({r.get('reason')}) "
                "but it is no noise the sandbox sent"
            )
    return diffs
