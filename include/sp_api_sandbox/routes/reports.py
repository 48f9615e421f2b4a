"""Reports API 2021-06-30 for order reports, the documents' download URLs, and its admin API.

Amazon's rules (reports-notes A4/A5): ``createReport`` (202) takes ``reportType``, 1-25 marketplace ids
of the region and ``dataStartTime < dataEndTime <= now``, at most two years back; a report is IN_QUEUE,
then IN_PROGRESS, then DONE (a document), CANCELLED (the window has no orders: no document) or FATAL
(an error document). Processing takes 30 s queued plus 60 s + 20 s per day of the window, in Amazon
time (divided by the time scale). The document is rendered from the world when the report completes:
the orders of its marketplace whose lastUpdatedTime is in [start, end) for BY_LAST_UPDATE (createdTime
for BY_ORDER_DATE), in their state at that moment. A window longer than 30 days is DONE with Amazon's
"Date range exceeded" document. ``getReportDocument`` returns a URL that expires after 5 minutes (Amazon
time): an expired URL answers 403 like S3. Documents are gzip-compressed or not and served in UTF-8,
UTF-8 with a BOM (no charset), Cp1252 or Windows-31J, chosen per report from the seed; the
``compressionAlgorithm`` flag lies about a third of the time (both ways). ``POST /_sandbox/reports/config``
forces variants and faults, ``GET /_sandbox/reports`` lists the reports; see docs/CONTRACTS.md.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sp_api_sandbox.render.reports import DATE_RANGE_EXCEEDED, ENCODINGS, encode_document, render_report
from sp_api_sandbox.server import ApiError, CallContext, Route, SandboxServer
from sp_api_sandbox.validation import check_marketplaces, format_time, list_param, parse_time

PATH = "/reports/2021-06-30"
DOCUMENTS_PATH = "/_sandbox/documents"
REPORT_TYPES = {
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL": "last_updated",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL": "created",
}
QUEUE_SECONDS = 30.0
PROCESSING_SECONDS = 60.0
PROCESSING_SECONDS_PER_DAY = 20.0
MAX_WINDOW = timedelta(days=30)
MAX_HISTORY = timedelta(days=730)
URL_TTL_SECONDS = 300.0
#: getReports: createdSince defaults to 90 days ago (the model), pageSize 1..100 (default 10).
REPORTS_RETENTION = timedelta(days=90)
CONFIG_KEYS = frozenset(
    {"fatal_next", "fatal_fraction", "encoding", "gzip", "flag_lies", "expire_next_urls", "delay_scale"}
)


@dataclass
class SimReport:
    report_id: str
    report_type: str
    marketplace_ids: list[str]
    start: datetime
    end: datetime
    created: datetime
    created_clock: float
    duration: float  # real seconds from creation to completion
    fatal: bool
    status: str = "IN_QUEUE"
    document_id: str | None = None
    processing_start: datetime | None = None
    processing_end: datetime | None = None
    orders: int = 0


@dataclass
class SimDocument:
    document_id: str
    body: bytes
    content_type: str
    gzipped: bool
    claimed: str | None  # compressionAlgorithm as served


@dataclass
class ReportsState:
    """Every report and document of one sandbox, and the forced variants (admin config)."""

    server: SandboxServer
    lock: threading.Lock = field(default_factory=threading.Lock)
    reports: dict[str, SimReport] = field(default_factory=dict)
    documents: dict[str, SimDocument] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(50_000_000_001))
    config: dict[str, Any] = field(
        default_factory=lambda: {
            "fatal_next": 0,
            "fatal_fraction": 0.0,
            "encoding": "auto",
            "gzip": "auto",
            "flag_lies": True,
            "expire_next_urls": 0,
            "delay_scale": 1.0,
        }
    )

    @property
    def scale(self) -> float:
        return self.server.settings.time_scale

    def rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(str(p) for p in (self.server.settings.seed, "reports", *parts)))

    # -- lifecycle --------------------------------------------------------------------------------
    def create(self, body: Any) -> SimReport:
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidInput", "The request body must be a JSON object.", "body")
        report_type = body.get("reportType")
        if report_type not in REPORT_TYPES:
            raise ApiError(
                400, "InvalidInput", f"Invalid reportType {str(report_type)[:80]!r}.", "reportType"
            )
        mids = body.get("marketplaceIds")
        if not isinstance(mids, list) or not 1 <= len(mids) <= 25:
            raise ApiError(
                400, "InvalidInput", "marketplaceIds must list 1 to 25 marketplaces.", "marketplaceIds"
            )
        check_marketplaces(
            "marketplaceIds", [str(m) for m in mids], self.server.world.marketplace_ids, required=True
        )
        now = self.server.now()
        start = _time(body, "dataStartTime", now)
        end = _time(body, "dataEndTime", now)
        if start > now or end > now:
            raise ApiError(
                400, "InvalidInput", "dataStartTime and dataEndTime must not be in the future.", ""
            )
        if start >= end:
            raise ApiError(400, "InvalidInput", "dataStartTime must be before dataEndTime.", "dataStartTime")
        if start < now - MAX_HISTORY:
            raise ApiError(
                400, "InvalidInput", "Order reports cover the last 730 days only.", "dataStartTime"
            )
        with self.lock:
            report_id = str(next(self.ids))
            cfg = self.config
            fatal = False
            if cfg["fatal_next"] > 0:
                cfg["fatal_next"] -= 1
                fatal = True
            elif cfg["fatal_fraction"] > 0:
                fatal = self.rng("fatal", report_id).random() < cfg["fatal_fraction"]
            days = (end - start).total_seconds() / 86400
            amazon = QUEUE_SECONDS + PROCESSING_SECONDS + PROCESSING_SECONDS_PER_DAY * days
            report = SimReport(
                report_id=report_id,
                report_type=str(report_type),
                marketplace_ids=[str(m) for m in mids],
                start=start,
                end=end,
                created=now,
                created_clock=time.monotonic(),
                duration=amazon * float(cfg["delay_scale"]) / self.scale,
                fatal=fatal,
            )
            self.reports[report_id] = report
        return report

    def refresh(self, report: SimReport) -> SimReport:
        """Move a report along its timeline; render its document when it completes (call under lock)."""
        if report.status not in ("IN_QUEUE", "IN_PROGRESS"):
            return report
        elapsed = time.monotonic() - report.created_clock
        queued = report.duration * QUEUE_SECONDS / (QUEUE_SECONDS + PROCESSING_SECONDS)
        if elapsed < queued:
            return report
        if report.processing_start is None:
            report.processing_start = report.created + timedelta(seconds=queued)
            report.status = "IN_PROGRESS"
        if elapsed < report.duration:
            return report
        report.processing_end = self.server.now()
        if report.fatal:
            report.status = "FATAL"
            text = (
                "Report processing failed: the sandbox's seeded FATAL fault "
                f"(report {report.report_id}). Request the report again later.\n"
            )
            report.document_id = self._store(report, text, encoding="utf-8", gzipped=False)
            return report
        if report.end - report.start > MAX_WINDOW:
            report.status = "DONE"
            report.document_id = self._store(report, DATE_RANGE_EXCEEDED, encoding="utf-8", gzipped=False)
            return report
        axis = REPORT_TYPES[report.report_type]
        window = (
            {"last_updated_after": report.start, "last_updated_before": report.end}
            if axis == "last_updated"
            else {"created_after": report.start, "created_before": report.end}
        )
        with self.server.world_lock:
            found = self.server.world.search(**window, marketplace_ids=report.marketplace_ids)
            text = render_report(found) if found else ""
        report.orders = len(found)
        if not found:
            report.status = "CANCELLED"
            return report
        rng = self.rng("variant", report.report_id)
        encoding = self.config["encoding"]
        if encoding == "auto":
            encoding = rng.choice(sorted(ENCODINGS))
        gz = self.config["gzip"]
        gzipped = rng.random() < 0.5 if gz == "auto" else gz == "always"
        report.status = "DONE"
        report.document_id = self._store(report, text, encoding=encoding, gzipped=gzipped)
        return report

    def _store(self, report: SimReport, text: str, *, encoding: str, gzipped: bool) -> str:
        body, content_type = encode_document(text, encoding, gzipped)
        claimed = "GZIP" if gzipped else None
        if self.config["flag_lies"] and self.rng("flag", report.report_id).random() < 1 / 3:
            claimed = None if gzipped else "GZIP"
        document_id = f"amzn1.spdoc.1.4.na.{report.report_id}.{hashlib.sha256(body).hexdigest()[:12]}"
        self.documents[document_id] = SimDocument(document_id, body, content_type, gzipped, claimed)
        return document_id

    # -- document URLs ----------------------------------------------------------------------------
    def _sign(self, document_id: str, expires: float) -> str:
        key = f"{self.server.settings.seed}:{self.server.settings.client_secret}".encode()
        return hmac.new(key, f"{document_id}:{expires:.3f}".encode(), hashlib.sha256).hexdigest()[:32]

    def url(self, request: Request, document_id: str) -> str:
        with self.lock:
            expired = self.config["expire_next_urls"] > 0
            if expired:
                self.config["expire_next_urls"] -= 1
        expires = time.time() + (-1.0 if expired else URL_TTL_SECONDS / self.scale)
        base = str(request.base_url).rstrip("/")
        signature = self._sign(document_id, expires)
        return f"{base}{DOCUMENTS_PATH}/{document_id}?expires={expires:.3f}&signature={signature}"

    def render(self, report: SimReport) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reportId": report.report_id,
            "reportType": report.report_type,
            "marketplaceIds": list(report.marketplace_ids),
            "dataStartTime": format_time(report.start),
            "dataEndTime": format_time(report.end),
            "createdTime": format_time(report.created),
            "processingStatus": report.status,
        }
        if report.processing_start is not None:
            out["processingStartTime"] = format_time(report.processing_start)
        if report.processing_end is not None:
            out["processingEndTime"] = format_time(report.processing_end)
        if report.document_id is not None:
            out["reportDocumentId"] = report.document_id
        return out


def _time(body: dict[str, Any], name: str, now: datetime) -> datetime:
    raw = body.get(name)
    if raw is None:
        return now
    try:
        return parse_time(name, str(raw))
    except ValueError as exc:
        raise ApiError(400, "InvalidInput", f"Invalid {name}.", name) from exc


def _report(state: ReportsState, report_id: str) -> SimReport:
    report = state.reports.get(report_id)
    if report is None:
        raise ApiError(404, "NotFound", "The requested report was not found.", f"Report {report_id[:80]}")
    return state.refresh(report)


def routes(state: ReportsState) -> tuple[Route, ...]:
    def create_report(ctx: CallContext) -> dict[str, Any]:
        return {"reportId": state.create(ctx.json()).report_id}

    def get_report(ctx: CallContext) -> dict[str, Any]:
        with state.lock:
            return state.render(_report(state, ctx.param("reportId")))

    def cancel_report(ctx: CallContext) -> dict[str, Any]:
        with state.lock:
            report = _report(state, ctx.param("reportId"))
            if report.status != "IN_QUEUE":
                message = f"Only IN_QUEUE reports can be cancelled; this one is {report.status}."
                raise ApiError(400, "InvalidInput", message, "reportId")
            report.status = "CANCELLED"
            report.processing_end = state.server.now()
        return {}

    def get_reports(ctx: CallContext) -> dict[str, Any]:
        q = ctx.request.query_params
        if q.get("nextToken"):
            if len(q) > 1:
                raise ApiError(400, "InvalidInput", "nextToken must be the only parameter.", "nextToken")
            try:
                token = state.server.page_tokens.decode(q["nextToken"], "getReports")
            except Exception as exc:
                raise ApiError(400, "InvalidInput", "Invalid nextToken.", "nextToken") from exc
            filters, position = token["x"], int(token["p"])
        else:
            types = list_param(q.getlist("reportTypes"))
            if not types:
                raise ApiError(
                    400, "InvalidInput", "reportTypes is required without nextToken.", "reportTypes"
                )
            size = int(q.get("pageSize") or 10)
            if not 1 <= size <= 100:
                raise ApiError(400, "InvalidInput", "pageSize must be 1 to 100.", "pageSize")
            now = state.server.now()
            since = (
                parse_time("createdSince", q["createdSince"])
                if q.get("createdSince")
                else now - REPORTS_RETENTION
            )
            until = parse_time("createdUntil", q["createdUntil"]) if q.get("createdUntil") else now
            filters = {
                "types": types,
                "statuses": list_param(q.getlist("processingStatuses")),
                "marketplaces": list_param(q.getlist("marketplaceIds")),
                "since": format_time(since),
                "until": format_time(until),
                "size": size,
            }
            position = 0
        since, until = parse_time("since", filters["since"]), parse_time("until", filters["until"])
        with state.lock:
            found = []
            for r in sorted(state.reports.values(), key=lambda r: (r.created, r.report_id), reverse=True):
                state.refresh(r)
                if r.report_type not in filters["types"] or not since <= r.created <= until:
                    continue
                if filters["statuses"] and r.status not in filters["statuses"]:
                    continue
                if filters["marketplaces"] and not set(r.marketplace_ids) & set(filters["marketplaces"]):
                    continue
                found.append(state.render(r))
        size = int(filters["size"])
        page = found[position : position + size]
        body: dict[str, Any] = {"reports": page}
        if position + size < len(found):
            body["nextToken"] = state.server.page_tokens.encode("getReports", "", position + size, filters)
        return body

    def get_report_document(ctx: CallContext) -> dict[str, Any]:
        document_id = ctx.param("reportDocumentId")
        with state.lock:
            document = state.documents.get(document_id)
        if document is None:
            raise ApiError(404, "NotFound", "The requested report document was not found.", document_id[:80])
        out: dict[str, Any] = {"reportDocumentId": document_id, "url": state.url(ctx.request, document_id)}
        if document.claimed:
            out["compressionAlgorithm"] = document.claimed
        return out

    return (
        Route("POST", f"{PATH}/reports", "createReport", "seller", create_report),
        Route("GET", f"{PATH}/reports", "getReports", "seller", get_reports),
        Route("GET", f"{PATH}/reports/{{reportId}}", "getReport", "seller", get_report),
        Route("DELETE", f"{PATH}/reports/{{reportId}}", "cancelReport", "seller", cancel_report),
        Route(
            "GET",
            f"{PATH}/documents/{{reportDocumentId}}",
            "getReportDocument",
            "seller",
            get_report_document,
        ),
    )


def _endpoint(server: SandboxServer, route: Route) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        response = await server.call(request, route.operation, route.access, route.handler)
        if route.operation == "createReport" and response.status_code == 200:
            response.status_code = 202  # Amazon answers createReport with 202 Accepted
        return response

    return endpoint


def router(server: SandboxServer) -> APIRouter:
    state = ReportsState(server)
    server.reports = state  # type: ignore[attr-defined]  # for in-process tests and the admin routes
    api = APIRouter()
    table = routes(state)
    for route in table:
        api.add_api_route(route.path, _endpoint(server, route), methods=[route.method], name=route.operation)

    @api.get(f"{DOCUMENTS_PATH}/{{document_id}}")
    async def download(document_id: str, expires: float = 0.0, signature: str = "") -> Response:
        """The pre-signed document URL (S3 in production): no SP-API token, not rate limited."""
        if not hmac.compare_digest(signature, state._sign(document_id, expires)):
            return Response(
                b"<Error><Code>SignatureDoesNotMatch</Code></Error>", 403, media_type="application/xml"
            )
        if time.time() > expires:
            return Response(
                b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                403,
                media_type="application/xml",
            )
        with state.lock:
            document = state.documents.get(document_id)
        if document is None:
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml")
        return Response(document.body, 200, headers={"Content-Type": document.content_type})

    @api.get("/_sandbox/reports")
    async def list_reports() -> JSONResponse:
        with state.lock:
            reports = [state.render(state.refresh(r)) | {"orders": r.orders} for r in state.reports.values()]
            documents = {
                d.document_id: {
                    "content_type": d.content_type,
                    "gzip": d.gzipped,
                    "compressionAlgorithm": d.claimed,
                    "bytes": len(d.body),
                }
                for d in state.documents.values()
            }
            config = dict(state.config)
        return JSONResponse({"reports": reports, "documents": documents, "config": config})

    @api.post("/_sandbox/reports/config")
    async def post_config(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            unknown = set(body) - CONFIG_KEYS
            if unknown:
                raise ValueError(f"unknown settings: {sorted(unknown)}")
            if "encoding" in body and body["encoding"] not in {"auto", *ENCODINGS}:
                raise ValueError(f"encoding must be auto or one of {sorted(ENCODINGS)}")
            if "gzip" in body and body["gzip"] not in ("auto", "always", "never"):
                raise ValueError("gzip must be auto, always or never")
            if not 0.0 <= float(body.get("fatal_fraction", 0.0)) <= 1.0:
                raise ValueError("fatal_fraction must be within [0, 1]")
            if float(body.get("delay_scale", 1.0)) <= 0:
                raise ValueError("delay_scale must be positive")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        with state.lock:
            state.config.update(body)
            config = dict(state.config)
        return JSONResponse(config)

    return api
