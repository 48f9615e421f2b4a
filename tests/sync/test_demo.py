"""``make demo`` end to end (smaller world): the report ends with the warehouse matching the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fixtures.airflow import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_reports_warehouse_matches_sandbox(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SP_API_SYNC"))}
    env["SP_DEMO_DIR"] = str(tmp_path / "demo")
    proc = subprocess.run(
        [sys.executable, "-m", "demo", "--orders", "300", "--days", "10", "--time-scale", "600"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    # The verdict comes from tests/oracle.py over every table the sync fills, not a few columns.
    assert "compared with /_sandbox/truth field by field: sp_orders, sp_order_items, sp_order_packages" in out
    assert "warehouse matches sandbox: yes" in out
    assert "orders: 300" in out and "searchOrders" in out
    assert "page 1: 100 orders (total 100)" in out  # progress lines from the sync task
    assert "sandbox stopped." in out
    assert (tmp_path / "demo" / "warehouse.db").exists()
