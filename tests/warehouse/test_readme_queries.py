"""The README's example queries for analysts run as written on both backends and answer what they say."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.warehouse.factories import T0, item, order, package

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
H = timedelta(hours=1)


def _queries() -> dict[str, str]:
    """Title line -> SQL of every block under "Example queries"."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("#### Example queries") : text.index("#### Where the SQL lives")]
    return {
        title.strip().rstrip(":"): sql.strip()
        for title, sql in re.findall(r"\n([^\n`]+)\n```sql\n(.*?)```", section, flags=re.S)
    }


def _run(warehouse, sql: str) -> list[tuple]:
    with warehouse._transaction(write=False) as cur:
        cur.execute(sql.rstrip(";"))
        return [tuple(r) for r in cur.fetchall()]


@pytest.fixture
def shop(warehouse):
    """Four orders: one shipped late, one on time, one to ship (with a ship-by), one cancelled."""
    late = order(
        "LATE",
        status="SHIPPED",
        created=T0,
        updated=T0 + 30 * H,
        latest_ship=T0 + 24 * H,
        packages=(package("LATE", 1, ship_time=T0 + 28 * H),),
        items=(item("LATE", 1, qty=2, shipped=2),),
    )
    on_time = order(
        "ONTIME",
        status="SHIPPED",
        created=T0,
        updated=T0 + 10 * H,
        latest_ship=T0 + 24 * H,
        packages=(package("ONTIME", 1, ship_time=T0 + 5 * H),),
        items=(item("ONTIME", 1, qty=1, shipped=1),),
    )
    waiting = order("WAITING", status="UNSHIPPED", created=T0, updated=T0 + H, latest_ship=T0 + 40 * H)
    cancelled = order("GONE", status="CANCELLED", created=T0, updated=T0 + 2 * H, total=None)
    warehouse.upsert_orders([late, on_time, waiting, cancelled])
    return warehouse


def test_the_readme_has_the_five_queries() -> None:
    assert len(_queries()) == 5, list(_queries())


def test_every_example_query_answers_its_question(shop) -> None:
    q = _queries()
    by_status = _run(shop, q["Orders by status per day"])
    assert sorted((str(s), int(n)) for _, s, n in by_status) == [
        ("CANCELLED", 1),
        ("SHIPPED", 2),
        ("UNSHIPPED", 1),
    ]
    to_ship = _run(shop, q["Merchant-fulfilled orders to ship, most urgent first (no ship-by time last)"])
    assert [r[0] for r in to_ship] == ["WAITING"]
    late = _run(shop, q["Late shipments - shipped after the latest ship-by time Amazon gave"])
    assert [r[0] for r in late] == ["LATE"] and late[0][-1] == "packages"
    units = _run(shop, q["Units per SKU (cancelled orders excluded)"])
    assert sum(int(r[2]) for r in units) == 2 + 1 + 2  # LATE 2, ONTIME 1, WAITING 2 (factory default)
    cancelled = _run(shop, q["Cancellations per day and marketplace"])
    assert [int(r[2]) for r in cancelled] == [1]
