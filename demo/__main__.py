"""``make demo``: the whole system in one command, on loopback, checked against the sandbox's truth.

1. starts a moto SQS server and the notifications queue (with the policy Amazon needs) and the SP-API
   sandbox publishing ORDER_CHANGE notifications to it;
2. prepares an Airflow home in ``.demo/airflow`` (SQLite metadata DB) with the three connections and
   the queue Variable;
3. runs ``sp_api_notifications_setup`` (destination and subscriptions at the fake Amazon);
4. runs ``sp_api_orders_sync`` as a historical backfill into the SQLite warehouse ``.demo/warehouse.db``;
5. makes the world move, ``--rounds`` times: new orders and changes, published with duplicates,
   shuffled, some double-encoded, a few poison messages and messages of another seller; each round
   runs ``sp_api_order_events`` (started first, so its sensor is waiting when the burst arrives) and
   then ``sp_api_order_enrich`` until the enrichment queue is empty;
6. prints the report: orders and items by marketplace and status, notifications landed / duplicate /
   quarantined, SP-API calls and 429s per operation (``/_sandbox/stats``), the time from publish to
   status (p50/p95), and ``warehouse matches sandbox: yes`` when every table equals
   ``/_sandbox/truth`` (``demo/verify.py`` on ``tests/oracle.py``: independent of the product);
7. stops everything it started and prints the command to query the warehouse. Exits 1 on a mismatch.

``--pii`` (or ``SP_DEMO_PII=1``) runs it with buyer PII: the seller connection's ``include_pii`` on,
a fresh Fernet key in the connection ``sp_api_pii_key`` (``sp_order_buyers`` holds tokens only), and
random sandbox secrets (LWA client secret, refresh token, AWS secret) so a leak of them can be found;
the truths it checks against (and ``sandbox-final.json``) then carry the buyers' data, so
``sp_order_buyers`` is compared too.

Every DAG runs with ``airflow dags test`` (one process, no scheduler); ``make airflow`` runs the same
setup under a real scheduler with the UI. Full logs: ``.demo/logs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from demo.stack import ROOT, Progress, airflow_env, prepare_airflow, rel, services

#: Everything the demo writes (override with SP_DEMO_DIR, e.g. in tests).
DEMO = Path(os.environ.get("SP_DEMO_DIR") or ROOT / ".demo").resolve()
AIRFLOW_HOME = DEMO / "airflow"
WAREHOUSE_DB = DEMO / "warehouse.db"
LOGS = DEMO / "logs"
#: What the sandbox said at the end (truth, stats, every advance): the report's raw material.
SANDBOX_DUMP = DEMO / "sandbox-final.json"

_OPERATORS = (
    "SpApiOrdersSyncOperator",
    "SpApiNotificationsSetupOperator",
    "SpApiLandNotificationsOperator",
    "SpApiAckNotificationsOperator",
    "SpApiEnrichOrdersOperator",
)
#: A log line of one of the package's operators (its logger name ends with the class).
_OPERATOR_LINE = re.compile(r"\[[\w.]*\b(?:%s)\]" % "|".join(_OPERATORS))  # noqa: UP031
#: Sync lines worth showing while it runs (the others are in the log).
_SYNC_PROGRESS = re.compile(r"(window \S+->\S+|sync of|deferring|resum)", re.IGNORECASE)
_LOG_LINE = re.compile(r"^\S+\s+\[\w+\s*\]\s+(?P<msg>.*?)\s+\[[\w.]+\](?:\s+\w+=\S+)*\s*$")
#: The sensor of sp_api_order_events is waiting for messages (deferred; its trigger polls the queue).
_SENSOR_WAITING = re.compile(r"(defer|trigger)", re.IGNORECASE)
LANDED = re.compile(
    r"landed (?P<messages>\d+) messages in [\d.]+ s: (?P<new>\d+) new notifications applied "
    r"\((?P<orders>\d+) orders written, (?P<enqueued>\d+) queued for enrichment\), "
    r"(?P<duplicate>\d+) duplicates, (?P<quarantined>\d+) quarantined"
)
ENRICHED = re.compile(
    r"enrichment of \S+ stopped \((?P<reason>[^)]*)\): (?P<fetched>\d+) fetched, (?P<done>\d+) done, "
    r".*?; (?P<queued>\d+) orders queued"
)


def short(line: str) -> str:
    """The message part of an Airflow (structlog) log line."""
    match = _LOG_LINE.match(line.strip())
    return (match.group("msg") if match else line.strip())[:220]


@dataclass
class DagTest:
    """One ``airflow dags test`` process: its output goes to a log file, progress lines to the screen."""

    dag_id: str
    env: dict[str, str]
    say: Progress
    conf: dict[str, Any] | None = None
    log_path: Path | None = None
    show: Callable[[str], bool] = lambda line: True
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    ready_when: re.Pattern[str] | None = None
    process: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> DagTest:
        cmd = [sys.executable, "-m", "airflow", "dags", "test", self.dag_id]
        shown = f"$ airflow dags test {self.dag_id}"
        if self.conf:
            cmd += ["-c", json.dumps(self.conf)]
            shown += f" -c '{json.dumps(self.conf)}'"
        self.log_path = self.log_path or LOGS / f"{self.dag_id}.log"
        self.say(f"{shown}   (log: {rel(self.log_path)})", indent=True)
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            cmd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with open(self.log_path, "a") as log:  # type: ignore[arg-type]
            for line in self.process.stdout:
                log.write(line)
                self.lines.append(line)
                if _OPERATOR_LINE.search(line) and self.show(line):
                    self.say(f"  {short(line)}", indent=True)
                if self.ready_when is not None and self.ready_when.search(line):
                    self.ready.set()
        self.ready.set()

    def wait(self, timeout: float = 600) -> int:
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        except KeyboardInterrupt:  # Ctrl-C: the run is in a session of its own, so end it here
            self.stop()
            raise
        except subprocess.TimeoutExpired:
            self.stop()
            raise SystemExit(
                f"{self.dag_id} did not finish within {timeout:.0f}s; see {self.log_path}"
            ) from None
        if self._reader is not None:
            self._reader.join(10)
        return code

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def run(self, timeout: float = 600) -> int:
        """Start, wait, fail the demo on a failed run."""
        code = self.start().wait(timeout)
        if code != 0:
            raise SystemExit(f"{self.dag_id} failed (exit {code}); see {rel(self.log_path)}")  # type: ignore[arg-type]
        return code

    def matches(self, pattern: re.Pattern[str]) -> list[dict[str, int | str]]:
        """Every match of ``pattern`` in the output, numbers as ints."""
        found = []
        for line in self.lines:
            m = pattern.search(line)
            if m:
                found.append({k: int(v) if v.isdigit() else v for k, v in m.groupdict().items()})
        return found


@dataclass
class World:
    """What the demo asked the sandbox to do, and what the sandbox answered."""

    advances: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[tuple[frozenset[str], dict[str, Any]]] = field(default_factory=list)
    landed: list[dict[str, Any]] = field(default_factory=list)
    enriched: list[dict[str, Any]] = field(default_factory=list)

    def sent(self, key: str) -> int:
        return sum(int(a["request"].get(key, 0)) for a in self.advances)

    def answered(self, key: str) -> int:
        return sum(int(a["response"][key]) for a in self.advances)


def _sync_line(line: str) -> bool:
    return bool(_SYNC_PROGRESS.search(line))


def run_setup(env: dict[str, str], say: Progress) -> None:
    say("1/4 notification setup: find or create the SQS destination and the subscriptions")
    DagTest("sp_api_notifications_setup", env, say).run()


def run_backfill(env: dict[str, str], say: Progress, days: int) -> None:
    start = datetime.now(UTC) - timedelta(days=days + 1)
    say(f"2/4 historical sync from {start:%Y-%m-%d} into {rel(WAREHOUSE_DB)}")
    conf = {"mode": "backfill", "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "reset_checkpoint": True}
    DagTest("sp_api_orders_sync", env, say, conf=conf, show=_sync_line).run()


def move_world(env: dict[str, str], say: Progress, sandbox: Any, args: argparse.Namespace) -> World:
    """The rounds of step 5; returns what was sent, answered and processed."""
    world = World()
    for n in range(1, args.rounds + 1):
        say(f"3/4 the world moves, round {n}/{args.rounds}")
        events = DagTest(
            "sp_api_order_events",
            env,
            say,
            log_path=LOGS / f"sp_api_order_events.{n}.log",
            ready_when=_SENSOR_WAITING,
            show=lambda line: "landed" in line or "acknowledged" in line,
        ).start()
        try:
            events.ready.wait(120)  # publish while the sensor waits: the latency is the event path's own
            request = {
                "steps": 1,
                "new_orders": args.new_orders,
                "changes": args.changes,
                "duplicates": args.duplicates,
                "shuffle": True,
                "double_encoded": 0.1,
                "poison": args.poison,
                "foreign_seller": args.foreign,
            }
            response = sandbox.advance(**request)
            world.advances.append({"request": request, "response": response})
            changed = frozenset(c["order_id"] for c in response["changes"])
            kinds = Counter(
                c["change"] for c in response["changes"] if c["notification_type"] == "ORDER_CHANGE"
            )
            what = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
            say(
                f"  sandbox: {len(changed)} orders changed ({what}) "
                f"-> {response['messages']} notifications, {response['published']} SQS messages with "
                f"duplicates, {args.poison} poison, {args.foreign} of another seller",
                indent=True,
            )
            world.rounds.append((changed, sandbox.truth(include_pii=args.pii)))
            code = events.wait(600)
        finally:
            events.stop()
        if code != 0:
            raise SystemExit(f"sp_api_order_events failed (exit {code}); see {rel(events.log_path)}")  # type: ignore[arg-type]
        world.landed += events.matches(LANDED)
        for attempt in range(1, 4):
            enrich = DagTest(
                "sp_api_order_enrich",
                env,
                say,
                log_path=LOGS / f"sp_api_order_enrich.{n}.{attempt}.log",
                show=lambda line: "enrichment of" in line or "quarantined" in line,
            )
            enrich.run()
            results = enrich.matches(ENRICHED)
            world.enriched += results
            if results and all(r["queued"] == 0 for r in results):
                break
    return world


def _rows(by: Counter[tuple[str, str]], mkts: list[str], statuses: list[str]) -> list[str]:
    """A table: one row per order status, one column per marketplace, and the total."""
    first = max(len("order status"), *(len(s) for s in statuses))
    widths = [max(len(m), 6) + 2 for m in mkts]
    out = [
        f"{'order status':<{first}}"
        + "".join(f"{m:>{w}}" for m, w in zip(mkts, widths, strict=True))
        + f"{'total':>8}"
    ]
    for s in statuses:
        cells = "".join(f"{by[(m, s)]:>{w}}" for m, w in zip(mkts, widths, strict=True))
        out.append(f"{s:<{first}}{cells}{sum(by[(m, s)] for m in mkts):>8}")
    totals = "".join(f"{sum(by[(m, s)] for s in statuses):>{w}}" for m, w in zip(mkts, widths, strict=True))
    out.append(f"{'total':<{first}}{totals}{sum(by.values()):>8}")
    return out


def report(
    sandbox: Any,
    world: World,
    after_sync: dict[str, Any],
    *,
    say: Progress,
    api_version: str,
    pii_key: str | None = None,
) -> bool:
    """Print the report; returns whether the warehouse matches the sandbox's truth."""
    os.environ["AIRFLOW_CONN_WAREHOUSE_DEFAULT"] = json.dumps(
        {"conn_type": "sqlite", "host": str(WAREHOUSE_DB)}
    )
    if pii_key:  # warehouse_rows reads sp_order_buyers decrypted, with the run's key
        os.environ["AIRFLOW_CONN_SP_API_PII_KEY"] = json.dumps({"conn_type": "generic", "password": pii_key})
    from selling_partner.warehouse import get_warehouse

    from demo.verify import percentile, publish_to_status_seconds, verdict
    from tests.oracle import DATA_TABLES, parse_time, warehouse_rows

    wh = get_warehouse("warehouse_default")
    rows = warehouse_rows(wh)
    orders, items = rows["sp_orders"], rows["sp_order_items"]
    runs = [r for r in wh.fetch_sync_runs() if r["mode"] == "backfill"]
    synced_until = max(r["window_end"] for r in runs) if runs else None
    inbox, quarantine = wh.fetch_inbox(), wh.fetch_quarantine()
    backlog = sum(n for n, _ in wh.enrichment_backlog().values())
    # The sandbox's own account of everything, kept for anyone checking this report (tests do).
    dump = {
        "truth": sandbox.truth(include_pii=bool(pii_key)),
        "stats": sandbox.stats(),
        # the truth right after the sync, within its window: the versions the sync loaded
        "synced": {
            **after_sync,
            "orders": [
                o
                for o in after_sync["orders"]
                if synced_until and parse_time(o["lastUpdatedTime"]) < synced_until
            ],
        },
        "rounds": [
            {"changed": sorted(ids), "orders": [o for o in snap["orders"] if o["orderId"] in ids]}
            for ids, snap in world.rounds
        ],
        "synced_until": synced_until.isoformat() if synced_until else None,
        "advances": world.advances,
        "landed": world.landed,
        "enriched": world.enriched,
    }
    SANDBOX_DUMP.write_text(json.dumps(dump, default=str))
    stats = dump["stats"]

    print()
    print(f"== report ({say.elapsed:.0f}s) ==")
    units = sum(i["quantity_ordered"] for i in items)
    print(f"orders: {len(orders)}   items: {len(items)}   units: {units}")
    by_order = Counter((o["marketplace_id"], o["order_status"]) for o in orders)
    status_of = {o["order_id"]: (o["marketplace_id"], o["order_status"]) for o in orders}
    by_item: Counter[tuple[str, str]] = Counter(
        status_of[i["order_id"]] for i in items if i["order_id"] in status_of
    )
    statuses = sorted({s for _, s in by_order})
    mkts = sorted({m for m, _ in by_order})
    print("orders by marketplace and status")
    print("\n".join(_rows(by_order, mkts, statuses)))
    print("items by marketplace and order status")
    print("\n".join(_rows(by_item, mkts, statuses)))

    print()
    sent = world.answered("messages")
    duplicates = sum(int(x["duplicate"]) for x in world.landed)
    rejected = sum(int(x["quarantined"]) for x in world.landed)
    print(
        f"notifications: {len(inbox)} landed (the sandbox sent {sent}), {duplicates} duplicate deliveries "
        f"ignored, {rejected} messages quarantined ({len(quarantine)} distinct bodies; sent: "
        f"{world.sent('poison')} poison, {world.sent('foreign_seller')} of another seller); "
        f"{world.answered('published')} SQS messages in all"
    )
    print(f"enrichment queue: {backlog} orders left")
    latencies = publish_to_status_seconds(inbox)
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    if p50 is not None and p95 is not None:
        print(
            f"publish -> status in the warehouse: p50 {p50:.1f} s, p95 {p95:.1f} s "
            f"({len(latencies)} notifications)"
        )

    print()
    print(f"{'SP-API operation':<28}{'calls':>7}{'429s':>7}{'errors':>8}")
    for op, st in sorted(stats.get("operations", {}).items()):
        if st.get("calls"):
            print(f"{op:<28}{st['calls']:>7}{st.get('throttled', 0):>7}{st.get('errors', 0):>8}")
    if runs:
        r = runs[-1]
        print(f"historical sync: {r['pages']} pages, {r['orders']} orders, {r['calls']} calls")
    fetched = sum(int(e["fetched"]) for e in world.enriched)
    changed = sum(len(ids) for ids, _ in world.rounds)
    print(
        f"enrichment: {fetched} getOrder fetches for {changed} order changes over {len(world.rounds)} rounds"
    )

    diffs, left_out = verdict(dump, rows, api_version=api_version)
    if left_out:
        print(f"({len(left_out)} orders updated within 2 minutes before the sync's end and never since: "
              "the next sweep loads them)")  # fmt: skip
    if backlog:
        diffs.append(f"{backlog} orders are still queued for enrichment")
    if len(inbox) != sent:
        diffs.append(f"{len(inbox)} notifications landed, the sandbox sent {sent}")
    print()
    print(f"compared with /_sandbox/truth field by field: {', '.join(DATA_TABLES)}")
    if diffs:
        print("warehouse matches sandbox: no")
        for d in diffs:
            print(f"  - {d}")
        return False
    print("warehouse matches sandbox: yes")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders in the sandbox's history")
    parser.add_argument("--days", type=int, default=30, help="days of history")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-scale", type=float, default=60.0, help="the sandbox's rate limits x this")
    parser.add_argument("--api-version", choices=("2026-01-01", "v0"), default="2026-01-01")
    parser.add_argument("--rounds", type=int, default=3, help="bursts of the moving world")
    parser.add_argument("--new-orders", type=int, default=40, help="new orders per round")
    parser.add_argument("--changes", type=int, default=150, help="changes to existing orders per round")
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of notifications sent twice")
    parser.add_argument("--poison", type=int, default=2, help="poison messages per round")
    parser.add_argument("--foreign", type=int, default=1, help="messages of another seller per round")
    parser.add_argument(
        "--pii",
        action="store_true",
        default=os.environ.get("SP_DEMO_PII", "").lower() in ("1", "true", "yes"),
        help="load buyer PII too (include_pii, encrypted with a fresh key in the connection sp_api_pii_key) "
        "with random sandbox secrets; also SP_DEMO_PII=1",
    )
    args = parser.parse_args(argv)
    say = Progress()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does: everything it started ends

    signal.signal(signal.SIGTERM, on_signal)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for stale in (AIRFLOW_HOME, LOGS, WAREHOUSE_DB, SANDBOX_DUMP):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    LOGS.mkdir(parents=True, exist_ok=True)
    env = airflow_env(AIRFLOW_HOME)

    say(
        f"starting moto SQS and the SP-API sandbox ({args.orders} orders over {args.days} days, "
        f"rate limits x{args.time_scale:g})"
    )
    secrets: dict[str, str] = {}
    sandbox_secrets: dict[str, str] = {}
    if args.pii:
        import secrets as random

        from selling_partner.warehouse.pii import generate_key

        secrets = {"pii_key": generate_key(), "aws_secret": "aws-" + random.token_urlsafe(24)}
        sandbox_secrets = {
            "client_secret": "demo-secret-" + random.token_urlsafe(24),
            "refresh_token": "Atzr|demo-" + random.token_urlsafe(32),
        }
    with services(
        LOGS,
        seed=args.seed,
        orders=args.orders,
        days=args.days,
        time_scale=args.time_scale,
        **sandbox_secrets,
    ) as svc:
        sb = svc.sandbox
        say(
            f"sandbox {sb.url} (seller {sb.seller_id}, {', '.join(sb.marketplace_ids)}); "
            f"SQS {svc.sqs.endpoint}",
            indent=True,
        )
        say(f"queue {svc.queue_url} (its policy lets Amazon's account send)", indent=True)
        say(
            f"preparing Airflow home {rel(AIRFLOW_HOME)}: SQLite, airflow db migrate, "
            f"{4 if args.pii else 3} connections, 1 Variable"
            + (" (buyer PII on, its key in sp_api_pii_key)" if args.pii else "")
        )
        prepare_airflow(AIRFLOW_HOME, env, svc, WAREHOUSE_DB, args.api_version, **secrets)
        run_setup(env, say)
        run_backfill(env, say, args.days)
        after_sync = sb.truth(include_pii=args.pii)
        world = move_world(env, say, sb, args)
        say("4/4 report")
        ok = report(
            sb, world, after_sync, say=say, api_version=args.api_version, pii_key=secrets.get("pii_key")
        )
    print()
    print("stopped the sandbox, the SQS server and every Airflow process the demo started.")
    print(f"the warehouse stays in {rel(WAREHOUSE_DB)}; query it with:")
    db = "" if WAREHOUSE_DB == (ROOT / ".demo" / "warehouse.db") else f" --db {WAREHOUSE_DB}"
    sql = "SELECT marketplace_id, order_status, COUNT(*) AS orders FROM sp_orders GROUP BY 1, 2"
    print(f'  .venv/bin/python -m demo.query{db} "{sql}"')
    return 0 if ok else 1


def _run() -> int:
    try:
        return main()
    except KeyboardInterrupt:
        print(
            "\ninterrupted: stopped the sandbox, the SQS server and every Airflow process the demo started."
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(_run())
