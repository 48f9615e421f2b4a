"""SellingPartnerReportsHook against the sandbox's Reports API over real HTTP; responses checked against
Amazon's reports model (tests/contract.py)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from selling_partner.hooks.errors import SpApiInvalidInput, SpApiNotFound
from selling_partner.hooks.ratelimit import DEFAULT_LIMITS, MemoryRateLimiter
from selling_partner.hooks.reports import SellingPartnerReportsHook
from selling_partner.reports.parsing import (
    REPORT_TYPE,
    decode_document,
    is_date_range_exceeded,
    parse_document,
)
from sp_api_sandbox.launcher import SandboxProcess

from tests.contract import validate_response

pytestmark = pytest.mark.integration
US = "ATVPDKIKX0DER"
SCALE = 600
MODEL = "reports_2021-06-30"


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    log = Path(tmp_path_factory.mktemp("reports-sandbox")) / "sandbox.log"
    process = SandboxProcess(
        options={"seed": 31, "orders": 300, "days": 20, "time_scale": SCALE}, log_path=log
    ).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def hook(sb: SandboxProcess) -> Iterator[SellingPartnerReportsHook]:
    MemoryRateLimiter.reset_all()
    conn_id = f"sp_reports_{uuid.uuid4().hex[:8]}"
    limits = {op: [rate * SCALE, burst] for op, (rate, burst) in DEFAULT_LIMITS.items()}
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = sb.connection_uri(
        rate_limits=limits, rate_limit_backend="memory"
    )
    h = SellingPartnerReportsHook(conn_id)
    yield h
    h.close()
    os.environ.pop(f"AIRFLOW_CONN_{conn_id.upper()}", None)
    requests.post(f"{sb.url}/_sandbox/reports/config", timeout=30, json={
        "fatal_next": 0, "encoding": "auto", "gzip": "auto", "flag_lies": True, "expire_next_urls": 0,
        "delay_scale": 1.0,
    })  # fmt: skip


def configure(sb: SandboxProcess, **cfg) -> None:
    response = requests.post(f"{sb.url}/_sandbox/reports/config", json=cfg, timeout=30)
    assert response.status_code == 200, response.text


def window(days_from: float, days_to: float) -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(days=days_from), now - timedelta(days=days_to)


def wait_final(hook: SellingPartnerReportsHook, report_id: str) -> dict:
    seen = []
    for _ in range(200):
        report = hook.get_report(report_id)
        seen.append(report["processingStatus"])
        if report["processingStatus"] not in ("IN_QUEUE", "IN_PROGRESS"):
            report["_seen"] = seen
            return report
        time.sleep(0.1)
    raise AssertionError(f"report {report_id} never finished: {seen[-3:]}")


def sandbox_orders(sb: SandboxProcess, report_id: str) -> int:
    listed = requests.get(f"{sb.url}/_sandbox/reports", timeout=30).json()
    return next(r["orders"] for r in listed["reports"] if r["reportId"] == report_id)


def test_report_lifecycle_and_contract(sb, hook):
    start, end = window(15, 1)
    quota_before = hook.quota("createReport").tokens
    report_id = hook.create_report(REPORT_TYPE, [US], data_start_time=start, data_end_time=end)
    assert hook.quota("createReport").tokens < quota_before  # createReport spends from the shared limiter
    report = wait_final(hook, report_id)
    assert report["_seen"][0] == "IN_QUEUE" and report["processingStatus"] == "DONE"
    validate_response(MODEL, "getReport", 200, {k: v for k, v in report.items() if k != "_seen"})
    listed = hook.get_reports(report_types=[REPORT_TYPE], marketplace_ids=[US], page_size=1)
    assert report_id in [r["reportId"] for r in listed]
    info = hook.get_report_document(report["reportDocumentId"])
    validate_response(MODEL, "getReportDocument", 200, info)
    document = hook.download_document(report["reportDocumentId"])
    parsed, _ = parse_document(document.content, document.content_type, marketplace_id=US)
    assert len(parsed.orders) == sandbox_orders(sb, report_id) > 0 and parsed.rejected == []
    truth_ids = {
        o["orderId"]
        for o in sb.truth(lastUpdatedAfter=start.isoformat(), lastUpdatedBefore=end.isoformat())["orders"]
        if o["salesChannel"]["marketplaceId"] == US
    }
    assert {o.order_id for o in parsed.orders} == truth_ids
    ops = sb.stats()["operations"]
    assert {"createReport", "getReport", "getReports", "getReportDocument"} <= set(ops)


def test_raw_responses_match_amazons_model(sb):
    from tests.fixtures.sandbox import SandboxClient

    client = SandboxClient(sb)
    start, end = window(5, 1)
    body = {"reportType": REPORT_TYPE, "marketplaceIds": [US], "dataStartTime": start.isoformat(),
            "dataEndTime": end.isoformat()}  # fmt: skip
    created = client.post("/reports/2021-06-30/reports", json=body)
    assert created.status_code == 202
    validate_response(MODEL, "createReport", 202, created.json())
    listed = client.get("/reports/2021-06-30/reports", params={"reportTypes": REPORT_TYPE, "pageSize": 1})
    assert listed.status_code == 200 and "nextToken" in listed.json()
    validate_response(MODEL, "getReports", 200, listed.json())
    # a nextToken must be the only parameter
    bad = client.get("/reports/2021-06-30/reports", params={"nextToken": listed.json()["nextToken"],
                                                            "pageSize": 1})  # fmt: skip
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("encoding", "gzip", "codec"),
    [("utf-8", "always", "utf-8"), ("utf-8-bom", "never", "utf-8"), ("cp1252", "always", "cp1252"),
     ("windows-31j", "never", "cp932")],
)  # fmt: skip
def test_encodings_and_gzip_whatever_the_flag_says(sb, hook, encoding, gzip, codec):
    configure(sb, encoding=encoding, gzip=gzip, flag_lies=True)
    start, end = window(12, 2)
    report = wait_final(hook, hook.create_report(REPORT_TYPE, [US], data_start_time=start, data_end_time=end))
    document = hook.download_document(report["reportDocumentId"])
    assert document.was_gzip == (gzip == "always")
    parsed, used = parse_document(document.content, document.content_type, marketplace_id=US)
    assert used == codec and len(parsed.orders) == sandbox_orders(sb, report["reportId"]) > 0


def test_compression_flag_lies_sometimes(sb, hook):
    configure(sb, gzip="auto", flag_lies=True)
    start = window(12, 2)[0]
    claims = []
    for n in range(8):
        report_id = hook.create_report(
            REPORT_TYPE, [US], data_start_time=start, data_end_time=start + timedelta(days=1 + n)
        )
        report = wait_final(hook, report_id)
        if report["processingStatus"] == "DONE":
            info = hook.get_report_document(report["reportDocumentId"])
            document = hook.download_document(report["reportDocumentId"])
            claims.append((info.get("compressionAlgorithm") == "GZIP", document.was_gzip))
    assert any(claimed != real for claimed, real in claims)  # the flag was wrong at least once
    assert any(claimed == real for claimed, real in claims)


def test_expired_document_url_is_replaced(sb, hook):
    start, end = window(10, 5)
    report = wait_final(hook, hook.create_report(REPORT_TYPE, [US], data_start_time=start, data_end_time=end))
    configure(sb, expire_next_urls=2)
    document = hook.download_document(report["reportDocumentId"])
    assert document.url_refreshes == 2 and document.content
    stale = hook.get_report_document(report["reportDocumentId"])["url"]
    time.sleep(300 / SCALE + 0.3)  # the URL lives 5 minutes, Amazon time
    assert requests.get(stale, timeout=30).status_code == 403


def test_fatal_cancelled_and_date_range_exceeded(sb, hook):
    configure(sb, fatal_next=1)
    start, end = window(10, 2)
    fatal = wait_final(hook, hook.create_report(REPORT_TYPE, [US], data_start_time=start, data_end_time=end))
    assert fatal["processingStatus"] == "FATAL" and fatal.get("reportDocumentId")
    text, _ = decode_document(hook.download_document(fatal["reportDocumentId"]).content)
    assert "failed" in text
    empty_start, empty_end = window(60, 40)  # older than the world: no orders
    empty = wait_final(
        hook, hook.create_report(REPORT_TYPE, [US], data_start_time=empty_start, data_end_time=empty_end)
    )
    assert empty["processingStatus"] == "CANCELLED" and "reportDocumentId" not in empty
    long_start, long_end = window(45, 0.01)
    exceeded = wait_final(
        hook, hook.create_report(REPORT_TYPE, [US], data_start_time=long_start, data_end_time=long_end)
    )
    assert exceeded["processingStatus"] == "DONE"
    text, _ = decode_document(hook.download_document(exceeded["reportDocumentId"]).content)
    assert is_date_range_exceeded(text)


def test_cancel_only_in_queue_and_invalid_requests(sb, hook):
    configure(sb, delay_scale=1000.0)  # stays IN_QUEUE for a while
    start, end = window(10, 2)
    report_id = hook.create_report(REPORT_TYPE, [US], data_start_time=start, data_end_time=end)
    hook.cancel_report(report_id)
    assert hook.get_report(report_id)["processingStatus"] == "CANCELLED"
    with pytest.raises(SpApiInvalidInput):
        hook.cancel_report(report_id)  # no longer IN_QUEUE
    with pytest.raises(SpApiNotFound):
        hook.get_report("999")
    now = datetime.now(UTC)
    with pytest.raises(SpApiInvalidInput):
        hook.create_report(REPORT_TYPE, [US], data_start_time=now - timedelta(days=800), data_end_time=now)
    with pytest.raises(SpApiInvalidInput):
        hook.create_report(REPORT_TYPE, [US], data_start_time=now, data_end_time=now + timedelta(days=1))
    with pytest.raises(SpApiInvalidInput):
        hook.create_report("GET_SOMETHING_ELSE", [US], data_start_time=start, data_end_time=end)
