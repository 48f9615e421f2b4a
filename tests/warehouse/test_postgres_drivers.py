"""The PostgreSQL loader with psycopg 3 (provider default here) and with psycopg2 (COPY via copy_expert)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from selling_partner.warehouse.postgres import PostgresWarehouse

from tests.warehouse.factories import at, item, order, package

pytestmark = pytest.mark.integration
TRICKY = "a\tb\\N\nc\r\\ \U0001f469\u200d\U0001f467 e\u0301 \u200b \U0001d518"


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_copy_path_round_trips_special_characters(driver, pg_dsn, pg_schema):
    if driver == "psycopg":
        import psycopg

        factory = lambda: psycopg.connect(pg_dsn, options=f"-c search_path={pg_schema}")  # noqa: E731
    else:
        import psycopg2

        factory = lambda: psycopg2.connect(pg_dsn, options=f"-c search_path={pg_schema}")  # noqa: E731
    wh = PostgresWarehouse("unused", connection_factory=factory)
    wh.ensure_schema()
    oid = "111-0000001-0000001"
    o = order(
        oid,
        updated=at(1),
        total="99.95",
        items=(item(oid, 1).__class__(oid, TRICKY, 1, title=f"\x00{TRICKY}\x00"),),  # NUL removed
        packages=(package(oid, 1, ship_time=at(0)),),
    )
    res = wh.upsert_orders([o, o])
    assert (res.orders_written, res.items_written, res.packages_written) == (1, 1, 1)
    (it,) = wh.fetch_items()
    assert it["order_item_id"] == TRICKY and it["title"] == TRICKY
    assert wh.fetch_orders()[0]["order_total"] == Decimal("99.95")
    assert wh.fetch_packages()[0]["ship_time"] == at(0)
    assert wh.upsert_orders([o.replace(last_updated_time=at(0))]).orders_stale == 1


def test_money_must_be_a_decimal_string(pg_warehouse_conn_id):
    from selling_partner.warehouse import get_warehouse

    wh = get_warehouse(pg_warehouse_conn_id)
    wh.ensure_schema()
    with pytest.raises(ValueError, match="Not a decimal amount"):
        wh.upsert_orders([order(total="12,50")])
    assert wh.fetch_orders() == []
