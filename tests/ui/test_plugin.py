"""The plugin as Airflow's own plugin manager loads it (a fresh ``airflow`` process, like any component):
the Browse entry is listed and valid for the api-server's schema, the app is mounted under its prefix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.airflow import airflow_env

pytestmark = pytest.mark.integration

PROBE = """
import json
from airflow import plugins_manager
from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse
plugins, errors = plugins_manager._get_plugins()
external_views, _ = plugins_manager._get_ui_plugins()
(ours,) = [p for p in plugins if p.name == "selling_partner_ui"]
apps, _ = plugins_manager.get_fastapi_plugins()
print(json.dumps({
    "source": str(ours.source),
    "views": [ExternalViewResponse.model_validate(v).model_dump() for v in external_views],
    "prefixes": [a["url_prefix"] for a in apps],
    "guarded": [len(a["app"].router.dependencies) for a in apps],
    "errors": errors,
}))
"""


def test_the_plugin_manager_lists_the_view(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    env = airflow_env(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins))
    env.pop("PYTHONPATH", None)  # as an installed package is found, not the checkout's plugins/ folder
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["source"].startswith("airflow-provider-selling-partner==")  # the airflow.plugins entry point
    (view,) = [v for v in out["views"] if v["name"] == "Amazon orders"]
    assert (view["category"], view["destination"], view["url_route"], view["href"]) == (
        "browse",
        "nav",
        "amazon_orders",
        "/amazon-orders/",
    )
    assert out["prefixes"] == ["/amazon-orders"]
    assert out["guarded"] == [1]  # the app carries the access check on every route
    # Only the development checkout's second metadata copy may make the manager meet the plugin twice.
    assert set(out["errors"].values()) <= {"Plugin 'selling_partner_ui' already registered, skipping"}
