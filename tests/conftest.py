"""Test-session setup shared by every test.

Airflow reads its configuration when first imported, so the environment is fixed here, before any
test module imports Airflow: a throw-away AIRFLOW_HOME with a SQLite metadata DB, no examples,
and this repository's dags/ and plugins/. Fixtures live in tests/fixtures/, one module per area.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
    }
)

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.warehouse",
    "tests.fixtures.airflow",
]
