"""What ``make demo`` and ``make airflow`` both start: moto SQS, the queue, the sandbox, an Airflow home.

* :func:`services` starts a moto SQS server on loopback, creates the notifications queue with the
  access policy Amazon needs (the statement ``sp_api_notifications_setup`` checks for), and the SP-API
  sandbox publishing its ORDER_CHANGE notifications to that queue; it stops both on exit.
* :func:`airflow_env` is the environment of every Airflow command (SQLite metadata DB in the home,
  this repository's ``dags/``, no example DAGs, one seller connection).
* :func:`prepare_airflow` runs ``airflow db migrate``, imports the three connections
  (``sp_api_default`` -> the sandbox, ``warehouse_default`` -> a SQLite file, ``aws_sp_api_events`` ->
  moto) and sets the Variable ``sp_api_events_queue_url``: what a data engineer sets up by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUEUE_NAME = "sp-api-demo-events"
SELLER_CONN_ID = "sp_api_default"
WAREHOUSE_CONN_ID = "warehouse_default"
AWS_CONN_ID = "aws_sp_api_events"
QUEUE_VARIABLE = "sp_api_events_queue_url"


def rel(path: Path) -> str:
    """``path`` relative to the repository when inside it (shorter messages)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


class Progress:
    """Progress lines prefixed with the seconds since the start: ``[ 12s] message``."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, message: str, *, indent: bool = False) -> None:
        prefix = " " * 7 if indent else f"[{self.elapsed:4.0f}s]"
        print(f"{prefix} {message}", flush=True)


@dataclass
class Services:
    """The running sandbox and SQS server, and the queue the sandbox publishes to."""

    sandbox: Any  # sp_api_sandbox.launcher.SandboxProcess
    sqs: Any  # sp_api_sandbox.launcher.MotoSqs
    queue_url: str

    @property
    def queue_arn(self) -> str:
        return str(self.sqs.queue_arn(self.queue_url))


def allow_amazon(sqs: Any, queue_url: str) -> None:
    """Give the queue the policy statement that lets Amazon's account send notifications to it."""
    from selling_partner.notifications.setup import statement_to_add

    arn = sqs.queue_arn(queue_url)
    policy = {"Version": "2012-10-17", "Statement": [statement_to_add(arn)]}
    sqs.client().set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})


@contextlib.contextmanager
def services(logs: Path, **sandbox_options: Any) -> Iterator[Services]:
    """moto SQS + the queue (policy set) + the sandbox publishing to it, for the ``with`` block."""
    from sp_api_sandbox.launcher import MotoSqs, start_sandbox

    logs.mkdir(parents=True, exist_ok=True)
    sqs = MotoSqs(log_path=logs / "sqs.log").start()
    try:
        queue_url = sqs.create_queue(QUEUE_NAME, visibility_timeout=900)
        allow_amazon(sqs, queue_url)
        with start_sandbox(
            log_path=logs / "sandbox.log", sqs_endpoint=sqs.endpoint, queue_url=queue_url, **sandbox_options
        ) as sandbox:
            yield Services(sandbox, sqs, queue_url)
    finally:
        sqs.stop()


def airflow_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of every Airflow command run against ``home`` (nothing of the caller's Airflow)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SP_API_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            # selling_partner is pip-installed; loading plugins/ as plugin files would shadow it.
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "SP_API_CONN_IDS": SELLER_CONN_ID,
        }
    )
    env.update(extra or {})
    return env


def airflow(*args: str, env: dict[str, str], timeout: float = 600) -> str:
    """``airflow <args>``; exits the program with its output when it fails."""
    proc = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "-m", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if proc.returncode != 0:
        sys.stderr.write(f"airflow {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}\n")
        raise SystemExit(2)
    return proc.stdout


PII_KEY_CONN_ID = "sp_api_pii_key"


def connections(
    svc: Services,
    warehouse_db: Path,
    api_version: str = "2026-01-01",
    *,
    pii_key: str | None = None,
    aws_secret: str = "testing",  # noqa: S107 - moto accepts any key
) -> dict[str, Any]:
    """The three connections (four with ``pii_key``: the seller's ``include_pii`` on and the key
    connection ``sp_api_pii_key``), as ``airflow connections import`` reads them."""
    sb = svc.sandbox
    seller_extra = {"include_pii": True} if pii_key else {}
    conns: dict[str, Any] = {
        SELLER_CONN_ID: {
            "conn_type": "amazon_sp_api",
            "description": "the SP-API sandbox (a fake Amazon on loopback)",
            "login": sb.client_id,
            "password": sb.client_secret,  # the sandbox's documented test secret
            "extra": json.dumps(sb.connection_extra(orders_api_version=api_version, **seller_extra)),
        },
        WAREHOUSE_CONN_ID: {
            "conn_type": "sqlite",
            "description": "the demo warehouse",
            "host": str(warehouse_db),
        },
        AWS_CONN_ID: {
            "conn_type": "aws",
            "description": "SQS (a moto server on loopback)",
            "login": "testing",
            "password": aws_secret,  # moto accepts any key
            "extra": json.dumps({"endpoint_url": svc.sqs.endpoint, "region_name": svc.sqs.region}),
        },
    }
    if pii_key:
        conns[PII_KEY_CONN_ID] = {
            "conn_type": "generic",
            "description": "the Fernet key of the buyer PII in sp_order_buyers",
            "password": pii_key,
        }
    return conns


def prepare_airflow(
    home: Path,
    env: dict[str, str],
    svc: Services,
    warehouse_db: Path,
    api_version: str = "2026-01-01",
    **secrets: Any,
) -> None:
    """Migrate the metadata DB, import the connections (``secrets``: :func:`connections`' ``pii_key``
    and ``aws_secret``), set the queue Variable."""
    (home / "plugins").mkdir(parents=True, exist_ok=True)
    airflow("db", "migrate", env=env)
    path = home / "connections.json"
    path.write_text(json.dumps(connections(svc, warehouse_db, api_version, **secrets), indent=2))
    path.chmod(0o600)
    airflow("connections", "import", "--overwrite", str(path), env=env)
    airflow("variables", "set", QUEUE_VARIABLE, svc.queue_url, env=env)
