"""The ``bad_records`` fault: a seeded share of orders that every read serves corrupted, one kind each.

Real integrations meet records they cannot map: a status no model lists, a missing timestamp, a
10,000-character SKU, a NUL in a title. With ``bad_records=f`` the sandbox serves such records for a
share ``f`` of the orders:

* which orders: those whose seeded hash of the order id falls below ``f`` (a pure function of seed
  and id, so the same orders on every read, in the truth, and after ``advance()``);
* which kind: round robin over ``KINDS`` in the world's order (oldest first, then new orders), from
  a seeded start, so the kinds are spread evenly and an order keeps its kind as the world grows;
* what is served: each API surface's renderer applies the kind to its own fields
  (``orders_v2026.corrupt``, ``orders_v0.corrupt_order`` / ``corrupt_items``); the world's state
  stays normal, and notifications are not affected.

``EXPECT`` says what a careful loader should do with each kind: quarantine what cannot be mapped,
load what is odd but mappable.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sp_api_sandbox.world import SimOrder, World

Expect = Literal["load", "quarantine"]

#: Every kind, in the round-robin order.
KINDS: tuple[str, ...] = (
    "unknown_status",
    "missing_last_updated",
    "missing_item_id",
    "huge_sku",
    "missing_optional",
    "unknown_optional_enum",
    "odd_unicode",
    "huge_title",
)
EXPECT: dict[str, Expect] = {
    "unknown_status": "quarantine",
    "missing_last_updated": "quarantine",
    "missing_item_id": "quarantine",
    "huge_sku": "quarantine",
    "missing_optional": "load",
    "unknown_optional_enum": "load",
    "odd_unicode": "load",
    "huge_title": "load",
}

UNKNOWN_STATUS = "ON_HOLD"  # v2026 fulfillment.fulfillmentStatus
UNKNOWN_STATUS_V0 = "OnHold"  # v0 OrderStatus
UNKNOWN_PROGRAM = "FUTURE_PROGRAM"  # v2026 programs
UNKNOWN_DETAILED_STATUS = "TELEPORTED"  # v2026 packages[].packageStatus.detailedStatus
HUGE_SKU_LENGTH = 10_000
HUGE_TITLE_LENGTH = 100_000
#: What ``odd_unicode`` appends to every item title (and one NUL after it).
ODD_UNICODE = " ".join(
    (
        "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # a family: emoji joined by ZWJ
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # a rainbow flag: emoji, variation selector, ZWJ
        "Cafe\u0301 Zu\u0308rich",  # combining acute accent and diaeresis
        "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew and Arabic: right-to-left
        "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \U00020bb7",  # non-BMP
        "zero\u200bwidth\u200bspaces",  # zero-width spaces
    )
)


def huge(text: str, length: int) -> str:
    """``text`` repeated (space-separated) to exactly ``length`` characters."""
    unit = text + " "
    return (unit * (length // len(unit) + 1))[:length]


def odd_unicode(title: str) -> str:
    """``title`` followed by ``ODD_UNICODE`` and exactly one NUL character."""
    return f"{title} {ODD_UNICODE} \u0000 end"


def detail(kind: str, order: SimOrder) -> str:
    """One line saying what is wrong with ``order`` as served under ``kind``."""
    first = order.items[0].order_item_id
    if kind == "unknown_status":
        return (
            f"fulfillment.fulfillmentStatus is {UNKNOWN_STATUS} (v0 OrderStatus {UNKNOWN_STATUS_V0}), a "
            f"status the models do not define; the order is {order.status}"
        )
    if kind == "missing_last_updated":
        return "lastUpdatedTime (v0 LastUpdateDate) is missing"
    if kind == "missing_item_id":
        return f"item {first} is served without orderItemId (v0 getOrderItems: without OrderItemId)"
    if kind == "huge_sku":
        return f"item {first}: product.sellerSku (v0 SellerSKU) is {HUGE_SKU_LENGTH:,} characters long"
    if kind == "missing_optional":
        return (
            "optional fields are missing: salesChannel.marketplaceName, orderAliases, "
            "fulfillment.fulfillmentServiceLevel, shipByWindow, deliverByWindow, every product.title "
            "(v0: SalesChannel, ShipmentServiceLevelCategory, Earliest/Latest Ship/Delivery dates, Title)"
        )
    if kind == "unknown_optional_enum":
        packages = order.merchant_fulfilled and order.packages
        extra = f"; every package's detailedStatus is {UNKNOWN_DETAILED_STATUS}" if packages else ""
        return f"programs holds the unknown value {UNKNOWN_PROGRAM}{extra} (v0 is served as usual)"
    if kind == "odd_unicode":
        return (
            "every item title carries emoji ZWJ sequences, combining marks, right-to-left text, "
            "non-BMP characters, zero-width spaces and one NUL (U+0000)"
        )
    if kind == "huge_title":
        return f"item {first}: product.title (v0 Title) is {HUGE_TITLE_LENGTH:,} characters long"
    raise ValueError(f"unknown bad-record kind {kind!r}; known: {', '.join(KINDS)}")


def check_fraction(value: object) -> float:
    """A ``bad_records`` setting as a fraction within [0, 1] (``ValueError`` naming the problem)."""
    try:
        fraction = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad_records must be a fraction within [0, 1], got {value!r}") from exc
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"bad_records must be a fraction within [0, 1], got {value!r}")
    return fraction


class BadRecords:
    """Which orders of one world are served corrupted, and how. Call it under the world's lock."""

    def __init__(self, world: World, fraction: float = 0.0) -> None:
        self.world = world
        self.fraction = check_fraction(fraction)
        self._seed = world.config.seed
        self._next_kind = random.Random(f"{self._seed}:bad-records").randrange(len(KINDS))
        self._kinds: dict[str, str] = {}
        self._classified = 0  # how many of the world's orders (in its order) were looked at

    def selected(self, order_id: str) -> bool:
        """Whether ``order_id`` is among the corrupted orders (pure: seed, id and fraction only)."""
        if self.fraction <= 0.0:
            return False
        digest = hashlib.sha256(f"{self._seed}:bad-records:{order_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.fraction

    def _classify(self) -> None:
        if self.fraction <= 0.0 or self._classified == len(self.world):
            return
        for order in itertools.islice(self.world, self._classified, None):
            if self.selected(order.order_id):
                self._kinds[order.order_id] = KINDS[self._next_kind]
                self._next_kind = (self._next_kind + 1) % len(KINDS)
        self._classified = len(self.world)

    def kind(self, order: SimOrder) -> str | None:
        """The corruption ``order`` is served with, or None."""
        self._classify()
        return self._kinds.get(order.order_id)

    def describe(self, order: SimOrder) -> dict[str, str] | None:
        """``{"kind", "expect", "detail"}`` for a corrupted order, None for a normal one."""
        kind = self.kind(order)
        if kind is None:
            return None
        return {"kind": kind, "expect": EXPECT[kind], "detail": detail(kind, order)}
