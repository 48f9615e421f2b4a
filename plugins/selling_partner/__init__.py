"""Amazon Selling Partner API provider for Apache Airflow: hook, operators, warehouse loader."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    from selling_partner.provider_info import PROVIDER_INFO

    return PROVIDER_INFO
