"""``make airflow`` (``python -m demo.ui``): the full Airflow answers, lists the DAGs, logs in, runs
them; SIGINT stops every process it started (found by the marker variable in their environment)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.fixtures.airflow import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAGS = {"sp_api_notifications_setup", "sp_api_orders_sync", "sp_api_order_events", "sp_api_order_enrich"}


def _marked(value: str) -> list[int]:
    """Live pids whose environment carries ``SP_DEMO_AIRFLOW=value``."""
    needle = f"SP_DEMO_AIRFLOW={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            mine = needle in (entry / "environ").read_bytes().split(b"\0")
            if mine and (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0] not in ("Z", "X"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line)

    threading.Thread(target=read, daemon=True).start()
    return out


def test_make_airflow_serves_the_ui_runs_the_dags_and_ctrl_c_stops_everything(tmp_path):
    marker = f"test-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SP_API_"))}
    env.update({"SP_DEMO_DIR": str(tmp_path), "SP_DEMO_AIRFLOW": marker})
    cmd = [sys.executable, "-m", "demo.ui", "--port", "0", "--orders", "200", "--days", "5",
           "--time-scale", "600", "--advance-every", "5"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = _lines(proc)
    seen: list[str] = []
    try:
        url = password = None
        deadline = time.monotonic() + 300
        while (url is None or password is None) and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                assert proc.poll() is None, "".join(seen)
                continue
            seen.append(line)
            if m := re.search(r"Airflow UI : (http://\S+)", line):
                url = m.group(1)
            if m := re.search(r"login      : admin / (\S+)", line):
                password = m.group(1)
        assert url and password, "".join(seen)

        assert requests.get(f"{url}/api/v2/version", timeout=30).status_code == 200
        assert requests.get(f"{url}/api/v2/dags", timeout=30).status_code == 401  # a login is needed
        wrong = requests.post(f"{url}/auth/token", json={"username": "admin", "password": "x"}, timeout=30)
        assert wrong.status_code == 401
        login = requests.post(
            f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        assert login.status_code in (200, 201), login.text
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        dags = {d["dag_id"]: d for d in api.get(f"{url}/api/v2/dags", timeout=30).json()["dags"]}
        assert set(dags) >= DAGS and not any(dags[d]["is_paused"] for d in DAGS)
        conns = {
            c["connection_id"] for c in api.get(f"{url}/api/v2/connections", timeout=30).json()["connections"]
        }
        assert {"sp_api_default", "warehouse_default", "aws_sp_api_events"} <= conns
        queue_url = api.get(f"{url}/api/v2/variables/sp_api_events_queue_url", timeout=30).json()["value"]
        assert queue_url.endswith("/sp-api-demo-events")

        # the scheduler runs what make airflow triggered: the setup and the historical backfill
        states: dict[str, str] = {}
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            for dag_id in ("sp_api_notifications_setup", "sp_api_orders_sync"):
                runs = api.get(
                    f"{url}/api/v2/dags/{dag_id}/dagRuns", params={"run_type": "manual"}, timeout=30
                )
                found = runs.json()["dag_runs"]
                states[dag_id] = found[-1]["state"] if found else "none"
            if all(v == "success" for v in states.values()):
                break
            time.sleep(2)
        assert states == {"sp_api_notifications_setup": "success", "sp_api_orders_sync": "success"}
        assert len(_marked(marker)) > 5  # the components, the sandbox, the SQS server, this process
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        left = _marked(marker)
        for pid in left:  # never leave them to the next test
            os.kill(pid, signal.SIGKILL)
    while not lines.empty():
        seen.append(lines.get())
    assert code == 0, "".join(seen[-40:])
    assert left == []
    assert "everything stopped." in "".join(seen)
