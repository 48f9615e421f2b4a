"""The page's FastAPI app, mounted into Airflow's api-server by the plugin (``fastapi_apps``).

Routes (all under the plugin's prefix, every one requiring an authenticated Airflow user with view
access - ``requires_access_view(AccessView.PLUGINS)``, the same check as the UI's plugin list;
Airflow does not guard plugin apps by itself):

* ``GET /`` - the page (server-rendered HTML, refreshes its panels in place);
* ``GET /panels/<name>`` - one panel's HTML fragment (what the page's script swaps in);
* ``GET /api/<name>`` - one panel's data as JSON (503 with ``{"error": ...}`` when its source is down).

``<name>`` is one of ``orders``, ``freshness``, ``work``, ``quota``, ``charts``. FastAPI's own docs
and OpenAPI routes are switched off: they would not be guarded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

from . import render
from .sources import PANELS, Dashboard, SourceUnavailable

log = logging.getLogger(__name__)

REFRESH_ENV = "SP_API_UI_REFRESH_SECONDS"
DEFAULT_REFRESH_SECONDS = 10.0
NO_STORE = {"Cache-Control": "no-store"}


def refresh_seconds() -> float:
    """How often the page refreshes its panels (``SP_API_UI_REFRESH_SECONDS``, default 10; 0 = never)."""
    raw = os.environ.get(REFRESH_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_REFRESH_SECONDS
    except ValueError:
        log.warning("%s=%r is not a number; refreshing every %g s", REFRESH_ENV, raw, DEFAULT_REFRESH_SECONDS)
        return DEFAULT_REFRESH_SECONDS


def _guard() -> list[Any]:
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return [Depends(requires_access_view(AccessView.PLUGINS))]


def create_app(
    dashboard: Callable[[], Dashboard] = Dashboard, *, dependencies: list[Any] | None = None
) -> FastAPI:
    """The app; ``dashboard`` makes the data source per request, ``dependencies`` default to the guard."""
    app = FastAPI(
        title="Amazon orders",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=_guard() if dependencies is None else dependencies,
    )

    def body(source: Dashboard, name: str) -> tuple[str, bool]:
        """A panel's HTML and whether its data could be read."""
        try:
            return render.RENDERERS[name](source.panel(name)), True
        except SourceUnavailable as exc:
            return render.render_unavailable(str(exc)), False
        except Exception as exc:  # a bug must not take the whole page down, nor show a traceback
            log.exception("Amazon orders page: panel %s failed", name)
            return render.render_unavailable(
                f"this panel failed ({type(exc).__name__}); see the api-server log"
            ), False

    def check(name: str) -> None:
        if name not in PANELS:
            raise HTTPException(
                status_code=404, detail=f"unknown panel {name!r}; panels: {', '.join(PANELS)}"
            )

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        source = dashboard()
        bodies = {name: body(source, name)[0] for name in PANELS}
        from .panels import iso

        html = render.page(
            bodies,
            refresh_seconds=refresh_seconds(),
            generated_at=iso(source.now()) or "",
            warehouse=source.conn_id,
        )
        return HTMLResponse(html, headers=NO_STORE)

    @app.get("/panels/{name}", response_class=HTMLResponse)
    def fragment(name: str) -> HTMLResponse:
        check(name)
        html, ok = body(dashboard(), name)
        return HTMLResponse(html, headers={**NO_STORE, "X-Panel-Available": "true" if ok else "false"})

    @app.get("/api/{name}")
    def data(name: str) -> JSONResponse:
        check(name)
        source = dashboard()
        try:
            return JSONResponse(source.panel(name), headers=NO_STORE)
        except SourceUnavailable as exc:
            return JSONResponse({"panel": name, "error": str(exc)}, status_code=503, headers=NO_STORE)

    return app
