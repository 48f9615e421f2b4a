"""A small, fully known world for the "Amazon orders" page: what the test writes and what it expects.

The expectations are derived here from the spec literals (plain Python over the spec, no product code),
so a wrong query or a wrong aggregation shows as a mismatch. Times are relative to the ``now`` the world
is built at; every window edge is at least ten minutes away from a change (the 24-hour chart starts at
the top of the hour 23 hours back, so nothing sits between 22 and 24 hours ago), so the seconds between
filling and reading never move a change across an edge.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.warehouse.factories import buyer, order

S1, S2 = "A1UISELLERONE", "A2UISELLERTWO"
US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"
CONN1 = "sp_api_ui_one"
#: Buyer data written to the warehouse that must never reach the page.
PII = ("Zelda Secretbuyer", "zelda.secret@example.invalid", "98101-SECRET", "Seattle-Secret")

#: order id -> (seller, marketplace, fulfilled_by, [(status, minutes ago)], ship-by in minutes from now)
ORDERS: dict[str, tuple[str, str, str, list[tuple[str, int]], int | None]] = {
    "111-0000000-0000001": (
        S1,
        US,
        "MERCHANT",
        [("PENDING", 1800), ("UNSHIPPED", 180), ("SHIPPED", 10)],
        None,
    ),
    "111-0000000-0000002": (S1, US, "MERCHANT", [("UNSHIPPED", 20)], -120),
    "111-0000000-0000003": (S1, US, "MERCHANT", [("UNSHIPPED", 300)], 300),
    "111-0000000-0000004": (S1, US, "AMAZON", [("SHIPPED", 120)], None),
    "111-0000000-0000005": (S1, US, "AMAZON", [("CANCELLED", 1560)], None),
    "202-0000000-0000006": (S1, UK, "MERCHANT", [("PARTIALLY_SHIPPED", 40)], 1440),
    "202-0000000-0000007": (S1, UK, "AMAZON", [("PENDING", 50)], None),
    "111-0000000-0000008": (S2, US, "AMAZON", [("UNSHIPPED", 15)], None),
    "111-0000000-0000009": (S2, US, "MERCHANT", [("SHIPPED", 1290)], None),
}
#: Seconds from PublishTime to applied status of the notifications processed 5 minutes ago.
LATENCIES = [float(s) for s in range(1, 21)]


def minutes(now: datetime, m: float) -> datetime:
    return now - timedelta(minutes=m)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class World:
    now: datetime
    variables: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ expectations from the spec
    def counts(self) -> dict[tuple[str, str, str], int]:
        out: dict[tuple[str, str, str], int] = {}
        for seller, mp, _, history, _ in ORDERS.values():
            key = (seller, mp, history[-1][0])
            out[key] = out.get(key, 0) + 1
        return out

    def changes(self, within_minutes: int) -> dict[tuple[str, str, str], int]:
        out: dict[tuple[str, str, str], int] = {}
        for seller, mp, _, history, _ in ORDERS.values():
            for status, ago in history:
                if ago <= within_minutes:
                    out[(seller, mp, status)] = out.get((seller, mp, status), 0) + 1
        return out

    def fbm_waiting(self) -> list[tuple[str, int | None]]:
        """(order id, ship-by minutes from now) of FBM orders waiting to ship, the soonest first."""
        rows = [
            (oid, ship)
            for oid, (_, _, fb, history, ship) in ORDERS.items()
            if fb == "MERCHANT" and history[-1][0] in ("UNSHIPPED", "PARTIALLY_SHIPPED")
        ]
        return sorted(rows, key=lambda r: (r[1] is None, r[1] if r[1] is not None else 0, r[0]))

    # ------------------------------------------------------------------ writing it
    def fill(self, wh: Any) -> None:
        from selling_partner.warehouse import (
            InboxRow,
            NotificationToApply,
            OrderQuarantineRow,
            QuarantineRow,
            SyncRunRecord,
        )

        now = self.now
        versions = []
        for oid, (seller, mp, fb, history, ship) in ORDERS.items():
            for status, ago in history:
                o = order(
                    oid,
                    status=status,
                    updated=minutes(now, ago),
                    created=minutes(now, history[0][1] + 5),
                    marketplace_id=mp,
                    fulfilled_by=fb,
                    latest_ship=None if ship is None else now + timedelta(minutes=ship),
                    buyer=dataclasses.replace(
                        buyer(oid), buyer_name=PII[0], buyer_email=PII[1], postal_code=PII[2], city=PII[3]
                    ),
                )
                versions.append(dataclasses.replace(o, seller_id=seller))
        for v in versions:  # one version per call: each is the newest when loaded, so each is a history row
            wh.upsert_orders([v])

        def note(i: int, processed: datetime, latency: float, *, enrich: bool) -> NotificationToApply:
            inbox = InboxRow(
                notification_id=f"ui-note-{i}",
                notification_type="ORDER_CHANGE",
                payload=json.dumps({"PostalCode": PII[2]}),
                received_at=processed,
                order_id=f"333-0000000-{i:07d}",
                seller_id=S1,
                event_time=processed - timedelta(seconds=latency + 1),
                conn_id=CONN1,
                publish_time=processed - timedelta(seconds=latency),
            )
            return NotificationToApply(inbox, enrich=enrich)

        old = minutes(now, 120)
        wh.apply_notifications([note(0, old, 500.0, enrich=True)], now=old)
        recent = minutes(now, 5)
        notes = [note(i + 1, recent, s, enrich=i < 3) for i, s in enumerate(LATENCIES)]
        wh.apply_notifications(notes, now=recent)
        wh.quarantine(
            [
                QuarantineRow(
                    raw_body=json.dumps({"PostalCode": PII[2]}),
                    reason="ORDER_CHANGE does not match Amazon's schema at $.Payload: "
                    f"'{PII[2]}' is not of type 'integer'",
                    received_at=minutes(now, 30),
                    notification_id="ui-bad-1",
                )
            ]
        )
        bad = {"AmazonOrderId": "x", "BuyerInfo": {"BuyerEmail": PII[1]}}
        task = {"dag_id": "sp_api_orders_sync", "dag_run_id": "manual__2026-12-03T10:00:00+00:00"}
        wh.quarantine_orders(
            [
                OrderQuarantineRow(
                    "444-0000000-0000001",
                    "sync",
                    bad,
                    "unknown order status",
                    minutes(now, 50),
                    seller_id=S1,
                    conn_id=CONN1,
                    task_id=f"sync_{CONN1}",
                    **task,
                ),
                OrderQuarantineRow(
                    "444-0000000-0000002",
                    "sync",
                    bad,
                    "unknown order status",
                    minutes(now, 40),
                    seller_id=S1,
                    conn_id=CONN1,
                    task_id=f"sync_{CONN1}",
                    **task,
                ),
                OrderQuarantineRow(
                    "444-0000000-0000003",
                    "enrich",
                    bad,
                    "getOrder 404",
                    minutes(now, 30),
                    seller_id=S1,
                    conn_id=CONN1,
                ),
            ]
        )
        runs = [  # (mode, finished minutes ago, calls, 429s, missed by events)
            ("sweep", 10, 7, 1, 2),
            ("sweep", 180, 100, 9, 1),
            ("backfill", 20, 5, 0, 0),
        ]
        for i, (mode, ago, calls, throttled, missed) in enumerate(runs):
            end = minutes(now, ago)
            wh.record_sync_run(
                SyncRunRecord(
                    conn_id=CONN1,
                    mode=mode,
                    status="success",
                    window_start=end - timedelta(hours=1),
                    window_end=end,
                    calls=calls,
                    throttled=throttled,
                    seller_id=S1,
                    started_at=end,
                    finished_at=end,
                    missed_by_events=missed,
                    run_id=f"ui-run-{i}",
                )
            )
        self.variables = self._variables()

    def _variables(self) -> dict[str, str]:
        now = self.now
        start, end = now - timedelta(days=30), now - timedelta(days=20)
        w_start, w_end = start, start + timedelta(days=2)
        return {
            f"sp_api_sync__{CONN1}__0123abcd__sweep": json.dumps(
                {
                    "mode": "sweep",
                    "conn_id": CONN1,
                    "cursor": iso(minutes(now, 7)),
                    "updated_at": iso(now),
                    "pages": 12,
                    "orders": 340,
                }
            ),
            f"sp_api_sync__{CONN1}__0123abcd__backfill": json.dumps(
                {
                    "mode": "backfill",
                    "conn_id": CONN1,
                    "cursor": iso(w_start),
                    "backfill_start": iso(start),
                    "backfill_end": iso(end),
                    "window_start": iso(w_start),
                    "window_end": iso(w_end),
                    "page_token": "tok",
                    "window_pages": 4,
                    "window_ordered": True,
                    "last_committed_updated_time": iso(w_start + timedelta(days=1)),
                    "pages": 9,
                    "orders": 900,
                    "done": False,
                    "current_run": {"started_at": iso(minutes(now, 3))},
                    "updated_at": iso(now),
                }
            ),
            f"sp_api_history__{CONN1}__feedbeef": json.dumps(
                {
                    "version": 1,
                    "conn_id": CONN1,
                    "requested": {
                        "start": iso(now - timedelta(days=60)),
                        "end": iso(now - timedelta(days=2)),
                    },
                    "created_at": iso(minutes(now, 30)),
                    "updated_at": iso(minutes(now, 1)),
                    "done": False,
                    "windows": [
                        {"id": "w1", "status": "LOADED", "orders": 100},
                        {"id": "w2", "status": "LOADED", "orders": 50},
                        {"id": "w3", "status": "SPLIT", "orders": 0},
                        {"id": "w3a", "status": "IN_PROGRESS", "orders": 0},
                        {"id": "w3b", "status": "PENDING", "orders": 0},
                    ],
                }
            ),
            f"sp_api_rate_limit__{S1}__na__searchOrders": json.dumps(
                {"tokens": 1, "rate": 0.01, "burst": 1, "stamp": now.timestamp()}
            ),
            f"sp_api_rate_limit__{S1}__na__getOrder": json.dumps(
                {"tokens": 5, "rate": 1e-9, "burst": 20, "stamp": now.timestamp()}
            ),
        }

    #: The backfill checkpoint: committed half its open window (4 pages) -> 4 pages left; 1 token in hand
    #: at 0.01/s (a bucket of 1 stays full) -> (4 - 1) / 0.01 = 300 s; progress 1 day of 10 = 0.1.
    BACKFILL_PAGES_LEFT = 4
    BACKFILL_ETA_SECONDS = 300
    BACKFILL_PROGRESS = 0.1
    #: The history load: 2 of 4 windows (the split one is replaced by its halves) in the 30 minutes since
    #: it started -> the other 2 in about 30 more.
    HISTORY_ETA_SECONDS = 1800
