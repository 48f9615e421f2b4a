"""Buyer PII at rest: the raw ``sp_order_buyers`` holds Fernet tokens only, readable with the key
connection's key(s); a missing or wrong key fails with the fix; the retention purge deletes old PII.

Every test runs on PostgreSQL and SQLite (the ``warehouse`` fixture); the key connection
``sp_api_pii_key`` comes with the warehouse connection fixtures (``tests/fixtures/warehouse.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from selling_partner.orders.canonical import CanonicalBuyer
from selling_partner.warehouse import get_warehouse, pii
from selling_partner.warehouse.rows import build_order_batch
from selling_partner.warehouse.schema import BUYERS_TABLE

from tests.fixtures.warehouse import PII_KEY_ENV, TEST_PII_KEY, pii_key_conn_uri
from tests.warehouse.factories import at, order

NEW_KEY = "Zm9yLXRlc3RzLW9ubHktbmV3LXBpaS1rZXktMDAwMDA="
OTHER_KEY = "b3RoZXItdGVzdC1rZXktbm90LXRoZS13cml0ZXJzLTA="


def full_buyer(order_id: str, n: int) -> CanonicalBuyer:
    """A buyer with every PII column set to a distinct, recognisable value (odd text included)."""
    return CanonicalBuyer(
        order_id=order_id,
        buyer_name=f"Zoë Ångström-{n}",
        buyer_email=f"zoe.{n}@buyer-mail.invalid",
        buyer_company_name=f"Ångström Holdings {n} GmbH",
        buyer_purchase_order_number=f"PO-7731-{n:04d}",
        recipient_name=f"Ren O'Malley {n}",
        address_line1=f"{100 + n} Rue du Faubourg-Saint-Honoré",
        address_line2=f"Bâtiment {n}B",
        address_line3=f"Étage {n} — porte 北",
        city=f"Saint-Étienne-{n}",
        state_or_region=f"Auvergne-Rhône-{n}",
        postal_code=f"4{n:04d}",
        country_code="FR",
        phone=f"+33 6 12 34 {n:02d} 99",
    )


def plaintexts(buyers: list[CanonicalBuyer]) -> set[str]:
    return {v for b in buyers for c in pii.PII_COLUMNS if (v := getattr(b, c)) is not None}


def expected_rows(buyers: list[CanonicalBuyer], updated) -> list[dict]:
    return [
        {
            "order_id": b.order_id,
            **{c: getattr(b, c) for c in pii.PII_COLUMNS},
            "order_last_updated_time": updated,
        }
        for b in sorted(buyers, key=lambda b: b.order_id)
    ]


def raw_cells(wh) -> list[tuple]:
    """Every row of the raw table, every column, read with plain SQL (no package code)."""
    conn = wh._connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT * FROM sp_order_buyers ORDER BY order_id")
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def assert_no_plaintext(cells: list[tuple], secrets: set[str]) -> None:
    leaks = [
        (row[0], secret)
        for row in cells
        for cell in row
        if cell is not None
        for secret in secrets
        # short values (the country code) could occur in a token by chance: those must not equal a cell
        if (secret in str(cell) if len(secret) >= 5 else str(cell) == secret)
    ]
    assert leaks == [], f"plaintext PII at rest: {leaks[:5]}"


def load(wh, n: int = 6, *, updated=None, start: int = 0) -> list[CanonicalBuyer]:
    buyers = [full_buyer(f"111-0000000-{i:07d}", i) for i in range(start, start + n)]
    res = wh.upsert_orders([order(b.order_id, updated=updated or at(1), buyer=b) for b in buyers])
    assert res.buyers_written == n
    return buyers


def test_raw_table_holds_no_plaintext_and_tokens_are_fernet_of_the_values(warehouse):
    buyers = load(warehouse, 8)
    # A newer version of one order's buyer replaces the row (also encrypted).
    moved = dataclasses.replace(buyers[0], city="Clermont-Ferrand-Neuf", phone="+33 7 00 00 00 01")
    warehouse.upsert_orders([order(moved.order_id, updated=at(2), buyer=moved)])
    secrets = plaintexts(buyers) | {"Clermont-Ferrand-Neuf", "+33 7 00 00 00 01"}

    cells = raw_cells(warehouse)
    assert len(cells) == 8 and all(len(r) == len(BUYERS_TABLE.columns) for r in cells)
    assert_no_plaintext(cells, secrets)
    # ... and the scan can fail: the very same rows decrypted hold every value.
    with pytest.raises(AssertionError, match="plaintext PII at rest"):
        assert_no_plaintext([tuple(r.values()) for r in warehouse.fetch_buyers()], secrets)

    # Independently of the package: each PII cell is a Fernet token of the value under the test key.
    f = Fernet(TEST_PII_KEY)
    names = BUYERS_TABLE.column_names
    by_id = {b.order_id: b for b in [moved, *buyers[1:]]}
    for row in cells:
        b = by_id[row[0]]
        for c in pii.PII_COLUMNS:
            assert f.decrypt(row[names.index(c)].encode()).decode() == getattr(b, c)


def test_sqlite_file_holds_no_plaintext(sqlite_warehouse_conn_id, tmp_path: Path):
    wh = get_warehouse(sqlite_warehouse_conn_id)
    wh.ensure_schema()
    buyers = load(wh, 5)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("warehouse.db")]
    assert files
    blob = b"".join(p.read_bytes() for p in files)
    assert b"111-0000000-0000001" in blob  # the scan reads the stored rows (their keys are clear)
    leaks = [s for s in plaintexts(buyers) if len(s) >= 5 and s.encode() in blob]
    assert leaks == []


def test_read_buyers_round_trip(warehouse):
    buyers = load(warehouse, 4)
    sparse = CanonicalBuyer(order_id="111-0000000-0000099", buyer_email="only@mail.invalid")
    warehouse.upsert_orders([order(sparse.order_id, updated=at(1), buyer=sparse)])
    want = expected_rows([*buyers, sparse], at(1))

    got = pii.read_buyers(warehouse.conn_id)
    assert [{k: v for k, v in r.items() if k != "loaded_at"} for r in got] == want
    assert [{k: v for k, v in r.items() if k != "loaded_at"} for r in warehouse.fetch_buyers()] == want
    (one,) = pii.read_buyers(warehouse.conn_id, where={"order_id": sparse.order_id})
    assert one["buyer_email"] == "only@mail.invalid" and one["buyer_name"] is None  # NULL stays NULL
    (raw,) = warehouse.fetch_buyers({"order_id": sparse.order_id}, decrypt=False)
    assert raw["buyer_name"] is None and raw["buyer_email"].startswith("gAAAAA")
    with pytest.raises(ValueError, match="clear columns"):
        warehouse.fetch_buyers({"buyer_email": "only@mail.invalid"})


def test_missing_key_connection_fails_with_the_fix_and_writes_nothing(warehouse, monkeypatch):
    monkeypatch.delenv(PII_KEY_ENV)
    wh = get_warehouse(warehouse.conn_id)
    b = full_buyer("111-0000000-0000001", 1)
    with pytest.raises(pii.PiiKeyError) as err:
        wh.upsert_orders([order(b.order_id, updated=at(1), buyer=b)])
    message = str(err.value)
    assert "'sp_api_pii_key'" in message and "does not exist" in message
    assert "Fernet.generate_key()" in message and "include_pii off" in message
    # The whole batch rolled back: no order, no buyer row, no plaintext anywhere.
    assert wh.fetch_orders() == [] and raw_cells(wh) == []
    # Without PII nothing needs the key.
    assert wh.upsert_orders([order(b.order_id, updated=at(1))]).orders_written == 1
    with pytest.raises(pii.PiiKeyError, match="does not exist"):
        pii.read_buyers(warehouse.conn_id)


def test_key_connection_id_from_the_environment(warehouse, monkeypatch):
    monkeypatch.delenv(PII_KEY_ENV)
    monkeypatch.setenv("AIRFLOW_CONN_MY_VAULTED_KEY", pii_key_conn_uri(OTHER_KEY))
    monkeypatch.setenv(pii.KEY_CONN_ID_ENV, "my_vaulted_key")
    wh = get_warehouse(warehouse.conn_id)
    load(wh, 2)
    assert Fernet(OTHER_KEY).decrypt(wh.fetch_buyers(decrypt=False)[0]["buyer_name"].encode())
    assert [r["buyer_name"] for r in pii.read_buyers(warehouse.conn_id)] == [
        "Zoë Ångström-0",
        "Zoë Ångström-1",
    ]


def test_wrong_or_bad_key_fails_naming_the_cell_not_the_value(warehouse, monkeypatch):
    buyers = load(warehouse, 2)
    monkeypatch.setenv(PII_KEY_ENV, pii_key_conn_uri(OTHER_KEY))
    with pytest.raises(pii.PiiKeyError) as err:
        pii.read_buyers(warehouse.conn_id)
    message = str(err.value)
    assert "sp_order_buyers 111-0000000-0000000: buyer_name does not decrypt" in message
    assert "previous key" in message and not any(s in message for s in plaintexts(buyers))
    with pytest.raises(pii.PiiKeyError, match="does not decrypt"):
        get_warehouse(warehouse.conn_id).fetch_buyers()

    monkeypatch.setenv(PII_KEY_ENV, pii_key_conn_uri("not-a-key-at-all"))
    with pytest.raises(pii.PiiKeyError, match="not a Fernet key") as err:
        pii.read_buyers(warehouse.conn_id)
    assert "not-a-key-at-all" not in str(err.value)
    monkeypatch.setenv(PII_KEY_ENV, pii_key_conn_uri())
    with pytest.raises(pii.PiiKeyError, match="holds no key"):
        get_warehouse(warehouse.conn_id).upsert_orders([order("111-1", updated=at(1), buyer=buyers[0])])


def test_key_rotation_keeps_every_row_readable(warehouse, monkeypatch):
    old = load(warehouse, 3)
    # Rotation step 1: the new key first, the old one after it. Old rows read; new rows use the new key.
    monkeypatch.setenv(PII_KEY_ENV, pii_key_conn_uri(NEW_KEY, TEST_PII_KEY))
    wh = get_warehouse(warehouse.conn_id)
    new = load(wh, 2, start=10)
    assert {r["buyer_email"] for r in pii.read_buyers(wh.conn_id)} == {b.buyer_email for b in old + new}
    raw = {r["order_id"]: r["buyer_email"] for r in wh.fetch_buyers(decrypt=False)}
    assert Fernet(NEW_KEY).decrypt(raw[new[0].order_id].encode()).decode() == new[0].buyer_email
    with pytest.raises(InvalidToken):
        Fernet(NEW_KEY).decrypt(raw[old[0].order_id].encode())
    # Step 2: re-encrypt everything with the new key; step 3: drop the old key.
    assert wh.rotate_pii_key() == 5
    monkeypatch.setenv(PII_KEY_ENV, pii_key_conn_uri(NEW_KEY))
    got = pii.read_buyers(wh.conn_id)
    assert [{k: v for k, v in r.items() if k != "loaded_at"} for r in got] == expected_rows(old + new, at(1))
    assert_no_plaintext(raw_cells(wh), plaintexts(old + new))
    monkeypatch.setenv(PII_KEY_ENV, pii_key_conn_uri(TEST_PII_KEY))  # the old key alone no longer reads
    with pytest.raises(pii.PiiKeyError, match="does not decrypt"):
        pii.read_buyers(wh.conn_id)


def test_purge_deletes_only_rows_older_than_the_retention(warehouse):
    day = 60 * 24
    ages = {"111-0000000-0000001": 45, "111-0000000-0000002": 31, "111-0000000-0000003": 30,
            "111-0000000-0000004": 2}  # fmt: skip
    now = at(100 * day)
    for oid, age in ages.items():
        warehouse.upsert_orders([order(oid, updated=at((100 - age) * day), buyer=full_buyer(oid, 1))])
    warehouse.upsert_orders([order("111-0000000-0000005", updated=at(0))])  # an old order without PII
    assert warehouse.purge_pii(30, now=now) == 2
    kept = pii.read_buyers(warehouse.conn_id)
    assert [r["order_id"] for r in kept] == ["111-0000000-0000003", "111-0000000-0000004"]  # 30 days: kept
    assert kept[0]["buyer_name"] == "Zoë Ångström-1"
    assert len(warehouse.fetch_orders()) == 5  # the orders stay for analytics
    assert warehouse.purge_pii(0, now=now) == 2 and raw_cells(warehouse) == []


@pytest.fixture(params=["postgres", "sqlite"])
def empty_conn_id(request) -> str:
    return request.getfixturevalue(
        "pg_warehouse_conn_id" if request.param == "postgres" else "sqlite_warehouse_conn_id"
    )


def _insert_v4_buyers(wh, buyers: list[CanonicalBuyer]) -> None:
    """Buyer rows as schema v4 stored them: plaintext (the row builder's output, unencrypted)."""
    batch = build_order_batch([order(b.order_id, updated=at(1), buyer=b) for b in buyers], ts=wh._encode_ts)
    cols = BUYERS_TABLE.column_names
    conn = wh._connect()
    try:
        cur = conn.cursor()
        marks = ", ".join([wh.placeholder] * len(cols))
        cur.executemany(f"INSERT INTO sp_order_buyers ({', '.join(cols)}) VALUES ({marks})", batch.buyers)
        conn.commit()
    finally:
        conn.close()


def test_upgrade_to_v5_encrypts_the_plaintext_rows(empty_conn_id, monkeypatch):
    wh = get_warehouse(empty_conn_id)
    assert wh.ensure_schema(target_version=4) == 4
    buyers = [full_buyer(f"111-0000000-{i:07d}", i) for i in range(3)]
    _insert_v4_buyers(wh, buyers)
    with pytest.raises(AssertionError):
        assert_no_plaintext(raw_cells(wh), plaintexts(buyers))  # v4: in clear

    # Without the key the upgrade refuses (and rolls back): plaintext never stays behind silently.
    monkeypatch.delenv(PII_KEY_ENV)
    with pytest.raises(pii.PiiKeyError, match="sp_api_pii_key"):
        get_warehouse(empty_conn_id).ensure_schema()
    assert wh.schema_version() == 4 and len(raw_cells(wh)) == 3

    monkeypatch.setenv(PII_KEY_ENV, pii_key_conn_uri(TEST_PII_KEY))
    assert get_warehouse(empty_conn_id).ensure_schema() == 5
    assert_no_plaintext(raw_cells(wh), plaintexts(buyers))
    got = pii.read_buyers(empty_conn_id)
    assert [{k: v for k, v in r.items() if k != "loaded_at"} for r in got] == expected_rows(buyers, at(1))


def test_upgrade_without_buyer_rows_needs_no_key(empty_conn_id, monkeypatch):
    wh = get_warehouse(empty_conn_id)
    assert wh.ensure_schema(target_version=4) == 4
    wh.upsert_orders([order("111-0000000-0000001", updated=at(1))])
    monkeypatch.delenv(PII_KEY_ENV)
    assert get_warehouse(empty_conn_id).ensure_schema() == 5


# ---------------------------------------------------------------------------- the settings and the sync


def test_pii_retention_days_setting():
    from selling_partner.hooks.config import config_from_connection
    from selling_partner.validation import ValidationError

    def cfg(**extra):
        return config_from_connection(
            "id", "secret", {"seller_id": "A1", "marketplace_ids": "ATVPDKIKX0DER", **extra}
        )

    assert cfg().pii_retention_days == 30
    assert cfg(pii_retention_days="7").pii_retention_days == 7
    assert cfg(pii_retention_days=0).pii_retention_days == 0
    for bad in ("-1", "1.5", "soon", True, "nan", "inf"):
        with pytest.raises(ValidationError, match="pii_retention_days"):
            cfg(pii_retention_days=bad)


@pytest.mark.integration
def test_sync_with_pii_encrypts_and_purges_after_the_configured_days(sync_env, sqlite_warehouse_conn_id):
    from datetime import UTC, datetime, timedelta

    from selling_partner.hooks.ratelimit import MemoryRateLimiter

    from tests.sync.test_sync_dag import _backfill

    MemoryRateLimiter.reset_all()
    sync_env(orders=12, days=3, seed=7, extra={"include_pii": True, "pii_retention_days": 1})
    summary = _backfill(sqlite_warehouse_conn_id, 5)
    cutoff = datetime.now(UTC) - timedelta(days=1)
    wh = get_warehouse(sqlite_warehouse_conn_id)
    orders = wh.fetch_orders()
    assert summary["orders"] == len(orders) == 12
    assert any(o["last_updated_time"] < cutoff - timedelta(hours=1) for o in orders)  # some are purgeable
    kept = pii.read_buyers(sqlite_warehouse_conn_id)
    assert kept, "no buyer row left: the test would prove nothing"
    assert all(b["order_last_updated_time"] >= cutoff - timedelta(minutes=5) for b in kept)
    recent = {o["order_id"] for o in orders if o["last_updated_time"] >= cutoff + timedelta(minutes=5)}
    assert recent <= {b["order_id"] for b in kept}  # the recent ones are all still there
    assert_no_plaintext(raw_cells(wh), {v for b in kept for c in pii.PII_COLUMNS if (v := b[c])})


@pytest.mark.integration
def test_sync_with_pii_and_no_key_fails_before_loading_anything(
    sync_env, sqlite_warehouse_conn_id, monkeypatch
):
    from selling_partner.hooks.ratelimit import MemoryRateLimiter

    from tests.fixtures.airflow import load_dag, run_dag

    MemoryRateLimiter.reset_all()
    sync_env(orders=10, days=2, seed=8, extra={"include_pii": True})
    monkeypatch.delenv(PII_KEY_ENV)
    conf = {
        "warehouse_conn_id": sqlite_warehouse_conn_id,
        "mode": "backfill",
        "start_date": "2026-01-01T00:00:00Z",
    }
    run_dag(load_dag("sp_api_orders_sync"), run_conf=conf, expect="failed")
    wh = get_warehouse(sqlite_warehouse_conn_id)
    assert wh.fetch_orders() == [] and raw_cells(wh) == []
    (run,) = wh.fetch_sync_runs()
    assert run["status"] == "failed" and run["calls"] == 0
    assert "PiiKeyError" in run["error"] and "sp_api_pii_key" in run["error"]
