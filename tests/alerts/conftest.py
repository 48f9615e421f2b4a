"""Stand-ins for what cannot run here (Slack) and listeners for what the package emits (StatsD), plus
the event path's environment: a sandbox publishing into a moto SQS queue, the DAGs' connections."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fixtures.airflow import delete_variables

#: The webhook token in the fake Slack connection: it must never appear in a message.
SLACK_SECRET = "XsecretWebhookToken0123456789abc"


class FakeSlack:
    """A local HTTP server answering like a Slack incoming webhook; keeps every posted JSON body."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.paths.append(self.path)
                outer.posts.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = (
            f"http://127.0.0.1:{self.server.server_address[1]}/services/T0SANDBOX/B0SANDBOX/{SLACK_SECRET}"
        )
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def texts(self) -> list[str]:
        return [str(p.get("text", "")) for p in self.posts]

    def matching(self, needle: str) -> list[str]:
        return [t for t in self.texts() if needle in t]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    """Slack's webhook on loopback, wired as the ``slack_sp_api`` connection; repeat hold-backs forgotten."""
    slack = FakeSlack()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_SP_API", json.dumps({"conn_type": "slackwebhook", "password": slack.url})
    )
    delete_variables("sp_api_alert__")
    yield slack
    slack.close()
    delete_variables("sp_api_alert__")


class StatsdListener:
    """A UDP socket on loopback collecting StatsD lines (``name:value|type``)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines.extend(line for line in data.decode().splitlines() if line)

    def metrics(self) -> dict[str, list[str]]:
        """name -> the ``value|type`` parts received for it."""
        out: dict[str, list[str]] = {}
        for line in self.lines:
            name, _, rest = line.partition(":")
            out.setdefault(name, []).append(rest)
        return out

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def statsd() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    yield listener
    listener.close()


def aws_conn_json(endpoint: str) -> str:
    return json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing",
         "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    )  # fmt: skip


@pytest.fixture
def events_env(sync_env, moto_sqs, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """A sandbox publishing into a fresh moto queue; ``sp_api_default``, ``aws_sp_api_events`` and the
    queue Variable set for the event DAGs. Returns ``start(wh_conn_id, **sandbox_opts) -> sandbox``."""

    def start(wh_conn_id: str, **opts: Any) -> Any:
        queue_url = moto_sqs.queue_url(visibility_timeout=900)
        sb = sync_env(sqs_endpoint=moto_sqs.endpoint, queue_url=queue_url, **opts)
        monkeypatch.setenv("AIRFLOW_VAR_SP_API_EVENTS_QUEUE_URL", queue_url)
        monkeypatch.setenv("AIRFLOW_CONN_AWS_SP_API_EVENTS", aws_conn_json(moto_sqs.endpoint))
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", _conn_env(wh_conn_id))
        monkeypatch.setenv("SP_API_EVENTS_DRAIN_SECONDS", "3")
        sb.queue_url = queue_url
        return sb

    return start


def _conn_env(conn_id: str) -> str:
    import os

    return os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
