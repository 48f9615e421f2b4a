"""The "Amazon orders" page in a real Airflow api-server: plugin listed, every route guarded, JSON equal
to a warehouse the test fills (PostgreSQL; its connection and the Variables in the metadata DB, as in a
deployment), no buyer data, the page in headless Chromium inside the UI's iframe (logged in, opened from
Browse, live refresh, screenshots), and a warehouse that stops answering shown as a message.

One api-server (no scheduler: the page needs none) serves the whole module. Users come from
SimpleAuthManager with "all admins" off, so anonymous requests really are anonymous.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.airflow_cluster import DEFAULT_COMPONENTS, AirflowCluster
from tests.fixtures.warehouse import PII_KEY_ENV, TEST_PII_KEY, _admin_connect, pg_conn_uri, pii_key_conn_uri
from tests.ui import checks
from tests.ui.world import S2, UK, World

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".pytest_artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PREFIX = "/amazon-orders"
ROUTES = ["/", *(f"/panels/{p}" for p in ("orders", "freshness", "work", "quota", "charts"))]
ROUTES += [f"/api/{p}" for p in ("orders", "freshness", "work", "quota", "charts")]
#: The shared token buckets of the ``postgres`` rate-limit backend, as hooks/ratelimit.py creates them.
RATE_LIMIT_DDL = """
CREATE TABLE sp_rate_limit_buckets (
    bucket_key text PRIMARY KEY, tokens double precision NOT NULL, rate double precision NOT NULL,
    burst double precision NOT NULL, updated_at timestamptz NOT NULL,
    last_wait double precision NOT NULL DEFAULT 0, last_granted boolean NOT NULL DEFAULT true)
"""


@dataclasses.dataclass
class Live:
    cluster: AirflowCluster
    world: World
    db: str
    wh: Any
    passwords: dict[str, str]
    tokens: dict[str, str]

    def url(self, route: str) -> str:
        return f"{self.cluster.url}{PREFIX}{route}"

    def get(self, route: str, user: str | None = "viewer", **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return requests.get(self.url(route), headers=headers, timeout=60, **kw)


def _token(url: str, user: str, password: str) -> str:
    r = requests.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def live(module_airflow_cluster_factory) -> Iterator[Live]:
    from selling_partner.warehouse import get_warehouse

    db = f"sp_ui_{uuid.uuid4().hex[:10]}"
    with _admin_connect() as conn:
        conn.execute(f"CREATE DATABASE {db}")
    conn_json = pg_conn_uri(f"postgresql://{os.environ.get('SP_TEST_PG_USER', 'root')}@127.0.0.1:5432/{db}")
    os.environ["AIRFLOW_CONN_SP_UI_LIVE_WAREHOUSE"] = conn_json
    had_key = os.environ.get(PII_KEY_ENV)
    os.environ[PII_KEY_ENV] = pii_key_conn_uri(TEST_PII_KEY)  # buyer rows are encrypted at rest
    try:
        wh = get_warehouse("sp_ui_live_warehouse")
        wh.ensure_schema()
        world = World(datetime.now(UTC).replace(microsecond=0))
        world.fill(wh)
        with _admin_connect(db) as conn:
            conn.execute(RATE_LIMIT_DDL)
            conn.execute(
                "INSERT INTO sp_rate_limit_buckets (bucket_key, tokens, rate, burst, updated_at) "
                "VALUES (%s, 3, 1e-9, 30, now())",
                (f"{S2}:na:getOrder",),
            )
        cluster = module_airflow_cluster_factory(
            components={"api-server": DEFAULT_COMPONENTS["api-server"]},
            env={
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "{home}/passwords.json",
                "SP_API_UI_REFRESH_SECONDS": "2",
            },
        )
        passwords = json.loads((cluster.home / "passwords.json").read_text())
        tokens = {user: _token(cluster.url, user, pw) for user, pw in passwords.items()}
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        # The warehouse connection and the Variables live in the metadata DB, as in a deployment.
        body = {"connection_id": "warehouse_default", **json.loads(conn_json)}
        r = requests.post(f"{cluster.url}/api/v2/connections", json=body, headers=admin, timeout=30)
        assert r.status_code == 201, r.text
        for key, value in world.variables.items():
            r = requests.post(
                f"{cluster.url}/api/v2/variables",
                json={"key": key, "value": value},
                headers=admin,
                timeout=30,
            )
            assert r.status_code == 201, r.text
        yield Live(cluster, world, db, wh, passwords, tokens)
    finally:
        os.environ.pop("AIRFLOW_CONN_SP_UI_LIVE_WAREHOUSE", None)
        if had_key is None:
            os.environ.pop(PII_KEY_ENV, None)
        else:
            os.environ[PII_KEY_ENV] = had_key
        with _admin_connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_the_plugin_is_listed_by_the_api_server(live: Live) -> None:
    body = requests.get(
        f"{live.cluster.url}/api/v2/plugins",
        headers={"Authorization": f"Bearer {live.tokens['viewer']}"},
        timeout=30,
    ).json()
    (plugin,) = [p for p in body["plugins"] if p["name"] == "selling_partner_ui"]
    (view,) = plugin["external_views"]
    assert (view["name"], view["category"], view["url_route"], view["href"]) == (
        "Amazon orders",
        "browse",
        "amazon_orders",
        f"{PREFIX}/",
    )
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == [PREFIX]
    errors = requests.get(
        f"{live.cluster.url}/api/v2/plugins/importErrors",
        headers={"Authorization": f"Bearer {live.tokens['viewer']}"},
        timeout=30,
    ).json()
    # A development checkout's editable install leaves a second copy of the package metadata on sys.path
    # (plugins/*.egg-info next to the package): the plugin manager then meets the entry point twice and
    # reports the second as "already registered". Nothing else may be reported.
    copies = {
        str(d.locate_file(""))
        for d in metadata.distributions()
        if d.metadata["Name"] == "airflow-provider-selling-partner"
    }
    expected = [{"error": "Plugin 'selling_partner_ui' already registered, skipping"}] * (len(copies) - 1)
    assert [{"error": e["error"]} for e in errors["import_errors"]] == expected, errors


def test_every_route_requires_an_authenticated_viewer(live: Live) -> None:
    for route in [*ROUTES, "/docs", "/openapi.json"]:
        anonymous = live.get(route, user=None)
        forged = requests.get(live.url(route), headers={"Authorization": "Bearer not-a-jwt"}, timeout=30)
        if route in ("/docs", "/openapi.json"):  # FastAPI's own routes are switched off, not left open
            assert anonymous.status_code == 404, route
            continue
        assert anonymous.status_code == 401, (route, anonymous.status_code)
        assert forged.status_code == 403, (route, forged.status_code)
        assert live.get(route).status_code == 200, route
    # The session cookie of the UI works as well (what the iframe sends).
    cookie = requests.get(live.url("/api/orders"), cookies={"_token": live.tokens["viewer"]}, timeout=30)
    assert cookie.status_code == 200


def test_json_equals_the_filled_warehouse(live: Live) -> None:
    w = live.world
    checks.check_orders(live.get("/api/orders").json(), w)
    checks.check_freshness(live.get("/api/freshness").json(), w)
    checks.check_work(live.get("/api/work").json(), w)
    quota = live.get("/api/quota").json()
    checks.check_quota(quota, w, table_buckets=1)
    (table,) = [b for b in quota["buckets"] if b["source"] == "postgres"]
    assert (table["seller_id"], table["operation"], table["fill"]) == (S2, "getOrder", 0.1)
    checks.check_charts(live.get("/api/charts").json(), w)


def test_no_buyer_data_anywhere(live: Live) -> None:
    for route in ROUTES:
        checks.assert_no_pii(live.get(route).text)


def _browser(user_data: str) -> Any:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    ctx = pw.chromium.launch_persistent_context(
        user_data,
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )
    return pw, ctx


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_the_page_in_the_airflow_ui_iframe(live: Live) -> None:
    from tests.warehouse.factories import order

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pw, ctx = _browser(tempfile.mkdtemp(prefix="sp-ui-chromium-"))
    try:
        page = ctx.new_page()
        # Log in through the UI's own login form (SimpleAuthManager), then open Browse -> Amazon orders.
        page.goto(f"{live.cluster.url}/auth/login?next=/", wait_until="domcontentloaded")
        page.locator("input[name=username]").fill("viewer")
        page.locator("input[name=password]").fill(live.passwords["viewer"])
        page.locator("button[type=submit]").click()
        page.get_by_role("button", name="Browse").click(timeout=60_000)
        page.get_by_role("menuitem", name="Amazon orders").click()
        page.wait_for_url("**/plugin/amazon_orders", timeout=60_000)
        frame = page.frame_locator("iframe")
        orders = frame.locator('section[data-panel="orders"]')
        orders.wait_for(timeout=60_000)
        for (seller, mp, status), n in live.world.counts().items():
            cell = frame.locator(
                f'[data-cell="count"][data-seller="{seller}"][data-marketplace="{mp}"][data-status="{status}"]'
            )
            assert cell.inner_text() == str(n)
        assert frame.locator('[data-cell="fbm-awaiting"]').inner_text() == str(len(live.world.fbm_waiting()))
        assert frame.locator('[data-cell="latency-samples"]').inner_text() == "20"
        assert frame.locator('[data-cell="order-quarantine-open"]').inner_text() == "3"
        assert frame.locator('svg[data-chart="status-by-hour"] rect[data-status]').count() > 0
        # The Airflow UI around it: the nav shows the entry under Browse.
        page.screenshot(path=str(ARTIFACTS / "amazon_orders_in_airflow_ui.png"), full_page=True)
        body = frame.locator("body")
        body.evaluate("b => { window.__not_reloaded = true; }")
        refreshes = int(body.get_attribute("data-refreshes") or "-1")
        assert refreshes >= 0
        # The world changes: the counts move without a reload.
        now = datetime.now(UTC)
        new = [
            dataclasses.replace(
                order(
                    f"203-0000000-000010{i}",
                    status="CANCELLED",
                    updated=now - timedelta(minutes=1),
                    marketplace_id=UK,
                    fulfilled_by="AMAZON",
                ),
                seller_id=S2,
            )
            for i in range(3)
        ]
        live.wh.upsert_orders(new)
        moved = frame.locator(
            f'[data-cell="count"][data-seller="{S2}"][data-marketplace="{UK}"][data-status="CANCELLED"]'
        )
        moved.wait_for(timeout=30_000)
        assert moved.inner_text() == "3"
        assert body.evaluate("b => window.__not_reloaded === true") is True
        # ... because the page's script refreshed its panels (it counts finished rounds on <body>).
        inner = page.locator("iframe").first.element_handle().content_frame()
        assert inner is not None and inner.url == live.url("/")
        inner.wait_for_function(
            "n => Number(document.body.getAttribute('data-refreshes')) > n", arg=refreshes, timeout=30_000
        )
        inner_page = ctx.new_page()
        inner_page.goto(live.url("/"))  # the same cookie session, outside the iframe: the page alone
        inner_page.locator('section[data-panel="charts"] svg').first.wait_for()
        inner_page.screenshot(path=str(ARTIFACTS / "amazon_orders.png"), full_page=True)
        assert (ARTIFACTS / "amazon_orders.png").stat().st_size > 10_000
    finally:
        with contextlib.suppress(Exception):
            ctx.close()
        pw.stop()


def test_an_unreachable_warehouse_is_a_message_not_a_traceback(live: Live) -> None:
    with _admin_connect() as conn:
        conn.execute(f"ALTER DATABASE {live.db} ALLOW_CONNECTIONS false")
    try:
        page = live.get("/")
        assert page.status_code == 200
        assert page.text.count("Data unavailable.") == 5
        text = html.unescape(page.text)
        assert "warehouse 'warehouse_default' cannot be read: OperationalError" in text, text
        assert f'database "{live.db}" is not currently accepting connections' in text
        assert "Traceback" not in page.text
        api = live.get("/api/orders")
        assert api.status_code == 503
        assert api.json()["error"].startswith("warehouse 'warehouse_default' cannot be read")
    finally:
        with _admin_connect() as conn:
            conn.execute(f"ALTER DATABASE {live.db} ALLOW_CONNECTIONS true")
    assert live.get("/api/orders").status_code == 200
