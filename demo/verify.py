"""The demo's verdict: the warehouse against ``/_sandbox/truth``, after a sync AND the event path.

``tests/oracle.py`` maps the sandbox's raw orders to the rows a *sync* must write (it imports nothing
of ``selling_partner``). After the event path ran, three things differ by design, and only these:

* ``sp_orders.source`` is ``event`` for the orders the world changed (their details came from
  ``getOrder`` in ``sp_api_order_enrich``), ``sync`` for the others;
* ``sp_order_status_history`` also holds every version the notifications announced: one per change
  (the demo moves the world one step per round, so each changed order has exactly one new version per
  round, read from the truth right after the round), written first by the ORDER_CHANGE summary
  (``source`` ``summary``); ``packages_delivered`` as getOrder served that version (the demo enriches
  after every round, so every version is fetched once);
* orders updated within Amazon's 2 minutes before the historical sync ended and never changed since
  are in no table yet (the next sweep loads them): they are left out and counted.

Everything else - every column of every order, item, package and history row - is the oracle's.
This module imports nothing of ``selling_partner`` either.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tests import oracle
from tests.oracle import DATA_TABLES, HISTORY, ORDERS, QUARANTINE, TABLES

#: A round of the moving world: the orders it changed and the truth right after it.
Round = tuple[frozenset[str], Mapping[str, Any]]


def only(truth: Mapping[str, Any], ids: set[str] | frozenset[str]) -> dict[str, Any]:
    """``truth`` with only the orders in ``ids``."""
    return {**truth, "orders": [o for o in truth.get("orders", []) if o.get("orderId") in ids]}


def expected_after_events(
    final: Mapping[str, Any],
    synced: Mapping[str, Any],
    rounds: Sequence[Round],
    *,
    api_version: str = oracle.V2026,
    include_pii: bool = False,
) -> tuple[dict[str, oracle.Rows], set[str]]:
    """The rows every table must hold, and the ids of the orders no path could have loaded yet.

    ``final`` is the truth at the end, ``synced`` the truth the historical sync covered (its window),
    ``rounds`` what each round of the moving world changed; ``include_pii``: ``sp_order_buyers`` too.
    """
    synced_ids = {o["orderId"] for o in synced.get("orders", [])}
    event_ids: set[str] = set().union(*(ids for ids, _ in rounds)) if rounds else set()
    loaded = synced_ids | event_ids
    observed = [synced, *(only(snapshot, ids) for ids, snapshot in rounds)]
    expected = oracle.expected_rows(
        only(final, loaded), api_version=api_version, observed=observed, include_pii=include_pii
    )
    for key, row in expected[ORDERS].items():
        if key[0] in event_ids:
            row["source"] = "event"
    sync_versions = set(oracle.expected_rows(synced, api_version=api_version)[HISTORY])
    for key, row in expected[HISTORY].items():
        if key not in sync_versions:
            row["source"] = "summary"
    left_out = {o["orderId"] for o in final.get("orders", [])} - loaded
    return expected, left_out


def compare_expected(
    expected: Mapping[str, oracle.Rows],
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    api_version: str = oracle.V2026,
    limit: int = 20,
) -> list[str]:
    """Differences between ``expected`` and the warehouse ``rows`` (the oracle's table comparison)."""
    actual = oracle._read(rows, quarantine=QUARANTINE in expected)
    skip = oracle.NOT_COMPARABLE[api_version]
    orders = actual[ORDERS] or []
    unmatched = frozenset({r.get("order_id") for r in orders} ^ {k[0] for k in expected[ORDERS]})
    diffs = oracle._compare_table(
        TABLES[ORDERS], expected[ORDERS], orders, skip_columns=skip.get(ORDERS, frozenset())
    )
    for table in DATA_TABLES[1:]:
        diffs += oracle._compare_table(
            TABLES[table],
            expected.get(table, {}),
            actual[table] or [],
            skip_columns=skip.get(table, frozenset()),
            skip_orders=unmatched,
        )
    if len(diffs) > limit:
        diffs = [*diffs[:limit], f"... and {len(diffs) - limit} more differences"]
    return diffs


def verdict(
    dump: Mapping[str, Any],
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    api_version: str = oracle.V2026,
) -> tuple[list[str], set[str]]:
    """The differences (empty: equal) and the left-out orders, from the demo's ``sandbox-final.json``:
    ``truth`` (the end), ``synced`` (the sync's versions) and ``rounds`` (``changed`` ids, ``orders``)."""
    rounds = [(frozenset(r["changed"]), {"orders": r["orders"]}) for r in dump["rounds"]]
    # a truth with the buyers' data (``python -m demo --pii``): the buyer rows are compared too
    pii = any("buyer" in o or "recipient" in o for o in dump["truth"].get("orders", []))
    expected, left_out = expected_after_events(
        dump["truth"], dump["synced"], rounds, api_version=api_version, include_pii=pii
    )
    diffs = compare_expected(expected, rows, api_version=api_version)
    if not expected[ORDERS]:
        diffs.append("the sandbox truth is empty")
    return diffs, left_out


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values``, linear between ranks; ``None`` when empty."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(sorted(values), n=100, method="inclusive")
    return float(cuts[round(q * 100) - 1])


def publish_to_status_seconds(inbox: Sequence[Mapping[str, Any]]) -> list[float]:
    """Seconds from Amazon's PublishTime to the commit that wrote the status, per landed notification."""
    out = []
    for row in inbox:
        published: datetime | None = row.get("publish_time")
        written: datetime | None = row.get("processed_at") or row.get("received_at")
        if published is not None and written is not None:
            out.append((written - published).total_seconds())
    return out
