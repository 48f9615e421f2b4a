"""Test-session setup shared by every test.

Airflow reads its configuration when first imported, so the environment is fixed here, before any
test module imports Airflow: a throw-away AIRFLOW_HOME with a SQLite metadata DB, no examples,
and this repository's dags/ and plugins/. Fixtures live in tests/fixtures/, one module per area.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[1]

_home = Path(tempfile.mkdtemp(prefix="sp-api-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # One key for this process and every `airflow ...` subprocess, so Variables encrypted by a task
        # run can be read back by the test (each process would otherwise invent its own key).
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
    }
)

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.warehouse",
    "tests.fixtures.airflow",
    "tests.fixtures.airflow_cluster",
    "tests.fixtures.seller",
    "tests.fixtures.campaign",
]
