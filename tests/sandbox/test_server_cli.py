"""The command line: ``serve`` flags and ``up`` (moto SQS + sandbox in the foreground, Ctrl-C stops both)."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from sp_api_sandbox.cli import build_parser, settings_from_args
from sp_api_sandbox.launcher import free_port

pytestmark = pytest.mark.integration


def test_serve_flags_map_to_settings() -> None:
    args = build_parser().parse_args(
        shlex.split(
            "serve --port 9000 --seed 3 --orders 50 --days 5 --time-scale 120 --faults flaky --region eu"
            " --client-id ID --client-secret S --refresh-token T --min-before-lag 5 --page-token-ttl 30"
            " --no-rate-limit-header --sqs-endpoint http://127.0.0.1:1 --queue-url http://127.0.0.1:1/q"
            " --bad-records 0.05"
        )
    )
    s = settings_from_args(args)
    assert s.bad_records == 0.05
    assert (s.seed, s.orders, s.days, s.time_scale, s.faults, s.region) == (3, 50, 5, 120.0, "flaky", "eu")
    assert (s.client_id, s.client_secret, s.refresh_token) == ("ID", "S", "T")
    assert (s.min_before_lag, s.page_token_ttl, s.rate_limit_header) == (5.0, 30.0, False)
    assert (s.sqs_endpoint, s.queue_url) == ("http://127.0.0.1:1", "http://127.0.0.1:1/q")
    defaults = settings_from_args(build_parser().parse_args(["serve"]))
    assert (defaults.time_scale, defaults.min_before_lag, defaults.effective_page_token_ttl) == (
        60.0,
        120.0,
        1440.0,
    )
    assert defaults.bad_records == 0.0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--faults", "apocalyptic"])
    for fraction in ("1.5", "-0.1", "some"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--bad-records", fraction])


def test_up_starts_sqs_and_sandbox_and_stops_both(tmp_path) -> None:
    port, sqs_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sp_api_sandbox",
            "up",
            "--port",
            str(port),
            "--sqs-port",
            str(sqs_port),
            "--orders",
            "20",
            "--time-scale",
            "600",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "Ctrl-C" in text, text
        conn_line = next(line for line in lines if line.startswith("export AIRFLOW_CONN_SP_API_DEFAULT="))
        conn = json.loads(conn_line.split("=", 1)[1].strip().strip("'"))
        assert conn["conn_type"] == "amazon_sp_api"
        assert conn["extra"]["endpoint"] == f"http://127.0.0.1:{port}"
        assert conn["extra"]["lwa_endpoint"] == f"http://127.0.0.1:{port}/auth/o2/token"
        queue_url = re.search(r"SQS queue URL\s*:\s*(\S+)", text).group(1)
        assert queue_url.startswith(f"http://127.0.0.1:{sqs_port}/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/advance", data=b"{}", timeout=30) as r:
            assert json.load(r)["published"] > 0  # the sandbox publishes into the queue up created
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0
    for p in (port, sqs_port):
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{p}/", timeout=2)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


def test_launched_servers_exit_when_their_parent_dies() -> None:
    script = (
        "import time\n"
        "from sp_api_sandbox.launcher import start_moto_sqs, start_sandbox\n"
        "with start_moto_sqs() as sqs, start_sandbox(orders=5) as sb:\n"
        "    print(sb.process.pid, sqs.process.pid, flush=True)\n"
        "    time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    parent.kill()  # no cleanup code runs in the parent
    parent.wait(10)
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)
