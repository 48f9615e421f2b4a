"""Schema: versioned, idempotent, upgradeable; identifiers fixed; SQL files found or a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selling_partner.warehouse import LATEST_VERSION, get_warehouse, schema

from tests.warehouse.factories import at, order

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgres", "sqlite"])
def empty_conn_id(request) -> str:
    return request.getfixturevalue(
        "pg_warehouse_conn_id" if request.param == "postgres" else "sqlite_warehouse_conn_id"
    )


def test_ensure_schema_is_idempotent(empty_conn_id):
    wh = get_warehouse(empty_conn_id)
    assert wh.schema_version() == 0
    assert wh.ensure_schema() == LATEST_VERSION
    wh.upsert_orders([order(updated=at(1))])
    assert wh.ensure_schema() == LATEST_VERSION
    assert wh.ensure_schema() == LATEST_VERSION
    assert wh.schema_version() == LATEST_VERSION
    assert len(wh.fetch_orders()) == 1  # data survives re-creation
    for name in wh.view_names():
        wh.fetch_view(name)  # every view exists and runs


def test_upgrade_from_version_1_keeps_data(empty_conn_id):
    wh = get_warehouse(empty_conn_id)
    assert wh.ensure_schema(target_version=1) == 1
    wh.upsert_orders([order(updated=at(1))])
    with pytest.raises(Exception):  # noqa: B017 - v2 tables do not exist yet
        wh.fetch_inbox()
    assert wh.ensure_schema() == LATEST_VERSION
    assert wh.schema_version() == LATEST_VERSION
    assert wh.fetch_inbox() == []
    assert len(wh.fetch_orders()) == 1


def test_newer_database_than_package_is_refused(empty_conn_id):
    wh = get_warehouse(empty_conn_id)
    wh.ensure_schema()
    with wh._transaction() as cur:
        cur.execute(
            f"INSERT INTO {schema.SCHEMA_VERSION_TABLE} (version, description, applied_at) "
            f"VALUES ({LATEST_VERSION + 1}, 'future', {wh.placeholder})",
            (wh._encode_ts(at(0)),),
        )
    with pytest.raises(RuntimeError, match="newer than this package"):
        wh.ensure_schema()


def test_migrations_are_ordered_and_contiguous():
    assert [m.version for m in schema.MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    for dialect in ("postgres", "sqlite"):
        for m in schema.MIGRATIONS:
            assert all("IF NOT EXISTS" in stmt for stmt in m.statements(dialect))


def test_table_names_are_fixed_constants():
    assert all(name.startswith("sp_") and schema.IDENTIFIER_RE.match(name) for name in schema.ALL_TABLES)
    with pytest.raises(ValueError, match="identifier"):
        schema.create_table_sql(schema.ORDERS_TABLE, "sqlite", name="sp_x; DROP TABLE sp_orders")


def test_unsupported_connection_type_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WH_MYSQL", json.dumps({"conn_type": "mysql", "host": "localhost"}))
    with pytest.raises(ValueError, match="supports postgres, sqlite"):
        get_warehouse("wh_mysql")


def test_sql_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("SP_API_SQL_DIR", raising=False)
    default = schema.sql_dir()
    assert (default / "views").is_dir() and default == Path(__file__).resolve().parents[2] / "include" / "sql"
    monkeypatch.setenv("SP_API_SQL_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="SP_API_SQL_DIR"):
        schema.sql_dir()


def test_view_files_dialect_override(tmp_path):
    views = tmp_path / "views"
    views.mkdir()
    (views / "sp_v_a.sql").write_text("SELECT 1 AS x;\n")
    (views / "sp_v_a.sqlite.sql").write_text("SELECT 2 AS x")
    (views / "sp_v_b.sql").write_text("SELECT 3 AS x")
    (views / "sp_v_c.postgres.sql").write_text("SELECT 4 AS x")
    assert list(schema.iter_views("sqlite", tmp_path)) == [
        ("sp_v_a", "SELECT 2 AS x"),
        ("sp_v_b", "SELECT 3 AS x"),
    ]
    assert list(schema.iter_views("postgres", tmp_path)) == [
        ("sp_v_a", "SELECT 1 AS x"),
        ("sp_v_b", "SELECT 3 AS x"),
        ("sp_v_c", "SELECT 4 AS x"),
    ]
    (views / "Bad-Name.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match="must be named"):
        list(schema.iter_views("sqlite", tmp_path))


def test_every_view_has_a_file_for_each_dialect():
    for dialect in ("postgres", "sqlite"):
        names = [n for n, _ in schema.iter_views(dialect)]
        assert names == [
            "sp_v_daily_orders",
            "sp_v_fbm_orders_needing_action",
            "sp_v_order_lifecycle",
            "sp_v_units_per_sku_day",
        ]


def test_unknown_view_is_refused(warehouse):
    with pytest.raises(ValueError, match="Unknown view"):
        warehouse.fetch_view("sp_orders; DROP TABLE sp_orders")
