"""Alerts people act on, to Slack (``apache-airflow-providers-slack``); off when no Slack connection is set.

The connection is a Slack *incoming webhook* connection (type ``slackwebhook``), id ``slack_sp_api``
(``SP_API_SLACK_CONN_ID`` overrides). Messages name the seller connection, what is wrong, the fix and
whether a rerun is safe; they never carry a token, a secret or buyer data (order ids, counts and
marketplaces only). An alert of one kind for one seller is repeated at most every
``SP_API_ALERT_REPEAT_MINUTES`` (60), so a pipe that stays broken does not page every 15 minutes.

The message builders are pure; :func:`send` is the only I/O.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_SLACK_CONN_ID = "slack_sp_api"
REPEAT_PREFIX = "sp_api_alert__"
#: The package's DAGs: a failed task of one of these is worth an alert.
PACKAGE_DAGS = (
    "sp_api_orders_sync",
    "sp_api_order_events",
    "sp_api_order_enrich",
    "sp_api_notifications_setup",
)
#: Whether a rerun of a failed task of each DAG is safe, and why (on-call reads this first).
RERUN_SAFE = {
    "sp_api_orders_sync": "yes: it resumes from its checkpoint and upserts are idempotent",
    "sp_api_order_events": "yes: messages are deleted only after their commit, redeliveries are deduplicated",
    "sp_api_order_enrich": "yes: claims expire, loads are monotonic",
    "sp_api_notifications_setup": "yes: it finds what exists and creates only what is missing",
}


def setting(name: str, default: float) -> float:
    """An alert threshold from the environment (``SP_API_ALERT_<NAME>``)."""
    raw = os.environ.get(f"SP_API_ALERT_{name}", "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        raise ValueError(f"SP_API_ALERT_{name} must be a number, got {raw!r}") from None


def slack_conn_id() -> str:
    return os.environ.get("SP_API_SLACK_CONN_ID") or DEFAULT_SLACK_CONN_ID


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def _age(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes / 60:.1f} h" if minutes >= 90 else f"{minutes:.0f} min"


# --------------------------------------------------------------------------- message builders (pure)


def fbm_digest(orders: Iterable[tuple[str, datetime | None]]) -> str | None:
    """New merchant-fulfilled orders to ship, from ``(marketplace_id, latest_ship_time)`` pairs: counts per
    marketplace and the oldest ship-by time. ``None`` when there are none."""
    orders = list(orders)
    if not orders:
        return None
    per_market = Counter(m for m, _ in orders)
    ship_by = [t for _, t in orders if t is not None]
    lines = [f"*{len(orders)} new merchant-fulfilled order{'s' if len(orders) != 1 else ''} to ship*"]
    lines += [f"- {market}: {n}" for market, n in sorted(per_market.items())]
    lines.append(f"Oldest ship-by: {_when(min(ship_by)) if ship_by else 'not given'}")
    lines.append("Details: the view sp_v_fbm_orders_needing_action (most urgent first).")
    return "\n".join(lines)


def task_failure(*, dag_id: str, task_id: str, run_id: str, conn_id: str | None, error: BaseException) -> str:
    """A failed task: which seller, which error class, the fix the error names, whether a rerun is safe."""
    hint = getattr(error, "hint", None) or "See the task log's last lines."
    first_line = (str(error).split(" What to do:")[0].splitlines() or [""])[0][:300]
    return "\n".join(
        [
            f"*{dag_id}.{task_id} failed*" + (f" for seller connection `{conn_id}`" if conn_id else ""),
            f"Error: `{type(error).__name__}`: {first_line}",
            f"Fix: {hint}",
            f"Rerun safe: {RERUN_SAFE.get(dag_id, 'check the runbook')}",
            f"Run: {run_id}",
        ]
    )


def quarantine_growth(counts: Mapping[str, int], *, per_hour: float) -> str | None:
    """New quarantine rows of the last hour by table and reason; ``None`` under ``per_hour``."""
    total = sum(counts.values())
    if total < per_hour:
        return None
    lines = [f"*{total} messages or records quarantined in the last hour* (threshold {per_hour:g})"]
    lines += [f"- {n} x {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])[:8]]
    lines.append("They are kept with their reason in sp_notification_quarantine / sp_order_quarantine; "
                 "nothing else is held up.")  # fmt: skip
    return "\n".join(lines)


def stuck_enrichment(
    conn_id: str, *, queued: int, oldest: datetime | None, now: datetime, stuck: timedelta
) -> str | None:
    """The enrichment queue of a seller whose oldest order waits longer than ``stuck``."""
    if not queued or oldest is None or now - oldest <= stuck:
        return None
    waited = _age((now - oldest).total_seconds())
    return (
        f"*Enrichment of `{conn_id}` is stuck*: {queued} orders queued, the oldest for {waited} "
        f"(threshold {_age(stuck.total_seconds())}). Statuses are current; details (items, prices) lag. "
        "Check that sp_api_order_enrich is on and not failing; its log says how far it got. Rerun safe: yes."
    )


def missed_notifications(conn_id: str, *, missed: int, threshold: float) -> str | None:
    """The sweep found orders the event path should have delivered."""
    if missed < threshold:
        return None
    return (
        f"*Notifications are going missing for `{conn_id}`*: the last sweep found {missed} orders that "
        "changed minutes ago but were not in the warehouse (it loaded them). Check the SQS queue's policy "
        "and the subscriptions (trigger sp_api_notifications_setup: it says what is wrong)."
    )


def quiet_events(
    conn_id: str, *, last_notification: datetime | None, now: datetime, quiet: timedelta, changes_seen: int
) -> str | None:
    """No notification for longer than ``quiet`` while the sweep sees orders change: the pipe is broken."""
    if not changes_seen or last_notification is None or now - last_notification <= quiet:
        return None
    return (
        f"*No notification for `{conn_id}` for {_age((now - last_notification).total_seconds())}* while the "
        f"sweep saw {changes_seen} orders change. The event pipe is likely broken (queue policy, "
        "subscription, sp_api_order_events paused or failing); the sweep keeps the warehouse current."
    )


# --------------------------------------------------------------------------- sending


def slack_configured() -> bool:
    """Whether the Slack connection exists (alerts are off otherwise)."""
    try:
        from airflow.sdk import BaseHook

        BaseHook.get_connection(slack_conn_id())
    except Exception:
        return False
    return True


def _repeat_key(kind: str, subject: str) -> str:
    return REPEAT_PREFIX + "__".join(part.replace(":", "_") for part in (kind, subject))


def _recently_sent(kind: str, subject: str, now: datetime) -> bool:
    """Whether this alert was sent within the repeat interval (kept in a Variable; tasks only)."""
    from selling_partner.hooks.ratelimit import in_task_process

    if not in_task_process():
        return False
    from airflow.sdk import Variable

    raw = Variable.get(_repeat_key(kind, subject), default=None)
    last = datetime.fromisoformat(json.loads(raw)["sent_at"]) if raw else None
    return last is not None and now - last < timedelta(minutes=setting("REPEAT_MINUTES", 60))


def _mark_sent(kind: str, subject: str, now: datetime) -> None:
    from selling_partner.hooks.ratelimit import in_task_process

    if in_task_process():
        from airflow.sdk import Variable

        Variable.set(_repeat_key(kind, subject), json.dumps({"sent_at": now.isoformat()}),
                     description="When this sp_api alert was last sent (repeats are held back).")  # fmt: skip


def send(text: str | None, *, kind: str, subject: str = "all", repeat: bool = False) -> bool:
    """Post ``text`` to Slack if configured; returns whether it was sent.

    ``repeat=False`` holds back the same ``kind`` for the same ``subject`` within the repeat interval.
    Sending never raises: an alert that cannot be delivered is logged, the task goes on.
    """
    if not text:
        return False
    if not slack_configured():
        log.debug("alert %s not sent: no Slack connection %s", kind, slack_conn_id())
        return False
    now = datetime.now(UTC)
    if not repeat and _recently_sent(kind, subject, now):
        log.info("alert %s for %s held back: already sent within the repeat interval", kind, subject)
        return False
    try:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id=slack_conn_id()).send_text(text)
    except Exception as exc:
        log.warning("alert %s for %s could not be sent to Slack: %s", kind, subject, type(exc).__name__)
        return False
    if not repeat:
        _mark_sent(kind, subject, now)
    log.info("alert %s for %s sent to Slack", kind, subject)
    return True


def on_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of the package's DAGs: one Slack message per failed task try."""
    ti = context.get("ti")
    task = context.get("task")
    error = context.get("exception") or RuntimeError("unknown error")
    dag_id = getattr(ti, "dag_id", "") or ""
    text = task_failure(
        dag_id=dag_id,
        task_id=getattr(ti, "task_id", "") or "",
        run_id=str(context.get("run_id") or ""),
        conn_id=getattr(task, "sp_api_conn_id", None),
        error=error if isinstance(error, BaseException) else RuntimeError(str(error)),
    )
    send(text, kind="task_failure", subject=f"{dag_id}.{getattr(ti, 'task_id', '')}", repeat=True)


def quarantine_counts(rows: Iterable[tuple[str, str]]) -> dict[str, int]:
    """``(table, reason)`` pairs -> ``"table: reason"`` (the reason's first line, 100 characters) -> count."""
    out: Counter[str] = Counter()
    for table, reason in rows:
        out[f"{table}: {(str(reason or '').splitlines() or [''])[0][:100]}"] += 1
    return dict(out)
