"""``make airflow``: the full Airflow UI on the demo's setup, the world moving slowly; Ctrl-C stops all.

Starts moto SQS + the queue and the SP-API sandbox (as ``make demo``), a fresh Airflow home in
``.demo/ui/airflow`` (SQLite metadata DB, LocalExecutor, SimpleAuthManager with one admin user) with
the same connections and Variable, then the four components - api-server, scheduler, dag-processor,
triggerer - and, once the DAGs are parsed: triggers ``sp_api_notifications_setup`` and a historical
backfill of ``sp_api_orders_sync``, unpauses the sync, the event and the enrichment DAGs, prints the
URL and the login, and every ``--advance-every`` seconds moves the sandbox's world on (a few new
orders and changes, some duplicates, now and then a poison message) so the event path has work.

Ctrl-C (or SIGTERM) stops every process it started - the components, their task processes (found by
the marker variable ``SP_DEMO_AIRFLOW`` in their environment), the sandbox and the SQS server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from demo.stack import ROOT, Progress, airflow_env, prepare_airflow, rel, services

UI = Path(os.environ.get("SP_DEMO_DIR") or ROOT / ".demo").resolve() / "ui"
HOME = UI / "airflow"
WAREHOUSE_DB = UI / "warehouse.db"
LOGS = UI / "logs"
#: Every process this command starts carries ``SP_DEMO_AIRFLOW=<run id>`` (task processes inherit it).
MARKER = "SP_DEMO_AIRFLOW"
USER = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
UNPAUSE = ("sp_api_notifications_setup", "sp_api_orders_sync", "sp_api_order_events", "sp_api_order_enrich")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def marked(value: str) -> list[int]:
    """Live pids whose environment has ``MARKER=value``."""
    pids = []
    needle = f"{MARKER}={value}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


class Api:
    """A small REST client for the api-server (JWT from ``/auth/token``)."""

    def __init__(self, url: str, password: str) -> None:
        self.url, self.password, self.token = url, password, ""

    def _send(self, method: str, path: str, body: Any = None, auth: bool = True) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def login(self) -> None:
        status, body = self._send("POST", "/auth/token", {"username": USER, "password": self.password}, False)
        if status not in (200, 201):
            raise RuntimeError(f"login failed: {status} {body}")
        self.token = body["access_token"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self._send(method, f"/api/v2/{path}", body)
        if status == 401:
            self.login()
            status, payload = self._send(method, f"/api/v2/{path}", body)
        if status >= 400:
            raise RuntimeError(f"{method} /api/v2/{path} -> {status}: {str(payload)[:500]}")
        return payload


class Deployment:
    """The four Airflow components as subprocesses (own process groups, logs in ``LOGS``)."""

    def __init__(self, env: dict[str, str], port: int, run_id: str) -> None:
        self.env, self.port, self.run_id = env, port, run_id
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        args = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        }
        for name in COMPONENTS:
            with open(LOGS / f"{name}.log", "ab") as log:
                self.processes[name] = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
                    [sys.executable, "-m", "airflow", *args.get(name, [name])],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=HOME,
                )

    def dead(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.poll() is not None]

    def stop(self, grace: float = 20.0) -> list[int]:
        """SIGTERM every component's group, then SIGKILL; then any marked process. Returns survivors."""
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        end = time.monotonic() + 15
        survivors = marked(self.run_id)
        while survivors and time.monotonic() < end:
            for pid in survivors:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            survivors = marked(self.run_id)
        return survivors


def ui_env(port: int, run_id: str) -> dict[str, str]:
    """The environment of every component (and of the setup commands): one set of secrets for all."""
    from cryptography.fernet import Fernet

    url = f"http://127.0.0.1:{port}"
    return airflow_env(
        HOME,
        {
            MARKER: run_id,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(HOME / "passwords.json"),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        },
    )


def wait_until_ready(api: Api, deployment: Deployment, timeout: float) -> None:
    """The api-server answers, login works and the dag-processor has parsed every DAG."""
    deadline = time.monotonic() + timeout
    last = "the api-server does not answer yet"
    while time.monotonic() < deadline:
        if dead := deployment.dead():
            raise RuntimeError(f"{', '.join(dead)} exited while starting; see {rel(LOGS)}/<component>.log")
        try:
            api.login()
            dags = {d["dag_id"] for d in api.call("GET", "dags?limit=100")["dags"]}
            if set(UNPAUSE) <= dags:
                return
            last = f"DAGs parsed so far: {sorted(dags)}"
        except (OSError, RuntimeError, KeyError) as exc:
            last = str(exc)
        time.sleep(1)
    raise RuntimeError(f"Airflow not ready after {timeout:.0f}s: {last}; see {rel(LOGS)}")


def move_world(sandbox: Any, every: float, stop: threading.Event, say: Progress) -> None:
    """Advance the sandbox's world every ``every`` seconds until ``stop`` is set."""
    n = 0
    while not stop.wait(every):
        n += 1
        try:
            r = sandbox.advance(
                new_orders=2, changes=6, duplicates=0.1, shuffle=True, poison=1 if n % 10 == 0 else 0
            )
        except Exception as exc:  # the sandbox stopping under us ends the loop
            say(f"the world stopped moving: {exc}")
            return
        say(
            f"world moved: {len({c['order_id'] for c in r['changes']})} orders changed, "
            f"{r['published']} messages"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.ui", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SP_AIRFLOW_PORT", "8080")))
    parser.add_argument("--advance-every", type=float, default=30.0, help="seconds between world moves")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--start-timeout", type=float, default=240.0)
    args = parser.parse_args(argv)
    say = Progress()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
        signal.signal(signal.SIGINT, signal.default_int_handler)
    port = args.port if args.port and port_free(args.port) else free_port()
    run_id = os.environ.get(MARKER) or uuid.uuid4().hex[:12]  # a caller may choose it (tests do)
    os.environ[MARKER] = run_id  # the sandbox and SQS server carry it too
    for stale in (HOME, LOGS, WAREHOUSE_DB):
        if stale.is_dir():
            subprocess.run(["rm", "-rf", str(stale)], check=False)  # noqa: S603, S607
        elif stale.exists():
            stale.unlink()
    HOME.mkdir(parents=True)
    LOGS.mkdir(parents=True)
    env = ui_env(port, run_id)
    password = secrets.token_urlsafe(9)
    (HOME / "passwords.json").write_text(json.dumps({USER: password}))
    deployment = Deployment(env, port, run_id)
    survivors: list[int] = []
    try:
        say(
            f"starting moto SQS and the SP-API sandbox ({args.orders} orders, "
            f"rate limits x{args.time_scale:g})"
        )
        with services(
            LOGS, seed=args.seed, orders=args.orders, days=args.days, time_scale=args.time_scale
        ) as svc:
            say(f"preparing Airflow home {rel(HOME)} (SQLite, LocalExecutor): 3 connections, 1 Variable")
            prepare_airflow(HOME, env, svc, WAREHOUSE_DB)
            say(f"starting {', '.join(COMPONENTS)} (logs in {rel(LOGS)})")
            deployment.start()
            url = f"http://127.0.0.1:{port}"
            api = Api(url, password)
            try:
                wait_until_ready(api, deployment, args.start_timeout)
                api.call(
                    "POST", "dags/sp_api_notifications_setup/dagRuns", {"logical_date": None, "conf": {}}
                )
                start = (datetime.now(UTC) - timedelta(days=args.days + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
                conf = {"mode": "backfill", "start_date": start, "reset_checkpoint": True}
                api.call("POST", "dags/sp_api_orders_sync/dagRuns", {"logical_date": None, "conf": conf})
                for dag_id in UNPAUSE:
                    api.call("PATCH", f"dags/{dag_id}", {"is_paused": False})
                say("triggered the notification setup and a historical backfill; unpaused the four DAGs")
                print(f"\n  Airflow UI : {url}\n  login      : {USER} / {password}\n", flush=True)
                print(
                    f"  warehouse  : {rel(WAREHOUSE_DB)} (python -m demo.query --db {rel(WAREHOUSE_DB)} ...)"
                )
                print(
                    f"  the world moves every {args.advance_every:g} s; Ctrl-C stops everything\n", flush=True
                )
                move_world(svc.sandbox, args.advance_every, stopping, say)
            except KeyboardInterrupt:
                pass
            finally:
                say("stopping Airflow, the sandbox and the SQS server")
                survivors = deployment.stop()
    except KeyboardInterrupt:
        survivors = deployment.stop()
    if survivors:
        print(f"processes that survived SIGKILL: {survivors}", file=sys.stderr)
        return 1
    say("everything stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
