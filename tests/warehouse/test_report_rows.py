"""Rows from order reports (the history backfill) against API records, on PostgreSQL and SQLite.

A report row is a complete record with less in it (no packages, no ship windows): an API record of the
same ``lastUpdatedTime`` or newer replaces it wholly, whichever arrives first, and a report never
replaces an API record of the same or a newer version - neither its status, its details nor its items.
"""

from __future__ import annotations

import itertools

import pytest

from tests.warehouse.factories import at, item, order, package, summary

pytestmark = pytest.mark.integration
OID = "111-0000001-0000001"
REPORT_API = "reports-2021-06-30"


def report(updated_minutes: float, *, status: str = "UNSHIPPED", sku: str = "RPT") -> object:
    """A report row: complete, no packages, source ``report``, its own item id."""
    return order(
        OID, status=status, updated=at(updated_minutes), items=(item(OID, 7, sku=sku),), source="report"
    ).replace(api_version=REPORT_API, latest_ship_time=None)


def api(updated_minutes: float, *, status: str = "SHIPPED") -> object:
    return order(
        OID,
        status=status,
        updated=at(updated_minutes),
        items=(item(OID, 1), item(OID, 2)),
        packages=(package(OID, 1),),
        latest_ship=at(600),
    )


def _seen(wh) -> tuple:
    [row] = wh.fetch_orders()
    items = sorted(i["order_item_id"] for i in wh.fetch_items())
    packages = [p["package_reference_id"] for p in wh.fetch_packages()]
    return row["source"], row["api_version"], row["order_status"], row["latest_ship_time"], items, packages


API_STATE = ("sync", "2026-01-01", "SHIPPED", at(600), [f"{OID}-I1", f"{OID}-I2"], [f"{OID}-P1"])


@pytest.mark.parametrize("api_first", [True, False])
def test_equal_version_api_record_wins_in_either_order(warehouse, api_first):
    batches = [[api(10)], [report(10, status="SHIPPED")]]
    for batch in batches if api_first else batches[::-1]:
        warehouse.upsert_orders(batch)
    assert _seen(warehouse) == API_STATE


def test_report_never_overwrites_fresher_api_data(warehouse):
    warehouse.upsert_orders([api(10)])
    warehouse.upsert_orders([report(5, status="UNSHIPPED")])
    assert _seen(warehouse) == API_STATE


def test_newer_report_replaces_older_api_record_and_newer_api_replaces_it(warehouse):
    warehouse.upsert_orders([api(10)])
    warehouse.upsert_orders([report(20, status="SHIPPED", sku="NEW")])
    assert _seen(warehouse) == ("report", REPORT_API, "SHIPPED", None, [f"{OID}-I7"], [])
    warehouse.upsert_orders([api(20)])
    assert _seen(warehouse) == API_STATE


def test_report_details_win_over_a_newer_summary_and_keep_its_status(warehouse):
    warehouse.upsert_orders([summary(OID, status="SHIPPED", updated=at(30))])
    warehouse.upsert_orders([report(10)])
    source, api_version, status, _, items, _ = _seen(warehouse)
    assert (source, status) == ("summary", "SHIPPED")  # the newer status stays
    assert api_version == REPORT_API and items == [f"{OID}-I7"]  # the report's prices fill the details


@pytest.mark.parametrize("order_of", list(itertools.permutations(range(3))))
def test_converges_whatever_the_arrival_order(warehouse, order_of):
    versions = [report(10, status="SHIPPED"), api(10), report(5)]
    for i in order_of:
        warehouse.upsert_orders([versions[i]])
    assert _seen(warehouse) == API_STATE


def test_in_one_batch_the_api_record_wins_too(warehouse):
    warehouse.upsert_orders([api(10), report(10, status="SHIPPED")])
    assert _seen(warehouse) == API_STATE


def test_a_report_row_does_not_spare_an_order_its_getorder(warehouse):
    """The event path skips fetching an order whose stored details are as new as its event - but not
    when they come from a report, which lacks packages and ship windows."""
    from tests.warehouse.test_events import _change

    other = "111-0000002-0000002"
    warehouse.apply_notifications([_change("n1", 10, "SHIPPED", OID), _change("n2", 10, "SHIPPED", other)])
    warehouse.upsert_orders([report(10, status="SHIPPED")])
    warehouse.upsert_orders([order(other, status="SHIPPED", updated=at(10))])
    claims, skipped = warehouse.claim_enrichment(
        "sp_api_default", worker="w", limit=10, lease_seconds=60, now=at(20)
    )
    assert skipped == 1 and [c.order_id for c in claims] == [OID]
