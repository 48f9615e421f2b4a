"""Cross-check: one world order read through v2026 and through v0 normalises to the same record.

The sandbox and the hook are independent implementations of Amazon's contract; this runs the
hook's pure normalisers (``selling_partner.orders``) over the world's two renderings and compares
the canonical records field by field (minus what one API version cannot carry).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from selling_partner.orders import v0 as v0_adapter
from selling_partner.orders import v2026 as v2026_adapter
from sp_api_sandbox.render import orders_v0, orders_v2026
from sp_api_sandbox.world import INCLUDED_DATA, World, WorldConfig

START = datetime(2026, 11, 2, 9, 30, 0, tzinfo=UTC)
SKIP = {"api_version", "extra", *v0_adapter.FIELDS_NOT_IN_V0, *v0_adapter.FIELDS_NOT_IN_V2026}


def differences(a: object, b: object, path: str = "") -> list[str]:
    """Human-readable differences between two canonical records (nested records compared by field)."""
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        out = []
        for f in dataclasses.fields(a):
            if f.name not in SKIP:
                out += differences(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
        return out
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: v2026={a!r} v0={b!r}"]


@pytest.mark.parametrize(("seed", "region"), [(7, "na"), (42, "eu"), (3, "fe")])
def test_v2026_and_v0_normalise_to_the_same_record(seed: int, region: str) -> None:
    clock = [START]
    world = World(WorldConfig(seed=seed, orders=600, region=region), clock=lambda: clock[0])
    for _ in range(3):  # include freshly created (Pending) and just-changed orders
        clock[0] += timedelta(minutes=1)
        world.advance(new_orders=10, changes=40)
    problems: list[str] = []
    for order in world:
        new = v2026_adapter.normalize_order(
            orders_v2026.render_order(order, INCLUDED_DATA), seller_id=world.seller_id
        )
        old = v0_adapter.normalize_order(
            orders_v0.render_order(order),
            orders_v0.render_items(order),
            seller_id=world.seller_id,
            buyer_info=orders_v0.render_buyer_info(order),
            address=orders_v0.render_address(order),
        )
        problems += [
            f"{order.order_id} ({order.v0_status}, {order.fulfilled_by}){d}" for d in differences(new, old)
        ]
        assert new.order_type is None and old.order_type == order.order_type
        assert old.packages == () and len(new.packages) == len(order.packages)
    assert not problems, "\n".join(problems[:30])
