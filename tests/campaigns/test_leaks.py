"""Secrets and PII campaign (issue 14): the demo with buyer PII on, then every place a secret or a
buyer's data could end up scanned for them - zero hits.

Needles: the buyers' names, e-mails, company names, PO numbers, address lines and phone numbers the
sandbox generated (the truth in ``sandbox-final.json``: ``/_sandbox/truth?include_pii=true``), and
the run's secrets (``python -m demo --pii`` makes them random: the LWA client secret, the refresh
token, the AWS secret, the PII Fernet key) plus the shapes of the tokens the sandbox issues
(``Atza|...`` access tokens, ``Atz.sprdt|...`` Restricted Data Tokens: random, so matched by pattern).
Needles shorter than 6 characters (postal codes, state and country codes) and cities (words of the
sandbox's generator lists, shared by many buyers and by ordinary text) are left out: they would hit
by chance, not by a leak.

Haystacks: every task log (Airflow's logs dir and the demo's ``airflow dags test`` logs), every row
of every warehouse table (the PII columns are Fernet tokens, so every column is scanned) and the raw
SQLite file, every XCom value in the metadata DB, every response of the dashboard's app (page, panels,
API), the repository's tracked files and ``bench/results.json``. Positive controls: the key decrypts
``sp_order_buyers`` to the very needles, and the scan finds them there.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.airflow import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARGS = ["--pii", "--orders", "300", "--days", "10", "--time-scale", "600", "--rounds", "1",
        "--new-orders", "15", "--changes", "40", "--poison", "2", "--foreign", "1"]  # fmt: skip
#: Shorter needles hit by chance (a 2-letter state code, a 5-digit postal code in any number).
MIN_NEEDLE = 6
#: Issued tokens are random: any such token anywhere is a leak.
TOKEN_PATTERNS = (re.compile(r"Atza\|[\w-]{20,}"), re.compile(r"Atz\.sprdt\|[\w-]{20,}"))
_PII_KEYS = ("buyerName", "buyerEmail", "buyerCompanyName", "buyerPurchaseOrderNumber")
_ADDRESS_KEYS = ("name", "companyName", "addressLine1", "addressLine2", "addressLine3", "phone")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = Path(os.environ.get("SP_LEAKS_DEMO_DIR") or tmp_path_factory.mktemp("demo-pii"))
    if not (folder / "sandbox-final.json").exists():  # SP_LEAKS_DEMO_DIR: reuse a finished run
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SP_API_"))}
        env["SP_DEMO_DIR"] = str(folder)
        proc = subprocess.run(
            [sys.executable, "-m", "demo", *ARGS],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    dump = json.loads((folder / "sandbox-final.json").read_text())
    conns = json.loads((folder / "airflow" / "connections.json").read_text())
    return {"dir": folder, "dump": dump, "conns": conns}


def _pii_needles(dump: dict) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for order in dump["truth"]["orders"]:
        for key in _PII_KEYS:
            kinds.setdefault(key, set()).add((order.get("buyer") or {}).get(key) or "")
        address = (order.get("recipient") or {}).get("deliveryAddress") or {}
        for key in _ADDRESS_KEYS:
            kinds.setdefault(f"address.{key}", set()).add(address.get(key) or "")
    return {k: {v for v in vs if len(v) >= MIN_NEEDLE} for k, vs in kinds.items()}


def _secret_needles(conns: dict) -> dict[str, set[str]]:
    seller = conns["sp_api_default"]
    return {
        "lwa_client_secret": {seller["password"]},
        "refresh_token": {json.loads(seller["extra"])["refresh_token"]},
        "aws_secret": {conns["aws_sp_api_events"]["password"]},
        "pii_key": {conns["sp_api_pii_key"]["password"]},
    }


@pytest.fixture(scope="module")
def needles(demo) -> dict[str, set[str]]:
    kinds = {**_pii_needles(demo["dump"]), **_secret_needles(demo["conns"])}
    assert all(len(v) >= MIN_NEEDLE for vs in kinds.values() for v in vs)
    assert len(kinds["buyerEmail"]) > 10 and len(kinds["buyerName"]) > 10
    return kinds


def _hits(text: str, needles: dict[str, set[str]], allowed: str = "") -> list[str]:
    """What of ``needles`` (and issued-token shapes) ``text`` holds, but what is in ``allowed``."""
    found = [
        f"{kind}: {v[:3]}..." for kind, vs in needles.items() for v in vs if v in text and v not in allowed
    ]
    found += [
        f"token {m.group(0)[:8]}..."
        for p in TOKEN_PATTERNS
        for m in p.finditer(text)
        if m.group(0) not in allowed
    ]
    return found


def _vocabulary() -> str:
    """The sandbox generator's word lists (company names like "Sample Co", "Unit 4") and Amazon's
    published API models (their example RDT): in the repository by design, so not a leak there."""
    sandbox = REPO / "include" / "sp_api_sandbox"
    paths = [sandbox / "world_data.py", *sorted((sandbox / "models").glob("*.json"))]
    return "\n".join(p.read_text() for p in paths)


def _haystacks(demo: dict) -> dict[str, list[tuple[str, str]]]:
    folder, home = demo["dir"], demo["dir"] / "airflow"
    logs = [p for p in (home / "logs").rglob("*") if p.is_file()]
    # the demo's `airflow dags test` output (the sandbox's and moto's own logs are the fake Amazon's)
    logs += [p for p in (folder / "logs").glob("sp_api_*.log")]
    stacks: dict[str, list[tuple[str, str]]] = {
        "task logs": [(str(p), p.read_text(errors="replace")) for p in logs]
    }
    db = folder / "warehouse.db"
    rows = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                rows.append((table, "\x00".join(str(c) for c in row)))
    rows.append(("warehouse.db bytes", db.read_bytes().decode("latin-1")))
    stacks["warehouse rows"] = rows
    with sqlite3.connect(home / "airflow.db") as conn:
        stacks["xcoms"] = [
            (f"xcom {d}/{t}/{k}", v if isinstance(v, str) else bytes(v or b"").decode("latin-1"))
            for d, t, k, v in conn.execute("SELECT dag_id, task_id, key, value FROM xcom")
        ]
    stacks["dashboard responses"] = _dashboard(demo)
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    files = [REPO / f for f in tracked if f] + [REPO / "bench" / "results.json"]
    stacks["repository files"] = [
        (str(p), p.read_bytes().decode("latin-1")) for p in files if p.is_file() and not p.is_symlink()
    ]
    return stacks


def _dashboard(demo: dict) -> list[tuple[str, str]]:
    """Every response of the UI plugin's app (page, each panel, each API endpoint) on the demo's
    warehouse, fetched over HTTP with FastAPI's test client in the demo's Airflow environment."""
    from demo.stack import airflow_env

    env = airflow_env(demo["dir"] / "airflow")
    env["AIRFLOW_CONN_WAREHOUSE_DEFAULT"] = json.dumps(
        {"conn_type": "sqlite", "host": str(demo["dir"] / "warehouse.db")}
    )
    script = textwrap.dedent(
        """
        import json
        from fastapi.testclient import TestClient
        from selling_partner.ui.app import create_app
        from selling_partner.ui.sources import PANELS
        client = TestClient(create_app(dependencies=[]))
        paths = ["/"] + [f"/panels/{p}" for p in PANELS] + [f"/api/{p}" for p in PANELS]
        out = {}
        for path in paths:
            r = client.get(path)
            out[path] = [r.status_code, r.text]
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    answers = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(code == 200 for code, _ in answers.values()), {p: c for p, (c, _) in answers.items()}
    return [(path, text) for path, (_, text) in answers.items()]


def test_no_secret_or_buyer_data_anywhere(demo, needles, campaign):
    from selling_partner.warehouse.pii import PII_COLUMNS, PiiCipher

    fig = campaign("leaks/demo with PII")
    stacks = _haystacks(demo)
    vocabulary = _vocabulary()
    leaks = {
        kind: [
            f"{where}: {h}"
            for where, text in items
            for h in _hits(text, needles, vocabulary if kind == "repository files" else "")
        ]
        for kind, items in stacks.items()
    }
    scanned = sum(len(items) for items in stacks.values())
    hits = sum(len(v) for v in leaks.values())
    fig.add(runs=1, faults=0, rows_compared=scanned, leaked=hits)
    counts = {kind: len(items) for kind, items in stacks.items()}
    print(f"haystacks {counts}; needles { ({k: len(v) for k, v in needles.items()}) }; hits {hits}")
    assert all(counts.values()), counts
    assert hits == 0, {k: v[:10] for k, v in leaks.items() if v}

    # positive controls: the key decrypts sp_order_buyers to the needles, and the scan finds them there
    cipher = PiiCipher([demo["conns"]["sp_api_pii_key"]["password"]], conn_id="sp_api_pii_key")
    with sqlite3.connect(demo["dir"] / "warehouse.db") as conn:
        conn.row_factory = sqlite3.Row
        raw = [dict(r) for r in conn.execute("SELECT * FROM sp_order_buyers")]
    assert raw, "the demo loaded no buyer rows"
    buyers = [cipher.decrypt_record(r) for r in raw]
    emails = {b["buyer_email"] for b in buyers if b["buyer_email"]}
    assert emails and emails <= needles["buyerEmail"]
    assert {b["buyer_name"] for b in buyers if b["buyer_name"]} <= needles["buyerName"] | {""}
    plain = "\n".join("\x00".join(str(b[c]) for c in PII_COLUMNS) for b in buyers)
    assert len(_hits(plain, needles)) >= len(emails)
    assert _hits(f"Bearer Atza|{'x' * 30} {demo['conns']['sp_api_pii_key']['password']}", needles)
