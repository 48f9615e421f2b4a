"""Start the sandbox and a moto SQS server as subprocesses (tests, demo, benchmarks, ``up``).

``start_sandbox(**options)`` runs ``python -m sp_api_sandbox serve`` on a free loopback port, waits
for ``/_sandbox/health``, captures the server log to a file and stops the process on exit.
``start_moto_sqs()`` does the same for ``python -m moto.server``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sp_api_sandbox.auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN

START_TIMEOUT = 90.0

#: ``start_sandbox`` keyword -> ``serve`` flag (booleans handled separately).
_FLAGS = {
    "seed": "--seed",
    "orders": "--orders",
    "days": "--days",
    "time_scale": "--time-scale",
    "region": "--region",
    "faults": "--faults",
    "client_id": "--client-id",
    "client_secret": "--client-secret",
    "refresh_token": "--refresh-token",
    "min_before_lag": "--min-before-lag",
    "page_token_ttl": "--page-token-ttl",
    "items_page_size": "--items-page-size",
    "bad_records": "--bad-records",
    "sqs_endpoint": "--sqs-endpoint",
    "queue_url": "--queue-url",
    "log_level": "--log-level",
}


def _child_env() -> dict[str, str]:
    """Our environment, plus the flag that makes the child exit when we die."""
    return {**os.environ, "SP_API_SANDBOX_EXIT_WITH_PARENT": "1"}


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _temp_log(prefix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    os.close(fd)
    return Path(name)


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, output appended to ``log_path``, exiting with us."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_child_env()
        )


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def _http(method: str, url: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    if not url.startswith("http://"):
        raise ValueError(f"only http:// URLs are expected here, got {url!r}")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URL we built
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


class SandboxError(RuntimeError):
    """The sandbox did not start or an admin call failed."""


@dataclass
class SandboxProcess:
    """One running ``sp_api_sandbox serve`` subprocess and a small client for its admin API."""

    options: dict[str, Any] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def client_id(self) -> str:
        return str(self.options.get("client_id", DEFAULT_CLIENT_ID))

    @property
    def client_secret(self) -> str:
        return str(self.options.get("client_secret", DEFAULT_CLIENT_SECRET))

    @property
    def refresh_token(self) -> str:
        return str(self.options.get("refresh_token", DEFAULT_REFRESH_TOKEN))

    @property
    def seller_id(self) -> str:
        return str(self.info["seller_id"])

    @property
    def region(self) -> str:
        return str(self.info["region"])

    @property
    def marketplace_ids(self) -> list[str]:
        return list(self.info["marketplace_ids"])

    @property
    def lwa_endpoint(self) -> str:
        return f"{self.url}/auth/o2/token"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "sp_api_sandbox", "serve", "--host", self.host, "--port", str(self.port)]
        for key, value in self.options.items():
            if key == "rate_limit_header":
                if not value:
                    cmd.append("--no-rate-limit-header")
            elif value is None:
                continue
            elif key in _FLAGS:
                cmd += [_FLAGS[key], str(value)]
            else:
                raise TypeError(f"unknown sandbox option {key!r}")
        return cmd

    def start(self, timeout: float = START_TIMEOUT) -> SandboxProcess:
        """Start the subprocess and wait until it answers ``/_sandbox/health``."""
        if self.log_path is None:
            self.log_path = _temp_log("sp-api-sandbox-")
        for _attempt in range(3):
            if self.port is None or _attempt:
                self.port = free_port(self.host)
            self.process = _spawn(self.command(), self.log_path)
            if self._wait_healthy(timeout):
                return self
            if "address already in use" not in self.log_path.read_text(errors="replace").lower():
                break
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise SandboxError(f"sandbox did not become healthy; log {self.log_path}:\n{tail}")

    def _wait_healthy(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                status, body = _http("GET", f"{self.url}/_sandbox/health", timeout=5)
                if status == 200:
                    self.info = body
                    return True
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the subprocess (SIGTERM, then SIGKILL)."""
        proc, self.process = self.process, None
        _stop(proc, timeout)

    def wait(self) -> int:
        """Block until the subprocess exits (for ``up``)."""
        assert self.process is not None
        return self.process.wait()

    def __enter__(self) -> SandboxProcess:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- admin API ---------------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = _http(method, f"{self.url}/_sandbox/{path}", body)
        if status != 200:
            raise SandboxError(f"{method} /_sandbox/{path} -> {status}: {payload}")
        return payload

    def health(self) -> dict[str, Any]:
        return self.admin("GET", "health")

    def truth(self, *, include_pii: bool = False, **filters: Any) -> dict[str, Any]:
        """``/_sandbox/truth``: every order as served, plus ``bad_records``; filters
        ``lastUpdatedAfter``/``lastUpdatedBefore`` (str or datetime); ``include_pii`` adds BUYER and
        RECIPIENT data."""
        query = {
            k: v.isoformat() if hasattr(v, "isoformat") else str(v)
            for k, v in filters.items()
            if v is not None
        }
        if include_pii:
            query["include_pii"] = "true"
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return self.admin("GET", f"truth{suffix}")

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "stats")

    def reset_stats(self) -> dict[str, Any]:
        return self.admin("POST", "stats/reset")

    def advance(self, **options: Any) -> dict[str, Any]:
        return self.admin("POST", "advance", options)

    def config(self, **options: Any) -> dict[str, Any]:
        return self.admin("POST", "config", options) if options else self.admin("GET", "config")

    def expire_access_tokens(self) -> dict[str, Any]:
        return self.admin("POST", "expire-access-tokens")

    def expire_page_tokens(self) -> dict[str, Any]:
        return self.admin("POST", "expire-page-tokens")

    def connection_extra(self, **extra: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "refresh_token": self.refresh_token,
            "region": self.region,
            "marketplace_ids": self.marketplace_ids,
            "seller_id": self.seller_id,
            "endpoint": self.url,
            "lwa_endpoint": self.lwa_endpoint,
        }
        base.update(extra)
        return base

    def connection_uri(self, **extra: Any) -> str:
        """An ``AIRFLOW_CONN_*`` value (JSON) for SellingPartnerHook pointing at this sandbox."""
        return json.dumps(
            {
                "conn_type": "amazon_sp_api",
                "login": self.client_id,
                "password": self.client_secret,
                "extra": self.connection_extra(**extra),
            }
        )


@contextlib.contextmanager
def start_sandbox(
    *, port: int | None = None, host: str = "127.0.0.1", log_path: Path | str | None = None, **options: Any
) -> Iterator[SandboxProcess]:
    """Run a sandbox for the ``with`` block. Options mirror ``serve``'s flags (``time_scale=600``, ...)."""
    sandbox = SandboxProcess(
        options=options, host=host, port=port, log_path=Path(log_path) if log_path else None
    )
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@dataclass
class MotoSqs:
    """A ``moto.server`` subprocess on loopback serving SQS."""

    host: str = "127.0.0.1"
    port: int | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    region: str = "us-east-1"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_queue(self, name: str, visibility_timeout: int = 30) -> str:
        """Create (or reuse) a standard queue; returns its URL."""
        response = self.client().create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": str(visibility_timeout)}
        )
        return str(response["QueueUrl"])

    def queue_arn(self, queue_url: str) -> str:
        attrs = self.client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def start(self, timeout: float = START_TIMEOUT) -> MotoSqs:
        if self.port is None:
            self.port = free_port(self.host)
        if self.log_path is None:
            self.log_path = _temp_log("moto-sqs-")
        command = [
            sys.executable,
            "-m",
            "sp_api_sandbox",
            "sqs",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        self.process = _spawn(command, self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                status, _ = _http("GET", f"{self.endpoint}/moto-api/data.json", timeout=5)
                if status < 500:
                    return self
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise SandboxError(f"moto server did not start; log {self.log_path}:\n{tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the subprocess (SIGTERM, then SIGKILL)."""
        proc, self.process = self.process, None
        _stop(proc, timeout)


@contextlib.contextmanager
def start_moto_sqs(*, port: int | None = None, host: str = "127.0.0.1") -> Iterator[MotoSqs]:
    """Run a moto SQS server for the ``with`` block."""
    server = MotoSqs(host=host, port=port).start()
    try:
        yield server
    finally:
        server.stop()
