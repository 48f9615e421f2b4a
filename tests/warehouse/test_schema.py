"""Schema: versioned, idempotent, upgradeable; identifiers fixed; view SQL shipped in the package; views
recreated only when their SQL changed or they are missing (no lock on them otherwise)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import psycopg
import pytest
import selling_partner.warehouse as warehouse_pkg
from selling_partner.warehouse import LATEST_VERSION, get_warehouse, schema
from selling_partner.warehouse.postgres import PostgresWarehouse
from selling_partner.warehouse.rows import build_order_batch

from tests.warehouse.factories import at, item, order

pytestmark = pytest.mark.integration

VIEWS = [
    "sp_v_daily_orders",
    "sp_v_fbm_orders_needing_action",
    "sp_v_order_lifecycle",
    "sp_v_units_per_sku_day",
]
VIEW_FILES = [
    "sp_v_daily_orders.sql",
    "sp_v_fbm_orders_needing_action.sql",
    "sp_v_order_lifecycle.sql",
    "sp_v_units_per_sku_day.sql",
]


@pytest.fixture(params=["postgres", "sqlite"])
def empty_conn_id(request) -> str:
    return request.getfixturevalue(
        "pg_warehouse_conn_id" if request.param == "postgres" else "sqlite_warehouse_conn_id"
    )


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("loaded_at", "observed_at")} for r in rows]


def _view_identity(wh) -> dict[str, int] | int:
    """PostgreSQL: view name -> OID (a recreated view gets a new one). SQLite: ``PRAGMA schema_version``,
    which every DDL statement increments."""
    with wh._transaction(write=False) as cur:
        if wh.dialect == "postgres":
            cur.execute(
                "SELECT c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'v' AND n.nspname = current_schema()"
            )
            return {name: int(oid) for name, oid in cur.fetchall()}
        cur.execute("PRAGMA schema_version")
        return int(cur.fetchone()[0])


def _view_columns(wh, name: str) -> list[str]:
    with wh._transaction(write=False) as cur:
        cur.execute(f"SELECT * FROM {name} WHERE 1 = 0")
        return [d[0] for d in cur.description]


def _execute(wh, sql: str, params: tuple = ()) -> None:
    with wh._transaction() as cur:
        cur.execute(sql.replace("%s", wh.placeholder), params)


# --------------------------------------------------------------------------- versions and upgrades
def test_ensure_schema_is_idempotent(empty_conn_id):
    wh = get_warehouse(empty_conn_id)
    assert wh.schema_version() == 0
    assert wh.ensure_schema() == LATEST_VERSION
    wh.upsert_orders([order("111-0000001-0000001", updated=at(1), items=(item("111-0000001-0000001", 1),))])
    before = (wh.fetch_orders(), wh.fetch_items(), wh.fetch_status_history())
    assert wh.ensure_schema() == LATEST_VERSION
    assert wh.ensure_schema() == LATEST_VERSION
    assert wh.schema_version() == LATEST_VERSION
    assert (wh.fetch_orders(), wh.fetch_items(), wh.fetch_status_history()) == before  # data untouched
    assert [(r["order_id"], r["order_status"], r["last_updated_time"]) for r in before[0]] == [
        ("111-0000001-0000001", "UNSHIPPED", at(1))
    ]
    with wh._transaction(write=False) as cur:
        cur.execute(f"SELECT version, description FROM {schema.SCHEMA_VERSION_TABLE} ORDER BY version")
        assert cur.fetchall() == [(m.version, m.description) for m in schema.MIGRATIONS]


def test_upgrade_from_version_1_keeps_data_and_fills_new_columns(empty_conn_id):
    """A v1 warehouse with rows written as v1 wrote them upgrades to the latest version in place."""
    wh = get_warehouse(empty_conn_id)
    assert wh.ensure_schema(target_version=1) == 1
    ts = wh._encode_ts
    # An order row (sp_orders is unchanged since v1) and a sync run in v1's 21 columns.
    (row,) = build_order_batch([order("111-0000001-0000001", updated=at(1))], ts=ts, loaded_at=at(2)).orders
    cols = schema.ORDERS_TABLE.column_names
    _execute(wh, f"INSERT INTO sp_orders ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})", row)
    _execute(
        wh,
        "INSERT INTO sp_sync_runs (run_id, conn_id, mode, status, window_start, window_end, seller_id, "
        "marketplace_ids, api_version, pages, orders, calls, throttled, duration_seconds, started_at, "
        "finished_at, dag_id, dag_run_id, task_id, error, recorded_at) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        ("r1", "sp_api_default", "sweep", "success", ts(at(0)), ts(at(60)), None, "ATVPDKIKX0DER",
         "2026-01-01", 3, 250, 4, 1, 12.5, ts(at(61)), ts(at(62)), "sp_api_orders_sync", "manual__1", "sync",
         None, ts(at(63))),
    )  # fmt: skip
    with pytest.raises(Exception):  # noqa: B017 - v2 tables do not exist yet
        wh.fetch_inbox()

    assert wh.ensure_schema() == LATEST_VERSION
    assert wh.schema_version() == LATEST_VERSION
    assert wh.fetch_inbox() == [] and wh.fetch_order_quarantine() == []
    got = [
        (r["order_id"], r["order_status"], r["last_updated_time"], r["loaded_at"]) for r in wh.fetch_orders()
    ]
    assert got == [("111-0000001-0000001", "UNSHIPPED", at(1), at(2))]
    assert wh.fetch_sync_runs() == [
        {
            "run_id": "r1", "conn_id": "sp_api_default", "mode": "sweep", "status": "success",
            "window_start": at(0), "window_end": at(60), "seller_id": None,
            "marketplace_ids": "ATVPDKIKX0DER", "api_version": "2026-01-01", "pages": 3, "orders": 250,
            "calls": 4, "throttled": 1,
            "duration_seconds": 12.5, "started_at": at(61), "finished_at": at(62),
            "dag_id": "sp_api_orders_sync", "dag_run_id": "manual__1", "task_id": "sync", "error": None,
            "recorded_at": at(63),
            # v3 columns of a row recorded before v3: the documented defaults
            "try_number": None, "deferrals": 0, "deferred_seconds": 0.0, "retries": 0, "quarantined": 0,
            "missed_by_events": 0,  # v4
        }
    ]  # fmt: skip
    # The upgraded warehouse works as a fresh one: views exist, orders load.
    assert [v for v in VIEWS if _view_columns(wh, v)] == VIEWS
    assert (
        wh.upsert_orders([order("111-0000001-0000001", status="SHIPPED", updated=at(5))]).orders_written == 1
    )


def test_released_migrations_are_frozen():
    """v1 still creates sp_sync_runs with its 21 original columns; v3 adds the new ones with ALTER TABLE."""
    for dialect in ("postgres", "sqlite"):
        (create,) = [
            st for st in schema.MIGRATIONS[0].statements(dialect) if "TABLE IF NOT EXISTS sp_sync_runs" in st
        ]
        assert "try_number" not in create and "deferrals" not in create and "recorded_at" in create
        v3 = schema.MIGRATIONS[2].statements(dialect)
        assert [st for st in v3 if st.startswith("ALTER TABLE")] == [
            f"ALTER TABLE sp_sync_runs ADD COLUMN {c.ddl(dialect)}" for c in schema.SYNC_RUNS_V3_COLUMNS
        ]
    assert schema.SYNC_RUNS_V3_COLUMNS[1].ddl("sqlite") == "deferrals INTEGER NOT NULL DEFAULT 0"
    assert schema.SYNC_RUNS_V3_COLUMNS[0].ddl("postgres") == "try_number BIGINT"


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
            for stmt in m.statements(dialect):
                # CREATE statements are re-runnable; ADD COLUMN commits atomically with its version row.
                assert "IF NOT EXISTS" in stmt or (
                    stmt.startswith("ALTER TABLE ") and " ADD COLUMN " in stmt
                ), stmt


def test_a_not_null_column_added_later_needs_a_default():
    with pytest.raises(ValueError, match="needs a default"):
        schema.add_column_sql(schema.SYNC_RUNS_TABLE, schema.Column("x", "int", False), "sqlite")


def test_table_names_are_fixed_constants():
    assert all(name.startswith("sp_") and schema.IDENTIFIER_RE.match(name) for name in schema.ALL_TABLES)
    with pytest.raises(ValueError, match="identifier"):
        schema.create_table_sql(schema.ORDERS_TABLE, "sqlite", name="sp_x; DROP TABLE sp_orders")


def test_unsupported_connection_type_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WH_MYSQL", json.dumps({"conn_type": "mysql", "host": "localhost"}))
    with pytest.raises(ValueError, match="supports postgres, sqlite"):
        get_warehouse("wh_mysql")


# --------------------------------------------------------------------------- view SQL in the package
def test_view_sql_ships_inside_the_package(monkeypatch):
    monkeypatch.delenv("SP_API_SQL_DIR", raising=False)
    default = schema.sql_dir()
    assert Path(str(default)) == Path(warehouse_pkg.__file__).parent / "sql"
    assert sorted(e.name for e in default.joinpath("views").iterdir()) == VIEW_FILES
    assert not (Path(__file__).resolve().parents[2] / "include" / "sql").exists()  # moved, not copied


def test_view_macros_spell_each_dialect_and_refuse_unknown_ones():
    sql = "SELECT {{utc_date(o.created_time)}}, {{ hours_between(a, b) }}, {{money_sum(order_total)}}"
    assert schema.expand_view_macros(sql, "postgres") == (
        "SELECT CAST(o.created_time AT TIME ZONE 'UTC' AS date), EXTRACT(EPOCH FROM (b - a)) / 3600.0, "
        "SUM(order_total)"
    )
    assert schema.expand_view_macros(sql, "sqlite") == (
        "SELECT substr(o.created_time, 1, 10), (julianday(b) - julianday(a)) * 24.0, "
        "ROUND(SUM(CAST(order_total AS REAL)), 4)"
    )
    with pytest.raises(ValueError, match="unknown view macro"):
        schema.expand_view_macros("SELECT {{age(x)}}", "sqlite")
    for dialect in ("postgres", "sqlite"):
        assert all("{{" not in sql for _, sql in schema.iter_views(dialect))


def test_sql_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SP_API_SQL_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="SP_API_SQL_DIR"):
        schema.sql_dir()
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "sp_v_only.sql").write_text("SELECT 1 AS x;\n")
    assert Path(str(schema.sql_dir())) == tmp_path
    assert list(schema.iter_views("sqlite")) == [("sp_v_only", "SELECT 1 AS x")]


def test_views_read_from_a_zip_like_a_wheel(tmp_path, monkeypatch):
    """``iter_views`` reads any importlib.resources Traversable, e.g. a zip archive (a zipped wheel)."""
    monkeypatch.delenv("SP_API_SQL_DIR", raising=False)
    archive = tmp_path / "pkg.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        for entry in schema.sql_dir().joinpath("views").iterdir():
            zf.writestr(
                f"selling_partner/warehouse/sql/views/{entry.name}", entry.read_text(encoding="utf-8")
            )
    zipped = zipfile.Path(archive, "selling_partner/warehouse/sql/")
    for dialect in ("postgres", "sqlite"):
        assert list(schema.iter_views(dialect, zipped)) == list(schema.iter_views(dialect))


def test_view_files_dialect_override(tmp_path):
    views = tmp_path / "views"
    views.mkdir()
    (views / "sp_v_a.sql").write_text("SELECT 1 AS x;\n")
    (views / "sp_v_a.sqlite.sql").write_text("SELECT 2 AS x")
    (views / "sp_v_b.sql").write_text("SELECT 3 AS x")
    (views / "sp_v_c.postgres.sql").write_text("SELECT 4 AS x")
    (views / "README.txt").write_text("not a view")
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
        assert [n for n, _ in schema.iter_views(dialect)] == VIEWS


def test_unknown_view_is_refused(warehouse):
    with pytest.raises(ValueError, match="Unknown view"):
        warehouse.fetch_view("sp_orders; DROP TABLE sp_orders")


# --------------------------------------------------------------------------- views only when changed
def _copy_views(target: Path) -> Path:
    (target / "views").mkdir(parents=True)
    for entry in schema.sql_dir().joinpath("views").iterdir():
        (target / "views" / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    return target


def _stored_checksums(wh) -> dict[str, str]:
    with wh._transaction(write=False) as cur:
        cur.execute(f"SELECT key, value FROM {schema.SCHEMA_STATE}")
        return dict(cur.fetchall())


def test_views_and_checksums_after_first_ensure(empty_conn_id):
    wh = get_warehouse(empty_conn_id)
    wh.ensure_schema()
    expected = {schema.view_state_key(n): schema.sql_sha256(sql) for n, sql in schema.iter_views(wh.dialect)}
    assert _stored_checksums(wh) == expected and len(expected) == len(VIEWS)
    assert wh.view_names() == VIEWS


def test_second_ensure_schema_changes_no_view(empty_conn_id):
    wh = get_warehouse(empty_conn_id)
    wh.ensure_schema()
    identity, checksums = _view_identity(wh), _stored_checksums(wh)
    wh.ensure_schema()
    wh.ensure_schema()
    assert _view_identity(wh) == identity
    assert _stored_checksums(wh) == checksums


def test_changed_view_file_is_applied_on_next_call(empty_conn_id, tmp_path, monkeypatch):
    sql_copy = _copy_views(tmp_path / "sql")
    monkeypatch.setenv("SP_API_SQL_DIR", str(sql_copy))
    wh = get_warehouse(empty_conn_id)
    wh.ensure_schema()
    identity = _view_identity(wh)
    wh.ensure_schema()  # same SQL from another folder: nothing to do
    assert _view_identity(wh) == identity

    changed = "sp_v_fbm_orders_needing_action"
    path = sql_copy / "views" / f"{changed}.sql"
    path.write_text(
        path.read_text().replace("    last_updated_time\n", "    last_updated_time,\n    1 AS probe\n")
    )
    assert _view_columns(wh, changed)[-1] == "last_updated_time"
    wh.ensure_schema()
    assert _view_columns(wh, changed)[-2:] == ["last_updated_time", "probe"]
    new_sql = dict(schema.iter_views(wh.dialect))[changed]
    assert "1 AS probe" in new_sql
    assert _stored_checksums(wh)[schema.view_state_key(changed)] == schema.sql_sha256(new_sql)
    after = _view_identity(wh)
    if wh.dialect == "postgres":  # only the changed view was recreated
        assert {n: after[n] == identity[n] for n in VIEWS} == {n: n != changed for n in VIEWS}
    else:
        assert after == identity + 2  # one DROP VIEW and one CREATE VIEW
    wh.ensure_schema()
    assert _view_identity(wh) == after


def test_missing_view_is_recreated(empty_conn_id):
    wh = get_warehouse(empty_conn_id)
    wh.ensure_schema()
    _execute(wh, "DROP VIEW sp_v_units_per_sku_day")
    with pytest.raises(Exception):  # noqa: B017 - the view is gone
        _view_columns(wh, "sp_v_units_per_sku_day")
    wh.ensure_schema()
    assert _view_columns(wh, "sp_v_units_per_sku_day") == [
        "order_date", "marketplace_id", "seller_sku", "asin", "orders", "units_ordered", "units_shipped",
    ]  # fmt: skip


@pytest.mark.parametrize("holder", ["analyst-reading-views", "access-exclusive-on-views"])
def test_second_ensure_schema_takes_no_lock_on_views(pg_dsn, pg_schema, holder):
    """Another session holds locks on every view in an open transaction: an analyst reading them (ACCESS
    SHARE, which DROP VIEW would queue behind) or ACCESS EXCLUSIVE (which any lock would wait for). With
    a short lock_timeout, ensure_schema fails if it waits for any of them; it must not need to."""
    options = f"-c search_path={pg_schema}"
    wh = PostgresWarehouse(
        "unused",
        connection_factory=lambda: psycopg.connect(pg_dsn, options=f"{options} -c lock_timeout=1500"),
    )
    wh.ensure_schema()
    wh.upsert_orders([order("111-0000001-0000001", updated=at(1))])
    oids = _view_identity(wh)
    with psycopg.connect(pg_dsn, options=options) as other:  # a transaction stays open until the block ends
        if holder == "analyst-reading-views":
            for name in VIEWS:
                other.execute(f"SELECT * FROM {name}").fetchall()
        else:
            other.execute(f"LOCK TABLE {', '.join(VIEWS)} IN ACCESS EXCLUSIVE MODE")
        held = other.execute(
            "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = pg_backend_pid() AND l.granted AND c.relkind = 'v' "
            "AND c.relnamespace = current_schema()::regnamespace ORDER BY 1"
        ).fetchall()
        assert [name for (name,) in held] == VIEWS
        assert wh.ensure_schema() == LATEST_VERSION  # raises LockNotAvailable if it waited for a view
        other.rollback()
    assert _view_identity(wh) == oids


def test_first_ensure_schema_with_an_old_view_definition_replaces_it(pg_warehouse_conn_id):
    """A v2 warehouse has views but no checksums: the upgrade recreates them once, then leaves them."""
    wh = get_warehouse(pg_warehouse_conn_id)
    wh.ensure_schema(target_version=2)
    _execute(wh, "CREATE VIEW sp_v_daily_orders AS SELECT 1 AS old_definition")
    wh.ensure_schema()
    assert "summary_only_orders" in _view_columns(wh, "sp_v_daily_orders")
    oids = _view_identity(wh)
    wh.ensure_schema()
    assert _view_identity(wh) == oids
