"""The optional API key of the HTTP endpoints (``-http_api_key``).

Requests send it as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (the header OpenAI
clients already send with their ``api_key``). ``/health`` stays open for load balancers and
container health checks, and so do the dashboard's static files, whose page asks for the
key (``/dashboard#key=KEY``) before it reads the status endpoints.
"""

from __future__ import annotations

import hmac

from flask import Flask, Response, request

from .errors import error_response

OPEN_PATHS = ("/health", "/openapi.json")
OPEN_PREFIXES = ("/dashboard",)


def require_api_key(app: Flask, api_key: str | None) -> None:
    if not api_key:
        return

    @app.before_request
    def _check_key() -> Response | None:
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return None
        if request.method == "OPTIONS":  # CORS preflight requests carry no credentials
            return None
        if hmac.compare_digest(_presented_key().encode(), api_key.encode()):
            return None
        response = error_response(
            401, "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response


def _presented_key() -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[len("bearer ") :].strip()
    return request.headers.get("X-API-Key", "")
