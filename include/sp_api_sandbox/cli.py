"""Command line: ``serve`` runs one sandbox; ``up`` runs moto SQS plus a sandbox wired to it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sp_api_sandbox.auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN
from sp_api_sandbox.faults import PROFILES

if TYPE_CHECKING:
    from sp_api_sandbox.server import ServerSettings


def _positive_float(text: str) -> float:
    return _checked_float(text, lambda v: v > 0, "must be positive")


def _fraction(text: str) -> float:
    return _checked_float(text, lambda v: 0.0 <= v <= 1.0, "must be a fraction within [0, 1]")


def _checked_float(text: str, ok: Callable[[float], bool], problem: str) -> float:
    value = float(text)
    if not ok(value):
        raise argparse.ArgumentTypeError(problem)
    return value


def _add_world_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="world seed (default 7)")
    parser.add_argument("--orders", type=int, default=2000, help="orders in the initial world (default 2000)")
    parser.add_argument("--days", type=int, default=30, help="history in days (default 30)")
    parser.add_argument(
        "--time-scale",
        type=_positive_float,
        default=60.0,
        help="multiplies rates, divides token lifetimes (60)",
    )
    parser.add_argument("--region", choices=("na", "eu", "fe"), default="na")
    parser.add_argument("--faults", choices=sorted(PROFILES), default="none")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--refresh-token", default=DEFAULT_REFRESH_TOKEN)
    parser.add_argument(
        "--min-before-lag", type=float, default=120.0, help="the 2-minute rule, in seconds (120)"
    )
    parser.add_argument(
        "--page-token-ttl", type=float, default=None, help="page token lifetime (86400/scale)"
    )
    parser.add_argument("--no-rate-limit-header", action="store_true", help="omit x-amzn-RateLimit-Limit")
    parser.add_argument("--items-page-size", type=int, default=2, help="v0 getOrderItems page size (2)")
    parser.add_argument("--bad-records", type=_fraction, default=0.0, help="share of corrupted orders (0)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


#: set by ``launcher`` for its children: stop when the process that started us is gone.
EXIT_WITH_PARENT_ENV = "SP_API_SANDBOX_EXIT_WITH_PARENT"


def exit_with_parent() -> None:
    """If asked to (environment), send ourselves SIGTERM once our parent process has died.

    Keeps a crashed or killed test run from leaving sandboxes and moto servers behind.
    """
    if os.environ.get(EXIT_WITH_PARENT_ENV) != "1":
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sp_api_sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve one sandbox")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument(
        "--sqs-endpoint", default=None, help="SQS endpoint URL the advance endpoint publishes to"
    )
    serve.add_argument("--queue-url", default=None, help="SQS queue URL for notifications")
    _add_world_args(serve)
    up = sub.add_parser("up", help="start moto SQS and a sandbox publishing into it (foreground)")
    up.add_argument("--port", type=int, default=8765)
    up.add_argument("--sqs-port", type=int, default=4566)
    up.add_argument("--queue-name", default="sp-api-notifications")
    _add_world_args(up)
    sqs = sub.add_parser("sqs", help="run a moto server (SQS) on loopback (used by the launcher)")
    sqs.add_argument("--host", default="127.0.0.1")
    sqs.add_argument("--port", type=int, default=4566)
    return parser


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """``serve``/``up`` arguments as server settings (the server module is imported lazily: it is heavy)."""
    from sp_api_sandbox.server import ServerSettings

    return ServerSettings(
        seed=args.seed,
        orders=args.orders,
        days=args.days,
        time_scale=args.time_scale,
        region=args.region,
        sqs_endpoint=getattr(args, "sqs_endpoint", None),
        queue_url=getattr(args, "queue_url", None),
        faults=args.faults,
        client_id=args.client_id,
        client_secret=args.client_secret,
        refresh_token=args.refresh_token,
        min_before_lag=args.min_before_lag,
        page_token_ttl=args.page_token_ttl,
        rate_limit_header=not args.no_rate_limit_header,
        items_page_size=args.items_page_size,
        bad_records=args.bad_records,
    )


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sp_api_sandbox.app import create_app

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    exit_with_parent()
    settings = settings_from_args(args)
    app = create_app(settings)
    logging.getLogger("sp_api_sandbox").info(
        "serving on http://%s:%d (region %s, seed %d, %d orders, time scale %g, faults %s, bad records %g)",
        args.host,
        args.port,
        settings.region,
        settings.seed,
        settings.orders,
        settings.time_scale,
        settings.faults,
        settings.bad_records,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def up(args: argparse.Namespace) -> int:
    from sp_api_sandbox.launcher import start_moto_sqs, start_sandbox

    with start_moto_sqs(port=args.sqs_port, host=args.host) as sqs:
        queue_url = sqs.create_queue(args.queue_name)
        options = {
            k: getattr(args, k)
            for k in (
                "seed",
                "orders",
                "days",
                "time_scale",
                "region",
                "faults",
                "client_id",
                "client_secret",
                "refresh_token",
                "min_before_lag",
                "page_token_ttl",
                "items_page_size",
                "bad_records",
            )
        }
        options["rate_limit_header"] = not args.no_rate_limit_header
        with start_sandbox(
            port=args.port, host=args.host, sqs_endpoint=sqs.endpoint, queue_url=queue_url, **options
        ) as sb:
            print(f"SP-API sandbox : {sb.url}")
            print(f"LWA endpoint   : {sb.url}/auth/o2/token")
            print(f"SQS endpoint   : {sqs.endpoint}")
            print(f"SQS queue URL  : {queue_url}")
            print(
                f"Seller / region: {sb.seller_id} / {sb.region}  marketplaces {', '.join(sb.marketplace_ids)}"
            )
            print(f"Log file       : {sb.log_path}")
            print(f"export AIRFLOW_CONN_SP_API_DEFAULT='{sb.connection_uri()}'")
            print(f"export AWS_ENDPOINT_URL_SQS={sqs.endpoint}  # boto3 talks to moto")
            print("Ctrl-C stops both.", flush=True)
            try:
                sb.wait()
            except KeyboardInterrupt:
                print("\nstopping...")
    return 0


def sqs(args: argparse.Namespace) -> int:
    from moto.server import main as moto_main

    exit_with_parent()
    moto_main(["-H", args.host, "-p", str(args.port)])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"serve": serve, "up": up, "sqs": sqs}
    return commands[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
