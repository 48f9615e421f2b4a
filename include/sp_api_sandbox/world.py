"""The sandbox's order world: a seeded, evolving set of one seller's orders (the simulation only).

``World`` generates ``config.orders`` orders over the last ``config.days`` days (AFN and MFN, the
marketplaces of one region, realistic statuses by age, items, prices, taxes, promotions, packages
and obviously fake buyers), answers searches and moves on with ``advance()``, which returns the
``Change`` of each order it touched. How an order looks on the wire is not its business: the
renderers in ``sp_api_sandbox.render`` turn a ``SimOrder`` into Orders v2026-01-01 and v0 JSON and a
``Change`` into notifications.

Rules of the simulation that the renderers rely on:

* every time is a whole second of UTC, and none lies in the future (only the promised ship and
  delivery windows do); an order's successive versions have strictly increasing lastUpdatedTime;
* money is per line (unit price x quantity) in the currency's decimals (JPY none);
* Pending orders carry no prices (``SimOrder.priced``); cancelled orders have nothing left to ship;
* a shipping address exists only for Unshipped, PartiallyShipped, Shipped and InvoiceUnconfirmed
  orders (``SimOrder.has_shipping_address``); packages only for merchant-fulfilled orders.

The world is deterministic for a seed and a clock; it is not thread-safe (the server locks).
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import random
import string
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sp_api_sandbox.render.formats import api_time, quantize
from sp_api_sandbox.world_data import (
    BUYER_CANCEL_REASONS,
    CARRIERS,
    COMPANIES,
    COUNTRIES,
    CURRENCY_FACTOR,
    FIRST_NAMES,
    INCLUDED_DATA,
    LAST_NAMES,
    MARKETPLACE_WEIGHTS,
    ORDER_ID_PREFIXES,
    PRODUCT_ADJECTIVES,
    PRODUCT_NOUNS,
    PRODUCT_VARIANTS,
    PROMOTION_IDS,
    REGIONS,
    SERVICE_LEVELS,
    STREETS,
    TAX_RATE,
    TRUTH_INCLUDED_DATA,
    V0_TO_V2026,
)

__all__ = [
    "FOREIGN_SELLER_ID",
    "INCLUDED_DATA",
    "REGIONS",
    "TRUTH_INCLUDED_DATA",
    "V0_TO_V2026",
    "V2026_TO_V0",
    "Change",
    "SimBuyer",
    "SimItem",
    "SimOrder",
    "SimPackage",
    "World",
    "WorldConfig",
    "iso",
]

#: v2026 fulfillment status -> the v0 OrderStatus values that map to it (the inverse of V0_TO_V2026).
V2026_TO_V0: dict[str, tuple[str, ...]] = {
    v2026: tuple(v0 for v0, s in V0_TO_V2026.items() if s == v2026)
    for v2026 in dict.fromkeys(V0_TO_V2026.values())
}
#: The Orders APIs' time format (kept here for callers of ``world.iso``; see ``render.formats``).
iso = api_time

_FULFILLED_BY_CHANNEL = {"AMAZON": "AFN", "MERCHANT": "MFN"}
_ADDRESS_STATUSES = frozenset({"Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed"})
_UNPRICED_STATUSES = frozenset({"Pending"})
_TRANSIT_DAYS = {
    "NEXT_DAY": (1, 1),
    "SECOND_DAY": (1, 2),
    "EXPEDITED": (2, 4),
    "STANDARD": (3, 7),
    "FREE_ECONOMY": (5, 10),
}
_SECOND = timedelta(seconds=1)
_ZERO = Decimal(0)
_ALNUM = string.ascii_uppercase + string.digits
_LOWER_ALNUM = string.ascii_lowercase + string.digits
#: The seller of the foreign-seller notifications (a shared queue's noise).
FOREIGN_SELLER_ID = "A2FOREIGNSELLER9"


def floor_second(dt: datetime) -> datetime:
    """``dt`` without its fraction of a second."""
    return dt.replace(microsecond=0)


def ceil_second(dt: datetime) -> datetime:
    """The first whole second at or after ``dt``."""
    whole = dt.replace(microsecond=0)
    return whole if whole == dt else whole + _SECOND


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def _weighted(rng: random.Random, values: tuple, cum: tuple[float, ...]) -> Any:
    """One of ``values`` by cumulative weights (a faster ``rng.choices(...)[0]``)."""
    return values[bisect.bisect(cum, rng.random() * cum[-1])]


def _pick(rng: random.Random, values: Sequence[Any]) -> Any:
    """One of ``values`` (a faster ``rng.choice``)."""
    return values[int(rng.random() * len(values))]


def _token(rng: random.Random, alphabet: str, k: int) -> str:
    """``k`` characters of ``alphabet`` (a faster ``"".join(rng.choices(alphabet, k=k))``)."""
    n = len(alphabet)
    return "".join([alphabet[int(rng.random() * n)] for _ in range(k)])


def _num(rng: random.Random, digits: int) -> str:
    """A zero-padded random number of ``digits`` digits."""
    return f"{int(rng.random() * 10**digits):0{digits}d}"


def _fill(rng: random.Random, pattern: str) -> str:
    """Fill a format: ``#`` a digit, ``A`` an upper-case letter, anything else kept."""
    out = []
    for ch in pattern:
        if ch == "#":
            out.append("0123456789"[int(rng.random() * 10)])
        elif ch == "A":
            out.append(string.ascii_uppercase[int(rng.random() * 26)])
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class WorldConfig:
    """What world to generate: ``orders`` orders over the last ``days`` days of one ``region``."""

    seed: int = 7
    orders: int = 2000
    days: int = 30
    region: str = "na"

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"region must be one of {sorted(REGIONS)}, got {self.region!r}")
        if self.orders < 0:
            raise ValueError("orders must be >= 0")
        if self.days <= 0:
            raise ValueError("days must be > 0")


@dataclass(slots=True, eq=False)
class SimItem:
    """One order line. Money is per line (unit price x quantity) except ``unit_price``."""

    order_item_id: str
    asin: str
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    item_tax: Decimal
    shipping_price: Decimal
    shipping_tax: Decimal
    promotion_discount: Decimal
    promotion_ids: tuple[str, ...]
    condition: tuple[str, str]  # v2026 (conditionType, conditionSubtype)
    is_gift: bool = False
    points: int = 0  # JP: Amazon points granted
    shipped: int = 0
    cancel_requested: bool = False
    cancel_reason: str | None = None

    @property
    def item_price(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def total(self) -> Decimal:
        return (
            self.item_price
            + self.shipping_price
            + self.item_tax
            + self.shipping_tax
            - self.promotion_discount
        )


@dataclass(slots=True, eq=False)
class SimPackage:
    """One FBM package with tracking."""

    reference_id: str
    carrier: str
    shipping_service: str
    tracking_number: str
    created_time: datetime
    ship_time: datetime
    status: str  # PackageStatus.status
    detailed_status: str
    items: tuple[tuple[str, int], ...]  # (order_item_id, quantity)


@dataclass(slots=True, eq=False)
class SimBuyer:
    """Fake buyer and shipping address (restricted data: render only on request)."""

    name: str
    email: str
    company: str | None
    po_number: str | None
    line1: str
    line2: str | None
    city: str
    state: str
    postal_code: str
    country: str
    phone: str
    address_type: str  # RESIDENTIAL | COMMERCIAL


@dataclass(slots=True, eq=False)
class SimOrder:
    """The true current state of one order."""

    order_id: str
    marketplace_id: str
    marketplace_name: str
    currency: str
    country: str
    fulfilled_by: str  # MERCHANT | AMAZON
    v0_status: str
    created_time: datetime
    last_updated_time: datetime
    order_type: str
    programs: tuple[str, ...]
    service_level: str
    ship_by: tuple[datetime, datetime]
    deliver_by: tuple[datetime, datetime]
    items: list[SimItem]
    buyer: SimBuyer
    seller_order_id: str
    payment_method: str = "Other"
    packages: list[SimPackage] = field(default_factory=list)
    shipment_id: str | None = None  # AFN outbound shipment, once created
    replaced_order_id: str | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    release_time: datetime | None = None  # pre-orders

    @property
    def status(self) -> str:
        """v2026 fulfillment status."""
        return V0_TO_V2026[self.v0_status]

    @property
    def fulfillment_channel(self) -> str:
        """v0 FulfillmentChannel (AFN | MFN)."""
        return _FULFILLED_BY_CHANNEL[self.fulfilled_by]

    @property
    def merchant_fulfilled(self) -> bool:
        """FBM: the seller ships, so Amazon shares the buyer's e-mail and phone and tracks packages."""
        return self.fulfilled_by == "MERCHANT"

    @property
    def priced(self) -> bool:
        """False while Pending: Amazon shows no prices before payment."""
        return self.v0_status not in _UNPRICED_STATUSES

    @property
    def has_shipping_address(self) -> bool:
        return self.v0_status in _ADDRESS_STATUSES

    @property
    def units_shipped(self) -> int:
        return sum(i.shipped for i in self.items)

    def item_unshipped(self, item: SimItem) -> int:
        return 0 if self.v0_status == "Canceled" else item.quantity - item.shipped

    @property
    def units_unshipped(self) -> int:
        return sum(self.item_unshipped(i) for i in self.items)

    @property
    def total(self) -> Decimal:
        return sum((i.total for i in self.items), _ZERO)

    def snapshot(self) -> SimOrder:
        """A copy of this state that later changes do not touch (items and packages copied too)."""
        return dataclasses.replace(
            self,
            items=[dataclasses.replace(i) for i in self.items],
            packages=[dataclasses.replace(p) for p in self.packages],
        )


@dataclass
class Change:
    """One change advance() made: ``kind`` is created, status, cancel_request, shipped, delivered or
    cancelled; ``time`` is the order's new lastUpdatedTime; ``state`` is the order as the change left
    it (a snapshot: a notification rendered later still describes this moment)."""

    order_id: str
    kind: str
    time: datetime
    reason: str = ""
    fba_shipment_status: str | None = None  # Created | Cancelled for AFN shipments
    state: SimOrder | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class _Product:
    asin: str
    sku: str
    title: str
    usd_price: Decimal


class World:
    """A seeded, evolving set of orders of one seller in one region."""

    def __init__(self, config: WorldConfig, *, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self._clock = clock or (lambda: datetime.now(UTC))
        region = REGIONS[config.region]
        self.region: str = config.region
        self.seller_id: str = region["seller_id"]
        self.marketplace_ids: list[str] = list(region["marketplaces"])
        self._marketplaces: dict[str, tuple[str, str, str]] = dict(region["marketplaces"])
        self._mp_tuple = tuple(self.marketplace_ids)
        self._mp_cum = tuple(itertools.accumulate(MARKETPLACE_WEIGHTS[config.region]))
        #: advance() stamps changes (whole seconds) no earlier than this span before now, and no
        #: earlier than earlier stamps. Like Amazon's eventual consistency, a change may thus be dated
        #: slightly before it becomes visible; a reader that keeps ``...Before`` at least this far
        #: behind now never misses one.
        self.change_spread = timedelta(seconds=1)
        self._rng = random.Random(config.seed)
        self._orders: dict[str, SimOrder] = {}
        self._item_ids: set[str] = set()
        self._catalogue = self._make_catalogue()
        self._cat_cum = tuple(
            itertools.accumulate(1.0 / (rank + 1) ** 0.8 for rank in range(len(self._catalogue)))
        )
        self._levels = tuple(SERVICE_LEVELS)
        self._level_cum = tuple(itertools.accumulate(v[2] for v in SERVICE_LEVELS.values()))
        #: the clock when the world was generated (a whole second)
        self.started: datetime = floor_second(self.now())
        now = self.started
        span_ms = int(config.days * 86_400_000)
        recent_ms = min(span_ms, 12 * 3_600_000)  # a busier last half day, so every status is present
        rand = self._rng.random
        offsets = sorted(
            (1 + int(rand() * ((recent_ms if rand() < 0.08 else span_ms) - 1)) for _ in range(config.orders)),
            reverse=True,
        )
        for offset in offsets:
            created = floor_second(now - timedelta(milliseconds=offset))
            order = self._new_order(created)
            self._simulate(order, now)
            self._orders[order.order_id] = order
        self._by_created = sorted((o.created_time, o.order_id) for o in self._orders.values())
        self._by_updated = sorted((o.last_updated_time, o.order_id) for o in self._orders.values())
        self._high_water = self._by_updated[-1][0] if self._by_updated else now - self.change_spread
        #: orders that can still change, in a deterministic order
        self._active: dict[str, None] = {
            o.order_id: None for o in self._orders.values() if self._next_moves(o)
        }

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[SimOrder]:
        """Every order, oldest first (then the ones advance() created)."""
        return iter(self._orders.values())

    def get(self, order_id: str) -> SimOrder | None:
        """The order with this id, or None."""
        return self._orders.get(order_id)

    def search(
        self,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        last_updated_after: datetime | None = None,
        last_updated_before: datetime | None = None,
        fulfillment_statuses: Collection[str] | None = None,
        marketplace_ids: Collection[str] | None = None,
        fulfilled_by: str | Collection[str] | None = None,
    ) -> list[SimOrder]:
        """Orders matching every filter given. ``...After`` is inclusive, ``...Before`` exclusive;
        sorted by (lastUpdatedTime if a lastUpdated filter is given else createdTime, orderId)."""
        for name, value in (
            ("created_after", created_after),
            ("created_before", created_before),
            ("last_updated_after", last_updated_after),
            ("last_updated_before", last_updated_before),
        ):
            _aware(name, value)
        if last_updated_after is not None or last_updated_before is not None:
            index, lo, hi = self._by_updated, last_updated_after, last_updated_before
        else:
            index, lo, hi = self._by_created, created_after, created_before
        start = bisect.bisect_left(index, (lo,)) if lo is not None else 0
        end = bisect.bisect_left(index, (hi,)) if hi is not None else len(index)
        statuses = set(fulfillment_statuses) if fulfillment_statuses else None
        if statuses:
            unknown = statuses - set(V2026_TO_V0)
            if unknown:
                raise ValueError(f"unknown fulfillment statuses: {sorted(unknown)}")
        markets = set(marketplace_ids) if marketplace_ids else None
        if isinstance(fulfilled_by, str):
            fulfilled_by = {fulfilled_by}
        channels = set(fulfilled_by) if fulfilled_by else None
        out: list[SimOrder] = []
        orders = self._orders
        for _, order_id in index[start:end]:
            order = orders[order_id]
            if statuses is not None and order.status not in statuses:
                continue
            if markets is not None and order.marketplace_id not in markets:
                continue
            if channels is not None and order.fulfilled_by not in channels:
                continue
            if created_after is not None and order.created_time < created_after:
                continue
            if created_before is not None and order.created_time >= created_before:
                continue
            out.append(order)
        return out

    def now(self) -> datetime:
        """The world's clock, as an aware UTC datetime (with its fraction of a second)."""
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the world's clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    # ------------------------------------------------------------------ generation

    def _make_catalogue(self) -> list[_Product]:
        rng = self._rng
        products: list[_Product] = []
        asins: set[str] = set()
        for n in range(150):
            adjective = _pick(rng, PRODUCT_ADJECTIVES)
            noun, code = _pick(rng, PRODUCT_NOUNS)
            colour, colour_code = _pick(rng, PRODUCT_VARIANTS)
            asin = "B0" + "".join(rng.choices(_ALNUM, k=8))
            while asin in asins:
                asin = "B0" + "".join(rng.choices(_ALNUM, k=8))
            asins.add(asin)
            price = (
                Decimal(rng.randrange(6, 120)) + Decimal("0.99")
                if rng.random() < 0.8
                else Decimal(rng.randrange(8, 60))
            )
            products.append(
                _Product(asin, f"{code}-{colour_code}-{n:03d}", f"{adjective} {noun}, {colour}", price)
            )
        return products

    def _new_order_id(self, country: str) -> str:
        rng = self._rng
        prefixes = ORDER_ID_PREFIXES[country]
        while True:
            order_id = f"{_pick(rng, prefixes)}-{_num(rng, 7)}-{_num(rng, 7)}"
            if order_id not in self._orders:
                return order_id

    def _new_item_id(self) -> str:
        while True:
            item_id = str(10**13 + int(self._rng.random() * 9 * 10**13))
            if item_id not in self._item_ids:
                self._item_ids.add(item_id)
                return item_id

    def _new_buyer(self, country: str, business: bool) -> SimBuyer:
        rng = self._rng
        domain, phone_prefix, cities = COUNTRIES[country]
        city, state, postal = _pick(rng, cities)
        name = f"{_pick(rng, FIRST_NAMES)} {_pick(rng, LAST_NAMES)}"
        email = _token(rng, _LOWER_ALNUM, 15) + "@" + domain
        company = _pick(rng, COMPANIES) if business else None
        return SimBuyer(
            name=name,
            email=email,
            company=company,
            po_number=f"PO-{_num(rng, 6)}" if business and rng.random() < 0.6 else None,
            line1=f"{1 + int(rng.random() * 998)} {_pick(rng, STREETS)}",
            line2=f"Unit {1 + int(rng.random() * 98)}" if rng.random() < 0.2 else None,
            city=city,
            state=state,
            postal_code=_fill(rng, postal),
            country=country,
            phone=f"{phone_prefix}{_num(rng, 2)}",
            address_type="COMMERCIAL" if business else "RESIDENTIAL",
        )

    def _new_items(
        self, currency: str, country: str, fulfilled_by: str, prime: bool, business: bool
    ) -> list[SimItem]:
        rng = self._rng
        count = _weighted(rng, (1, 2, 3, 4), (70, 90, 97, 100))
        picked: list[_Product] = []
        while len(picked) < count:
            product = _weighted(rng, self._catalogue, self._cat_cum)
            if product not in picked:
                picked.append(product)
        factor = CURRENCY_FACTOR[currency]
        rate = TAX_RATE[country]
        items = []
        for product in picked:
            quantity = _weighted(rng, (1, 2, 3, 4, 5), (75, 90, 95, 98, 100))
            unit = product.usd_price * factor * (Decimal("0.95") if business else 1)
            if currency == "JPY":
                unit = (unit / 10).quantize(Decimal(1)) * 10
            unit = quantize(unit, currency)
            line = unit * quantity
            free_shipping = prime or (fulfilled_by == "AMAZON" and rng.random() < 0.7) or rng.random() < 0.4
            shipping = (
                _ZERO
                if free_shipping
                else quantize(Decimal(_pick(rng, ("3.99", "4.99", "5.99"))) * factor, currency)
            )
            discount = _ZERO
            promotions: tuple[str, ...] = ()
            if rng.random() < 0.12:
                promotions = (_pick(rng, PROMOTION_IDS),)
                discount = quantize(line * Decimal("0.10"), currency)
            condition = ("NEW", "NEW")
            roll = rng.random()
            if roll < 0.04:
                condition = ("USED", _pick(rng, ("VERY_GOOD", "GOOD", "ACCEPTABLE")))
            elif roll < 0.06:
                condition = ("REFURBISHED", "REFURBISHED")
            items.append(
                SimItem(
                    order_item_id=self._new_item_id(),
                    asin=product.asin,
                    sku=product.sku,
                    title=product.title,
                    quantity=quantity,
                    unit_price=unit,
                    item_tax=quantize((line - discount) * rate, currency),
                    shipping_price=shipping,
                    shipping_tax=quantize(shipping * rate, currency),
                    promotion_discount=discount,
                    promotion_ids=promotions,
                    condition=condition,
                    is_gift=rng.random() < 0.03,
                    points=int(line / 100) if currency == "JPY" else 0,
                )
            )
        return items

    def _new_order(self, created: datetime) -> SimOrder:
        """A fresh Pending (or PendingAvailability) order created at ``created``."""
        rng = self._rng
        marketplace_id = _weighted(rng, self._mp_tuple, self._mp_cum)
        name, currency, country = self._marketplaces[marketplace_id]
        fulfilled_by = "AMAZON" if rng.random() < 0.6 else "MERCHANT"
        order_id = self._new_order_id(country)
        programs: list[str] = []
        preorder = rng.random() < 0.015
        business = rng.random() < 0.07
        prime = rng.random() < (0.55 if fulfilled_by == "AMAZON" else 0.08)
        premium = rng.random() < 0.03
        if business:
            programs.append("AMAZON_BUSINESS")
        if premium:
            programs.append("PREMIUM")
        if preorder:
            programs.append("PREORDER")
        if prime:
            programs.append("PRIME")
        if premium:
            level = _pick(rng, ("NEXT_DAY", "SECOND_DAY"))
        elif prime:
            level = _pick(rng, ("NEXT_DAY", "SECOND_DAY", "STANDARD"))
        else:
            level = _weighted(rng, self._levels, self._level_cum)
        release = floor_second(created + timedelta(days=rng.uniform(2, 20))) if preorder else None
        base = release or created
        handling = 1 if fulfilled_by == "AMAZON" else _pick(rng, (1, 2, 2, 3))
        day0 = base.replace(hour=0, minute=0, second=0, microsecond=0)
        tmin, tmax = _TRANSIT_DAYS[level]
        ship_by = (base, day0 + timedelta(days=handling, hours=23, minutes=59, seconds=59))
        deliver_by = (
            day0 + timedelta(days=handling + tmin),
            day0 + timedelta(days=handling + tmax, hours=23, minutes=59, seconds=59),
        )
        payment = "Other"
        if country == "JP" and fulfilled_by == "MERCHANT":
            payment = _weighted(rng, ("Other", "COD", "CVS"), (88, 96, 100))
        replaced = None
        if self._orders and rng.random() < 0.005:
            replaced = _pick(rng, self._recent_ids())
        seller_order_id = order_id
        if fulfilled_by == "MERCHANT" and rng.random() < 0.3:
            seller_order_id = f"SO-{_num(rng, 7)}"
        return SimOrder(
            order_id=order_id,
            marketplace_id=marketplace_id,
            marketplace_name=name,
            currency=currency,
            country=country,
            fulfilled_by=fulfilled_by,
            v0_status="PendingAvailability" if preorder else "Pending",
            created_time=created,
            last_updated_time=created,
            order_type="Preorder" if preorder else "StandardOrder",
            programs=tuple(programs),
            service_level=level,
            ship_by=ship_by,
            deliver_by=deliver_by,
            items=self._new_items(currency, country, fulfilled_by, prime, business),
            buyer=self._new_buyer(country, business),
            seller_order_id=seller_order_id,
            payment_method=payment,
            replaced_order_id=replaced,
            release_time=release,
        )

    def _recent_ids(self) -> list[str]:
        ids = list(itertools.islice(reversed(self._orders), 50))
        return ids

    def _simulate(self, order: SimOrder, now: datetime) -> None:
        """Play an order's life from creation up to ``now`` (generation only)."""
        rng = self._rng

        def at(start: datetime, low_s: float, high_s: float) -> datetime:
            return floor_second(start + timedelta(seconds=rng.uniform(low_s, high_s)))

        t = order.created_time
        if order.release_time is not None:
            release = order.release_time
            if release > now:
                return
            self._release(order, release)
            t = release
        if order.payment_method == "CVS":
            paid = at(t, 86_400, 4 * 86_400)
        else:
            paid = floor_second(t + timedelta(seconds=60 + min(rng.expovariate(1 / 1800), 6 * 3600)))
        if rng.random() < 0.012:
            cancel_at = at(t, 30, (paid - t).total_seconds())
            if cancel_at <= now:
                self._cancel(order, cancel_at, "AMAZON", "Payment not authorized")
            return
        if paid > now:
            return
        self._pay(order, paid)
        amazon = order.fulfilled_by == "AMAZON"
        if amazon and rng.random() < 0.004:
            when = at(paid, 3600, 48 * 3600)
            if when <= now:
                self._unfulfillable(order, when)
            return
        delay = rng.uniform(2 * 3600, 30 * 3600) if amazon else rng.uniform(4 * 3600, 60 * 3600)
        ship_at = floor_second(paid + timedelta(seconds=delay))
        roll = rng.random()
        if roll < 0.035:
            requested = at(paid, 60, delay * 0.7)
            if requested > now:
                return
            self._request_cancel(order, requested, _pick(rng, BUYER_CANCEL_REASONS))
            if rng.random() < 0.8:
                cancelled = at(requested, 600, 12 * 3600)
                if cancelled <= now:
                    self._cancel(
                        order, cancelled, "AMAZON" if amazon else "MERCHANT", "Buyer requested cancellation"
                    )
                return
            ship_at = max(ship_at, requested + timedelta(hours=1))
        elif roll < 0.045:
            cancelled = at(paid, 3600, delay)
            if cancelled <= now:
                self._cancel(order, cancelled, "AMAZON" if amazon else "MERCHANT", "Out of stock")
            return
        if ship_at > now:
            return
        units = sum(i.quantity for i in order.items)
        if units > 1 and rng.random() < 0.2:
            self._ship(order, ship_at, self._partial_split(order), invoice=False)
            ship_at = at(ship_at, 12 * 3600, 72 * 3600)
            if ship_at > now:
                return
        invoice = not amazon and rng.random() < 0.1
        self._ship(order, ship_at, None, invoice=invoice)
        if invoice:
            confirmed = at(ship_at, 6 * 3600, 5 * 86_400)
            if confirmed > now:
                return
            self._confirm_invoice(order, confirmed)
            ship_at = confirmed
        if order.packages:
            delivered = at(ship_at, 86_400, 6 * 86_400)
            if delivered <= now:
                self._deliver(order, delivered)

    # ------------------------------------------------------------------ transitions

    def _touch(self, order: SimOrder, when: datetime) -> None:
        order.last_updated_time = when

    def _release(self, order: SimOrder, when: datetime) -> None:
        order.v0_status = "Pending"
        self._touch(order, when)

    def _pay(self, order: SimOrder, when: datetime) -> None:
        order.v0_status = "Unshipped"
        if order.fulfilled_by == "AMAZON":
            order.shipment_id = _token(self._rng, string.ascii_letters + string.digits, 9)
        self._touch(order, when)

    def _unfulfillable(self, order: SimOrder, when: datetime) -> None:
        order.v0_status = "Unfulfillable"
        self._touch(order, when)

    def _request_cancel(self, order: SimOrder, when: datetime, reason: str) -> None:
        for item in order.items:
            item.cancel_requested = True
            item.cancel_reason = reason
        self._touch(order, when)

    def _cancel(self, order: SimOrder, when: datetime, by: str, reason: str) -> None:
        order.v0_status = "Canceled"
        order.cancelled_by = by
        order.cancel_reason = reason
        self._touch(order, when)

    def _partial_split(self, order: SimOrder) -> dict[str, int]:
        """Units to ship first when an order ships in two parts."""
        if len(order.items) > 1:
            first = order.items[: len(order.items) // 2 or 1]
            return {i.order_item_id: i.quantity for i in first}
        item = order.items[0]
        return {item.order_item_id: max(1, item.quantity // 2)}

    def _ship(
        self, order: SimOrder, when: datetime, units: Mapping[str, int] | None, *, invoice: bool
    ) -> None:
        """Ship ``units`` per item id (None: everything left)."""
        shipped: list[tuple[str, int]] = []
        for item in order.items:
            left = item.quantity - item.shipped
            n = left if units is None else min(left, units.get(item.order_item_id, 0))
            if n > 0:
                item.shipped += n
                shipped.append((item.order_item_id, n))
        if order.fulfilled_by == "MERCHANT" and shipped:
            rng = self._rng
            carrier, service, pattern = _pick(rng, CARRIERS[order.country])
            order.packages.append(
                SimPackage(
                    reference_id=str(10**9 + int(rng.random() * 9 * 10**9)),
                    carrier=carrier,
                    shipping_service=service,
                    tracking_number=_fill(rng, pattern),
                    created_time=when,
                    ship_time=when,
                    status="IN_TRANSIT",
                    detailed_status="PICKED_UP",
                    items=tuple(shipped),
                )
            )
        if all(i.shipped == i.quantity for i in order.items):
            order.v0_status = "InvoiceUnconfirmed" if invoice else "Shipped"
        else:
            order.v0_status = "PartiallyShipped"
        self._touch(order, when)

    def _confirm_invoice(self, order: SimOrder, when: datetime) -> None:
        order.v0_status = "Shipped"
        self._touch(order, when)

    def _deliver(self, order: SimOrder, when: datetime) -> None:
        """The carrier finishes every package in transit: delivered, or (rarely) undeliverable."""
        for package in order.packages:
            if package.status == "IN_TRANSIT":
                package.status = "UNDELIVERABLE" if self._rng.random() < 0.03 else "DELIVERED"
                package.detailed_status = package.status
        self._touch(order, when)

    # ------------------------------------------------------------------ evolution

    def advance(self, *, new_orders: int = 5, changes: int = 20) -> list[Change]:
        """Move the world on: ``new_orders`` new orders and up to ``changes`` changes to existing ones.

        Every change is stamped with a whole-second lastUpdatedTime no later than the clock's now, no
        earlier than any stamp of earlier calls (nor than ``change_spread`` before now), and strictly
        after the order's previous lastUpdatedTime; so each order changes at most once per call and
        at most once per second. Returns the changes sorted by (time, order id).
        """
        now = self.now()
        top = floor_second(now)
        floor = max(self._high_water, ceil_second(now - self.change_spread))
        if floor > top:
            return []  # the clock went backwards: nothing can be stamped
        rng = self._rng

        def stamp(after: datetime | None = None) -> datetime:
            low = floor if after is None or after < floor else after + _SECOND
            return low + _SECOND * rng.randint(0, (top - low) // _SECOND)

        result: list[Change] = []
        candidates = [self._orders[i] for i in self._active if self._orders[i].last_updated_time < top]
        for order in rng.sample(candidates, min(changes, len(candidates))):
            when = stamp(order.last_updated_time)
            old = order.last_updated_time
            change = self._apply_move(order, when, _pick(rng, self._next_moves(order)))
            self._reindex(order, old)
            if not self._next_moves(order):
                self._active.pop(order.order_id, None)
            change.state = order.snapshot()
            result.append(change)
        for _ in range(new_orders):
            created = stamp()
            order = self._new_order(created)
            self._orders[order.order_id] = order
            self._active[order.order_id] = None
            bisect.insort(self._by_created, (order.created_time, order.order_id))
            bisect.insort(self._by_updated, (order.last_updated_time, order.order_id))
            result.append(Change(order.order_id, "created", created, "NewOrder", state=order.snapshot()))
        result.sort(key=lambda c: (c.time, c.order_id))
        if result:
            self._high_water = max(self._high_water, result[-1].time)
        return result

    def _reindex(self, order: SimOrder, old: datetime) -> None:
        index = self._by_updated
        pos = bisect.bisect_left(index, (old, order.order_id))
        if pos < len(index) and index[pos] == (old, order.order_id):
            del index[pos]
        bisect.insort(index, (order.last_updated_time, order.order_id))

    @staticmethod
    def _next_moves(order: SimOrder) -> tuple[str, ...]:
        status = order.v0_status
        if status == "PendingAvailability":
            return ("release",)
        if status == "Pending":
            return ("pay", "pay", "pay", "pay", "pay", "pay", "pay", "pay", "pay", "decline")
        if status == "Unshipped":
            requested = any(i.cancel_requested for i in order.items)
            if requested:
                return ("cancel", "cancel", "cancel", "ship")
            moves = ["ship"] * 6 + ["request_cancel", "cancel"]
            if sum(i.quantity for i in order.items) > 1:
                moves += ["ship_part"] * 2
            if order.fulfilled_by == "AMAZON":
                moves.append("unfulfillable")
            return tuple(moves)
        if status == "PartiallyShipped":
            return ("ship",)
        if status == "InvoiceUnconfirmed":
            return ("confirm_invoice",)
        if status == "Shipped" and any(p.status == "IN_TRANSIT" for p in order.packages):
            return ("deliver",)
        return ()

    def _apply_move(self, order: SimOrder, when: datetime, move: str) -> Change:
        rng = self._rng
        oid = order.order_id
        if move == "release":
            self._release(order, when)
            return Change(oid, "status", when, "PreorderReleased")
        if move == "pay":
            self._pay(order, when)
            return Change(oid, "status", when, "PaymentAuthorized", "Created" if order.shipment_id else None)
        if move == "decline":
            self._cancel(order, when, "AMAZON", "Payment not authorized")
            return Change(oid, "cancelled", when, "PaymentDeclined")
        if move == "request_cancel":
            self._request_cancel(order, when, _pick(rng, BUYER_CANCEL_REASONS))
            return Change(oid, "cancel_request", when, "Buyer Requested Cancel")
        if move == "cancel":
            requested = any(i.cancel_requested for i in order.items)
            by = "AMAZON" if order.fulfilled_by == "AMAZON" else "MERCHANT"
            self._cancel(order, when, by, "Buyer requested cancellation" if requested else "Out of stock")
            fba = "Cancelled" if order.shipment_id else None
            return Change(oid, "cancelled", when, "OrderCanceled", fba)
        if move == "unfulfillable":
            self._unfulfillable(order, when)
            return Change(oid, "status", when, "Unfulfillable")
        if move in ("ship", "ship_part"):
            units = self._partial_split(order) if move == "ship_part" else None
            invoice = units is None and order.fulfilled_by == "MERCHANT" and rng.random() < 0.04
            self._ship(order, when, units, invoice=invoice)
            return Change(oid, "shipped", when, "OrderShipped")
        if move == "confirm_invoice":
            self._confirm_invoice(order, when)
            return Change(oid, "status", when, "InvoiceConfirmed")
        if move == "deliver":
            self._deliver(order, when)
            return Change(oid, "delivered", when, "PackageDelivered")
        raise ValueError(f"unknown move {move!r}")
