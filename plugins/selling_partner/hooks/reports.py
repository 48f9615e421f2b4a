"""SellingPartnerReportsHook: Reports API 2021-06-30 (order reports) and report document downloads.

The five operations go through the base hook's limiter (proactive token buckets shared with every other
call of the seller, Amazon's usage plans: ``createReport`` and ``getReportDocument`` 0.0167/s burst 15,
``getReport`` 2/s burst 15, ``getReports`` and ``cancelReport`` 0.0222/s burst 10), retries and typed
errors. A document download goes to the pre-signed URL ``getReportDocument`` returned (S3 in
production: no SP-API token, no rate limit). The URL expires after 5 minutes: a download refused as
expired (HTTP 403, or 400 from some S3 front ends) fetches a new URL and tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from selling_partner.hooks.errors import SpApiError, SpApiServerError
from selling_partner.hooks.sp_api import SellingPartnerHook
from selling_partner.reports.parsing import decompress
from selling_partner.validation import (
    ValidationError,
    format_amazon_time,
    validate_marketplace_ids,
    validate_path_segment,
)

log = logging.getLogger(__name__)

REPORTS = "/reports/2021-06-30"
#: ``processingStatus`` values of the Reports API.
PROCESSING_STATUSES = ("IN_QUEUE", "IN_PROGRESS", "DONE", "CANCELLED", "FATAL")
#: New document URLs fetched when a download is refused as expired, before giving up.
MAX_URL_REFRESHES = 2


@dataclass(frozen=True)
class Document:
    """A downloaded report document: the bytes (gzip already removed when the body was gzip, whatever
    ``compressionAlgorithm`` said), the response's ``Content-Type`` and what Amazon claimed."""

    document_id: str
    content: bytes
    content_type: str | None
    compression_claimed: str | None
    was_gzip: bool
    url_refreshes: int


class SellingPartnerReportsHook(SellingPartnerHook):
    """Reports API 2021-06-30 on an ``amazon_sp_api`` connection (see :class:`SellingPartnerHook`)."""

    def create_report(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        *,
        data_start_time: datetime | None = None,
        data_end_time: datetime | None = None,
        report_options: dict[str, str] | None = None,
    ) -> str:
        """``createReport``; returns the new ``reportId``."""
        op = "createReport"
        validate_path_segment(report_type, name="report type", operation=op)
        ids = validate_marketplace_ids(list(marketplace_ids), region=self.config.region, operation=op)
        if not 1 <= len(ids) <= 25:
            raise ValidationError("createReport takes 1 to 25 marketplace ids", operation=op)
        body: dict[str, Any] = {"reportType": report_type, "marketplaceIds": ids}
        if data_start_time is not None:
            body["dataStartTime"] = format_amazon_time(data_start_time)
        if data_end_time is not None:
            body["dataEndTime"] = format_amazon_time(data_end_time)
        if report_options:
            body["reportOptions"] = dict(report_options)
        result, _ = self.call(op, "POST", f"{REPORTS}/reports", json_body=body)
        report_id = (result or {}).get("reportId") if isinstance(result, dict) else None
        if not report_id:
            raise SpApiServerError("no reportId in the createReport response", operation=op)
        return str(report_id)

    def get_report(self, report_id: str) -> dict[str, Any]:
        """``getReport``: the ``Report`` (``processingStatus``, ``reportDocumentId`` when DONE/FATAL...)."""
        validate_path_segment(report_id, name="report id", operation="getReport")
        result, _ = self.call("getReport", "GET", f"{REPORTS}/reports/{report_id}")
        return result if isinstance(result, dict) else {}

    def get_reports(
        self,
        *,
        report_types: Sequence[str],
        processing_statuses: Sequence[str] | None = None,
        marketplace_ids: Sequence[str] | None = None,
        created_since: datetime | None = None,
        page_size: int = 100,
        max_pages: int | None = None,
    ) -> list[dict[str, Any]]:
        """``getReports`` (every page; a ``nextToken`` is sent as the only parameter, as Amazon requires)."""
        op = "getReports"
        if not 1 <= len(report_types) <= 10:
            raise ValidationError("getReports takes 1 to 10 report types", operation=op)
        unknown = set(processing_statuses or ()) - set(PROCESSING_STATUSES)
        if unknown:
            raise ValidationError(f"unknown processing statuses {sorted(unknown)}", operation=op)
        params: dict[str, Any] = {
            "reportTypes": ",".join(report_types),
            "processingStatuses": ",".join(processing_statuses) if processing_statuses else None,
            "marketplaceIds": ",".join(
                validate_marketplace_ids(list(marketplace_ids), region=self.config.region, operation=op)
            )
            if marketplace_ids
            else None,
            "createdSince": format_amazon_time(created_since) if created_since else None,
            "pageSize": max(1, min(100, int(page_size))),
        }
        reports: list[dict[str, Any]] = []
        pages = 0
        while True:
            body, _ = self.call(
                op, "GET", f"{REPORTS}/reports", params=params, page_token_sent="nextToken" in params
            )
            body = body if isinstance(body, dict) else {}
            reports.extend(body.get("reports") or [])
            pages += 1
            token = body.get("nextToken")
            if not token or (max_pages is not None and pages >= max_pages):
                return reports
            params = {"nextToken": token}

    def cancel_report(self, report_id: str) -> None:
        """``cancelReport`` (Amazon cancels only IN_QUEUE reports)."""
        validate_path_segment(report_id, name="report id", operation="cancelReport")
        self.call("cancelReport", "DELETE", f"{REPORTS}/reports/{report_id}")

    def get_report_document(self, document_id: str) -> dict[str, Any]:
        """``getReportDocument``: ``{reportDocumentId, url, compressionAlgorithm?}`` (the URL lives 5 min)."""
        validate_path_segment(document_id, name="report document id", operation="getReportDocument")
        result, _ = self.call("getReportDocument", "GET", f"{REPORTS}/documents/{document_id}")
        if not isinstance(result, dict) or not result.get("url"):
            raise SpApiServerError("no url in the getReportDocument response", operation="getReportDocument")
        return result

    def download_document(self, document_id: str) -> Document:
        """Fetch a document's URL and download it; an expired URL is replaced by a new one (at most
        :data:`MAX_URL_REFRESHES` times). Gzip is detected by its magic bytes, not by the flag."""
        refreshes = 0
        while True:
            info = self.get_report_document(document_id)
            try:
                response = self.session.get(
                    info["url"], timeout=self.config.timeout, headers={"Accept": "*/*"}
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise SpApiServerError(
                    f"document download failed ({type(exc).__name__})", operation="downloadReportDocument"
                ) from exc
            if response.status_code in (400, 403) and refreshes < MAX_URL_REFRESHES:
                refreshes += 1
                log.info(
                    "report document %s: download URL refused (HTTP %d, expired?); fetching a new one",
                    document_id,
                    response.status_code,
                )
                continue
            if response.status_code != 200:
                raise SpApiError(
                    f"document download answered HTTP {response.status_code}",
                    operation="downloadReportDocument",
                    status=response.status_code,
                    hint="The pre-signed URL was refused; rerun the task (it fetches a new URL).",
                )
            raw = response.content
            content = decompress(raw)
            return Document(
                document_id=document_id,
                content=content,
                content_type=response.headers.get("Content-Type"),
                compression_claimed=info.get("compressionAlgorithm"),
                was_gzip=content is not raw,
                url_refreshes=refreshes,
            )


__all__ = ["PROCESSING_STATUSES", "REPORTS", "Document", "SellingPartnerReportsHook"]
