"""Every error leaves the proxy as JSON, in the shape the route's clients expect.

- the 1.10 routes and the rest: ``{"status": code, "error": message}``;
- OpenAI's ``/v1/...``: ``{"error": {"message", "type", "param", "code"}}``, which the
  ``openai`` package turns into its exceptions with the message;
- TEI's routes (``/embed``, ``/embed_all``, ``/tokenize``, ``/info`` and ``POST /``):
  ``{"error": message, "error_type": ...}``, which ``huggingface_hub`` shows.

Client mistakes get a 4xx that says what is wrong; only a bug in the proxy gives a 500,
and its details go to the log, not to the caller.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from .link import LinkTimeoutError, ServerRefusedError

OPENAI_PREFIX = "/v1/"
TEI_PATHS = ("/", "/embed", "/embed_all", "/tokenize", "/info")
# TEI's error types (its ErrorType enum), by the statuses this proxy answers with
TEI_ERROR_TYPES = {400: "Empty", 424: "Backend", 429: "Overloaded", 503: "Unhealthy"}
OPENAI_ERROR_TYPES = {401: "authentication_error", 404: "not_found_error"}


class ApiError(Exception):
    """A request the proxy refuses, with the HTTP status and a message for the caller.

    ``param`` names the offending field, for OpenAI's error shape.
    """

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


def error_response(status: int, message: str, param: str | None = None) -> Response:
    """The JSON error answer, shaped for the family of the requested route."""
    response = jsonify(error_body(request.path, status, message, param))
    response.status_code = status
    return response


def error_body(path: str, status: int, message: str, param: str | None = None) -> dict:
    if path.startswith(OPENAI_PREFIX):
        kind = OPENAI_ERROR_TYPES.get(status)
        kind = kind or ("server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": param, "code": None}}
    if path in TEI_PATHS:
        kind = TEI_ERROR_TYPES.get(status, "Backend" if status >= 500 else "Validation")
        return {"error": message, "error_type": kind}
    return {"status": status, "error": message}


def register_error_handlers(app: Flask, logger: logging.Logger) -> None:
    """Turn every exception a view can raise into a JSON answer."""

    @app.errorhandler(ApiError)
    def _refused(err: ApiError) -> Response:
        return error_response(err.status, err.message, err.param)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        response = error_response(err.code or 500, _describe(err))
        if isinstance(err, MethodNotAllowed) and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(ServerRefusedError)
    def _server_refused(err: ServerRefusedError) -> Response:
        status = 424 if request.path in TEI_PATHS else 400  # TEI: "the model failed"
        return error_response(status, f"the server refused the request: {err}")

    @app.errorhandler(LinkTimeoutError)
    def _timeout(err: LinkTimeoutError) -> Response:
        return error_response(504, str(err))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal error in the HTTP proxy; its log has the details")


def _describe(err: HTTPException) -> str:
    """Messages that name the request, instead of Werkzeug's generic sentences."""
    if isinstance(err, NotFound):
        return f"no such endpoint: {request.path} (the API is described at /openapi.json)"
    if isinstance(err, MethodNotAllowed):
        automatic = {"HEAD", "OPTIONS"}  # Flask adds them to every route
        allowed = ", ".join(sorted(set(err.valid_methods or []) - automatic))
        return f"{request.method} is not allowed on {request.path}; use {allowed}"
    if isinstance(err, RequestEntityTooLarge):
        limit = request.max_content_length
        return f"the request body is larger than the limit of {limit} bytes (-http_max_body)"
    return err.description or err.name
