"""Login with Amazon: ``POST /auth/o2/token`` (refresh-token and client-credentials grants).

Not an SP-API operation: never rate limited or faulted, errors in LWA's own
``{"error", "error_description"}`` shape; counted as ``lwaToken``.
"""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sp_api_sandbox.auth import LwaError
from sp_api_sandbox.server import SandboxServer

PATH = "/auth/o2/token"


async def _form(request: Request) -> dict[str, str]:
    """LWA parameters: form-encoded (most clients) or a JSON object (Amazon's Java client)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LwaError(400, "invalid_request", "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise LwaError(400, "invalid_request", "The request body must be a JSON object.")
        return {str(k): str(v) for k, v in body.items()}
    return {k: str(v) for k, v in (await request.form()).items()}


def router(server: SandboxServer) -> APIRouter:
    api = APIRouter()

    @api.post(PATH)
    async def lwa_token(request: Request) -> Response:
        try:
            response = JSONResponse(server.tokens.exchange(await _form(request)))
        except LwaError as exc:
            response = JSONResponse(
                {"error": exc.error, "error_description": exc.description}, status_code=exc.status
            )
        ok = response.status_code == 200
        server.count("lwaToken", calls=1, ok=int(ok), errors=int(not ok))
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        response.headers["Cache-Control"] = "no-store"
        return response

    return api
