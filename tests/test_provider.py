"""The package registers as an Airflow provider: connection type amazon_sp_api with its UI form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from selling_partner import get_provider_info

pytestmark = pytest.mark.integration


def test_airflow_providers_list_shows_the_provider() -> None:
    with tempfile.TemporaryDirectory(prefix="sp-provider-home-") as home:
        env = dict(os.environ, AIRFLOW_HOME=home, AIRFLOW__CORE__LOAD_EXAMPLES="False")
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{Path(home) / 'airflow.db'}"
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(proc.stdout[proc.stdout.index("[") :])}
    ours = providers["airflow-provider-selling-partner"]
    assert ours["version"] == "0.1.0" and "Selling Partner" in ours["description"]


def test_providers_manager_knows_the_hook_and_its_form() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["amazon_sp_api"]
    manager = ProvidersManager()  # the API server's view: connection form widgets and field behaviour
    assert hook.hook_class_name == "selling_partner.hooks.sp_api.SellingPartnerHook"
    assert hook.connection_id_attribute_name == "sp_api_conn_id" and hook.connection_testable
    widgets = manager.connection_form_widgets
    expected = {
        "refresh_token",
        "region",
        "marketplace_ids",
        "seller_id",
        "orders_api_version",
        "include_pii",
        "endpoint",
        "lwa_endpoint",
        "rate_limit_backend",
        "rate_limit_dsn",
    }
    assert {f"extra__amazon_sp_api__{name}" for name in expected} <= widgets.keys()
    assert widgets["extra__amazon_sp_api__refresh_token"].is_sensitive
    assert widgets["extra__amazon_sp_api__region"].field["schema"]["enum"] == ["na", "eu", "fe"]
    behaviour = manager.field_behaviours["amazon_sp_api"]
    assert {"host", "port", "schema"} <= set(behaviour["hidden_fields"])
    assert behaviour["relabeling"] == {"login": "LWA client id", "password": "LWA client secret"}


def test_provider_info_matches_the_hook_class() -> None:
    from selling_partner.hooks import SellingPartnerHook

    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == SellingPartnerHook.conn_type == "amazon_sp_api"
    assert conn_type["hook-name"] == SellingPartnerHook.hook_name == "Amazon Selling Partner API"
    assert SellingPartnerHook.default_conn_name == "sp_api_default"
