"""The page's panels against a filled warehouse, on PostgreSQL and SQLite (in-process: reads, shaping
and rendering; the api-server tests in ``test_live.py`` cover routes, auth and the browser)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.ui import checks
from tests.ui.world import World

pytestmark = pytest.mark.integration

#: A fixed "now" (whole minutes from an hour edge, so no change sits on a window edge).
NOW = datetime(2026, 12, 3, 12, 30, 0, tzinfo=UTC)


def _dashboard(wh, world: World):
    from selling_partner.ui.sources import Dashboard

    def variables(prefix: str) -> dict[str, str]:
        return {k: v for k, v in world.variables.items() if k.startswith(prefix)}

    return Dashboard(wh.conn_id, base_path="/airflow", variables=variables, clock=lambda: NOW)


@pytest.fixture
def filled(warehouse):
    world = World(NOW)
    world.fill(warehouse)
    return warehouse, world


def test_panels_show_the_world(filled) -> None:
    wh, world = filled
    dash = _dashboard(wh, world)
    checks.check_orders(dash.panel("orders"), world)
    checks.check_freshness(dash.panel("freshness"), world)
    work = dash.panel("work")
    checks.check_work(work, world)
    assert work["order_quarantine"]["newest"][1]["log_url"].startswith("/airflow/dags/")
    assert work["history_loads"][0]["eta_seconds"] == World.HISTORY_ETA_SECONDS  # the clock is fixed here
    checks.check_quota(dash.panel("quota"), world)
    checks.check_charts(dash.panel("charts"), world)


def test_rendered_page_carries_the_numbers_and_no_pii(filled) -> None:
    from selling_partner.ui import render
    from selling_partner.ui.sources import PANELS

    wh, world = filled
    dash = _dashboard(wh, world)
    data = {name: dash.panel(name) for name in PANELS}
    bodies = {name: render.RENDERERS[name](data[name]) for name in PANELS}
    html = render.page(bodies, refresh_seconds=5, generated_at="now", warehouse=wh.conn_id)
    for (seller, mp, status), n in world.counts().items():
        cell = f'data-cell="count" data-seller="{seller}" data-marketplace="{mp}" data-status="{status}">{n}<'
        assert cell in html
    assert 'data-chart="status-by-hour"' in html and 'data-chart="latency"' in html
    checks.assert_no_pii(html)
    checks.assert_no_pii(json.dumps(data))


def test_an_empty_warehouse_renders_empty_panels(warehouse) -> None:
    from selling_partner.ui import render

    dash = _dashboard(warehouse, World(NOW))
    orders = dash.panel("orders")
    assert orders["total"] == 0 and orders["sellers"] == []
    assert "No orders in the warehouse yet." in render.render_orders(orders)
    assert dash.panel("freshness")["publish_to_status"]["p50_seconds"] is None
    assert "No checkpoint yet" in render.render_work(dash.panel("work"))


def test_a_missing_warehouse_is_a_message(sqlite_warehouse_conn_id, monkeypatch, tmp_path) -> None:
    from selling_partner.ui.sources import Dashboard, SourceUnavailable

    # A warehouse file in a folder that does not exist: SQLite cannot open it.
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{sqlite_warehouse_conn_id.upper()}",
        json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "missing" / "warehouse.db")}),
    )
    dash = Dashboard(sqlite_warehouse_conn_id, variables=lambda prefix: {}, clock=lambda: NOW)
    with pytest.raises(SourceUnavailable, match=f"warehouse '{sqlite_warehouse_conn_id}' cannot be read"):
        dash.panel("orders")
    # A warehouse nobody has created yet (an empty file): the message says what creates the tables.
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{sqlite_warehouse_conn_id.upper()}",
        json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "empty.db")}),
    )
    with pytest.raises(SourceUnavailable, match="no tables yet: the first sync or events run creates them"):
        dash.panel("orders")
    unknown = Dashboard("no_such_connection", variables=lambda prefix: {}, clock=lambda: NOW)
    with pytest.raises(SourceUnavailable, match="'no_such_connection' is not usable"):
        unknown.panel("quota")


def test_latency_percentiles_and_masking() -> None:
    from selling_partner.ui import panels

    assert panels.percentile([], 0.5) is None
    assert panels.percentile([4.0], 0.95) == 4.0
    assert panels.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert panels.mask_quoted("at $.a: '98101' is not \"x\"") == "at $.a: '…' is not '…'"
    assert panels.age_seconds(NOW - timedelta(seconds=90), NOW) == 90


def test_backfill_between_windows_estimates_from_the_finished_windows() -> None:
    from selling_partner.ui import panels

    start = NOW - timedelta(days=10)
    ckpt = {
        "mode": "backfill",
        "conn_id": "c",
        "cursor": (start + timedelta(days=4)).isoformat(),
        "backfill_start": start.isoformat(),
        "backfill_end": (start + timedelta(days=10)).isoformat(),
        "covered_seconds": 4 * 86400.0,
        "covered_orders": 800,  # 200 orders a day -> 6 days left = 1200 orders = 12 pages
    }
    row = panels.checkpoint_row("k", ckpt, NOW, rate=(2.0, 0.01))
    assert (row["pages_left"], row["eta_seconds"], row["progress"]) == (12, 1000, 0.4)
    assert panels.checkpoint_row("k", {**ckpt, "covered_seconds": 0}, NOW)["pages_left"] is None
    assert panels.checkpoint_row("k", {**ckpt, "done": True}, NOW)["eta_seconds"] is None
