"""The alert messages (pure builders) and the warehouse reads behind the health checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from selling_partner import alerts
from selling_partner.hooks.errors import SpApiForbidden

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_fbm_digest_counts_per_marketplace_and_the_oldest_ship_by() -> None:
    orders = [
        ("ATVPDKIKX0DER", NOW + timedelta(hours=5)),
        ("ATVPDKIKX0DER", NOW + timedelta(hours=2)),
        ("A2EUQ1WTGCTBG2", None),
    ]
    text = alerts.fbm_digest(orders)
    assert text is not None
    assert text.splitlines()[0] == "*3 new merchant-fulfilled orders to ship*"
    assert "- ATVPDKIKX0DER: 2" in text and "- A2EUQ1WTGCTBG2: 1" in text
    assert "Oldest ship-by: 2026-12-03 14:00 UTC" in text
    assert alerts.fbm_digest([]) is None
    assert "Oldest ship-by: not given" in (alerts.fbm_digest([("X", None)]) or "")


def test_task_failure_names_seller_error_fix_and_rerun_safety() -> None:
    error = SpApiForbidden("Access to requested resource is denied.", operation="getOrder", status=403)
    text = alerts.task_failure(
        dag_id="sp_api_order_enrich", task_id="enrich_orders__s1", run_id="r1", conn_id="s1", error=error
    )
    assert "*sp_api_order_enrich.enrich_orders__s1 failed* for seller connection `s1`" in text
    assert "Error: `SpApiForbidden`" in text
    assert f"Fix: {error.hint}" in text  # the fix the error names, word for word
    assert "Rerun safe: yes" in text
    plain = alerts.task_failure(dag_id="other", task_id="t", run_id="r", conn_id=None, error=ValueError("x"))
    assert "Rerun safe: check the runbook" in plain and "for seller connection" not in plain


def test_thresholds_decide_whether_there_is_a_message() -> None:
    assert alerts.quarantine_growth({"a": 2}, per_hour=3) is None
    text = alerts.quarantine_growth({"t: malformed": 2, "t: foreign seller": 3}, per_hour=3)
    assert text is not None and text.startswith("*5 messages or records quarantined")
    assert text.index("3 x t: foreign seller") < text.index("2 x t: malformed")  # biggest first

    stuck = timedelta(minutes=60)
    assert alerts.stuck_enrichment("s1", queued=0, oldest=None, now=NOW, stuck=stuck) is None
    assert (
        alerts.stuck_enrichment("s1", queued=5, oldest=NOW - timedelta(minutes=59), now=NOW, stuck=stuck)
        is None
    )
    text = alerts.stuck_enrichment("s1", queued=5, oldest=NOW - timedelta(minutes=61), now=NOW, stuck=stuck)
    assert text is not None and "5 orders queued, the oldest for 61 min" in text

    assert alerts.missed_notifications("s1", missed=0, threshold=1) is None
    assert "found 3 orders" in (alerts.missed_notifications("s1", missed=3, threshold=1) or "")

    quiet = timedelta(hours=1)
    last = NOW - timedelta(hours=2)
    assert alerts.quiet_events("s1", last_notification=last, now=NOW, quiet=quiet, changes_seen=0) is None
    assert alerts.quiet_events("s1", last_notification=NOW, now=NOW, quiet=quiet, changes_seen=4) is None
    text = alerts.quiet_events("s1", last_notification=last, now=NOW, quiet=quiet, changes_seen=4)
    assert text is not None and "for 2.0 h" in text and "sweep saw 4 orders change" in text


def test_quarantine_counts_group_by_table_and_first_line() -> None:
    counts = alerts.quarantine_counts(
        [("q", "malformed JSON\nline 2"), ("q", "malformed JSON"), ("o", "x" * 300), ("o", None)]
    )
    assert counts == {"q: malformed JSON": 2, f"o: {'x' * 100}": 1, "o: ": 1}


def test_settings_are_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SP_API_ALERT_STUCK_MINUTES", "15")
    assert alerts.setting("STUCK_MINUTES", 60) == 15
    monkeypatch.setenv("SP_API_ALERT_STUCK_MINUTES", " ")
    assert alerts.setting("STUCK_MINUTES", 60) == 60
    monkeypatch.setenv("SP_API_ALERT_STUCK_MINUTES", "soon")
    with pytest.raises(ValueError, match="SP_API_ALERT_STUCK_MINUTES must be a number"):
        alerts.setting("STUCK_MINUTES", 60)


def test_send_without_a_slack_connection_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_SP_API", raising=False)
    assert alerts.send("hello", kind="test") is False
    assert alerts.send(None, kind="test") is False


def test_send_survives_an_unreachable_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack down: the alert is logged as not sent and the caller goes on."""
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_SP_API",
        json.dumps({"conn_type": "slackwebhook", "password": "http://127.0.0.1:9/services/T/B/secret"}),
    )
    assert alerts.send("hello", kind="test", repeat=True) is False
