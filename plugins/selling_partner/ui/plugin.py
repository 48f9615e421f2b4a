"""The Airflow plugin: a Browse -> "Amazon orders" entry and the FastAPI app behind it.

Registered through the ``airflow.plugins`` entry point (pyproject.toml), so every Airflow component
with the package installed finds it; the api-server mounts the app under :data:`URL_PREFIX` and the UI
shows the page in an iframe at ``/plugin/amazon_orders``.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any
from urllib.parse import urlparse

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

#: Where the api-server mounts the app (must not start with /api/v2, /ui, /execution, /auth, /pluginsv2).
URL_PREFIX = "/amazon-orders"
#: The UI route of the iframe page: ``/plugin/amazon_orders``.
URL_ROUTE = "amazon_orders"
VIEW_NAME = "Amazon orders"


def base_path() -> str:
    """The path of ``[api] base_url`` (``""`` when Airflow is served at the root)."""
    try:
        from airflow.configuration import conf

        return urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    except Exception:  # configuration unreadable: links relative to the root still work at the root
        log.warning("Amazon orders page: [api] base_url unreadable; assuming the root", exc_info=True)
        return ""


def external_view(prefix: str = "") -> dict[str, Any]:
    """The Browse menu entry (an iframe page of the UI)."""
    return {
        "name": VIEW_NAME,
        "href": f"{prefix}{URL_PREFIX}/",
        "url_route": URL_ROUTE,
        "destination": "nav",
        "category": "browse",
    }


@cache
def fastapi_app() -> dict[str, Any]:
    """The mounted app (built once per process, on first use: only the api-server asks for it)."""
    from .app import create_app
    from .sources import Dashboard

    prefix = base_path()
    return {
        "app": create_app(lambda: Dashboard(base_path=prefix)),
        "url_prefix": URL_PREFIX,
        "name": VIEW_NAME,
    }


class SellingPartnerUiPlugin(AirflowPlugin):
    """Browse -> Amazon orders: live order counts, freshness, work in flight and SP-API quota."""

    name = "selling_partner_ui"
    external_views = [external_view(base_path())]

    @property  # type: ignore[override]
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # Lazy: every Airflow process loads plugins (task processes too, for listeners and macros);
        # only the api-server mounts apps, so only it pays for building one.
        return [fastapi_app()]
