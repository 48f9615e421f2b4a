"""Provider metadata (read by Airflow's ProvidersManager via ``selling_partner.get_provider_info``).

Registers the ``amazon_sp_api`` connection type with its UI form: ``conn-fields`` become the extra
fields of the form (stored as plain keys in the connection extra) and ``ui-field-behaviour`` hides
host/port/schema and relabels login/password. Kept free of imports so provider discovery stays fast.
"""

from __future__ import annotations

from typing import Any

_STRING = {"type": ["string", "null"]}

PROVIDER_INFO: dict[str, Any] = {
    "package-name": "airflow-provider-selling-partner",
    "name": "Amazon Selling Partner API",
    "description": (
        "Track Amazon seller orders through the Selling Partner API (Orders v2026-01-01 and v0, "
        "Notifications) and load them into a warehouse."
    ),
    "versions": ["0.1.0"],
    "integrations": [
        {
            "integration-name": "Amazon Selling Partner API",
            "external-doc-url": "https://developer-docs.amazon.com/sp-api/",
            "tags": ["service"],
        }
    ],
    "hooks": [
        {
            "integration-name": "Amazon Selling Partner API",
            "python-modules": [
                "selling_partner.hooks.sp_api",
                "selling_partner.hooks.orders",
                "selling_partner.hooks.notifications",
                "selling_partner.hooks.reports",
            ],
        }
    ],
    "connection-types": [
        {
            "connection-type": "amazon_sp_api",
            "hook-class-name": "selling_partner.hooks.sp_api.SellingPartnerHook",
            "hook-name": "Amazon Selling Partner API",
            "conn-fields": {
                "refresh_token": {
                    "label": "LWA refresh token",
                    "description": "The seller's refresh token (Atzr|...) from authorizing the application.",
                    "schema": {"type": ["string", "null"], "format": "password"},
                },
                "region": {
                    "label": "Region",
                    "description": "SP-API region: na (US, CA, MX, BR), eu (UK, DE, ...), fe (JP, AU, SG).",
                    "schema": {"type": ["string", "null"], "enum": ["na", "eu", "fe"], "default": "na"},
                },
                "marketplace_ids": {
                    "label": "Marketplace ids",
                    "description": "Comma separated marketplace ids of the region, e.g. ATVPDKIKX0DER.",
                    "schema": _STRING,
                },
                "seller_id": {
                    "label": "Seller id (required)",
                    "description": "Required: the seller's merchant token (Seller Central > Account info > "
                    "Merchant Token). Notifications of other sellers are refused.",
                    "schema": _STRING,
                },
                "orders_api_version": {
                    "label": "Orders API version",
                    "description": "2026-01-01 (default) or v0 (deprecated, removed 2027-03-27).",
                    "schema": {
                        "type": ["string", "null"],
                        "enum": ["2026-01-01", "v0"],
                        "default": "2026-01-01",
                    },
                },
                "include_pii": {
                    "label": "Include buyer PII",
                    "description": "Load buyer name, email and address (needs the restricted roles).",
                    "schema": {"type": ["boolean", "null"], "default": False},
                },
                "pii_retention_days": {
                    "label": "Buyer PII retention (days)",
                    "description": "Buyer PII of orders not updated for this many days is deleted after each "
                    "sync run (default 30). Encrypted at rest with the key in connection sp_api_pii_key.",
                    "schema": {"type": ["integer", "null"], "default": 30},
                },
                "endpoint": {
                    "label": "SP-API endpoint override",
                    "description": "Leave empty for the region's endpoint; set it to use the sandbox.",
                    "schema": _STRING,
                },
                "lwa_endpoint": {
                    "label": "LWA token endpoint override",
                    "description": "Leave empty for https://api.amazon.com/auth/o2/token.",
                    "schema": _STRING,
                },
                "min_before_lag_seconds": {
                    "label": "Minimum lag before now (s)",
                    "description": "lastUpdatedBefore is kept at least this far before now (Amazon: 120).",
                    "schema": {"type": ["number", "null"], "default": 120},
                },
                "rate_limit_backend": {
                    "label": "Rate limit backend",
                    "description": "variable (default: token buckets kept in Airflow Variables between task "
                    "processes), postgres / redis (shared by every worker at once), memory (one process).",
                    "schema": {
                        "type": ["string", "null"],
                        "enum": ["variable", "postgres", "redis", "memory"],
                        "default": "variable",
                    },
                },
                "rate_limit_dsn": {
                    "label": "Rate limit DSN",
                    "description": "postgresql://... or redis://... for a shared rate limit backend.",
                    "schema": {"type": ["string", "null"], "format": "password"},
                },
                "rate_limit_conn_id": {
                    "label": "Rate limit Postgres connection id",
                    "description": "Alternative to the DSN for the postgres backend.",
                    "schema": _STRING,
                },
                "allow_insecure_http": {
                    "label": "Allow plain http to a non-loopback host",
                    "description": "Only for a sandbox on a private network: tokens travel in clear.",
                    "schema": {"type": ["boolean", "null"], "default": False},
                },
            },
            "ui-field-behaviour": {
                "hidden-fields": ["host", "port", "schema"],
                "relabeling": {"login": "LWA client id", "password": "LWA client secret"},
                "placeholders": {
                    "login": "amzn1.application-oa2-client.xxxxxxxx",
                    "password": "LWA client secret",
                    "refresh_token": "Atzr|...",
                    "region": "na",
                    "marketplace_ids": "ATVPDKIKX0DER",
                    "seller_id": "A1B2C3D4E5F6G7",
                    "orders_api_version": "2026-01-01",
                    "endpoint": "https://sellingpartnerapi-na.amazon.com",
                    "lwa_endpoint": "https://api.amazon.com/auth/o2/token",
                    "rate_limit_backend": "variable",
                    "rate_limit_dsn": "postgresql://user:pass@host:5432/db",
                },
            },
        }
    ],
}
